"""Preprocessing into snapshots (k-core, order, ids, hash) and the leave-one-out split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recops_contracts.training import DatasetFormat, DatasetSource
from recops_trainer.data.snapshot import build_snapshot, k_core, read_snapshot, write_snapshot
from recops_trainer.data.split import history_matrix, leave_one_out
from recops_trainer.data.synthetic import generate

SOURCE = DatasetSource(format=DatasetFormat.MOVIELENS_100K, minInteractions=1)


def frame(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user", "item", "order"])


def test_sequences_are_chronological_with_ids_remapped() -> None:
    raw = frame([("20", "b", 3), ("10", "a", 9), ("20", "a", 1), ("10", "c", 2)])
    snap = build_snapshot(raw, SOURCE)
    assert snap.user_ids == ["10", "20"]
    assert snap.item_ids == ["a", "b", "c"]
    assert [s.tolist() for s in snap.sequences] == [[3, 1], [1, 2]]
    assert snap.manifest["stats"]["interactions"] == 4


def test_k_core_repeats_until_stable() -> None:
    # Dropping item x (1 rating) leaves user 2 with 1 interaction, which then goes too.
    raw = frame(
        [("1", "a", 0), ("1", "b", 1), ("2", "a", 0), ("2", "x", 1), ("3", "b", 0), ("3", "a", 1)]
    )
    kept = k_core(raw, 2)
    assert sorted(kept["user"].unique()) == ["1", "3"]
    assert sorted(kept["item"].unique()) == ["a", "b"]


def test_hash_follows_the_content(tmp_path: Path) -> None:
    raw = frame([("1", "a", 0), ("1", "b", 1), ("2", "a", 0)])
    first = build_snapshot(raw, SOURCE)
    again = build_snapshot(raw.sample(frac=1.0, random_state=1), SOURCE)
    changed = build_snapshot(frame([("1", "a", 0), ("1", "b", 1), ("2", "b", 0)]), SOURCE)
    assert first.hash == again.hash
    assert first.hash != changed.hash


def test_snapshot_round_trip_and_tamper_check(tmp_path: Path) -> None:
    snap = build_snapshot(generate(num_users=30, num_items=20, seed=1), SOURCE)
    folder = write_snapshot(snap, tmp_path / "snap")
    back = read_snapshot(folder)
    assert back.hash == snap.hash
    assert all(np.array_equal(a, b) for a, b in zip(back.sequences, snap.sequences, strict=True))
    items = pd.read_parquet(folder / "interactions.parquet")
    items.loc[0, "item"] = int(items["item"].max())
    items.to_parquet(folder / "interactions.parquet", index=False)
    with pytest.raises(ValueError, match="does not match its manifest"):
        read_snapshot(folder)


def test_synthetic_data_is_labelled() -> None:
    snap = build_snapshot(generate(seed=2), DatasetSource(format=DatasetFormat.SYNTHETIC))
    assert snap.manifest["synthetic"] is True
    assert snap.manifest["format"] == "synthetic"


def test_leave_one_out() -> None:
    raw = frame([("1", str(i), i) for i in range(1, 6)] + [("2", "1", 0), ("2", "2", 1)])
    split = leave_one_out(build_snapshot(raw, SOURCE))
    assert split.train[0].tolist() == [1, 2, 3]
    assert (split.valid[0], split.test[0]) == (4, 5)
    # Fewer than 3 interactions: all training, nothing held out (as the reference does).
    assert split.train[1].tolist() == [1, 2]
    assert (split.valid[1], split.test[1]) == (0, 0)


def test_history_matrix_left_pads_and_keeps_the_tail() -> None:
    out = history_matrix([np.array([1, 2, 3, 4]), np.array([7])], 3)
    assert out.tolist() == [[2, 3, 4], [0, 0, 7]]

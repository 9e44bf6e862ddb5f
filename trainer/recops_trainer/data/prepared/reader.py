"""Reading a prepared folder back: its manifest, its part files row group by row group
(bounded memory), a hash check, the most popular items, or the whole folder in memory."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recops_trainer.data.prepared.layout import LAYOUT, MODULUS, content_hash, user_digest
from recops_trainer.data.snapshot import MANIFEST, Snapshot

Ints = npt.NDArray[np.int64]


def popular_items(folder: Path, top: int) -> list[int]:
    """The ``top`` internal item ids with the most interactions, most first."""
    import pyarrow.parquet as pq

    counts = pq.read_table(Path(folder) / "items.parquet", columns=["interactions"])
    values = counts.column("interactions").to_numpy()
    return [int(i) + 1 for i in np.argsort(-values, kind="stable")[:top]]


def is_prepared(folder: Path) -> bool:
    """Whether ``folder`` holds a prepared (per-user rows) snapshot."""
    path = Path(folder) / MANIFEST
    return path.is_file() and json.loads(path.read_text()).get("layout") == LAYOUT


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("layout") != LAYOUT:
        raise ValueError(f"{folder} is not a prepared snapshot (no layout: {LAYOUT} in {MANIFEST})")
    return manifest


def part_files(folder: Path) -> list[Path]:
    return sorted((Path(folder) / LAYOUT).glob("part-*.parquet"))


def iter_rows(folder: Path, columns: Sequence[str] = ("user", "items")) -> Any:
    """(user ids, item lists) per row group of every part: the reader of bounded memory."""
    import pyarrow.parquet as pq

    for path in part_files(folder):
        reader = pq.ParquetFile(path)
        for group_index in range(reader.num_row_groups):
            table = reader.read_row_group(group_index, columns=list(columns))
            yield table


def verify(folder: Path) -> str:
    """Recompute the content hash from the part files (streaming); raises on a mismatch."""
    manifest = read_manifest(folder)
    timestamps = bool(manifest.get("ordered"))
    columns = ("user", "items", "timestamps") if timestamps else ("user", "items")
    digest_sum = 0
    for table in iter_rows(folder, columns):
        users = table.column("user").to_numpy()
        items = table.column("items").combine_chunks()
        offsets = items.offsets.to_numpy()
        values = items.values.to_numpy().astype(np.int64)
        times = None
        if timestamps:
            times = table.column("timestamps").combine_chunks().values.to_numpy()
        for row, user in enumerate(users):
            a, b = offsets[row], offsets[row + 1]
            digest_sum += user_digest(
                int(user), values[a:b], times[a:b] if times is not None else None
            )
    user_ids = _read_ids(Path(folder) / "users.parquet")
    item_ids = _read_ids(Path(folder) / "items.parquet")
    actual = content_hash(digest_sum % MODULUS, user_ids, item_ids)
    if actual != manifest["hash"]:
        raise ValueError(
            f"prepared snapshot {folder} does not match its manifest (hash {actual} != "
            f"{manifest['hash']}); prepare it again"
        )
    return actual


def _read_ids(path: Path) -> Ints:
    import pyarrow.parquet as pq

    return np.asarray(pq.read_table(path).column("original").to_pylist(), dtype=np.int64)


def to_snapshot(folder: Path) -> Snapshot:
    """The whole prepared folder in memory: the in-memory path for data that fits."""
    import pyarrow.parquet as pq

    manifest = read_manifest(folder)
    num_users = int(manifest["stats"]["users"])
    sequences: list[Ints] = [np.zeros(0, np.int64)] * num_users
    for table in iter_rows(folder):
        users = table.column("user").to_numpy()
        items = table.column("items").combine_chunks()
        offsets = items.offsets.to_numpy()
        values = items.values.to_numpy().astype(np.int64)
        for row, user in enumerate(users):
            sequences[int(user) - 1] = values[offsets[row] : offsets[row + 1]]
    user_ids = pq.read_table(Path(folder) / "users.parquet").column("original").to_pylist()
    item_ids = pq.read_table(Path(folder) / "items.parquet").column("original").to_pylist()
    return Snapshot(sequences, [str(u) for u in user_ids], [str(i) for i in item_ids], manifest)

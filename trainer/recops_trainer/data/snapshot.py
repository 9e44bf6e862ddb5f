"""Dataset snapshots: filtered, chronological, id-remapped sequences with a content hash.

A snapshot folder holds ``interactions.parquet`` (internal user, internal item, position),
``users.parquet`` and ``items.parquet`` (internal id to original id) and
``manifest.json``. The hash covers the interactions and both id maps, so it changes with
the data and nothing else; training runs and MLflow record it as the data version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from recops_contracts.training import DatasetFormat, DatasetSource

MANIFEST = "manifest.json"
Ints = npt.NDArray[np.int64]


@dataclass
class Snapshot:
    """Sequences of internal item ids (1-based), one per internal user (index = id - 1)."""

    sequences: list[Ints]
    user_ids: list[str]
    item_ids: list[str]
    manifest: dict[str, Any]

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def hash(self) -> str:
        return str(self.manifest["hash"])


def k_core(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """Drop users and items with fewer than ``k`` interactions until none is left."""
    while True:
        item_counts = frame["item"].map(frame["item"].value_counts())
        user_counts = frame["user"].map(frame["user"].value_counts())
        keep = (item_counts >= k) & (user_counts >= k)
        if keep.all():
            return frame
        frame = frame[keep]


def _sorted_ids(values: pd.Series) -> list[str]:
    """Unique ids, numerically ordered when all are numbers (SASRec files keep their ids)."""
    unique = values.unique().tolist()
    if all(v.isdigit() for v in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def content_hash(users: Ints, items: Ints, user_ids: list[str], item_ids: list[str]) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(users, dtype="<i8").tobytes())
    digest.update(np.ascontiguousarray(items, dtype="<i8").tobytes())
    digest.update("\n".join(user_ids).encode())
    digest.update(b"\0")
    digest.update("\n".join(item_ids).encode())
    return digest.hexdigest()


def build_snapshot(
    frame: pd.DataFrame, source: DatasetSource, *, origin: str | None = None
) -> Snapshot:
    """Filter, order and remap raw interactions (``user``, ``item``, ``order``)."""
    frame = frame.drop_duplicates(["user", "item"], keep="first")
    frame = k_core(frame, source.min_interactions)
    if frame.empty:
        raise ValueError(
            f"dataset.minInteractions={source.min_interactions} removed every interaction; "
            "lower it or use more data"
        )
    user_ids = _sorted_ids(frame["user"])
    item_ids = _sorted_ids(frame["item"])
    user_index = {u: i + 1 for i, u in enumerate(user_ids)}
    item_index = {it: i + 1 for i, it in enumerate(item_ids)}
    users = frame["user"].map(user_index).to_numpy(np.int64)
    items = frame["item"].map(item_index).to_numpy(np.int64)
    # Stable sort keeps file order for equal timestamps (as the SASRec preprocessing did).
    order = np.lexsort((frame["order"].to_numpy(np.int64), users))
    users, items = users[order], items[order]
    bounds = np.searchsorted(users, np.arange(1, len(user_ids) + 2))
    sequences = [items[bounds[u] : bounds[u + 1]] for u in range(len(user_ids))]
    manifest: dict[str, Any] = {
        "format_version": 1,
        "hash": content_hash(users, items, user_ids, item_ids),
        "format": source.format.value,
        "synthetic": source.format == DatasetFormat.SYNTHETIC,
        "source": origin or source.uri,
        "min_interactions": source.min_interactions,
        "stats": sequence_stats(sequences, len(item_ids)),
    }
    return Snapshot(sequences, user_ids, item_ids, manifest)


def sequence_stats(sequences: list[Ints], items: int) -> dict[str, Any]:
    """The manifest's ``stats``: sizes and the distribution of sequence lengths."""
    return length_stats(np.array([len(s) for s in sequences]), items)


def length_stats(lengths: npt.NDArray[np.integer[Any]], items: int) -> dict[str, Any]:
    """``sequence_stats`` from the users' sequence lengths alone."""
    return {
        "users": len(lengths),
        "items": items,
        "interactions": int(lengths.sum()),
        "sequence_length": {
            "mean": float(lengths.mean()),
            "p50": float(np.percentile(lengths, 50)),
            "p90": float(np.percentile(lengths, 90)),
            "p99": float(np.percentile(lengths, 99)),
            "max": int(lengths.max()),
            "min": int(lengths.min()),
        },
    }


def flat_interactions(sequences: list[Ints]) -> tuple[Ints, Ints]:
    """(internal user, internal item) of every interaction, user by user, in order: what
    the parquet file holds and the content hash covers."""
    users = np.concatenate([np.full(len(s), u + 1, np.int64) for u, s in enumerate(sequences)])
    return users, np.concatenate(sequences)


def write_snapshot(snapshot: Snapshot, out_dir: Path) -> Path:
    """Write the parquet files and the manifest; returns the folder."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    users, items = flat_interactions(snapshot.sequences)
    positions = np.concatenate([np.arange(len(s), dtype=np.int64) for s in snapshot.sequences])
    interactions = pd.DataFrame({"user": users, "item": items, "position": positions})
    interactions.to_parquet(out_dir / "interactions.parquet", index=False)
    pd.DataFrame(
        {"id": np.arange(1, snapshot.num_users + 1), "original": snapshot.user_ids}
    ).to_parquet(out_dir / "users.parquet", index=False)
    pd.DataFrame(
        {"id": np.arange(1, snapshot.num_items + 1), "original": snapshot.item_ids}
    ).to_parquet(out_dir / "items.parquet", index=False)
    (out_dir / MANIFEST).write_text(json.dumps(snapshot.manifest, indent=2) + "\n")
    return out_dir


def read_snapshot(folder: Path) -> Snapshot:
    """Read a snapshot folder and check its content against the manifest's hash."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    interactions = pd.read_parquet(folder / "interactions.parquet")
    user_ids = pd.read_parquet(folder / "users.parquet")["original"].astype(str).tolist()
    item_ids = pd.read_parquet(folder / "items.parquet")["original"].astype(str).tolist()
    users = interactions["user"].to_numpy(np.int64)
    items = interactions["item"].to_numpy(np.int64)
    actual = content_hash(users, items, user_ids, item_ids)
    if actual != manifest["hash"]:
        raise ValueError(
            f"snapshot {folder} does not match its manifest (hash {actual} != "
            f"{manifest['hash']}); prepare it again"
        )
    bounds = np.searchsorted(users, np.arange(1, len(user_ids) + 2))
    sequences = [items[bounds[u] : bounds[u + 1]] for u in range(len(user_ids))]
    return Snapshot(sequences, user_ids, item_ids, manifest)

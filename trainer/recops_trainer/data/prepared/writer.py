"""Large archives prepared once into per-user Parquet rows, in memory bounded by a bucket.

A prepared folder holds ``sequences/part-NNNNN.parquet`` (one row per user: ``user``, the
internal id, 1-based; ``items``, its internal item ids in order; ``timestamps`` where the
format has them), in row groups of bounded size, beside ``users.parquet`` and
``items.parquet`` (internal id to original id) and ``manifest.json``.

The raw pairs never sit in memory together. Preparation is three passes, each a set of
independent tasks (Ray Data runs them on a Ray cluster when one is given, this process
runs them one by one otherwise):

1. scatter: each piece of the archive (an ML-1B shard, the ratings.csv) is streamed and
   its pairs written to ``buckets`` files by ``user % buckets``, so that a user's pairs
   all land in one bucket of about ``BUCKET_PAIRS`` pairs;
2. group: each bucket is sorted by (user, time), repeated (user, item) pairs dropped, and
   users and items counted; the k-core filter then iterates on those counts (recounting
   the buckets only when a pass removed something);
3. write: each bucket becomes one part file of per-user rows, ids remapped.

The content hash does not depend on the bucket count or the file layout: it is the sum
(mod 2^256) of each user row's sha256, with both id maps, so the same interactions give
the same hash from a zip or a plain file, on one machine or on a cluster.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recops_contracts.training import DatasetFormat, DatasetSource
from recops_runtime.folders import staged_folder
from recops_trainer.data import archives
from recops_trainer.data.archives import SourcePart
from recops_trainer.data.prepared.layout import (
    FORMAT_VERSION,
    LAYOUT,
    MODULUS,
    content_hash,
)
from recops_trainer.data.prepared.passes import (
    Plan,
    _each,
    _empty_counts,
    group,
    k_core,
    scatter,
    write_part,
)
from recops_trainer.data.prepared.reader import read_manifest
from recops_trainer.data.snapshot import MANIFEST, length_stats

log = logging.getLogger("recops.data")

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

# Pairs per bucket: what one task holds in memory at once (about 40 bytes a pair while
# it sorts), whatever the size of the data set.
BUCKET_PAIRS = 2_000_000
# Bytes of ratings.csv per line, to size the buckets before reading (ML-20M: about 26).
CSV_BYTES_PER_LINE = 20


# the whole preparation


def bucket_count(fmt: DatasetFormat, path: Path, parts: Sequence[SourcePart]) -> int:
    """Enough buckets that each holds about ``BUCKET_PAIRS`` pairs."""
    pairs = sum(p.rows for p in parts if p.rows >= 0)
    if fmt != DatasetFormat.MOVIELENS_1B:
        pairs = _csv_bytes(path) // CSV_BYTES_PER_LINE
    return max(1, -(-pairs // BUCKET_PAIRS))


def _csv_bytes(path: Path) -> int:
    import zipfile

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as bundle:
            return sum(i.file_size for i in bundle.infolist() if i.filename.endswith(".csv"))
    size = Path(path).stat().st_size
    return size * 5 if Path(path).suffix == ".gz" else size


def source_key(fmt: DatasetFormat, path: Path, min_interactions: int) -> dict[str, Any]:
    """What a prepared folder was made from: reused while this is unchanged."""
    stat = Path(path).stat()
    return {
        "format": fmt.value,
        "file": Path(path).name,
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "min_interactions": min_interactions,
    }


def use_ray_data(explicit: bool | None = None) -> bool:
    """Ray Data when asked for, or when a cluster is given (``RAY_ADDRESS``)."""
    return bool(os.environ.get("RAY_ADDRESS")) if explicit is None else explicit


def prepare(
    source: DatasetSource,
    path: Path,
    out: Path,
    *,
    use_ray: bool | None = None,
    buckets: int | None = None,
) -> dict[str, Any]:
    """Prepare ``path`` (in ``source.format``) into ``out``; returns the manifest.

    ``out`` is published whole when everything is written: a failure (a corrupt archive)
    leaves the previous folder, or none, never a half-written one.
    """
    fmt = source.format
    if fmt not in (
        DatasetFormat.MOVIELENS_1B,
        DatasetFormat.MOVIELENS_20M,
        DatasetFormat.MOVIELENS_25M,
        DatasetFormat.MOVIELENS_32M,
        DatasetFormat.MOVIELENS_LATEST,
    ):
        raise ValueError(
            f"dataset.format {fmt.value}: the prepared layout reads movielens-20m, -25m, "
            "-32m, -latest (ratings.csv) and movielens-1b (npz shards); use the in-memory "
            "snapshot for the others"
        )
    ray = use_ray_data(use_ray)
    started = time.perf_counter()
    out = Path(out)
    with staged_folder(out, "prepare") as staging:
        parts = archives.source_parts(fmt, path)
        plan = Plan(
            staging / "_work",
            buckets or bucket_count(fmt, path, parts),
            archives.has_timestamps(fmt),
        )
        log.info(
            "preparing %s: %d pieces into %d buckets (%s)",
            path.name,
            len(parts),
            plan.buckets,
            "Ray Data" if ray else "this process",
        )
        pairs = sum(_each(lambda ip: scatter(fmt, plan, ip[0], ip[1]), list(enumerate(parts)), ray))
        scattered = time.perf_counter()
        counts, repeats = _empty_counts(), 0
        for bucket_counts, bucket_repeats in _each(
            lambda b: group(plan, b), range(plan.buckets), ray
        ):
            counts.add(bucket_counts, plan.buckets)
            repeats += bucket_repeats
        counts = k_core(plan, counts, source.min_interactions, ray)
        user_keep, item_keep = counts.users > 0, counts.items > 0
        user_ids, item_ids = np.flatnonzero(user_keep), np.flatnonzero(item_keep)
        if len(user_ids) == 0 or len(item_ids) == 0:
            raise ValueError(
                f"dataset.minInteractions={source.min_interactions} removed every "
                "interaction; lower it or use more data"
            )
        user_map = _id_map(user_keep)
        item_map = _id_map(item_keep)
        digest_sum, lengths_parts = 0, []
        for result in _each(
            lambda b: write_part(plan, b, staging, user_map, item_map), range(plan.buckets), ray
        ):
            digest_sum = (digest_sum + result.digest_sum) % MODULUS
            lengths_parts.append(result.lengths)
        shutil.rmtree(plan.work, ignore_errors=True)
        _write_ids(staging / "users.parquet", user_ids)
        _write_ids(staging / "items.parquet", item_ids, counts.items[item_ids])
        lengths = np.concatenate(lengths_parts)
        seconds = time.perf_counter() - started
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "layout": LAYOUT,
            "hash": content_hash(digest_sum, user_ids, item_ids),
            "format": fmt.value,
            "synthetic": False,
            "source": path.name,
            "source_key": source_key(fmt, path, source.min_interactions),
            # ML-1B's pairs have no timestamps: a user's order is file order, not time.
            "ordered": plan.timestamps,
            "min_interactions": source.min_interactions,
            "stats": length_stats(lengths, len(item_ids)),
            "preparation": {
                "engine": "ray-data" if ray else "local",
                "buckets": plan.buckets,
                "pairs_read": pairs,
                "repeated_pairs_dropped": repeats,
                "seconds": round(seconds, 2),
                "scatter_seconds": round(scattered - started, 2),
                "pairs_per_second": round(pairs / max(seconds, 1e-9)),
            },
            "parts": sorted(p.name for p in (staging / LAYOUT).glob("*.parquet")),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info(
        "prepared %s: %d users, %d items, %d interactions in %.1fs (%.0f pairs/s), hash %s",
        out,
        manifest["stats"]["users"],
        manifest["stats"]["items"],
        manifest["stats"]["interactions"],
        seconds,
        pairs / max(seconds, 1e-9),
        manifest["hash"][:12],
    )
    return manifest


def _id_map(keep: Bools) -> Ints:
    """Original id to internal id (1-based, in original id order); 0 for dropped ids."""
    out = np.zeros(len(keep), np.int64)
    out[keep] = np.arange(1, int(keep.sum()) + 1)
    return out


def _write_ids(path: Path, originals: Ints, interactions: Ints | None = None) -> None:
    """Internal id to original id (as text, as the in-memory snapshot has them), and for
    items their interactions (what the model folder's popular items are ranked by)."""
    import pandas as pd

    frame = pd.DataFrame(
        {"id": np.arange(1, len(originals) + 1), "original": originals.astype(str)}
    )
    if interactions is not None:
        frame["interactions"] = interactions
    frame.to_parquet(path, index=False)


def prepared_or_prepare(
    source: DatasetSource, path: Path, out: Path, *, use_ray: bool | None = None
) -> tuple[dict[str, Any], bool]:
    """The prepared folder at ``out``, made now unless one from the same source is there;
    (manifest, whether it was reused)."""
    manifest_path = Path(out) / MANIFEST
    if manifest_path.is_file():
        manifest = read_manifest(out)
        if manifest.get("source_key") == source_key(source.format, path, source.min_interactions):
            log.info("reusing the prepared snapshot %s (hash %s)", out, manifest["hash"][:12])
            return manifest, True
    return prepare(source, path, out, use_ray=use_ray), False

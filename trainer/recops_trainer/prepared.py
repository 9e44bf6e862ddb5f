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

import functools
import hashlib
import json
import logging
import os
import pickle
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from recops_runtime.folders import staged_folder
from recops_trainer import archives
from recops_trainer.archives import SourcePart
from recops_trainer.config import DatasetFormat, DatasetSource
from recops_trainer.snapshot import MANIFEST, Snapshot, length_stats

log = logging.getLogger("recops.data")

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
T = TypeVar("T")
R = TypeVar("R")

LAYOUT = "sequences"
FORMAT_VERSION = 1
# Pairs per bucket: what one task holds in memory at once (about 40 bytes a pair while
# it sorts), whatever the size of the data set.
BUCKET_PAIRS = 2_000_000
# Items per Parquet row group of the part files: the unit a reader decodes at once.
ROW_GROUP_ITEMS = 1_000_000
# Bytes of ratings.csv per line, to size the buckets before reading (ML-20M: about 26).
CSV_BYTES_PER_LINE = 20
MAX_KCORE_PASSES = 50
MODULUS = 1 << 256
SCATTER_COLUMNS = ("user", "item", "time", "line")


@dataclass(frozen=True)
class Plan:
    """Where the passes write, and how many buckets they use."""

    work: Path
    buckets: int
    timestamps: bool

    def scatter_dir(self, bucket: int) -> Path:
        return self.work / "scatter" / f"b{bucket:05d}"

    def grouped(self, bucket: int) -> Path:
        return self.work / "grouped" / f"b{bucket:05d}.parquet"


@dataclass
class Counts:
    """Interactions per original user and per original item id."""

    users: Ints
    items: Ints

    def add(self, part: BucketCounts, buckets: int) -> None:
        """Add one bucket's counts (in place: the totals are the only copy kept)."""
        user_ids = np.arange(len(part.users), dtype=np.int64) * buckets + part.bucket
        self.users = _grown(self.users, int(user_ids[-1]) + 1 if len(user_ids) else 0)
        self.users[user_ids] += part.users
        self.items = _grown(self.items, len(part.items))
        self.items[: len(part.items)] += part.items


@dataclass(frozen=True)
class BucketCounts:
    """One bucket's counts, compact: a bucket holds the users ``u`` with
    ``u % buckets == bucket``, so ``users`` is indexed by ``u // buckets`` (a dense count
    by user id would cost every bucket the whole id range)."""

    bucket: int
    users: Ints
    items: Ints


def _grown(array: Ints, size: int) -> Ints:
    if len(array) >= size:
        return array
    out = np.zeros(size, np.int64)
    out[: len(array)] = array
    return out


def _each(fn: Callable[[T], R], inputs: Sequence[T], use_ray: bool) -> Iterator[R]:
    """``fn(x)`` of every input, as they finish; as Ray Data tasks when ``use_ray``.

    Results are consumed one by one, never all held: a pass over ML-1B has hundreds.
    """
    if not use_ray:
        yield from (fn(x) for x in inputs)
        return
    import ray.data

    # Results travel back pickled: they are numpy arrays and small records, and Arrow
    # would need a schema for each.
    def task(row: dict[str, Any]) -> dict[str, Any]:
        return {"result": pickle.dumps(fn(pickle.loads(row["input"])))}

    rows = [{"input": pickle.dumps(x)} for x in inputs]
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    for row in dataset.map(task, num_cpus=1).iter_rows():
        yield pickle.loads(row["result"])


# pass 1: scatter


def _write_table(path: Path, columns: dict[str, Ints]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, compression="zstd")


def scatter(fmt: DatasetFormat, plan: Plan, index: int, part: SourcePart) -> int:
    """Stream one piece of the archive into the buckets; returns the pairs read.

    Each bucket gets one file per piece, a row group per chunk read: at ML-1B's size
    (300 buckets, 1,200 chunks) a file per chunk would be hundreds of thousands of files.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.int64()) for name in SCATTER_COLUMNS])
    writers: dict[int, Any] = {}
    pairs = 0
    try:
        for chunk in archives.iter_part(fmt, part):
            bucket = chunk.users % plan.buckets
            order = np.argsort(bucket, kind="stable")
            bounds = np.searchsorted(bucket[order], np.arange(plan.buckets + 1))
            columns = (chunk.users, chunk.items, chunk.times, chunk.lines)
            for b in range(plan.buckets):
                rows = order[bounds[b] : bounds[b + 1]]
                if len(rows) == 0:
                    continue
                if b not in writers:
                    path = plan.scatter_dir(b) / f"p{index:05d}.parquet"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    # No dictionary encoding: ids barely repeat within a chunk, and each
                    # open writer's dictionary builders would cost memory per bucket.
                    writers[b] = pq.ParquetWriter(
                        path, schema, compression="zstd", use_dictionary=False
                    )
                table = pa.Table.from_arrays([c[rows] for c in columns], schema=schema)
                writers[b].write_table(table)
            pairs += len(chunk)
    finally:
        for writer in writers.values():
            writer.close()
    return pairs


# pass 2: group and count


def _read(path: Path, columns: list[str] | None = None) -> dict[str, Ints]:
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns)
    return {name: table.column(name).to_numpy().astype(np.int64) for name in table.column_names}


def _counts(plan: Plan, bucket: int, users: Ints, items: Ints) -> BucketCounts:
    empty = np.zeros(0, np.int64)
    if len(users) == 0:
        return BucketCounts(bucket, empty, empty)
    return BucketCounts(bucket, np.bincount(users // plan.buckets), np.bincount(items))


def group(plan: Plan, bucket: int) -> tuple[BucketCounts, int]:
    """Sort a bucket by (user, time, line), drop repeated pairs; (its counts, repeats)."""
    folder = plan.scatter_dir(bucket)
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return _counts(plan, bucket, np.zeros(0, np.int64), np.zeros(0, np.int64)), 0
    parts = [_read(f) for f in files]
    data = {k: np.concatenate([p[k] for p in parts]) for k in SCATTER_COLUMNS}
    del parts
    order = np.lexsort((data["line"], data["time"], data["user"]))
    users, items, times = data["user"][order], data["item"][order], data["time"][order]
    del data, order
    # The first of a repeated (user, item) pair is the one kept, as the in-memory snapshot does.
    by_pair = np.lexsort((np.arange(len(users)), items, users))
    same = (users[by_pair][1:] == users[by_pair][:-1]) & (items[by_pair][1:] == items[by_pair][:-1])
    keep = np.ones(len(users), bool)
    keep[by_pair[1:][same]] = False
    users, items, times = users[keep], items[keep], times[keep]
    _write_table(plan.grouped(bucket), {"user": users, "item": items, "time": times})
    shutil.rmtree(folder, ignore_errors=True)
    return _counts(plan, bucket, users, items), int((~keep).sum())


def recount(plan: Plan, bucket: int, user_keep: Bools, item_keep: Bools) -> BucketCounts:
    """Counts of a bucket's pairs whose user and item are both still kept."""
    path = plan.grouped(bucket)
    if not path.is_file():
        return _counts(plan, bucket, np.zeros(0, np.int64), np.zeros(0, np.int64))
    data = _read(path, ["user", "item"])
    kept = _kept(data["user"], data["item"], user_keep, item_keep)
    return _counts(plan, bucket, data["user"][kept], data["item"][kept])


def _kept(users: Ints, items: Ints, user_keep: Bools, item_keep: Bools) -> Bools:
    return user_keep[users] & item_keep[items]


def k_core(plan: Plan, counts: Counts, k: int, use_ray: bool) -> Counts:
    """The counts (by original id) of the users and items that survive the k-core; the
    others count 0."""
    for _ in range(MAX_KCORE_PASSES):
        user_keep = counts.users >= k
        item_keep = counts.items >= k
        if user_keep[counts.users > 0].all() and item_keep[counts.items > 0].all():
            return counts
        task = functools.partial(recount, plan, user_keep=user_keep, item_keep=item_keep)
        counts = _empty_counts(len(user_keep), len(item_keep))
        for part in _each(task, range(plan.buckets), use_ray):
            counts.add(part, plan.buckets)
    raise ValueError(f"dataset.minInteractions={k}: the k-core did not settle; lower it")


def _empty_counts(users: int = 0, items: int = 0) -> Counts:
    return Counts(np.zeros(users, np.int64), np.zeros(items, np.int64))


# pass 3: write per-user rows


@dataclass(frozen=True)
class PartResult:
    users: int
    interactions: int
    digest_sum: int
    lengths: Ints


def user_digest(user: int, items: Ints, times: Ints | None) -> int:
    """One user row's share of the content hash."""
    digest = hashlib.sha256(np.int64(user).tobytes())
    digest.update(np.ascontiguousarray(items, "<i8").tobytes())
    if times is not None:
        digest.update(np.ascontiguousarray(times, "<i8").tobytes())
    return int.from_bytes(digest.digest(), "big")


def write_part(plan: Plan, bucket: int, out: Path, user_map: Ints, item_map: Ints) -> PartResult:
    """Bucket ``bucket`` as ``sequences/part-NNNNN.parquet``, ids remapped (0: dropped)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    empty = PartResult(0, 0, 0, np.zeros(0, np.int64))
    path = plan.grouped(bucket)
    if not path.is_file():
        return empty
    data = _read(path)
    users, items = user_map[data["user"]], item_map[data["item"]]
    kept = (users > 0) & (items > 0)
    users, items, times = users[kept], items[kept], data["time"][kept]
    del data
    if len(users) == 0:
        return empty
    # Users were sorted by original id, and internal ids keep that order.
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    offsets = np.r_[starts, len(users)].astype(np.int64)
    ids = users[starts]
    lengths = np.diff(offsets)
    digest_sum = 0
    for row, user in enumerate(ids):
        a, b = offsets[row], offsets[row + 1]
        digest_sum += user_digest(int(user), items[a:b], times[a:b] if plan.timestamps else None)
    columns: dict[str, Any] = {
        "user": pa.array(ids, pa.int64()),
        "items": pa.LargeListArray.from_arrays(offsets, pa.array(items.astype(np.int32))),
    }
    if plan.timestamps:
        columns["timestamps"] = pa.LargeListArray.from_arrays(offsets, pa.array(times))
    table = pa.table(columns)
    rows_per_group = max(1, ROW_GROUP_ITEMS // max(1, int(lengths.mean())))
    target = out / LAYOUT / f"part-{bucket:05d}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, target, row_group_size=rows_per_group, compression="zstd")
    path.unlink()
    return PartResult(len(ids), int(lengths.sum()), digest_sum % MODULUS, lengths)


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


def content_hash(digest_sum: int, user_ids: Ints, item_ids: Ints) -> str:
    digest = hashlib.sha256(b"recops-prepared-v1\0")
    digest.update(digest_sum.to_bytes(32, "big"))
    digest.update(np.ascontiguousarray(user_ids, "<i8").tobytes())
    digest.update(np.ascontiguousarray(item_ids, "<i8").tobytes())
    return digest.hexdigest()


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

"""The three passes of preparation, each a set of independent tasks: scatter an archive's
pieces into buckets by user, group (sort, de-duplicate, count) and k-core-filter the
buckets, and write each bucket as one part file of per-user rows."""

from __future__ import annotations

import functools
import logging
import pickle
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from recops_contracts.training import DatasetFormat
from recops_trainer.data import archives
from recops_trainer.data.archives import SourcePart
from recops_trainer.data.prepared.layout import (
    LAYOUT,
    MODULUS,
    user_digest,
)

log = logging.getLogger("recops.data")

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
T = TypeVar("T")
R = TypeVar("R")

# Items per Parquet row group of the part files: the unit a reader decodes at once.
ROW_GROUP_ITEMS = 1_000_000
MAX_KCORE_PASSES = 50
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

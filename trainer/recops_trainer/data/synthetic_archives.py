"""Synthetic archives in the exact GroupLens formats, of any size, written in bounded memory.

- ``write_ml20m_zip``: ``ml-20m.zip`` holding ``ml-20m/ratings.csv`` with GroupLens'
  header and row order (by user, then by movie id; the timestamps give each user's
  sequence order, which is not the file order, as in the real file).
- ``write_ml1b_tar``: ``ml-20mx16x32.tar`` holding ``ml-20mx16x32/trainx16x32_N.npz`` and
  ``testx16x32_N.npz``: ``np.savez`` archives of one ``[pairs, 2]`` array ``arr_0`` of
  ``[user, item]``; each user's last pair is in a test shard.

A user's items are distinct: an arithmetic walk through the catalogue from a popular
start, with one of a few strides, so the data has a little to learn and costs nothing to
generate. These sets measure loaders and throughput, not model quality.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]

USERS_PER_BLOCK = 20_000
STRIDES = (1, 2, 3, 5, 7, 11, 13, 17)
ML20M_EPOCH = 1_400_000_000  # where the synthetic timestamps start (2014, as ML-20M's end)


@dataclass(frozen=True)
class SyntheticSize:
    """How big the set is: ``users`` with ``mean_length`` interactions on average, drawn
    from a catalogue of ``items`` (lengths are at least ``min_length``)."""

    users: int
    items: int
    mean_length: int = 50
    min_length: int = 5
    seed: int = 0

    @property
    def max_length(self) -> int:
        return min(self.items - 1, 2 * self.mean_length - self.min_length)


def _lengths(size: SyntheticSize) -> Ints:
    rng = np.random.default_rng(size.seed)
    lo, hi = size.min_length, max(size.min_length, size.max_length)
    return rng.integers(lo, hi + 1, size=size.users).astype(np.int64)


def _user_blocks(size: SyntheticSize) -> Iterator[tuple[Ints, Ints, Ints]]:
    """(user ids (0-based), lengths, items concatenated) per block of users."""
    if size.items < size.min_length + 1:
        raise ValueError(f"items ({size.items}) must exceed min_length ({size.min_length})")
    lengths = _lengths(size)
    ranks = np.arange(1, size.items + 1, dtype=np.float64)
    popularity = 1.0 / ranks
    cdf = np.cumsum(popularity / popularity.sum())
    for first in range(0, size.users, USERS_PER_BLOCK):
        rng = np.random.default_rng([size.seed, first])
        users = np.arange(first, min(first + USERS_PER_BLOCK, size.users), dtype=np.int64)
        block = lengths[users]
        start = np.minimum(np.searchsorted(cdf, rng.random(len(users))), size.items - 1)
        stride = np.asarray(STRIDES, np.int64)[rng.integers(0, len(STRIDES), size=len(users))]
        owner = np.repeat(np.arange(len(users)), block)
        step = np.arange(len(owner)) - np.repeat(np.cumsum(block) - block, block)
        # Distinct within a user whenever the catalogue size is coprime with the stride;
        # otherwise the walk can repeat, and preparation removes the repeats.
        items = (start[owner] + stride[owner] * step) % size.items
        yield users, block, items.astype(np.int64)


def write_ml20m_zip(target: Path, size: SyntheticSize, root: str = "ml-20m") -> Path:
    """``target`` as GroupLens ships ML-20M (or ML-25M with ``root="ml-25m"``)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    rng = np.random.default_rng(size.seed + 1)
    ratings = np.arange(1, 11) / 2
    with (
        zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as bundle,
        bundle.open(f"{root}/ratings.csv", "w", force_zip64=True) as member,
    ):
        member.write(b"userId,movieId,rating,timestamp\n")
        for users, block, items in _user_blocks(size):
            owner = np.repeat(users, block)
            step = np.arange(len(owner)) - np.repeat(np.cumsum(block) - block, block)
            times = ML20M_EPOCH + owner * 1000 + step * 7
            order = np.lexsort((items, owner))  # GroupLens' order: user, then movie id
            rating = rng.choice(ratings, size=len(owner))
            text = io.StringIO()
            np.savetxt(
                text,
                np.column_stack([owner[order] + 1, items[order] + 1, rating, times[order]]),
                fmt=["%d", "%d", "%.1f", "%d"],
                delimiter=",",
            )
            member.write(text.getvalue().encode())
    partial.replace(target)
    return target


class _NpzWriter:
    """An ``np.savez`` file of one ``[rows, 2]`` int32 array ``arr_0``, written in chunks."""

    def __init__(self, path: Path, rows: int) -> None:
        self.path, self.rows, self.written = path, rows, 0
        self._bundle = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED)
        self._member = self._bundle.open("arr_0.npy", "w", force_zip64=True)
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype("<i4")),
            "fortran_order": False,
            "shape": (rows, 2),
        }
        np.lib.format.write_array_header_1_0(self._member, header)

    def write(self, pairs: npt.NDArray[np.int64]) -> None:
        self._member.write(np.ascontiguousarray(pairs, "<i4").tobytes())
        self.written += len(pairs)

    def close(self) -> None:
        self._member.close()
        self._bundle.close()
        if self.written != self.rows:
            raise RuntimeError(
                f"{self.path}: wrote {self.written} pairs, its header says {self.rows}"
            )


def write_ml1b_tar(
    target: Path, size: SyntheticSize, shards: int = 16, root: str = "ml-20mx16x32"
) -> Path:
    """``target`` as GroupLens ships ML-1B: user ``u``'s pairs in shard ``u % shards``,
    its last pair in the test shard of the same number."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lengths = _lengths(size)
    shard_of = np.arange(size.users) % shards
    rows = {
        "train": np.bincount(shard_of, weights=lengths - 1, minlength=shards).astype(np.int64),
        "test": np.bincount(shard_of, minlength=shards).astype(np.int64),
    }
    partial = target.with_name(target.name + ".partial")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        writers = {
            (kind, shard): _NpzWriter(Path(tmp) / f"{kind}x16x32_{shard}.npz", int(n[shard]))
            for kind, n in rows.items()
            for shard in range(shards)
        }
        # One pass over the users feeds every shard.
        for users, block, items in _user_blocks(size):
            owner = np.repeat(users, block)
            last = np.zeros(len(owner), bool)
            last[np.cumsum(block) - 1] = True
            pairs = np.column_stack([owner, items])
            for shard in range(shards):
                mine = owner % shards == shard
                writers["train", shard].write(pairs[mine & ~last])
                writers["test", shard].write(pairs[mine & last])
        with tarfile.open(partial, "w") as tar:
            for (kind, shard), writer in writers.items():
                writer.close()
                tar.add(writer.path, arcname=f"{root}/{kind}x16x32_{shard}.npz")
                writer.path.unlink()
    partial.replace(target)
    return target


def pairs_of(size: SyntheticSize) -> int:
    """How many pairs a set of this size holds (before preparation removes repeats)."""
    return int(_lengths(size).sum())

"""Streaming readers of the large GroupLens archives, in their original formats.

- ML-20M / ML-25M / ML-32M: ``ratings.csv`` (``userId,movieId,rating,timestamp`` with a
  header) inside the GroupLens zip, or the plain (or gzipped) file; parsed in blocks with
  pyarrow's streaming CSV reader.
- ML-1B (``ml-20mx16x32``): ``trainx16x32_N.npz`` and ``testx16x32_N.npz`` shards, each
  one ``[pairs, 2]`` int array (``arr_0``) of ``[user, item]``, inside the GroupLens tar
  or in a folder. The ``.npy`` inside each ``.npz`` is read row block by row block from
  the compressed stream, so not even one shard is held in memory. The pairs carry no
  timestamps: their per-user order is file order (training shards first, then the test
  shards), not time order.

Every reader yields ``PairChunk``s of bounded size; a corrupt or truncated archive raises
``ArchiveError`` naming the file and the member.
"""

from __future__ import annotations

import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from recops_contracts.training import DatasetFormat
from recops_trainer.data.datasets import ARCHIVES, DataUnavailableError

Ints = npt.NDArray[np.int64]

CSV_BLOCK_BYTES = 16 << 20
NPZ_CHUNK_ROWS = 1 << 20
# Shards of ML-1B, training shards before test shards, each set in numeric order.
SHARD_PATTERN = re.compile(r"(?:^|/)(train|test)x16x32_(\d+)\.npz$")
RATINGS_COLUMNS = ("userId", "movieId", "timestamp")
# What a read of a damaged file raises, from zipfile, zlib, tarfile, numpy or pyarrow.
READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    tarfile.TarError,
    EOFError,
    OSError,
    ValueError,
)


class ArchiveError(DataUnavailableError):
    """A corrupt, truncated or unexpected archive; the message names the file and member."""


@dataclass(frozen=True)
class PairChunk:
    """Interactions in file order: original user and item ids, and the time to order a
    user's interactions by (the timestamp, or the global line number without one)."""

    users: Ints
    items: Ints
    times: Ints
    lines: Ints  # global line number: the tie-break for equal times

    def __len__(self) -> int:
        return len(self.users)


@dataclass(frozen=True)
class SourcePart:
    """A piece of an archive that one task reads on its own (an ML-1B shard, or the whole
    ratings.csv), with the global line number its first row has."""

    path: str
    member: str
    first_line: int
    rows: int  # -1 where unknown before reading (CSV)


def has_timestamps(fmt: DatasetFormat) -> bool:
    return fmt != DatasetFormat.MOVIELENS_1B


def _fail(path: str, member: str, exc: BaseException, what: str = "") -> ArchiveError:
    where = f"{path}" + (f" (member {member})" if member else "")
    return ArchiveError(
        f"{where}: {what or 'cannot read it'} ({type(exc).__name__}: {exc}); the archive is "
        "corrupt or truncated: download it again (or check dataset.sha256)"
    )


# ratings.csv


def _csv_member(bundle: zipfile.ZipFile, fmt: DatasetFormat, path: Path) -> str:
    wanted = ARCHIVES[fmt].member.rsplit("/", 1)[-1] if fmt in ARCHIVES else "ratings.csv"
    names = bundle.namelist()
    matches = [n for n in names if n == wanted or n.endswith("/" + wanted)]
    if not matches:
        raise ArchiveError(f"{path} holds no {wanted}; it has {', '.join(names[:8])}")
    return matches[0]


def _open_csv(path: Path, fmt: DatasetFormat, stack: ExitStack) -> tuple[IO[bytes], str]:
    if zipfile.is_zipfile(path):
        bundle = stack.enter_context(zipfile.ZipFile(path))
        member = _csv_member(bundle, fmt, path)
        return stack.enter_context(bundle.open(member)), member
    if path.suffix == ".zip":
        raise ArchiveError(f"{path}: not a readable zip archive; download it again")
    if path.suffix == ".gz":
        import gzip

        return stack.enter_context(gzip.open(path, "rb")), ""  # type: ignore[arg-type]
    return stack.enter_context(path.open("rb")), ""


def iter_ratings_csv(
    path: Path, fmt: DatasetFormat, block_bytes: int = CSV_BLOCK_BYTES
) -> Iterator[PairChunk]:
    """``ratings.csv`` rows, block by block (about ``block_bytes`` of text each)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    line = 0
    member = ""
    try:
        with ExitStack() as stack:
            stream, member = _open_csv(path, fmt, stack)
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=block_bytes),
                convert_options=pacsv.ConvertOptions(
                    include_columns=list(RATINGS_COLUMNS),
                    column_types=dict.fromkeys(RATINGS_COLUMNS, pa.int64()),
                ),
            )
            for batch in reader:
                n = batch.num_rows
                if n == 0:
                    continue
                cols = [batch.column(c).to_numpy(zero_copy_only=False) for c in RATINGS_COLUMNS]
                users, items, times = (np.asarray(c, np.int64) for c in cols)
                yield PairChunk(users, items, times, np.arange(line, line + n, dtype=np.int64))
                line += n
    except ArchiveError:
        raise
    except (pa.ArrowException, *READ_ERRORS) as exc:
        raise _fail(str(path), member, exc, f"cannot read ratings after line {line}") from exc


# ML-1B npz shards


def _shard_key(name: str) -> tuple[int, int] | None:
    match = SHARD_PATTERN.search(name)
    if match is None:
        return None
    return (0 if match.group(1) == "train" else 1, int(match.group(2)))


def _npy_header(stream: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype[np.generic]]:
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    return np.lib.format.read_array_header_2_0(stream)


def _npy_stream(bundle: zipfile.ZipFile, label: str) -> tuple[IO[bytes], int, np.dtype[np.generic]]:
    """The single array of an ``.npz``: its open stream (after the header), rows and dtype."""
    arrays = [n for n in bundle.namelist() if n.endswith(".npy")]
    if len(arrays) != 1:
        raise ArchiveError(f"{label}: expected one array (arr_0) in the npz, found {arrays}")
    stream = bundle.open(arrays[0])
    shape, fortran, dtype = _npy_header(stream)
    if len(shape) != 2 or shape[1] != 2 or dtype.kind not in "iu" or fortran:
        stream.close()
        raise ArchiveError(
            f"{label}: expected a C-ordered [pairs, 2] int array of [user, item], found "
            f"shape {shape} of {dtype}{' (Fortran order)' if fortran else ''}"
        )
    return stream, int(shape[0]), dtype


def _open_member(path: Path, member: str, stack: ExitStack) -> zipfile.ZipFile:
    if path.is_dir():
        return stack.enter_context(zipfile.ZipFile(path / member))
    # Closed by the caller's ExitStack, with the zip and the member opened from it.
    tar = stack.enter_context(tarfile.open(path, "r:*"))  # noqa: SIM115
    handle = tar.extractfile(member)
    if handle is None:
        raise ArchiveError(f"{path} (member {member}): not a regular file")
    return stack.enter_context(zipfile.ZipFile(stack.enter_context(handle)))


def npz_parts(path: Path) -> list[SourcePart]:
    """The shards of an ML-1B archive (a tar, or a folder of npz files), training shards
    first, each with its row count read from its header (nothing else is read)."""
    path = Path(path)
    names: list[str] = []
    try:
        if path.is_dir():
            names = [p.name for p in path.iterdir()]
        else:
            with tarfile.open(path, "r:*") as tar:
                names.extend(m.name for m in tar if m.isfile())
    except READ_ERRORS as exc:
        # A cut tar fails while listing: the last member it reached is the damaged one.
        last = names[-1] if names else ""
        raise _fail(str(path), last, exc, "cannot list the shards past this member") from exc
    keyed = sorted((key, n) for n in names if (key := _shard_key(n)) is not None)
    if not keyed:
        raise ArchiveError(
            f"{path} holds no trainx16x32_N.npz shards; give the ml-20mx16x32 tar or the "
            "folder it unpacks to"
        )
    parts: list[SourcePart] = []
    line = 0
    for _, name in keyed:
        try:
            with ExitStack() as stack:
                bundle = _open_member(path, name, stack)
                stream, rows, _ = _npy_stream(bundle, f"{path} (member {name})")
                stream.close()
        except ArchiveError:
            raise
        except READ_ERRORS as exc:
            raise _fail(str(path), name, exc) from exc
        parts.append(SourcePart(str(path), name, line, rows))
        line += rows
    return parts


def iter_npz_part(part: SourcePart, chunk_rows: int = NPZ_CHUNK_ROWS) -> Iterator[PairChunk]:
    """One shard's pairs, ``chunk_rows`` at a time."""
    path = Path(part.path)
    label = f"{path} (member {part.member})"
    done = 0
    try:
        with ExitStack() as stack:
            bundle = _open_member(path, part.member, stack)
            stream, rows, dtype = _npy_stream(bundle, label)
            stack.enter_context(stream)
            row_bytes = 2 * dtype.itemsize
            while done < rows:
                n = min(chunk_rows, rows - done)
                data = stream.read(n * row_bytes)
                if len(data) != n * row_bytes:
                    raise ArchiveError(
                        f"{label}: truncated after {done + len(data) // row_bytes} of {rows} "
                        "pairs; download the archive again"
                    )
                pairs = np.frombuffer(data, dtype=dtype).reshape(n, 2).astype(np.int64)
                lines = np.arange(part.first_line + done, part.first_line + done + n)
                yield PairChunk(pairs[:, 0].copy(), pairs[:, 1].copy(), lines, lines)
                done += n
            # Reading to the end is what makes zipfile check the member's CRC.
            if stream.read(1):
                raise ArchiveError(f"{label}: more data than its header's {rows} pairs")
    except ArchiveError:
        raise
    except READ_ERRORS as exc:
        raise _fail(str(path), part.member, exc, f"cannot read pairs after {done}") from exc


def source_parts(fmt: DatasetFormat, path: Path) -> list[SourcePart]:
    """The pieces of ``path`` that can be read independently (in parallel on Ray)."""
    if fmt == DatasetFormat.MOVIELENS_1B:
        return npz_parts(path)
    return [SourcePart(str(path), "", 0, -1)]


def iter_part(fmt: DatasetFormat, part: SourcePart) -> Iterator[PairChunk]:
    if fmt == DatasetFormat.MOVIELENS_1B:
        return iter_npz_part(part)
    return iter_ratings_csv(Path(part.path), fmt)

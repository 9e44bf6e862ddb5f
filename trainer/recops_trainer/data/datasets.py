"""Reading interactions in every form users have them, and fetching GroupLens archives.

Each reader returns a DataFrame with columns ``user`` (str), ``item`` (str) and ``order``
(int64, chronological within a user: the timestamp, or the line number for files that are
already in time order). Ratings are treated as implicit feedback: every rating counts.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recops_contracts.training import DatasetFormat


@dataclass(frozen=True)
class Archive:
    """A GroupLens archive: where to fetch it, the file inside it, and its pinned digest."""

    url: str
    member: str
    algorithm: str  # sha256 where we measured it, else the md5 GroupLens publishes
    digest: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"
ARCHIVES: dict[DatasetFormat, Archive] = {
    DatasetFormat.MOVIELENS_100K: Archive(
        f"{_GROUPLENS}/ml-100k.zip", "ml-100k/u.data", "md5", "0e33842e24a9c977be4e0107933c0723"
    ),
    DatasetFormat.MOVIELENS_1M: Archive(
        f"{_GROUPLENS}/ml-1m.zip",
        "ml-1m/ratings.dat",
        "sha256",
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
    ),
    DatasetFormat.MOVIELENS_10M: Archive(
        f"{_GROUPLENS}/ml-10m.zip",
        "ml-10M100K/ratings.dat",
        "md5",
        "ce571fd55effeba0271552578f2648bd",
    ),
    DatasetFormat.MOVIELENS_20M: Archive(
        f"{_GROUPLENS}/ml-20m.zip", "ml-20m/ratings.csv", "md5", "cd245b17a1ae2cc31bb14903e1204af3"
    ),
    DatasetFormat.MOVIELENS_25M: Archive(
        f"{_GROUPLENS}/ml-25m.zip", "ml-25m/ratings.csv", "md5", "6b51fb2759a8657d3bfcbfc42b592ada"
    ),
    DatasetFormat.MOVIELENS_32M: Archive(
        f"{_GROUPLENS}/ml-32m.zip",
        "ml-32m/ratings.csv",
        "sha256",
        "e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee",
    ),
    # GroupLens' "latest" full archive changes over time; the small one is a fixed release.
    DatasetFormat.MOVIELENS_LATEST: Archive(
        f"{_GROUPLENS}/ml-latest-small.zip",
        "ml-latest-small/ratings.csv",
        "sha256",
        "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
    ),
}


class DataUnavailableError(RuntimeError):
    """The data cannot be read or fetched; the message says where to put it."""


# A dataset URL is chosen by whoever may create a RecModel: the download is read in chunks
# and stops at this size, so a huge or endless body fills neither memory nor the disk.
# RECOPS_MAX_DOWNLOAD_BYTES raises it for larger data sets.
DEFAULT_MAX_DOWNLOAD_BYTES = 4 << 30
_CHUNK = 1 << 20


def max_download_bytes() -> int:
    """The largest download the trainer accepts: ``$RECOPS_MAX_DOWNLOAD_BYTES`` or 4 GiB."""
    raw = os.environ.get("RECOPS_MAX_DOWNLOAD_BYTES", "")
    return int(raw) if raw.strip() else DEFAULT_MAX_DOWNLOAD_BYTES


def download(url: str, target: Path, limit: int | None = None) -> None:
    """Stream ``url`` into ``target`` in chunks, refusing bodies over ``limit`` bytes.

    Raises DataUnavailableError naming the limit (and removes the partial file) when the
    body is larger, whether or not the server announced its length.
    """
    limit = max_download_bytes() if limit is None else limit
    # B310 (file:/ and custom schemes): callers pass only the pinned GroupLens archives and
    # the http(s) URLs _local_path picks out.
    with urllib.request.urlopen(url, timeout=60) as response:  # nosec B310
        announced = response.headers.get("Content-Length")
        if announced and announced.isdigit() and int(announced) > limit:
            raise DataUnavailableError(_too_large(url, limit, int(announced)))
        written = 0
        with target.open("wb") as out:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                written += len(chunk)
                if written > limit:
                    out.close()
                    target.unlink(missing_ok=True)
                    raise DataUnavailableError(_too_large(url, limit, written))
                out.write(chunk)


def _too_large(url: str, limit: int, size: int) -> str:
    return (
        f"{url}: the download is larger than the limit of {limit} bytes (at least {size}); "
        "set RECOPS_MAX_DOWNLOAD_BYTES higher if this data set is expected to be that large"
    )


def data_dir() -> Path:
    """The download cache: ``$RECOPS_DATA_DIR``, else the user's cache folder."""
    env = os.environ.get("RECOPS_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("recops")) / "data"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, algorithm: str, expected: str) -> None:
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise DataUnavailableError(
            f"{path}: {algorithm} is {actual}, expected {expected}; the file is corrupt or "
            "not the pinned release (delete it to download again, or fix dataset.sha256)"
        )


def fetch_archive(fmt: DatasetFormat, cache: Path | None = None) -> Path:
    """The GroupLens archive for ``fmt`` in the cache, downloaded and verified if missing."""
    archive = ARCHIVES[fmt]
    cache = cache or data_dir()
    target = cache / archive.filename
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        try:
            download(archive.url, partial)
        except DataUnavailableError:
            partial.unlink(missing_ok=True)
            raise
        except (urllib.error.URLError, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise DataUnavailableError(
                f"cannot download {archive.url} ({exc}). Offline? Put {archive.filename} at "
                f"{target} (or set RECOPS_DATA_DIR to the folder that holds it), or point "
                "dataset.uri at a local copy"
            ) from exc
        partial.rename(target)
    verify(target, archive.algorithm, archive.digest)
    return target


def _open_text(path: Path, member: str | None = None) -> io.TextIOBase:
    """A text stream over a plain, gzipped or zipped file (ISO-8859-1 is safe for all)."""
    if zipfile.is_zipfile(path):
        bundle = zipfile.ZipFile(path)
        names = bundle.namelist()
        wanted = member or ""
        matches = [n for n in names if n == wanted or n.endswith("/" + wanted.rsplit("/", 1)[-1])]
        if not matches:
            raise DataUnavailableError(f"{path} holds no {wanted}; it has {', '.join(names[:8])}")
        return io.TextIOWrapper(bundle.open(matches[0]), encoding="iso-8859-1")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="iso-8859-1")
    return io.TextIOWrapper(path.open("rb"), encoding="iso-8859-1")


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"user": str, "item": str, "order": "int64"})
    return frame[["user", "item", "order"]].reset_index(drop=True)


def read_udata(stream: io.TextIOBase) -> pd.DataFrame:
    """ML-100K ``u.data``: tab separated ``user item rating timestamp``."""
    frame = pd.read_csv(stream, sep="\t", header=None, names=["user", "item", "rating", "order"])
    return _finish(frame)


def read_dat(stream: io.TextIOBase) -> pd.DataFrame:
    """ML-1M / ML-10M ``ratings.dat``: ``user::item::rating::timestamp``."""
    rows = [line.rstrip("\n").split("::") for line in stream if line.strip()]
    frame = pd.DataFrame([r[:4] for r in rows], columns=["user", "item", "rating", "order"])
    return _finish(frame)


def read_ratings_csv(stream: io.TextIOBase) -> pd.DataFrame:
    """ML-20M / 25M / 32M / latest ``ratings.csv``: ``userId,movieId,rating,timestamp``."""
    frame = pd.read_csv(stream, dtype={"userId": str, "movieId": str})
    frame = frame.rename(columns={"userId": "user", "movieId": "item", "timestamp": "order"})
    return _finish(frame)


def read_sasrec(stream: io.TextIOBase) -> pd.DataFrame:
    """SASRec / SSE-PT ``user item`` lines, each user's lines already in time order."""
    frame = pd.read_csv(stream, sep=r"\s+", header=None, names=["user", "item"], dtype=str)
    frame["order"] = range(len(frame))
    return _finish(frame)


READERS: dict[DatasetFormat, Callable[[io.TextIOBase], pd.DataFrame]] = {
    DatasetFormat.MOVIELENS_100K: read_udata,
    DatasetFormat.MOVIELENS_1M: read_dat,
    DatasetFormat.MOVIELENS_10M: read_dat,
    DatasetFormat.MOVIELENS_20M: read_ratings_csv,
    DatasetFormat.MOVIELENS_25M: read_ratings_csv,
    DatasetFormat.MOVIELENS_32M: read_ratings_csv,
    DatasetFormat.MOVIELENS_LATEST: read_ratings_csv,
    DatasetFormat.SASREC: read_sasrec,
}


def fetch_url(uri: str, cache: Path | None = None) -> Path:
    """An http(s) dataset file in the cache, downloaded once (named after the URL)."""
    name = Path(uri.split("?", 1)[0]).name or "data"
    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    target = (cache or data_dir()) / "urls" / f"{key}-{name}"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".partial")
        try:
            download(uri, partial)
        except DataUnavailableError:
            partial.unlink(missing_ok=True)
            raise
        except (urllib.error.URLError, OSError, ValueError) as exc:
            partial.unlink(missing_ok=True)
            raise DataUnavailableError(f"dataset.uri {uri}: cannot download it ({exc})") from exc
        partial.rename(target)
    return target


def _local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        return Path(uri[len("file://") :])
    if uri.startswith(("http://", "https://")):
        return fetch_url(uri)
    if "://" in uri:
        raise DataUnavailableError(
            f"dataset.uri {uri}: read are local paths, file:// and http(s):// URLs; copy the "
            "file from object storage (e.g. an init container) and give its path"
        )
    return Path(uri)


def resolve_source(fmt: DatasetFormat, uri: str | None, sha256: str | None) -> Path:
    """The local file to read: ``uri`` (verified against ``sha256`` when given) or the download."""
    if fmt == DatasetFormat.SYNTHETIC:
        raise ValueError("the synthetic format has no file; use recops_trainer.data.synthetic")
    if not uri:
        if fmt == DatasetFormat.SASREC:
            raise DataUnavailableError("dataset.uri is required for the sasrec format")
        return fetch_archive(fmt)
    path = _local_path(uri)
    if path.is_dir():
        member = ARCHIVES[fmt].member.split("/", 1)[1] if fmt in ARCHIVES else None
        candidates = [path / member] if member else []
        candidates += [c.with_name(c.name + ".gz") for c in candidates]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise DataUnavailableError(f"{path} holds no {member or 'data file'} (or .gz)")
        path = found[0]
    if not path.is_file():
        raise DataUnavailableError(f"dataset.uri {path} does not exist")
    if sha256:
        try:
            verify(path, "sha256", sha256)
        except DataUnavailableError:
            if uri.startswith(("http://", "https://")):
                path.unlink(missing_ok=True)  # a fixed upstream file is fetched again
            raise
    return path


def read_interactions(fmt: DatasetFormat, path: Path) -> pd.DataFrame:
    """Read ``path`` (plain, .gz or a GroupLens .zip) in format ``fmt``."""
    member = ARCHIVES[fmt].member if fmt in ARCHIVES else None
    with _open_text(Path(path), member) as stream:
        return READERS[fmt](stream)

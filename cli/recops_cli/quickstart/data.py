"""Where the quickstart's interactions come from: real MovieLens-100K when at hand.

Order: an explicit file; `u.data` (or `u.data.gz`, or GroupLens' `ml-100k.zip`) in
$RECOPS_DATA_DIR or the download cache; the GroupLens download; otherwise the synthetic
generator, written out in the same `u.data` form so that training and the traffic
simulator read one file.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Why the data is synthetic when nothing was at hand and no download was asked for.
NOT_FOUND = "no MovieLens-100K was found"
CANDIDATE_NAMES = ("u.data", "u.data.gz", "ml-100k/u.data", "ml-100k/u.data.gz")


@dataclass(frozen=True)
class DataChoice:
    path: Path
    description: str
    synthetic: bool
    why_synthetic: str = ""  # for synthetic data: why no MovieLens-100K was used


class MovieLensMissingError(Exception):
    """No MovieLens-100K at hand; the message says why (the report repeats it)."""


def _from_folder(folder: Path) -> Path | None:
    for name in CANDIDATE_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def _unzip_udata(archive: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    target = into / "u.data"
    with zipfile.ZipFile(archive) as zf, zf.open("ml-100k/u.data") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def find_movielens_100k(explicit: Path | None, workdir: Path, allow_download: bool) -> Path:
    """The MovieLens-100K interactions to use; MovieLensMissingError says why there are none."""
    from recops_contracts.training import DatasetFormat
    from recops_trainer.data.datasets import DataUnavailableError, data_dir, fetch_archive

    if explicit is not None:
        if not explicit.is_file():
            raise FileNotFoundError(f"--data {explicit}: no such file")
        return explicit
    cache = data_dir()
    found = _from_folder(cache)
    if found is not None:
        return found
    archive = cache / "ml-100k.zip"
    if not archive.is_file():
        if not allow_download:
            raise MovieLensMissingError(NOT_FOUND)
        try:
            archive = fetch_archive(DatasetFormat.MOVIELENS_100K, cache)
        except (DataUnavailableError, OSError, ValueError) as exc:
            # Offline, or GroupLens unreachable: the quickstart still runs, on synthetic data.
            log.warning("MovieLens-100K download failed: %s", exc)
            raise MovieLensMissingError(f"the MovieLens-100K download failed: {exc}") from exc
    return _unzip_udata(archive, workdir / "data")


def write_synthetic_udata(target: Path, seed: int = 7) -> Path:
    """The synthetic generator's interactions as a GroupLens `u.data` file."""
    from recops_trainer.data.synthetic import generate

    frame = generate(num_users=600, num_items=300, seed=seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    # u.data is `user item rating timestamp` with integer ids; the order is the time.
    with target.open("w", encoding="utf-8") as fh:
        for user, item, order in zip(frame["user"], frame["item"], frame["order"], strict=True):
            fh.write(f"{str(user)[1:]}\t{str(item)[1:]}\t5\t{1_000_000 + int(order)}\n")
    return target


def choose_data(explicit: Path | None, workdir: Path, allow_download: bool = True) -> DataChoice:
    try:
        path = find_movielens_100k(explicit, workdir, allow_download)
    except MovieLensMissingError as missing:
        path = write_synthetic_udata(workdir / "data" / "synthetic-u.data")
        return DataChoice(
            path,
            "SYNTHETIC interactions (no MovieLens-100K found)",
            synthetic=True,
            why_synthetic=str(missing),
        )
    return DataChoice(path, f"MovieLens-100K ({path})", synthetic=False)


def announcement(choice: DataChoice) -> str:
    """The console line that says which data the run uses; in bold, why it is synthetic."""
    if not choice.synthetic:
        return f"  data: {choice.description}"
    why = choice.why_synthetic or NOT_FOUND
    return (
        f"[bold yellow]{why[:1].upper()}{why[1:]}: the quickstart runs on SYNTHETIC "
        "interactions.[/bold yellow] Put ml-100k.zip or u.data in $RECOPS_DATA_DIR "
        "(or pass --data u.data) for real data."
    )


def plain_copy(path: Path, target: Path) -> Path:
    """A gunzipped copy, for tools that want the plain text form."""
    if path.suffix != ".gz":
        return path
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return target

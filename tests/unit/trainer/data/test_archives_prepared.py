"""The large formats as GroupLens ships them (ML-20M zip, ML-1B tar of npz shards), read
streamed and prepared into per-user Parquet rows; corrupt archives are named, and
nothing half-written is left."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from recops_contracts.training import DataPipeline, DatasetFormat, DatasetSource
from recops_trainer.data import prepared as prep
from recops_trainer.data.archives import ArchiveError, npz_parts
from recops_trainer.data.datasets import read_interactions
from recops_trainer.data.snapshot import build_snapshot
from recops_trainer.data.synthetic_archives import (
    SyntheticSize,
    pairs_of,
    write_ml1b_tar,
    write_ml20m_zip,
)
from recops_trainer.distributed.streaming import STREAMING_ABOVE, choose_pipeline

ML20M = DatasetSource(format=DatasetFormat.MOVIELENS_20M)
ML1B = DatasetSource(format=DatasetFormat.MOVIELENS_1B)
# A catalogue with rare items, so that the 5-core filter takes several passes.
SIZE = SyntheticSize(users=300, items=1009, mean_length=12, seed=4)


@pytest.fixture(scope="module")
def ml20m(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ml20m_zip(tmp_path_factory.mktemp("ml20m") / "ml-20m.zip", SIZE)


@pytest.fixture(scope="module")
def ml1b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ml1b_tar(tmp_path_factory.mktemp("ml1b") / "ml-20mx16x32.tar", SIZE, shards=4)


def test_the_synthetic_ml20m_zip_is_in_grouplens_form(ml20m: Path) -> None:
    with zipfile.ZipFile(ml20m) as bundle:
        assert bundle.namelist() == ["ml-20m/ratings.csv"]
        lines = bundle.read("ml-20m/ratings.csv").decode().splitlines()
    assert lines[0] == "userId,movieId,rating,timestamp"
    user, movie, rating, timestamp = lines[1].split(",")
    assert user == "1" and movie.isdigit() and rating in {f"{r / 2:.1f}" for r in range(1, 11)}
    assert int(timestamp) > 1_000_000_000
    assert len(lines) - 1 == pairs_of(SIZE)


def test_the_synthetic_ml1b_tar_loads_with_numpy_as_the_real_shards_do(ml1b: Path) -> None:
    with tarfile.open(ml1b) as tar:
        names = sorted(m.name for m in tar.getmembers())
        member = tar.extractfile("ml-20mx16x32/trainx16x32_0.npz")
        assert member is not None
        with np.load(io.BytesIO(member.read())) as shard:
            pairs = shard["arr_0"]
    assert names[0] == "ml-20mx16x32/testx16x32_0.npz" and len(names) == 8
    assert pairs.ndim == 2 and pairs.shape[1] == 2 and pairs.dtype.kind == "i"


def test_ml20m_prepared_equals_the_in_memory_snapshot(ml20m: Path, tmp_path: Path) -> None:
    manifest = prep.prepare(ML20M, ml20m, tmp_path / "prepared", buckets=3)
    snapshot = prep.to_snapshot(tmp_path / "prepared")
    reference = build_snapshot(read_interactions(DatasetFormat.MOVIELENS_20M, ml20m), ML20M)
    assert snapshot.user_ids == reference.user_ids and snapshot.item_ids == reference.item_ids
    assert all(
        np.array_equal(a, b) for a, b in zip(snapshot.sequences, reference.sequences, strict=True)
    )
    assert manifest["stats"]["interactions"] == reference.manifest["stats"]["interactions"]
    assert manifest["ordered"] is True
    # The 5-core removed rare items, so the filter ran more than one pass.
    assert manifest["stats"]["items"] < SIZE.items
    part = pq.ParquetFile(tmp_path / "prepared" / "sequences" / "part-00000.parquet")
    assert part.schema_arrow.names == ["user", "items", "timestamps"]


def test_the_hash_covers_content_not_layout(ml20m: Path, tmp_path: Path) -> None:
    one = prep.prepare(ML20M, ml20m, tmp_path / "one", buckets=1)
    four = prep.prepare(ML20M, ml20m, tmp_path / "four", buckets=4)
    plain = tmp_path / "ratings.csv"
    with zipfile.ZipFile(ml20m) as bundle:
        plain.write_bytes(bundle.read("ml-20m/ratings.csv"))
    from_csv = prep.prepare(ML20M, plain, tmp_path / "csv", buckets=2)
    assert one["hash"] == four["hash"] == from_csv["hash"]
    assert prep.verify(tmp_path / "four") == four["hash"]
    other = prep.prepare(ML20M.model_copy(update={"min_interactions": 6}), ml20m, tmp_path / "k6")
    assert other["hash"] != one["hash"]


def test_ml1b_shards_prepare_in_file_order_with_the_test_pair_last(
    ml1b: Path, tmp_path: Path
) -> None:
    source = ML1B.model_copy(update={"min_interactions": 1})
    manifest = prep.prepare(source, ml1b, tmp_path / "prepared", buckets=2)
    assert manifest["ordered"] is False and manifest["stats"]["interactions"] == pairs_of(SIZE)
    snapshot = prep.to_snapshot(tmp_path / "prepared")
    # User 0 (internal 1): its walk through the catalogue, the test shard's pair last.
    first = snapshot.sequences[0]
    originals = np.asarray([int(snapshot.item_ids[i - 1]) for i in first])
    strides = np.diff(originals) % SIZE.items
    assert len(set(strides.tolist())) == 1
    part = pq.ParquetFile(tmp_path / "prepared" / "sequences" / "part-00000.parquet")
    assert part.schema_arrow.names == ["user", "items"]  # no timestamps in ML-1B


def test_a_folder_of_shards_reads_as_the_tar(ml1b: Path, tmp_path: Path) -> None:
    with tarfile.open(ml1b) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / "ml-20mx16x32"
    assert [p.rows for p in npz_parts(folder)] == [p.rows for p in npz_parts(ml1b)]
    a = prep.prepare(ML1B, ml1b, tmp_path / "from-tar")
    b = prep.prepare(ML1B, folder, tmp_path / "from-folder")
    assert a["hash"] == b["hash"]


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    broken = path.with_name("broken-" + path.name)
    broken.write_bytes(data[: int(len(data) * keep)])
    return broken


def test_a_truncated_tar_names_the_file_and_the_member_and_writes_nothing(
    ml1b: Path, tmp_path: Path
) -> None:
    broken = _truncate(ml1b, 0.6)
    out = tmp_path / "out" / "prepared"
    with pytest.raises(ArchiveError) as failure:
        prep.prepare(ML1B, broken, out)
    message = str(failure.value)
    assert str(broken) in message and "x16x32_" in message and "download it again" in message
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no staging folder left behind


def test_a_corrupt_zip_names_the_member_and_keeps_the_previous_snapshot(
    ml20m: Path, tmp_path: Path
) -> None:
    out = tmp_path / "prepared"
    before = prep.prepare(ML20M, ml20m, out)
    data = bytearray(ml20m.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # damage the deflated ratings.csv
    broken = tmp_path / "ml-20m.zip"
    broken.write_bytes(bytes(data))
    with pytest.raises(ArchiveError) as failure:
        prep.prepare(ML20M, broken, out)
    assert str(broken) in str(failure.value) and "ml-20m/ratings.csv" in str(failure.value)
    assert prep.read_manifest(out)["hash"] == before["hash"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-20m.zip", "prepared"]


def test_an_archive_without_shards_says_what_to_give(tmp_path: Path) -> None:
    path = tmp_path / "other.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("README")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(ArchiveError, match=r"holds no trainx16x32_N\.npz"):
        npz_parts(path)


def test_a_prepared_folder_is_reused_until_its_source_changes(ml20m: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    first, reused = prep.prepared_or_prepare(ML20M, ml20m, out)
    assert not reused
    again, reused = prep.prepared_or_prepare(ML20M, ml20m, out)
    assert reused and again["hash"] == first["hash"]
    _, reused = prep.prepared_or_prepare(
        ML20M.model_copy(update={"min_interactions": 3}), ml20m, out
    )
    assert not reused


def test_the_pipeline_is_chosen_by_size_unless_named() -> None:
    small, why = choose_pipeline(ML20M, 1_000)
    large, _ = choose_pipeline(ML20M, STREAMING_ABOVE + 1)
    named, reason = choose_pipeline(
        ML20M.model_copy(update={"pipeline": DataPipeline.STREAMING}), 1
    )
    assert (small, large, named) == (
        DataPipeline.IN_MEMORY,
        DataPipeline.STREAMING,
        DataPipeline.STREAMING,
    )
    assert "1,000 interactions" in why and "dataset.pipeline" in reason


def test_movielens_1b_without_a_uri_says_where_to_get_it() -> None:
    from recops_trainer.data.datasets import DataUnavailableError
    from recops_trainer.runs.scale_data import resolve_scale_source

    with pytest.raises(DataUnavailableError, match=r"dataset\.uri is required for movielens-1b"):
        resolve_scale_source(ML1B)

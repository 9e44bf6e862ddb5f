"""Readers for every MovieLens / SASRec form, downloads, checksums, and offline errors."""

from __future__ import annotations

import gzip
import hashlib
import zipfile
from pathlib import Path

import pytest

from recops_contracts.training import DatasetFormat
from recops_trainer.data import datasets
from recops_trainer.data.datasets import Archive, DataUnavailableError, read_interactions


def _rows(frame) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    return list(frame.itertuples(index=False, name=None))


def test_udata(tmp_path: Path) -> None:
    path = tmp_path / "u.data"
    path.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    frame = read_interactions(DatasetFormat.MOVIELENS_100K, path)
    assert _rows(frame) == [("196", "242", 881250949), ("186", "302", 891717742)]


def test_ratings_dat_gzipped(tmp_path: Path) -> None:
    path = tmp_path / "ratings.dat.gz"
    path.write_bytes(gzip.compress(b"1::1193::5::978300760\n1::661::3::978302109\n"))
    frame = read_interactions(DatasetFormat.MOVIELENS_1M, path)
    assert _rows(frame) == [("1", "1193", 978300760), ("1", "661", 978302109)]


def test_ratings_csv_in_a_grouplens_zip(tmp_path: Path) -> None:
    path = tmp_path / "ml-25m.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("ml-25m/README.txt", "readme")
        bundle.writestr(
            "ml-25m/ratings.csv",
            "userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n1,306,3.5,1147868817\n",
        )
    frame = read_interactions(DatasetFormat.MOVIELENS_25M, path)
    assert _rows(frame) == [("1", "296", 1147880044), ("1", "306", 1147868817)]


def test_sasrec_lines_keep_file_order(tmp_path: Path) -> None:
    path = tmp_path / "ml-1m.txt"
    path.write_text("1 10\n1 5\n2 7\n")
    frame = read_interactions(DatasetFormat.SASREC, path)
    assert _rows(frame) == [("1", "10", 0), ("1", "5", 1), ("2", "7", 2)]


def test_uri_folder_finds_the_member(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t2\t3\t4\n")
    path = datasets.resolve_source(DatasetFormat.MOVIELENS_100K, str(tmp_path), None)
    assert path == tmp_path / "u.data"


def test_sha256_mismatch_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "u.data"
    path.write_text("1\t2\t3\t4\n")
    with pytest.raises(DataUnavailableError, match=r"u\.data: sha256 is"):
        datasets.resolve_source(DatasetFormat.MOVIELENS_100K, str(path), "0" * 64)


def test_offline_download_says_where_to_put_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 on loopback refuses at once: the same error as having no network.
    archive = Archive("http://127.0.0.1:9/ml-100k.zip", "ml-100k/u.data", "md5", "0" * 32)
    monkeypatch.setitem(datasets.ARCHIVES, DatasetFormat.MOVIELENS_100K, archive)
    monkeypatch.setenv("RECOPS_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataUnavailableError) as error:
        datasets.resolve_source(DatasetFormat.MOVIELENS_100K, None, None)
    message = str(error.value)
    assert str(tmp_path / "cache" / "ml-100k.zip") in message
    assert "RECOPS_DATA_DIR" in message


def test_cached_archive_is_verified_and_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    path = cache / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("ml-100k/u.data", "1\t2\t3\t4\n")
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    archive = Archive("http://127.0.0.1:9/ml-100k.zip", "ml-100k/u.data", "md5", digest)
    monkeypatch.setitem(datasets.ARCHIVES, DatasetFormat.MOVIELENS_100K, archive)
    monkeypatch.setenv("RECOPS_DATA_DIR", str(cache))
    found = datasets.resolve_source(DatasetFormat.MOVIELENS_100K, None, None)
    assert _rows(read_interactions(DatasetFormat.MOVIELENS_100K, found)) == [("1", "2", 4)]


def test_every_grouplens_format_has_a_pinned_archive() -> None:
    # MovieLens-1B (several GB) is never downloaded for the user: dataset.uri names it.
    movielens = [
        f
        for f in DatasetFormat
        if f.value.startswith("movielens") and f != DatasetFormat.MOVIELENS_1B
    ]
    assert sorted(datasets.ARCHIVES) == sorted(movielens)
    for archive in datasets.ARCHIVES.values():
        assert archive.url.startswith("https://files.grouplens.org/")
        assert len(archive.digest) == {"md5": 32, "sha256": 64}[archive.algorithm]


def test_an_https_uri_is_downloaded_once_and_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    body = b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
    (served / "u.data").write_bytes(body)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(served))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("RECOPS_DATA_DIR", str(tmp_path / "cache"))
    uri = f"http://127.0.0.1:{server.server_address[1]}/u.data"
    digest = hashlib.sha256(body).hexdigest()
    try:
        for _ in range(2):
            path = datasets.resolve_source(DatasetFormat.MOVIELENS_100K, uri, digest)
            assert len(_rows(read_interactions(DatasetFormat.MOVIELENS_100K, path))) == 2
        assert len(requests) == 1  # the second read comes from the cache
        with pytest.raises(DataUnavailableError, match="sha256"):
            datasets.resolve_source(DatasetFormat.MOVIELENS_100K, uri, "0" * 64)
        assert len(requests) == 1
        with pytest.raises(DataUnavailableError, match="cannot download"):
            datasets.resolve_source(DatasetFormat.MOVIELENS_100K, uri + ".missing", None)
    finally:
        server.shutdown()
    with pytest.raises(DataUnavailableError, match="object storage"):
        datasets.resolve_source(DatasetFormat.MOVIELENS_100K, "s3://bucket/u.data", None)


def test_serving_feedback_joins_the_interactions(tmp_path: Path) -> None:
    import json

    from recops_contracts.training import DatasetSource
    from recops_trainer.data.sources import load_source

    data = tmp_path / "u.data"
    data.write_text("".join(f"{u}\t{i}\t3\t{1000 + i}\n" for u in (1, 2) for i in range(1, 6)))
    server = tmp_path / "feedback" / "serve-0"
    server.mkdir(parents=True)

    def record(event: str, user: int, item: int) -> str:
        return (
            json.dumps(
                {
                    "kind": "feedback",
                    "ts": 1.7e9 + item,
                    "request_id": "r",
                    "user_id": str(user),
                    "version": "1",
                    "item_id": str(item),
                    "event": event,
                    "value": 0.0,
                    "recommended": True,
                }
            )
            + "\n"
        )

    served = json.dumps(
        {
            "kind": "recommendation",
            "ts": 1.7e9,
            "request_id": "r",
            "user_id": "1",
            "version": "1",
            "target": "cpu-onnxruntime",
            "model_version": "3",
            "items": ["9"],
            "fallback": None,
            "history_source": "request",
        }
    )
    (server / "0001.jsonl").write_text(
        served + "\n" + record("click", 1, 6) + record("impression", 1, 7) + record("watch", 2, 6)
    )
    (server / "0002.jsonl.part").write_text(record("click", 1, 8))  # still being written
    source = {"format": "movielens-100k", "uri": str(data), "minInteractions": 1}
    with_feedback = load_source(
        DatasetSource.model_validate({**source, "feedbackLog": str(tmp_path / "feedback")})
    )
    assert with_feedback.manifest["stats"]["interactions"] == 12  # 10 + a click + a watch
    assert with_feedback.manifest["source"] == "u.data + 2 feedback events"
    user_1 = with_feedback.sequences[with_feedback.user_ids.index("1")]
    assert with_feedback.item_ids[user_1[-1] - 1] == "6"  # after the history it extends
    off = DatasetSource.model_validate(
        {**source, "feedbackLog": str(tmp_path / "feedback"), "includeFeedback": False}
    )
    assert load_source(off).manifest["stats"]["interactions"] == 10
    missing = DatasetSource.model_validate({**source, "feedbackLog": str(tmp_path / "nowhere")})
    with pytest.raises(DataUnavailableError, match="feedbackLog"):
        load_source(missing)
    # A line that is not a record of the shared schema is skipped and counted, the rest of
    # its segment read (a torn tail must not cost the data before it).
    (server / "0003.jsonl").write_text(record("click", 1, 9) + '{"kind": "feedback", "ts": 1}\n')
    torn = load_source(DatasetSource.model_validate({**source, "feedbackLog": str(server)}))
    assert torn.manifest["lineage"]["ingested"]["invalid"] == 1
    assert torn.manifest["stats"]["interactions"] == 13  # the click on 9 counts
    (server / "0003.jsonl").unlink()
    # The operator's feedback volume: read when no feedbackLog is named, and absent (no
    # serving pod started yet) is no feedback rather than an error.
    plain = DatasetSource.model_validate(source)
    volume = load_source(plain, feedback_volume=str(tmp_path / "feedback"))
    assert volume.manifest["source"] == "u.data + 2 feedback events"
    nothing_yet = load_source(plain, feedback_volume=str(tmp_path / "nowhere"))
    assert nothing_yet.manifest["source"] == "u.data"
    assert (
        load_source(off, feedback_volume=str(tmp_path / "feedback")).manifest["stats"][
            "interactions"
        ]
        == 10
    )

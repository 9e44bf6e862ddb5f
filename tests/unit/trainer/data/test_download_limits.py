"""Issue 27, finding 8: a dataset URL is read in a stream and refused past a size limit."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recops_trainer.data.datasets import DataUnavailableError, download, fetch_url

BODY = b"1\t2\t5\t100\n" * 1000  # 10 kB


class _Handler(http.server.BaseHTTPRequestHandler):
    announce = True

    def do_GET(self) -> None:
        self.send_response(200)
        if self.path != "/unannounced":
            self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_body_under_the_limit_is_written_whole(server: str, tmp_path: Path) -> None:
    download(f"{server}/u.data", tmp_path / "u.data", limit=len(BODY))
    assert (tmp_path / "u.data").read_bytes() == BODY


@pytest.mark.parametrize("path", ["/announced", "/unannounced"])
def test_a_body_over_the_limit_is_refused_and_removed(
    server: str, tmp_path: Path, path: str
) -> None:
    target = tmp_path / "u.data"
    with pytest.raises(DataUnavailableError, match="larger than the limit of 4096 bytes"):
        download(f"{server}{path}", target, limit=4096)
    assert not target.exists()


def test_the_limit_comes_from_the_environment(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOPS_MAX_DOWNLOAD_BYTES", "1000")
    with pytest.raises(DataUnavailableError, match="RECOPS_MAX_DOWNLOAD_BYTES"):
        fetch_url(f"{server}/unannounced", cache=tmp_path)
    assert not list((tmp_path / "urls").iterdir())

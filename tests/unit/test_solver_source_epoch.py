"""`SOURCE_DATE_EPOCH=<stage>` dates the stage's source as BuildKit does: a git commit by
its committer time, a download by Last-Modified, else by the newest file of a tar archive.
Real git repositories and a real HTTP server on loopback."""

from __future__ import annotations

import http.server
import io
import os
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.plan.ops import GitSource, HttpSource
from strata.solver.source_epoch import source_epoch

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_SECONDS = 1445412480


def tar_bytes(mtimes: dict[str, int]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, mtime in mtimes.items():
            info = tarfile.TarInfo(name)
            info.size = 2
            info.mtime = mtime
            tar.addfile(info, io.BytesIO(b"hi"))
        directory = tarfile.TarInfo("newer-dir")
        directory.type = tarfile.DIRTYPE
        directory.mtime = 2_000_000_000  # directories do not count
        tar.addfile(directory)
    return out.getvalue()


# path -> (body, Last-Modified header or None)
FILES: dict[str, tuple[bytes, str | None]] = {
    "/dated.txt": (b"dated\n", LAST_MODIFIED),
    "/undated.txt": (b"plain text\n", None),
    "/undated.tar.gz": (tar_bytes({"a": 1_600_000_000, "b": 1_700_000_000}), None),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, modified = FILES[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if modified is not None:
            self.send_header("Last-Modified", modified)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_is_dated_by_its_last_modified_header(server: str, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    assert source_epoch(HttpSource(url=f"{server}/dated.txt"), scratch) == LAST_MODIFIED_SECONDS
    assert not scratch.exists()


def test_undated_archive_is_dated_by_its_newest_regular_file(server: str, tmp_path: Path) -> None:
    source = HttpSource(url=f"{server}/undated.tar.gz")
    assert source_epoch(source, tmp_path / "scratch") == 1_700_000_000


def test_undated_plain_download_has_no_epoch(server: str, tmp_path: Path) -> None:
    assert source_epoch(HttpSource(url=f"{server}/undated.txt"), tmp_path / "scratch") is None


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_source_is_dated_by_its_commit_time(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="a",
        GIT_AUTHOR_EMAIL="a@example.com",
        GIT_COMMITTER_NAME="c",
        GIT_COMMITTER_EMAIL="c@example.com",
        GIT_AUTHOR_DATE="@1500000000 +0000",
        GIT_COMMITTER_DATE="@1600000000 +0200",
    )

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    (repo / "file").write_text("x\n")
    git("add", "file")
    git("commit", "-q", "-m", "one")
    assert source_epoch(GitSource(remote=str(repo)), tmp_path / "scratch") == 1_600_000_000

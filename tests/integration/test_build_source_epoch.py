"""`--build-arg SOURCE_DATE_EPOCH=<stage>` through a real build: the stage's remote ADD is
dated (here by the HTTP server's Last-Modified) and the image is created at that time."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

SERVED_MTIME = 1445412480  # 2015-10-21T07:28:00Z


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A file on a loopback HTTP server whose Last-Modified is SERVED_MTIME."""
    directory = tmp_path / "served"
    directory.mkdir()
    source = directory / "source.txt"
    source.write_text("release notes\n")
    os.utime(source, (SERVED_MTIME, SERVED_MTIME))
    handler = partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/source.txt"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_source_stage_dates_the_image(build_root: Path, tmp_path: Path, served: str) -> None:
    project = write_project(
        tmp_path / "project",
        f"FROM scratch AS src\nADD {served} /\nFROM {BUSYBOX_IMAGE}\nRUN echo hi > /hi\n",
    )
    built = strata(
        build_root,
        "build",
        "--progress=plain",
        "--build-arg",
        "SOURCE_DATE_EPOCH=src",
        "-t",
        "dated:1",
        str(project),
    )
    assert built.returncode == 0, built.stderr.decode()
    inspected = strata(build_root, "inspect", "dated:1", check=True)
    (image,) = json.loads(inspected.stdout)
    assert image["Created"] == "2015-10-21T07:28:00Z"

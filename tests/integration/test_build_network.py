"""RUN networking: `default` reaches the network (the host's, as BuildKit's OCI worker
without CNI), `none` reaches nothing but its own loopback."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
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


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the network\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        thread.join(10)


def test_default_network_reaches_a_server_and_none_does_not(
    build_root: Path, tmp_path: Path, server_port: int
) -> None:
    url = f"http://127.0.0.1:{server_port}/"
    project = write_project(
        tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN wget -q -O /got {url} && cat /got\n"
    )
    run = strata(build_root, "build", "--progress=plain", str(project))
    assert run.returncode == 0, run.stderr.decode()
    assert "hello from the network" in run.stderr.decode()

    isolated = write_project(
        tmp_path / "q", f"FROM {BUSYBOX_IMAGE}\nRUN --network=none wget -q -T 5 -O /got {url}\n"
    )
    refused = strata(build_root, "build", "--progress=plain", str(isolated))
    assert refused.returncode == 1
    assert "did not complete successfully" in refused.stderr.decode()

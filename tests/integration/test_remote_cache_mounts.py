"""Cache mounts travel with the cache (`cache-mounts=true`): the dependency flow of issue 12.

A RUN downloads packages from a local package server (which counts requests) into a
cache mount, skipping those already there. Exported with its cache mounts, the cache lets
a fresh state root that adds one package download exactly that one; without the
attribute it downloads all of them again, as BuildKit does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import BUSYBOX_IMAGE, busybox_tarball, write_project
from tests.integration.test_remote_cache_local import build, clone, fresh_root

__all__ = ["busybox_tarball"]

DOCKERFILE = f"""\
FROM {BUSYBOX_IMAGE}
ARG INDEX
COPY packages.txt /packages.txt
RUN --network=host --mount=type=cache,target=/cache \\
    for p in $(cat /packages.txt); do \\
      [ -f /cache/$p ] || wget -q -O /cache/$p "$INDEX/$p" || exit 1; \\
    done && ls /cache | wc -l > /installed
"""


class PackageServer:
    """Serves `/<name>` (a small file per package) and counts the requests."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.count += 1
                body = f"package {self.path}\n".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def take_count(self) -> int:
        with self._lock:
            count, self.count = self.count, 0
        return count


@pytest.fixture
def packages() -> Iterator[PackageServer]:
    server = PackageServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def _packages(n: int) -> str:
    return "".join(f"pkg-{i:03d}\n" for i in range(n))


@pytest.mark.parametrize(("attribute", "expected"), [(",cache-mounts=true", 1), ("", 201)])
def test_one_added_package_is_the_only_download_on_a_fresh_root(
    packages: PackageServer,
    busybox_tarball: Path,
    tmp_path: Path,
    attribute: str,
    expected: int,
) -> None:
    project = write_project(tmp_path / "laptop" / "p", DOCKERFILE, {"packages.txt": _packages(200)})
    laptop = fresh_root(tmp_path / "laptop" / "root", busybox_tarball)
    cache = tmp_path / "cache"
    arg = f"INDEX={packages.url}"
    build(
        laptop,
        project,
        "--allow",
        "network.host",
        "--build-arg",
        arg,
        "--cache-to",
        f"type=local,dest={cache},mode=max{attribute}",
    )
    assert packages.take_count() == 200
    manifest_blobs = _manifest_layers(cache)
    mounts = [d for d in manifest_blobs if "dev.strata.cachemount.id" in d.get("annotations", {})]
    assert len(mounts) == (1 if attribute else 0), manifest_blobs
    if mounts:
        annotations = mounts[0]["annotations"]
        assert annotations["dev.strata.cachemount.id"].endswith("/cache")
        assert annotations["dev.strata.cachemount.base"] == "empty"
        assert int(annotations["dev.strata.cachemount.size"]) > 0
        assert mounts[0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"

    runner = fresh_root(tmp_path / "ci" / "root", busybox_tarball)
    other = clone(project, tmp_path / "ci" / "p")
    (other / "packages.txt").write_text(_packages(201))
    out = tmp_path / "out"
    build(
        runner,
        other,
        "--allow",
        "network.host",
        "--build-arg",
        arg,
        "--cache-from",
        f"type=local,src={cache}",
        "-o",
        f"type=local,dest={out}",
    )
    assert packages.take_count() == expected
    assert (out / "installed").read_text().strip() == "201"


def test_an_unchanged_mount_is_the_same_blob(
    packages: PackageServer, busybox_tarball: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", DOCKERFILE, {"packages.txt": _packages(3)})
    root = fresh_root(tmp_path / "root", busybox_tarball)
    arg = f"INDEX={packages.url}"
    digests = []
    for name in ("one", "two"):
        cache = tmp_path / name
        build(
            root,
            project,
            "--allow",
            "network.host",
            "--build-arg",
            arg,
            "--cache-to",
            f"type=local,dest={cache},cache-mounts=true",
        )
        [mount] = [
            d for d in _manifest_layers(cache) if "dev.strata.cachemount.id" in d["annotations"]
        ]
        digests.append(mount["digest"])
    assert digests[0] == digests[1]


def test_max_size_leaves_a_large_mount_out_with_a_warning(
    packages: PackageServer, busybox_tarball: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", DOCKERFILE, {"packages.txt": _packages(3)})
    root = fresh_root(tmp_path / "root", busybox_tarball)
    cache = tmp_path / "cache"
    log = build(
        root,
        project,
        "--allow",
        "network.host",
        "--build-arg",
        f"INDEX={packages.url}",
        "--cache-to",
        f"type=local,dest={cache},cache-mounts=true,cache-mounts-max-size=10",
    )
    assert "cache mount //cache not exported" in log, log
    assert not [
        d for d in _manifest_layers(cache) if "dev.strata.cachemount.id" in d["annotations"]
    ]


def _manifest_layers(cache: Path) -> list[dict]:  # type: ignore[type-arg]
    index = json.loads((cache / "index.json").read_text())
    manifest = json.loads(
        (cache / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text()
    )
    return list(manifest["layers"])

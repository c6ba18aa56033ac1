"""The fresh-CI-runner rebuild with a remote cache, with and without its cache mounts.

    python bench/remote_cache.py [--packages 200] [--latency-ms 20]

A RUN downloads packages from a local package server (each request delayed by
`--latency-ms`, standing in for a real index) into a `--mount=type=cache` directory,
skipping those it has. A "laptop" state root builds the project and exports its cache
(`type=local`, `mode=max`) once with `cache-mounts=true` and once without. Then, for
each, a fresh state root elsewhere adds one package and rebuilds with `--cache-from`:
the time it takes and how many packages it downloaded. BuildKit behaves as the
run without cache mounts (it never exports them). Needs root, runc and /bin/busybox.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from strata.api import BuildRequest, build
from strata.export.tarball_import import import_tarball
from strata.remotecache.spec import CacheSpec
from strata.store.images import ImageStore
from strata.store.root import StateRoot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.rootfs import make_busybox_rootfs

DOCKERFILE = """\
FROM busybox:bench
ARG INDEX
COPY packages.txt /packages.txt
RUN --network=host --mount=type=cache,target=/cache \\
    for p in $(cat /packages.txt); do \\
      [ -f /cache/$p ] || wget -q -O /cache/$p "$INDEX/$p" || exit 1; \\
    done
"""


class Index:
    """A package server that counts requests and answers each after `latency` s."""

    def __init__(self, latency: float) -> None:
        self.count = 0
        lock = threading.Lock()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                time.sleep(latency)
                with lock:
                    index.count += 1
                body = (self.path * 64).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def new_root(path: Path, tarball: Path) -> StateRoot:
    root = StateRoot.open(path)
    images = ImageStore(root)
    with open(tarball, "rb") as fh:
        images.put("busybox:bench", import_tarball(images, fh, source="busybox"))
    return root


def project(directory: Path, packages: int) -> Path:
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    (directory / "packages.txt").write_text("".join(f"pkg-{i:04d}\n" for i in range(packages)))
    return directory


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("runc") is None:
        print("remote cache bench: skipped (needs root and runc)")
        return 0
    index = Index(args.latency_ms / 1000)
    build_args = {"INDEX": index.url}
    rows: list[tuple[str, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="strata-remote-cache-") as tmp:
        work = Path(tmp)
        rootfs = make_busybox_rootfs(work / "busybox")
        tarball = work / "busybox.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], check=True
        )
        laptop_project = project(work / "laptop" / "project", args.packages)
        laptop = new_root(work / "laptop" / "root", tarball)
        try:
            for attribute in ("true", "false"):
                dest = str(work / f"cache-{attribute}")
                spec = CacheSpec(
                    "local", (("dest", dest), ("mode", "max"), ("cache-mounts", attribute))
                )
                build(
                    BuildRequest(
                        context=laptop_project,
                        build_args=build_args,
                        cache_to=(spec,),
                        allow=("network.host",),
                    ),
                    root=laptop,
                )
        finally:
            laptop.close()
        for attribute in ("true", "false"):
            runner_project = project(work / f"ci-{attribute}" / "project", args.packages + 1)
            runner = new_root(work / f"ci-{attribute}" / "root", tarball)
            source = CacheSpec("local", (("src", str(work / f"cache-{attribute}")),))
            index.count = 0
            start = time.perf_counter()
            try:
                build(
                    BuildRequest(
                        context=runner_project,
                        build_args=build_args,
                        cache_from=(source,),
                        allow=("network.host",),
                    ),
                    root=runner,
                )
            finally:
                runner.close()
            rows.append((attribute, (time.perf_counter() - start) * 1000, index.count))
    index.httpd.shutdown()
    print(
        f"remote cache bench: fresh runner, {args.packages} + 1 packages,"
        f" {args.latency_ms:g} ms per download"
    )
    for attribute, ms, fetched in rows:
        label = "with cache mounts" if attribute == "true" else "without (as BuildKit)"
        print(f"  {label:<22} {ms:9.1f} ms   {fetched} packages downloaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())

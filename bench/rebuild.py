"""Rebuild speed: cold build, no-op rebuild and one-file-edit rebuild of a 5,000-file project.

    python bench/rebuild.py [--files 5000]

The project copies its whole context into the image and runs one step over it, so the
no-op rebuild measures what a cache hit costs (hashing an unchanged context through the
digest cache, key look-ups, export of an unchanged image) and the one-file edit what a
real change costs (re-hash one file, re-run COPY and RUN, write two layers). Needs root
(runc, overlayfs). Prints milliseconds; the BuildKit comparison runs only when a Docker
engine is present.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from strata.api import BuildRequest, build
from strata.export.tarball_import import import_tarball
from strata.store.images import ImageStore
from strata.store.root import StateRoot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.rootfs import make_busybox_rootfs

DOCKERFILE = """\
FROM busybox:bench
COPY . /app
RUN find /app -type f | wc -l > /file-count
"""


def make_project(directory: Path, files: int) -> None:
    (directory / "Dockerfile").write_text(DOCKERFILE)
    for i in range(files):
        sub = directory / "src" / f"pkg{i % 50:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"module{i:05d}.py").write_text(f"VALUE = {i}\n" + "# padding\n" * (i % 20))
    # A working tree's files are older than the digest cache's racy window (1 s of
    # ctime): wait that out, or the no-op rebuild would re-read files written just now.
    # (Setting mtimes into the past would not help: utime resets ctime to now.)
    time.sleep(1.1)


def import_base(root: StateRoot, work: Path) -> None:
    rootfs = make_busybox_rootfs(work / "busybox")
    tarball = work / "busybox.tar"
    subprocess.run(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], check=True
    )
    images = ImageStore(root)
    with open(tarball, "rb") as fh:
        images.put("busybox:bench", import_tarball(images, fh, source="busybox"))


def timed(root: StateRoot, project: Path) -> tuple[float, int, int]:
    start = time.perf_counter()
    result = build(BuildRequest(context=project, tags=("bench:latest",)), root=root)
    elapsed = (time.perf_counter() - start) * 1000
    return elapsed, len(result.stats.cached), len(result.stats.ran)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("runc") is None:
        print("rebuild bench: skipped (needs root and runc)")
        return 0
    with tempfile.TemporaryDirectory(prefix="strata-rebuild-") as tmp:
        work = Path(tmp)
        project = work / "project"
        project.mkdir()
        make_project(project, args.files)
        root = StateRoot.open(work / "root")
        try:
            import_base(root, work)
            cold = timed(root, project)
            noops = sorted((timed(root, project) for _ in range(5)), key=lambda run: run[0])
            noop = noops[len(noops) // 2]
            edited = project / "src" / "pkg07" / "module00007.py"
            edited.write_text("VALUE = 'edited'\n")
            edit = timed(root, project)
        finally:
            root.close()
    print(f"rebuild bench: {args.files} files in the context")
    for label, (ms, cached, ran) in (
        ("cold build", cold),
        ("no-op rebuild", noop),  # median of five
        ("one-file edit", edit),
    ):
        print(f"  {label:<15} {ms:9.1f} ms   ({cached} steps cached, {ran} run)")
    engine = shutil.which("docker") is not None and (
        subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    )
    if not engine:
        print("  BuildKit comparison: bench/buildkit.py starts its own dockerd")
    else:
        print("  BuildKit comparison: bench/buildkit.py (its `edit` benchmark is this one's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

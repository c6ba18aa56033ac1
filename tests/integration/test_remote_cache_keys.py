"""Cache keys are portable: nothing machine-local (paths, inodes, store ids) enters them.

Two clones of one project, in different directories, built on two state roots in
different directories, must produce the same cache keys: that is what lets a cache
exported on one machine hit on another (issue 12, "Key portability").
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from strata.solver.records import CacheRecords
from strata.store.root import StateRoot
from tests.integration.guide_fixtures import BUSYBOX_IMAGE, busybox_tarball, strata, write_project

__all__ = ["busybox_tarball"]

DOCKERFILE = f"""\
FROM {BUSYBOX_IMAGE} AS build
WORKDIR /src
COPY src/ ./
RUN --mount=type=cache,target=/var/cache/app echo cached > /var/cache/app/x \\
    && cat *.txt > /out.txt
RUN --mount=type=bind,source=src/a.txt,target=/mnt/a.txt cat /mnt/a.txt > /bound.txt
FROM {BUSYBOX_IMAGE}
COPY --from=build /out.txt /bound.txt /
COPY --link top.txt /top.txt
ADD src/b.txt /added.txt
RUN cat /out.txt /top.txt > /all.txt
"""

FILES = {"src/a.txt": "a\n", "src/b.txt": "b\n", "top.txt": "top\n"}


def _fresh_root(path: Path, tarball: Path) -> Path:
    from strata.export.tarball_import import import_tarball
    from strata.store.images import ImageStore

    root = StateRoot.open(path)
    try:
        images = ImageStore(root)
        with open(tarball, "rb") as fh:
            manifest = import_tarball(images, fh, source="busybox", changes=['CMD ["sh"]'])
        images.put(BUSYBOX_IMAGE, manifest)
    finally:
        root.close()
    return path


def _keys(root_path: Path) -> dict[str, str]:
    root = StateRoot.open(root_path)
    try:
        return {r.description: r.key for r in CacheRecords(root).all() if r.description}
    finally:
        root.close()


def test_two_clones_in_different_directories_get_the_same_keys(
    busybox_tarball: Path, tmp_path: Path
) -> None:
    first = write_project(tmp_path / "a" / "project", DOCKERFILE, FILES)
    # The second clone: another directory, another depth, files written later (other
    # mtimes and inodes), a hard link where the first has a plain file.
    second = tmp_path / "elsewhere" / "deeper" / "clone"
    second.mkdir(parents=True)
    shutil.copy(first / "Dockerfile", second / "Dockerfile")
    for name, text in FILES.items():
        path = second / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    os.utime(second / "src" / "a.txt", (1_000_000, 1_000_000))
    (second / "src" / "a.txt").unlink()
    (second / "spare.txt").write_text("a\n")
    os.link(second / "spare.txt", second / "src" / "a.txt")
    (second / ".dockerignore").write_text("spare.txt\n")
    (first / ".dockerignore").write_text("spare.txt\n")

    root_a = _fresh_root(tmp_path / "roots" / "one", busybox_tarball)
    root_b = _fresh_root(tmp_path / "other-roots" / "two" / "state", busybox_tarball)
    for root, project in ((root_a, first), (root_b, second)):
        run = strata(root, "build", "--progress=plain", str(project))
        assert run.returncode == 0, run.stderr.decode()

    keys_a, keys_b = _keys(root_a), _keys(root_b)
    assert len(keys_a) >= 7, keys_a
    assert keys_a == keys_b

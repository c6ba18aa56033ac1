"""A state root written by the release before the versioned schema still works.

The fixture (`tests/fixtures/old-root-v0`, see its README) is a root made by strata 0.1.0
when its modules created their tables lazily: an image `old:v0` built from two COPY
steps, their cache records and overlay snapshots, and one cache-mount directory. After
the current code opens it (and so migrates it), it lists the image, serves the old
build cache, builds on the old image, prunes, and still lists the images.
"""

from __future__ import annotations

import sqlite3
import tarfile
from pathlib import Path

from strata.store import schema
from strata.store.images import ImageStore
from strata.store.root import StateRoot
from tests.integration.guide_fixtures import strata, was_cached, write_project

FIXTURE = Path(__file__).parent.parent / "fixtures" / "old-root-v0"

# The project the fixture was built from (same files, so the same cache keys).
OLD_DOCKERFILE = """\
FROM scratch AS base
COPY hello.txt /hello.txt

FROM base
COPY world.txt /world.txt
"""
OLD_FILES = {"hello.txt": "hello\n", "world.txt": "world\n"}


def restore_old_root(path: Path) -> Path:
    """The fixture root, restored at `path`: its metadata and the files its rows name."""
    path.mkdir(parents=True)
    db = sqlite3.connect(path / "metadata.db")
    db.executescript((FIXTURE / "metadata.sql").read_text())
    db.close()
    with tarfile.open(FIXTURE / "files.tar") as tar:
        tar.extractall(path, filter="tar")
    return path


def run(root: Path, *args: str) -> str:
    proc = strata(root, *args, check=True)
    return proc.stdout.decode() + proc.stderr.decode()


def test_a_root_from_the_old_release_builds_prunes_and_lists_images(tmp_path: Path) -> None:
    root = restore_old_root(tmp_path / "root")
    db = sqlite3.connect(root / "metadata.db")
    assert schema.schema_version(db) == 0
    db.close()

    images = run(root, "images")
    assert images.splitlines()[1].split()[:2] == ["old", "v0"]
    du = run(root, "du")
    assert du.count("\n") >= 4 and "Total:" in du  # two snapshots and a cache mount

    project = write_project(tmp_path / "old-project", OLD_DOCKERFILE, OLD_FILES)
    log = run(root, "build", "--progress=plain", "-t", "same:v1", str(project))
    assert was_cached(log, "COPY hello.txt") and was_cached(log, "COPY world.txt")

    on_old = write_project(
        tmp_path / "on-old", "FROM old:v0\nCOPY extra.txt /extra.txt\n", {"extra.txt": "x\n"}
    )
    log = run(root, "build", "--progress=plain", "-t", "new:v1", str(on_old))
    assert "naming to docker.io/library/new:v1" in log

    run(root, "prune", "--all", "--force")
    du_words = run(root, "du").split()
    assert du_words[:5] == ["ID", "RECLAIMABLE", "SIZE", "LAST", "ACCESSED"]
    assert du_words[5:] == ["Reclaimable:", "0B", "Total:", "0B"]  # no records left
    listed = [line.split()[:2] for line in run(root, "images").splitlines()[1:]]
    assert sorted(listed) == [["new", "v1"], ["old", "v0"], ["same", "v1"]]

    opened = StateRoot.open(root)
    try:
        assert schema.schema_version(opened.connect()) == schema.SCHEMA_VERSION
        store = ImageStore(opened)
        for name in ("old:v0", "new:v1"):
            image = store.load_image(name)  # reads and checks manifest and config blobs
            assert all(store.content.has(layer.digest) for layer in image.layers)
    finally:
        opened.close()

"""The state root is private to its owner whatever the umask, and an old root made
under umask 022 (0755 directories, 0644 database) is closed when next opened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.store.root import StateRoot


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(old)


def private_paths(root: StateRoot) -> tuple[list[Path], list[Path]]:
    dirs = [
        root.path,
        root.path / "blobs",
        root.blobs_dir,
        root.snapshots_dir,
        root.cachemounts_dir,
        root.locks_dir,
        root.tmp_root,
    ]
    files = [root.db_path, Path(f"{root.db_path}-wal"), Path(f"{root.db_path}-shm")]
    return dirs, [f for f in files if f.exists()]


def test_a_new_root_is_owner_only_even_under_umask_000(tmp_path: Path, loose_umask: None) -> None:
    root = StateRoot.open(tmp_path / "root")
    try:
        with root.lock("some-lock"):
            pass
        owner = root.mkdtemp("probe")
        dirs, files = private_paths(root)
        assert {str(d): mode_of(d) for d in dirs} == {str(d): 0o700 for d in dirs}
        assert len(files) >= 2  # the database and its WAL exist once opened
        assert {str(f): mode_of(f) for f in files} == {str(f): 0o600 for f in files}
        assert mode_of(root.locks_dir / "some-lock.lock") == 0o600
        assert mode_of(owner.parent / "owner.lock") == 0o600
        assert mode_of(owner) == 0o700
        assert mode_of(owner.parent) == 0o700
    finally:
        root.close()


def test_a_root_made_by_an_earlier_release_is_closed_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "root"
    root = StateRoot.open(path)
    with root.lock("old"):
        pass
    root.close()
    # What a release without these modes left under umask 022.
    dirs, files = private_paths(StateRoot(path))
    for d in dirs:
        d.chmod(0o755)
    for f in [*files, path / "locks" / "old.lock"]:
        f.chmod(0o644)

    reopened = StateRoot.open(path)
    try:
        dirs, files = private_paths(reopened)
        assert {str(d): mode_of(d) for d in dirs} == {str(d): 0o700 for d in dirs}
        assert {str(f): mode_of(f) for f in files} == {str(f): 0o600 for f in files}
        assert mode_of(path / "locks" / "old.lock") == 0o600
    finally:
        reopened.close()

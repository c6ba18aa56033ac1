"""Shared fixtures for integration tests: real runc, overlayfs and a busybox root.

The whole folder is skipped, with the reason, where these cannot run (not root, no
runc, no busybox-static). Every test gets a fresh state root in its tmp dir and is
checked afterwards for mounts left below the session's tmp dirs (which are then
undone, so one leak cannot cascade into later tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.fsutil import copy_tree
from strata.store.root import StateRoot, mounts_under
from strata.worker.snapshots.factory import open_snapshotter
from strata.worker.snapshots.snapshotter import Snapshotter
from tests.rootfs import busybox_available, make_busybox_rootfs


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root (mounts, runc)"
    if shutil.which("runc") is None:
        return "integration tests need runc on PATH"
    if not busybox_available():
        return "integration tests need /bin/busybox (Debian busybox-static)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def no_leftover_mounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail a test that leaves a mount below this session's tmp dirs (its own and the
    session-wide ones: what `findmnt` would show of ours); undo the mounts either way."""
    yield
    leftovers = mounts_under(tmp_path_factory.getbasetemp())
    for mount_point in leftovers:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
    assert leftovers == [], f"mounts left behind: {leftovers}"


@pytest.fixture
def state_root(tmp_path: Path) -> Iterator[StateRoot]:
    """A fresh state root for one test, closed (tmp space reaped) afterwards."""
    root = StateRoot.open(tmp_path / "root")
    try:
        yield root
    finally:
        root.close()


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root tree built once per session; copy it, never modify it."""
    return make_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(params=["overlay", "native"])
def snapshotter(request: pytest.FixtureRequest, state_root: StateRoot) -> Snapshotter:
    """Each snapshot test runs against both implementations."""
    return open_snapshotter(state_root, str(request.param))


@pytest.fixture
def overlay_snapshotter(state_root: StateRoot) -> Snapshotter:
    return open_snapshotter(state_root, "overlay")


def commit_tree(snap: Snapshotter, name: str, tree: Path, parent: str | None = None) -> str:
    """Commit the contents of a host tree as a snapshot (the base layer of a test image)."""
    key = f"import-{name}"
    snap.prepare(key, parent)
    copy_tree(tree, snap.upper_dir(key))
    snap.commit(name, key)
    return name


@pytest.fixture
def busybox_base(snapshotter: Snapshotter, busybox_rootfs: Path) -> str:
    """A committed snapshot holding the busybox root, in the test's snapshotter."""
    return commit_tree(snapshotter, "busybox", busybox_rootfs)


def wait_for(predicate: object, what: str) -> None:
    """Poll until `predicate()` holds (an ordering aid, not a timing assertion)."""
    assert callable(predicate)
    deadline = time.monotonic() + 60
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def process_pid(cmdline: str) -> int | None:
    """The pid of a process with exactly this command line (space-separated)."""
    wanted = cmdline.replace(" ", "\0")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            text = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text.rstrip("\0") == wanted:
            return int(pid)
    return None


def process_running(cmdline: str) -> bool:
    """Whether a process with exactly this command line (space-separated) runs."""
    return process_pid(cmdline) is not None

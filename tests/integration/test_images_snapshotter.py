"""Choosing a snapshotter: `auto` falls back to copies where overlayfs cannot be mounted."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.store.root import StateRoot
from strata.worker.snapshots.factory import open_snapshotter, overlay_supported

pytestmark = pytest.mark.integration


@pytest.fixture
def root_on_overlayfs(tmp_path: Path) -> Iterator[Path]:
    """A directory on an overlayfs mount, as a state root inside a container is.

    overlayfs refuses another overlayfs as the file system of an upper dir, so no
    snapshot overlay can be mounted from a state root here."""
    for name in ("lower", "upper", "work", "merged"):
        (tmp_path / name).mkdir()
    options = f"lowerdir={tmp_path}/lower,upperdir={tmp_path}/upper,workdir={tmp_path}/work"
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(tmp_path / "merged")],
        check=True,
    )
    try:
        yield tmp_path / "merged" / "root"
    finally:
        subprocess.run(["umount", str(tmp_path / "merged")], check=True)


def test_auto_chooses_native_where_overlayfs_cannot_be_mounted(root_on_overlayfs: Path) -> None:
    root = StateRoot.open(root_on_overlayfs)
    try:
        assert not overlay_supported(root)
        snap = open_snapshotter(root, "auto")
        assert snap.name == "native"
        snap.prepare("base-key", None)
        (snap.upper_dir("base-key") / "hello").write_text("from the base layer\n")
        snap.commit("base", "base-key")
        snap.prepare("child", "base")
        assert (snap.upper_dir("child") / "hello").read_text() == "from the base layer\n"
        snap.remove("child")
        assert list((root.snapshots_dir).glob(".probe-*")) == []  # the probe cleaned up
    finally:
        root.close()

"""Choosing a snapshotter: probe whether overlayfs mounts here, and open one by name."""

from __future__ import annotations

import os
import shutil

from strata.errors import StoreError
from strata.store.root import StateRoot
from strata.worker.snapshots.mount import MountSpec, mount_one, unmount
from strata.worker.snapshots.native import NativeSnapshotter
from strata.worker.snapshots.overlay import OverlaySnapshotter, overlay_options
from strata.worker.snapshots.snapshotter import Snapshotter
from strata.worker.snapshots.storage import PROBE_PREFIX, remember_probe, remembered_probe


def overlay_supported(root: StateRoot) -> bool:
    """Whether overlayfs mounts work here with our options; probed once per kernel and
    remembered in metadata.db, since the answer depends on the kernel and privileges."""
    kernel = f"{os.uname().release} uid={os.geteuid()}"
    known = remembered_probe(root, kernel)
    if known is not None:
        return known
    ok = _probe_overlay(root)
    remember_probe(root, kernel, ok)
    return ok


def _probe_overlay(root: StateRoot) -> bool:

    # The probe must run on the file system that will hold the snapshots.
    probe = root.snapshots_dir / f"{PROBE_PREFIX}{root.owner_dir().name}"
    try:
        for d in ("lower", "upper", "work", "merged"):
            (probe / d).mkdir(parents=True, exist_ok=True)
        (probe / "lower" / "f").write_text("x")
        opts = overlay_options([str(probe / "lower")], str(probe / "upper"), str(probe / "work"))
        try:
            mount_one(MountSpec("overlay", "overlay", tuple(opts)), probe / "merged")
        except OSError:
            return False
        try:
            (probe / "merged" / "f").unlink()
            ok = (probe / "upper" / "f").is_char_device()
        finally:
            unmount(probe / "merged")
        return ok
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def open_snapshotter(root: StateRoot, name: str = "auto") -> Snapshotter:
    """The snapshotter called `name` ("overlay", "native"), or for "auto" overlay when
    overlayfs can be mounted here and native otherwise."""
    if name == "auto":
        name = "overlay" if overlay_supported(root) else "native"
    if name == "overlay":
        return OverlaySnapshotter(root)
    if name == "native":
        return NativeSnapshotter(root)
    raise StoreError(f"unknown snapshotter {name!r} (expected overlay or native)")

"""Snapshots: layered file trees with containerd's verbs, and the mounts that expose them.

The package follows containerd's split (`core/mount`, `core/snapshots`,
`core/snapshots/storage`, `plugins/snapshots/overlay|native`); implementations import the
interface and nothing imports them but the factory, so there are no cycles:

    mount.py        MountSpec (a mount as data) and the mount/unmount system calls
    snapshotter.py  the Snapshotter protocol: lifecycle and vocabulary; SnapshotInfo
    storage.py      SnapshotStore: the `snapshots` rows and `snapshots/<id>` directories
    base.py         StoredSnapshotter: what overlay and native do alike over a store
    overlay.py      OverlaySnapshotter: stacked overlayfs upper dirs
    native.py       NativeSnapshotter: full copies, and the differ that writes their diffs
    factory.py      overlay_supported (the probe) and open_snapshotter (the choice)

This file imports nothing, so that `strata.worker.snapshots.mount` alone stays cheap.
"""

"""The overlayfs snapshotter: each snapshot is one overlay upper dir.

Layout as containerd's overlay snapshotter (`snapshots/overlay/overlay.go`):
`snapshots/<id>/fs` is the upper dir (for a committed snapshot: exactly its layer's
changes, whiteouts as 0:0 character devices, opaque dirs marked by
`trusted.overlay.opaque=y`), `snapshots/<id>/work` is overlay's work dir. A snapshot
without parent is a plain bind mount of its `fs`; a view of a single layer is a
read-only bind of that layer.
"""

from __future__ import annotations

from strata.modes import ApplyMode
from strata.worker.snapshots.base import StoredSnapshotter, tree_size
from strata.worker.snapshots.mount import MountSpec
from strata.worker.snapshots.snapshotter import SnapshotInfo


def overlay_options(lowers: list[str], upper: str | None, work: str | None) -> list[str]:
    """Overlay mount options for these dirs (lowers nearest first).

    `index=off`, `redirect_dir=off` and `metacopy=off` keep the upper dir a plain diff:
    with redirects or metacopy a renamed directory or a chmod'ed file would be recorded
    as an xattr pointing into a lower layer, which no layer tar can express (Docker's
    overlay2 driver refuses such mounts for the same reason)."""
    opts = ["index=off", "redirect_dir=off", "metacopy=off"]
    if upper is not None and work is not None:
        opts += [f"workdir={work}", f"upperdir={upper}"]
    opts.append("lowerdir=" + ":".join(lowers))
    return opts


class OverlaySnapshotter(StoredSnapshotter):
    """Snapshots as stacked overlay upper dirs. Needs root (trusted.* xattrs, mount)."""

    name = "overlay"
    apply_mode: ApplyMode = "overlay"
    diff_subdir = "fs"  # a committed upper dir is exactly its layer's changes

    def _fs(self, sid: int) -> str:
        return str(self.store.dir_of(sid) / "fs")

    def _mounts_of(self, info: SnapshotInfo) -> list[MountSpec]:
        """A bind of the snapshot's own upper dir when it has no parent, a read-only bind
        of a single-layer view, otherwise an overlay of the parents' upper dirs."""
        own, *parents = self.store.chain(info.key)
        if info.kind == "view":
            if len(parents) == 1:
                return [MountSpec("bind", self._fs(parents[0]), ("rbind", "ro"))]
            return [
                MountSpec(
                    "overlay",
                    "overlay",
                    tuple(overlay_options([self._fs(p) for p in parents], None, None)),
                )
            ]
        if not parents:
            return [MountSpec("bind", self._fs(own), ("rbind", "rw"))]
        work = str(self.store.dir_of(own) / "work")
        return [
            MountSpec(
                "overlay",
                "overlay",
                tuple(overlay_options([self._fs(p) for p in parents], self._fs(own), work)),
            )
        ]

    def prepare(self, key: str, parent: str | None) -> list[MountSpec]:
        with self.store.create(key, parent, "active") as (_, directory):
            (directory / "fs").mkdir(mode=0o755)
            (directory / "work").mkdir(mode=0o711)
        return self.mounts(key)

    def view(self, key: str, parent: str) -> list[MountSpec]:
        with self.store.create(key, parent, "view") as (_, directory):
            (directory / "fs").mkdir(mode=0o755)
        return self.mounts(key)

    def commit(self, name: str, key: str) -> None:
        info = self.store.get(key)
        size = tree_size(self.store.dir_of(info.id) / "fs")
        self.store.mark_committed(name, key, size)

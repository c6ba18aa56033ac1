"""What the overlay and native snapshotters do alike over one `SnapshotStore`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from strata.errors import StoreError
from strata.modes import ApplyMode
from strata.store.root import StateRoot
from strata.worker.snapshots.mount import MountSpec
from strata.worker.snapshots.snapshotter import SnapshotInfo
from strata.worker.snapshots.storage import SnapshotStore


def tree_size(directory: Path) -> int:
    """Apparent bytes of every entry below `directory` (what `du --apparent-size` counts)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in dirnames + filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


class StoredSnapshotter:
    """What the overlay and native snapshotters do alike, over one `SnapshotStore`:
    look-ups, removal, disowning, and where an active snapshot's files and a committed
    one's changes live. Each implementation adds `prepare`, `view`, `commit` and
    `_mounts_of`, the parts where stacking upper dirs and copying trees differ."""

    name: str
    apply_mode: ApplyMode
    diff_subdir: str
    """The directory below `snapshots/<id>/` that holds a committed snapshot's
    changes in overlay-upper form."""

    def __init__(self, root: StateRoot) -> None:
        self.root = root
        self.store = SnapshotStore(root, self.name)

    def _mounts_of(self, info: SnapshotInfo) -> list[MountSpec]:
        """How to assemble active snapshot or view `info` at a target."""
        raise NotImplementedError

    def mounts(self, key: str) -> list[MountSpec]:
        info = self.store.get(key)
        if info.kind == "committed":
            raise StoreError(f"snapshot {key} is committed; prepare or view a child to mount it")
        return self._mounts_of(info)

    def remove(self, key: str) -> None:
        self.store.delete(key)

    def upper_dir(self, key: str) -> Path:
        info = self.store.get(key)
        if info.kind != "active":
            raise StoreError(f"snapshot {key} is not active")
        return self.store.dir_of(info.id) / "fs"

    def diff_dir(self, name: str) -> Path:
        info = self.store.get(name)
        if info.kind != "committed":
            raise StoreError(f"snapshot {name} is not committed")
        return self.store.dir_of(info.id) / self.diff_subdir

    def tree_dir(self, name: str) -> Path:
        info = self.store.get(name)
        if info.kind != "committed":
            raise StoreError(f"snapshot {name} is not committed")
        return self.store.dir_of(info.id) / "fs"

    def stat(self, key: str) -> SnapshotInfo:
        return self.store.get(key)

    def exists(self, key: str) -> bool:
        return self.store.exists(key)

    def list(self) -> list[SnapshotInfo]:
        return self.store.list()

    def disown(self, key: str) -> None:
        """Keep `key` when this process exits (see `SnapshotStore.disown`)."""
        self.store.disown(key)

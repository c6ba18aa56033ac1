"""The `Snapshotter` protocol: what a layered file tree promises, in containerd's words.

This is containerd's snapshotter interface (`core/snapshots/snapshotter.go`), whose
documentation this docstring follows, plus the two directories a layer applier and a
differ need.

Lifecycle
---------
A snapshot is in one of three states (`SnapshotKind`):

- *active*: writable, made by `prepare(key, parent)`. The caller mounts it, changes
  files, then either `commit`s it or `remove`s it.
- *view*: read-only, made by `view(key, parent)`. It shows a committed snapshot
  without the cost of an upper dir; it can only be removed, never committed.
- *committed*: immutable, made by `commit(name, key)` from an active snapshot (the
  active one is gone afterwards). Only a committed snapshot can be a parent, and it
  cannot be mounted itself: prepare or view a child to see its files.

Vocabulary
----------
- *key* names an active snapshot or a view: chosen by the caller, unique per
  snapshotter, and meaningful only until the snapshot is committed or removed.
- *name* names a committed snapshot. strata uses a layer chain's id, so the name says
  which layers the tree holds.
- *parent* is the name of the committed snapshot a new one starts from (None for an
  empty tree). A committed snapshot cannot be removed while a child names it.

Worked example: unpacking a two-layer image
-------------------------------------------
    s.prepare("extract-1", None)        # active, empty
    apply layer 1 into s.upper_dir("extract-1")
    s.commit("chain-1", "extract-1")    # committed "chain-1"; "extract-1" is gone
    s.prepare("extract-2", "chain-1")   # active, on top of chain-1
    apply layer 2 into s.upper_dir("extract-2")
    s.commit("chain-2", "extract-2")
    mounts = s.prepare("run-1", "chain-2")   # a container's writable root
    mount_all(mounts, rootfs); run; unmount(rootfs)
    s.commit("chain-3", "run-1")        # its changes, diff_dir("chain-3"), are a layer

Ownership
---------
Active snapshots and views belong to the process that made them: when it dies without
removing them, the next snapshotter opened on the state root removes them. `disown`
lets one outlive its maker (a named `strata run` container).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from strata.modes import ApplyMode
from strata.worker.snapshots.mount import MountSpec

SnapshotKind = Literal["active", "view", "committed"]


@dataclass(frozen=True)
class SnapshotInfo:
    """What the metadata knows of one snapshot."""

    id: int
    key: str
    parent: str | None
    kind: SnapshotKind
    created: float
    size: int
    owner: str | None = None
    """The tmp directory name of the process an active snapshot or view belongs to;
    None for committed and disowned snapshots."""


class Snapshotter(Protocol):
    """containerd's snapshotter verbs, plus direct access to the directories a layer
    applier or differ needs. Every verb raises `StoreError` for a key that does not
    exist or is in the wrong state."""

    name: str
    """"overlay" or "native": the implementation, and the namespace of the keys."""
    apply_mode: ApplyMode
    """How a layer must be applied into `upper_dir`: "overlay" keeps whiteouts as
    0:0 character devices (the dir is an overlay upper); "tree" deletes (the dir is a
    full tree)."""

    def prepare(self, key: str, parent: str | None) -> list[MountSpec]:
        """Make active snapshot `key` on committed `parent` (None: empty) and return
        the mounts that assemble it. Refuses a key in use and a parent not committed."""
        ...

    def view(self, key: str, parent: str) -> list[MountSpec]:
        """Make read-only view `key` of committed `parent`; return its mounts."""
        ...

    def commit(self, name: str, key: str) -> None:
        """Turn active snapshot `key` into committed snapshot `name`; `key` is gone
        afterwards. Refuses a view, a committed snapshot and a name in use."""
        ...

    def remove(self, key: str) -> None:
        """Remove a snapshot of any kind (its row first, then its files); refuses one
        that is the parent of another."""
        ...

    def mounts(self, key: str) -> list[MountSpec]:
        """The mounts of active snapshot or view `key` again; refuses a committed one."""
        ...

    def upper_dir(self, key: str) -> Path:
        """The directory an active snapshot's changes are written to (see
        `apply_mode`); refuses anything not active."""
        ...

    def diff_dir(self, name: str) -> Path:
        """A committed snapshot's changes in overlay-upper form: what its layer tar
        is written from. Refuses anything not committed."""
        ...

    def tree_dir(self, name: str) -> Path:
        """The directory holding committed snapshot `name`'s own entries at their paths:
        its upper dir (overlay: only its layer's entries) or its whole tree (native).
        To read or hard-link from (an incremental COPY), never to write. Refuses
        anything not committed."""
        ...

    def stat(self, key: str) -> SnapshotInfo:
        """What the metadata knows of `key` (a key or a name)."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a snapshot called `key` exists in any state."""
        ...

    def list(self) -> list[SnapshotInfo]:
        """Every snapshot of this implementation, in the order they were made."""
        ...

    def disown(self, key: str) -> None:
        """Let active snapshot or view `key` outlive this process (never reaped)."""
        ...

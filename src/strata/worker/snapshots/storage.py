"""The snapshots' metadata: rows in the `snapshots` table, files in `snapshots/<id>/`.

As containerd's `core/snapshots/storage`, this module records which snapshots exist,
their kind, parent and owner, and nothing about how their files are stacked; both
snapshotters keep their metadata here, told apart by the `snapshotter` column. Numeric
ids keep paths short, which matters for deep overlay chains.

Active snapshots and views belong to the process that made them: their row names that
process's tmp directory (`StateRoot.owner_dir`). When the owner dies without removing
them (SIGKILL, power loss), the next store opened on the root removes them, as
`StateRoot.open` removes the dead process's bundles and mounts.

The `snapshotter_probe` table remembers, per kernel and uid, whether overlayfs mounts
(see `factory.overlay_supported`).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from strata.errors import StoreError
from strata.store.root import TRASH_PREFIX, StateRoot
from strata.worker.snapshots.snapshotter import SnapshotInfo, SnapshotKind

PROBE_PREFIX = ".probe-"
"""Name prefix of an overlay probe's scratch directory under `snapshots/`."""

# The tables `snapshots` and `snapshotter_probe` are this module's; their DDL is in
# `strata.store.schema` with the rest of the state root's.


class SnapshotStore:
    """The metadata both snapshotters share: rows in `snapshots`, dirs `snapshots/<id>`."""

    def __init__(self, root: StateRoot, snapshotter: str) -> None:
        self.root = root
        self.snapshotter = snapshotter
        self.reap_abandoned()

    def dir_of(self, snapshot_id: int) -> Path:
        return self.root.snapshots_dir / str(snapshot_id)

    def _row(self, db: sqlite3.Connection, key: str) -> tuple[int, int | None, str, float, int]:
        row = db.execute(
            "SELECT id, parent_id, kind, created, size FROM snapshots "
            "WHERE snapshotter = ? AND key = ?",
            (self.snapshotter, key),
        ).fetchone()
        if row is None:
            raise StoreError(f"snapshot {key} does not exist")
        return (int(row[0]), row[1], str(row[2]), float(row[3]), int(row[4]))

    def get(self, key: str) -> SnapshotInfo:
        db = self.root.connect()
        sid, parent_id, kind, created, size = self._row(db, key)
        parent = None
        if parent_id is not None:
            prow = db.execute("SELECT key FROM snapshots WHERE id = ?", (parent_id,)).fetchone()
            parent = str(prow[0]) if prow else None
        orow = db.execute("SELECT owner FROM snapshots WHERE id = ?", (sid,)).fetchone()
        owner = orow[0] if orow else None
        return SnapshotInfo(sid, key, parent, kind, created, size, owner)  # type: ignore[arg-type]

    def exists(self, key: str) -> bool:
        row = (
            self.root.connect()
            .execute(
                "SELECT 1 FROM snapshots WHERE snapshotter = ? AND key = ?",
                (self.snapshotter, key),
            )
            .fetchone()
        )
        return row is not None

    def chain(self, key: str) -> list[int]:
        """Ids from `key` down to the base layer (nearest first)."""
        db = self.root.connect()
        sid, parent_id, _, _, _ = self._row(db, key)
        ids = [sid]
        while parent_id is not None:
            ids.append(int(parent_id))
            row = db.execute(
                "SELECT parent_id FROM snapshots WHERE id = ?", (parent_id,)
            ).fetchone()
            parent_id = row[0] if row else None
        return ids

    @contextlib.contextmanager
    def create(
        self, key: str, parent: str | None, kind: SnapshotKind
    ) -> Iterator[tuple[int, Path]]:
        """Insert a row and make its directory; both vanish again if the block raises.

        The row is written first (short transaction) so that slow work in the block, such
        as a native copy, does not hold the database's write lock. It names this process
        as the owner, so that a crash in the block leaves nothing a later open keeps."""
        owner = self.root.owner_dir().name
        with self.root.transaction() as db:
            parent_id: int | None = None
            if parent is not None:
                psid, _, pkind, _, _ = self._row(db, parent)
                if pkind != "committed":
                    raise StoreError(f"parent snapshot {parent} is not committed")
                parent_id = psid
            try:
                cur = db.execute(
                    "INSERT INTO snapshots (snapshotter, key, parent_id, kind, created, owner) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (self.snapshotter, key, parent_id, kind, time.time(), owner),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"snapshot {key} already exists") from None
            sid = int(cur.lastrowid or 0)
        directory = self.dir_of(sid)
        try:
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            yield sid, directory
        except BaseException:
            with self.root.transaction() as db:
                db.execute("DELETE FROM snapshots WHERE id = ?", (sid,))
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def mark_committed(self, name: str, key: str, size: int) -> None:
        with self.root.transaction() as db:
            sid, _, kind, _, _ = self._row(db, key)
            if kind != "active":
                raise StoreError(f"snapshot {key} is not active and cannot be committed")
            try:
                db.execute(
                    "UPDATE snapshots SET key = ?, kind = 'committed', size = ?, created = ?, "
                    "owner = NULL WHERE id = ?",
                    (name, size, time.time(), sid),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"snapshot {name} already exists") from None

    def delete(self, key: str) -> None:
        """Remove the row (refused while children exist) and commit, then the files: a
        kill in between leaves trash for the next open, never a row without files."""
        with self.root.transaction() as db:
            sid, _, _, _, _ = self._row(db, key)
            child = db.execute("SELECT key FROM snapshots WHERE parent_id = ?", (sid,)).fetchone()
            if child is not None:
                raise StoreError(f"cannot remove snapshot {key}: snapshot {child[0]} depends on it")
            db.execute("DELETE FROM snapshots WHERE id = ?", (sid,))
        self.root.discard(self.dir_of(sid))

    def list(self) -> list[SnapshotInfo]:
        rows = (
            self.root.connect()
            .execute(
                "SELECT s.id, s.key, p.key, s.kind, s.created, s.size, s.owner FROM snapshots s "
                "LEFT JOIN snapshots p ON p.id = s.parent_id WHERE s.snapshotter = ? "
                "ORDER BY s.id",
                (self.snapshotter,),
            )
            .fetchall()
        )
        return [
            SnapshotInfo(int(r[0]), r[1], r[2], r[3], float(r[4]), int(r[5]), r[6]) for r in rows
        ]

    def disown(self, key: str) -> None:
        """Let an active snapshot or view outlive this process (no owner, never reaped)."""
        with self.root.transaction() as db:
            sid, _, _, _, _ = self._row(db, key)
            db.execute("UPDATE snapshots SET owner = NULL WHERE id = ?", (sid,))

    def reap_abandoned(self) -> tuple[str, ...]:
        """Remove the active snapshots and views whose owning process is gone; return
        their keys. The dead owners' tmp dirs are reaped first (`StateRoot.reap_stale`),
        so no container or overlay mount still uses the files being deleted."""
        rows = (
            self.root.connect()
            .execute(
                "SELECT key, owner FROM snapshots WHERE snapshotter = ? AND owner IS NOT NULL "
                "AND kind != 'committed' ORDER BY id DESC",
                (self.snapshotter,),
            )
            .fetchall()
        )
        dead = [str(key) for key, owner in rows if not self.root.owner_alive(str(owner))]
        self._remove_dead_trash()
        if not dead:
            return ()
        self.root.reap_stale()
        reaped = []
        for key in dead:
            with contextlib.suppress(StoreError):
                self.delete(key)
                reaped.append(key)
        return tuple(reaped)

    def _remove_dead_trash(self) -> None:
        """Delete what a process killed halfway through `delete` (the files of removed
        snapshots, `.removed-<id>-<owner>`) or an overlay probe (`.probe-<owner>`) left."""
        self.root.remove_dead_trash(self.root.snapshots_dir, (TRASH_PREFIX, PROBE_PREFIX))


def remembered_probe(root: StateRoot, kernel: str) -> bool | None:
    """Whether overlayfs mounted when last probed on `kernel`; None if never probed."""
    db = root.connect()
    row = db.execute("SELECT overlay FROM snapshotter_probe WHERE kernel = ?", (kernel,)).fetchone()
    if row is not None:
        return bool(row[0])
    return None


def remember_probe(root: StateRoot, kernel: str, ok: bool) -> None:
    """Record a probe's answer for `kernel`."""
    with root.transaction() as tx:
        tx.execute(
            "INSERT OR REPLACE INTO snapshotter_probe (kernel, overlay) VALUES (?, ?)",
            (kernel, int(ok)),
        )


# -- for du and prune ---------------------------------------------------------------------------
# Rows of every snapshotter at once, inside the collector's transaction.


@dataclass(frozen=True)
class SnapshotRow:
    """One row of `snapshots`, as du needs it."""

    id: int
    snapshotter: str
    key: str
    parent_id: int | None
    kind: str
    created: float
    owner: str | None


def snapshot_rows(db: sqlite3.Connection) -> list[SnapshotRow]:
    """Every snapshot of every snapshotter, oldest first."""
    return [
        SnapshotRow(int(r[0]), str(r[1]), str(r[2]), r[3], str(r[4]), float(r[5]), r[6])
        for r in db.execute(
            "SELECT id, snapshotter, key, parent_id, kind, created, owner"
            " FROM snapshots ORDER BY id"
        ).fetchall()
    ]


def leaf_snapshot_in(db: sqlite3.Connection, snapshot_id: int) -> tuple[str, bool] | None:
    """(key, whether another snapshotter has a snapshot of the same key) of snapshot
    `snapshot_id`; None when it is gone or has children."""
    row = db.execute("SELECT key FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
    if row is None:
        return None
    if db.execute("SELECT 1 FROM snapshots WHERE parent_id = ? LIMIT 1", (snapshot_id,)).fetchone():
        return None
    key = str(row[0])
    twin = db.execute(
        "SELECT 1 FROM snapshots WHERE key = ? AND id != ? LIMIT 1", (key, snapshot_id)
    ).fetchone()
    return key, twin is not None


def delete_snapshot_row_in(db: sqlite3.Connection, snapshot_id: int) -> None:
    db.execute("DELETE FROM snapshots WHERE id = ?", (snapshot_id,))


def snapshot_keys_and_ids_in(db: sqlite3.Connection) -> tuple[set[str], set[int]]:
    """The keys and the ids of every snapshot."""
    rows = db.execute("SELECT key, id FROM snapshots").fetchall()
    return {str(r[0]) for r in rows}, {int(r[1]) for r in rows}

def missing_snapshot_files(root: StateRoot) -> list[str]:
    """Keys of committed snapshots whose directory is gone (oldest first): what a build
    that fails to mount them is told to repair."""
    return [
        row.key
        for row in snapshot_rows(root.connect())
        if row.kind == "committed" and not (root.snapshots_dir / str(row.id)).is_dir()
    ]

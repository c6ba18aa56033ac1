"""What du remembers between runs: the measured sizes of committed snapshots
(`usage_snapshot_sizes`) and which RUN made each cache mount (`cache_mount_descriptions`).

The owner of those two tables (`store/schema.py`). The listing itself, which reads every
owner's tables, is the collector's (`strata.gc.usage`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable

from strata.store.root import StateRoot


class UsageMemory:
    """The owner of `usage_snapshot_sizes` (measured sizes of committed snapshots) and
    `cache_mount_descriptions` (which RUN made each cache); see `store/schema.py`."""

    def __init__(self, root: StateRoot) -> None:
        self.root = root

    def describe_cache_mount(self, cache_id: str, target: str, args: Iterable[str]) -> None:
        """Remember `target` and `args` as the RUN that uses cache `cache_id`."""
        with self.root.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO cache_mount_descriptions (id, target, args, updated)"
                " VALUES (?, ?, ?, ?)",
                (cache_id, target, json.dumps(list(args)), time.time()),
            )

    def cache_mount_descriptions(self) -> dict[str, tuple[str, list[str]]]:
        """cache id -> (target, argv) of the RUN that described it."""
        rows = self.root.connect().execute("SELECT id, target, args FROM cache_mount_descriptions")
        return {str(i): (str(t), list(json.loads(a))) for i, t, a in rows.fetchall()}

    def snapshot_sizes(self) -> dict[int, int]:
        """snapshot id -> its measured size, for the committed snapshots measured so far."""
        rows = self.root.connect().execute("SELECT snapshot_id, size FROM usage_snapshot_sizes")
        return {int(i): int(n) for i, n in rows.fetchall()}

    def remember_snapshot_sizes(self, sizes: Iterable[tuple[int, int]]) -> None:
        """Record (snapshot id, size) pairs of committed snapshots."""
        with self.root.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO usage_snapshot_sizes (snapshot_id, size) VALUES (?, ?)",
                list(sizes),
            )

    @staticmethod
    def forget_snapshot_size_in(db: sqlite3.Connection, snapshot_id: int) -> None:
        db.execute("DELETE FROM usage_snapshot_sizes WHERE snapshot_id = ?", (snapshot_id,))

    @staticmethod
    def keep_sizes_of_in(db: sqlite3.Connection, snapshot_ids: set[int]) -> None:
        """Forget the sizes of snapshots not in `snapshot_ids` (they are gone)."""
        stale = [
            (int(r[0]),)
            for r in db.execute("SELECT snapshot_id FROM usage_snapshot_sizes")
            if int(r[0]) not in snapshot_ids
        ]
        db.executemany("DELETE FROM usage_snapshot_sizes WHERE snapshot_id = ?", stale)


def remember_cache_mount(root: StateRoot, cache_id: str, target: str, args: Iterable[str]) -> None:
    """Remember which RUN last used cache `cache_id`, for du's description
    (`cached mount <target> from exec <argv> with id "<id>"`, BuildKit
    `solver/llbsolver/mounts/mount.go`). The solver calls this for each cache mount of an
    exec op it runs."""
    UsageMemory(root).describe_cache_mount(cache_id, target, args)


"""Cache records: which committed snapshot a cache key produced, and why it has that key.

A record maps a vertex's cache key to its result snapshot, with the times BuildKit's
`du`/`prune` show (created, last used), a description (the step's name) and the key's
components as JSON: the op digest and, for each input, the input's own key or the
checksum of the files the op read from it, with a human label (`file requirements.txt`,
`base image`). Issue 6 compares those components to explain a cache miss.

Two more tables remember facts about immutable snapshots so that they are computed once:
the checksum of a path inside a committed snapshot, and the layer blob a snapshot's diff
was written to.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from strata.solver.copies import CopyManifests
from strata.store.root import StateRoot


@dataclass(frozen=True)
class CacheRecord:
    key: str
    snapshot: str | None
    kind: str
    created: float
    last_used: float
    description: str
    components: dict[str, Any]


@dataclass(frozen=True)
class SnapshotResult:
    """What du needs of a record whose result is a snapshot."""

    kind: str
    description: str
    last_used: float
    key: str


@dataclass(frozen=True)
class LayerRow:
    """A snapshot's diff as a stored layer blob (fits `ImageStore.commit_image`)."""

    diff_id: str
    digest: str
    media_type: str
    size: int
    uncompressed_size: int


class CacheRecords:
    """The solver's tables in one state root: the owner of `solver_cache`,
    `solver_checksums` and `solver_layers` (see `store/schema.py`)."""

    def __init__(self, root: StateRoot) -> None:
        self.root = root

    # -- key -> result ---------------------------------------------------------------

    def get(self, key: str) -> CacheRecord | None:
        row = (
            self.root.connect()
            .execute(
                "SELECT key, snapshot, kind, created, last_used, description, components"
                " FROM solver_cache WHERE key = ?",
                (key,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return CacheRecord(
            key=row[0],
            snapshot=row[1],
            kind=row[2],
            created=row[3],
            last_used=row[4],
            description=row[5],
            components=json.loads(row[6]),
        )

    def stored_result(self, key: str) -> tuple[str | None] | None:
        """The snapshot stored for `key` (in a 1-tuple: a record may hold no snapshot),
        or None without a record. A cache look-up needs only this, so the components
        are neither read nor decoded (they are for `du` and tests; `explain` keeps its
        own copy per step)."""
        row = (
            self.root.connect()
            .execute("SELECT snapshot FROM solver_cache WHERE key = ?", (key,))
            .fetchone()
        )
        return None if row is None else (row[0],)

    def put(
        self,
        key: str,
        snapshot: str | None,
        *,
        kind: str,
        description: str,
        components: dict[str, Any],
    ) -> None:
        """Record (or replace, after a forced run) the result of `key`."""
        now = time.time()
        with self.root.transaction() as db:
            db.execute(
                "INSERT INTO solver_cache"
                " (key, snapshot, kind, created, last_used, description, components)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET snapshot = excluded.snapshot,"
                " kind = excluded.kind, created = excluded.created,"
                " last_used = excluded.last_used, description = excluded.description,"
                " components = excluded.components",
                (key, snapshot, kind, now, now, description, json.dumps(components)),
            )

    def touch(self, key: str) -> None:
        with self.root.transaction() as db:
            touch_record(db, key, time.time())

    def forget(self, key: str) -> None:
        with self.root.transaction() as db:
            db.execute("DELETE FROM solver_cache WHERE key = ?", (key,))

    def all(self) -> list[CacheRecord]:
        rows = self.root.connect().execute(
            "SELECT key, snapshot, kind, created, last_used, description, components"
            " FROM solver_cache ORDER BY created"
        )
        return [
            CacheRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))
            for r in rows.fetchall()
        ]

    def results_by_snapshot(self) -> dict[str, list[SnapshotResult]]:
        """snapshot key -> the records whose result it is, oldest first (for du)."""
        out: dict[str, list[SnapshotResult]] = {}
        for snapshot, kind, description, last_used, key in (
            self.root.connect()
            .execute(
                "SELECT snapshot, kind, description, last_used, key FROM solver_cache"
                " WHERE snapshot IS NOT NULL ORDER BY created"
            )
            .fetchall()
        ):
            out.setdefault(str(snapshot), []).append(
                SnapshotResult(str(kind), str(description), float(last_used), str(key))
            )
        return out

    # -- forgetting snapshots (prune) ---------------------------------------------------

    @staticmethod
    def snapshots_named_in(db: sqlite3.Connection) -> set[str]:
        """Every snapshot key a record, checksum or layer row names."""
        named: set[str] = set()
        for query in (
            "SELECT DISTINCT snapshot FROM solver_cache WHERE snapshot IS NOT NULL",
            "SELECT DISTINCT snapshot FROM solver_checksums",
            "SELECT DISTINCT snapshot FROM solver_layers",
        ):
            named.update(str(r[0]) for r in db.execute(query))
        return named

    @staticmethod
    def forget_snapshots_in(db: sqlite3.Connection, keys: Iterable[str]) -> list[str]:
        """Delete every row about these snapshot keys, inside the caller's transaction;
        return the layer blobs that were remembered for them."""
        digests: list[str] = []
        keys = list(keys)
        for key in keys:
            db.execute("DELETE FROM solver_cache WHERE snapshot = ?", (key,))
            db.execute("DELETE FROM solver_checksums WHERE snapshot = ?", (key,))
            digests.extend(
                str(r[0])
                for r in db.execute("SELECT digest FROM solver_layers WHERE snapshot = ?", (key,))
            )
            db.execute("DELETE FROM solver_layers WHERE snapshot = ?", (key,))
        CopyManifests.forget_snapshots_in(db, keys)
        return digests

    @staticmethod
    def forget_empty_results_in(db: sqlite3.Connection) -> None:
        """Delete the records whose result has no snapshot (an empty `FROM scratch`)."""
        db.execute("DELETE FROM solver_cache WHERE snapshot IS NULL")

    # -- checksums of paths in committed snapshots -----------------------------------

    def checksum_of(self, snapshot: str, selector: str) -> str | None:
        row = (
            self.root.connect()
            .execute(
                "SELECT checksum FROM solver_checksums WHERE snapshot = ? AND selector = ?",
                (snapshot, selector),
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def checksums_of(self, snapshot: str) -> list[tuple[str, str]]:
        """Every (selector, checksum) remembered for a snapshot (a remote cache carries
        them, so an importer's readers of the result need not unpack it)."""
        rows = self.root.connect().execute(
            "SELECT selector, checksum FROM solver_checksums WHERE snapshot = ? ORDER BY selector",
            (snapshot,),
        )
        return [(str(r[0]), str(r[1])) for r in rows.fetchall()]

    def remember_checksum(self, snapshot: str, selector: str, checksum: str) -> None:
        with self.root.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO solver_checksums (snapshot, selector, checksum)"
                " VALUES (?, ?, ?)",
                (snapshot, selector, checksum),
            )

    # -- layers of snapshots -----------------------------------------------------------

    def layer_of(self, snapshot: str, compression: str) -> LayerRow | None:
        row = (
            self.root.connect()
            .execute(
                "SELECT diff_id, digest, media_type, size, uncompressed_size FROM solver_layers"
                " WHERE snapshot = ? AND compression = ?",
                (snapshot, compression),
            )
            .fetchone()
        )
        return None if row is None else LayerRow(row[0], row[1], row[2], row[3], row[4])

    def reusable_layer_of(self, snapshot: str, preferred: str) -> LayerRow | None:
        """A stored blob of the snapshot's diff: in `preferred` compression if there is one,
        else in any. Exports reuse a layer's existing blob whatever its compression, as
        BuildKit does unless compression is forced (cache/remote.go), so a zstd or
        uncompressed base layer leaves as it came, with its digest unchanged."""
        row = (
            self.root.connect()
            .execute(
                "SELECT diff_id, digest, media_type, size, uncompressed_size FROM solver_layers"
                " WHERE snapshot = ? ORDER BY compression = ? DESC LIMIT 1",
                (snapshot, preferred),
            )
            .fetchone()
        )
        return None if row is None else LayerRow(row[0], row[1], row[2], row[3], row[4])

    def remember_layer(self, snapshot: str, compression: str, layer: LayerRow) -> None:
        with self.root.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO solver_layers"
                " (snapshot, compression, diff_id, digest, media_type, size, uncompressed_size)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    snapshot,
                    compression,
                    layer.diff_id,
                    layer.digest,
                    layer.media_type,
                    layer.size,
                    layer.uncompressed_size,
                ),
            )

    def layer_digests(self) -> set[str]:
        """Every blob remembered as some snapshot's layer: these blobs are held."""
        rows = self.root.connect().execute("SELECT DISTINCT digest FROM solver_layers")
        return {str(r[0]) for r in rows}

    def layer_digests_by_snapshot(self) -> list[tuple[str, str]]:
        """(snapshot key, blob digest) of every remembered layer, by snapshot and then
        compression (du counts each blob for the first snapshot naming it)."""
        rows = self.root.connect().execute(
            "SELECT snapshot, digest FROM solver_layers ORDER BY snapshot, compression"
        )
        return [(str(k), str(d)) for k, d in rows.fetchall()]

    @staticmethod
    def holds_layer_in(db: sqlite3.Connection, digest: str) -> bool:
        """Whether some snapshot's remembered layer is blob `digest` (in the caller's
        transaction, so a sweep's check and delete are one step)."""
        row = db.execute("SELECT 1 FROM solver_layers WHERE digest = ? LIMIT 1", (digest,))
        return row.fetchone() is not None


def touch_record(db: sqlite3.Connection, key: str, now: float) -> None:
    """Mark `key`'s record used at `now`, inside the caller's transaction (a cache hit
    writes this and its step's memory in one transaction)."""
    db.execute("UPDATE solver_cache SET last_used = ? WHERE key = ?", (now, key))

"""Which earlier copy an incremental COPY starts from: manifests of context copies.

A FileOp that copies from the build context records, once its snapshot is committed,
a manifest: for each regular file it wrote, the destination path and the stamp of the
source file it came from (`strata.worker.reuse`). The manifest is filed under the copy's
*lineage*: the snapshotter, the op's identity, the parent snapshot and the context
directory. A later run of a copy with the same lineage (the same COPY on the same parent
whose context files changed) starts from the latest manifest of that lineage whose
snapshot still exists, and links every file whose stamp is unchanged.

The lineage is deliberately narrower than "the same Dockerfile step"
(`solver.explain.StepMemory`): a step whose instruction or parent changed is a
different copy, and reuse is exact only when both are the same; and it works for builds
without a step scope (the API, a Dockerfile on stdin).

Only the latest manifest of a lineage is kept: older ones are deleted when a newer one is
written, and prune deletes a snapshot's manifest with its cache records.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

from strata.plan.ops import FileOp, op_json, sha256_json
from strata.store.root import StateRoot
from strata.worker.reuse import Manifest, Stamp


def lineage_of(snapshotter: str, op: FileOp, parent: str | None, context: Path) -> str:
    """The identity of "the same copy": same snapshotter, op, parent and context dir."""
    return sha256_json(
        {
            "snapshotter": snapshotter,
            "op": sha256_json(op_json(op)),
            "parent": parent or "",
            "context": str(context),
        }
    )


def _encode(files: Manifest) -> bytes:
    rows = [[rel, *stamp] for rel, stamp in sorted(files.items())]
    return zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), 1)


def _decode(blob: bytes) -> Manifest:
    rows = json.loads(zlib.decompress(blob))
    return {str(row[0]): Stamp(str(row[1]), *(int(v) for v in row[2:7])) for row in rows}


class CopyManifests:
    """The owner of table `copy_manifests` (see `store/schema.py`)."""

    def __init__(self, root: StateRoot) -> None:
        self.root = root

    def latest(self, lineage: str) -> list[str]:
        """Snapshots with a manifest of `lineage`, newest first."""
        rows = self.root.connect().execute(
            "SELECT snapshot FROM copy_manifests WHERE lineage = ? ORDER BY created DESC",
            (lineage,),
        )
        return [str(r[0]) for r in rows.fetchall()]

    def files_of(self, snapshot: str) -> Manifest | None:
        row = (
            self.root.connect()
            .execute("SELECT files FROM copy_manifests WHERE snapshot = ?", (snapshot,))
            .fetchone()
        )
        return None if row is None else _decode(bytes(row[0]))

    def remember(self, snapshot: str, lineage: str, files: Manifest) -> None:
        """File committed `snapshot`'s manifest under `lineage`, replacing older ones."""
        blob = _encode(files)
        with self.root.transaction() as db:
            db.execute("DELETE FROM copy_manifests WHERE lineage = ?", (lineage,))
            db.execute(
                "INSERT OR REPLACE INTO copy_manifests (snapshot, lineage, created, files)"
                " VALUES (?, ?, ?, ?)",
                (snapshot, lineage, time.time(), blob),
            )

    @staticmethod
    def forget_snapshots_in(db: sqlite3.Connection, keys: Iterable[str]) -> None:
        """Delete the manifests of these snapshots, inside the caller's transaction."""
        for key in keys:
            db.execute("DELETE FROM copy_manifests WHERE snapshot = ?", (key,))

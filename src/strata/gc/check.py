"""`strata check`: find, and with `repair` fix, what a faulty disk or a stray hand left
wrong in a state root.

What is checked, in this order (each step trusts what the earlier ones left):

1. the content store: every blob file is hashed (its name is its digest) and its size
   compared with the size recorded when it was stored; a recorded blob whose file is
   gone is noted. Repair deletes a corrupt file and its records but keeps who holds it,
   so the image it belongs to holds it again once `load`, `import` or `pull` brings the
   good bytes back (the content store renames fresh, hashed bytes over whatever is
   there);
2. the snapshots' records: a committed snapshot row whose directory is gone (and every
   snapshot stacked on it) is dropped on repair, with the cache records naming it, so
   the next build runs those steps again instead of failing on missing files;
3. cache records naming a snapshot no row has: dropped on repair;
4. images: each image's manifest, config and layers must be in the content store. This
   is reported, never repaired: only the image's source can give the bytes back.

Repair holds the build lock exclusively (as prune does), so no build runs on the
snapshots it drops. Each owner's own methods do the SQL (see `store/schema.py`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from strata.errors import StoreError
from strata.gc.prune import exclusive_cache_access
from strata.solver.records import CacheRecords
from strata.store.content import REPAIR_HINT, ContentStore
from strata.store.images import ImageStore
from strata.store.reference import parse_reference
from strata.store.root import StateRoot
from strata.store.usage import UsageMemory
from strata.worker.snapshots.storage import (
    SnapshotRow,
    delete_snapshot_row_in,
    snapshot_keys_and_ids_in,
    snapshot_rows,
)

ProblemKind = Literal[
    "corrupt-blob",  # a blob file whose bytes are not its digest's, or of the wrong size
    "missing-blob",  # a blob recorded in the store whose file is gone
    "missing-snapshot",  # a snapshot row whose directory is gone
    "dangling-record",  # a cache record naming a snapshot that no row has
    "image-incomplete",  # an image one of whose blobs the store lacks
]


@dataclass(frozen=True)
class Problem:
    """One thing found wrong: its kind, what it is about, and whether it was repaired."""

    kind: ProblemKind
    subject: str
    """The blob digest, snapshot key, cache key or image name."""
    detail: str
    repaired: bool = False

    def __str__(self) -> str:
        state = " (repaired)" if self.repaired else ""
        return f"{self.kind}: {self.subject}: {self.detail}{state}"


@dataclass(frozen=True)
class CheckReport:
    """What `Client.check` looked at and found."""

    blobs: int
    snapshots: int
    records: int
    images: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when nothing is left wrong (every problem found was repaired)."""
        return all(p.repaired for p in self.problems)


ProblemCallback = Callable[[Problem], None]
WAITING_MESSAGE = "waiting for running builds to finish before repairing"


def check(
    root: StateRoot,
    *,
    repair: bool = False,
    on_problem: ProblemCallback | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> CheckReport:
    """Check the state root (see the module docstring); with `repair`, fix what can be.
    `on_problem` hears of each problem as it is found; `on_wait` is told when a repair
    waits for running builds."""
    found: list[Problem] = []

    def note(problem: Problem) -> None:
        found.append(problem)
        if on_problem is not None:
            on_problem(problem)

    with contextlib.ExitStack() as stack:
        if repair:

            def waiting(_: str) -> None:
                if on_wait is not None:
                    on_wait(WAITING_MESSAGE)

            stack.enter_context(exclusive_cache_access(root, wait=True, on_wait=waiting))
        content = ContentStore(root)
        blobs = _check_blobs(content, repair, note)
        snapshots, records = _check_snapshots(root, repair, note)
        images = _check_images(ImageStore(root, content), note)
    return CheckReport(blobs, snapshots, records, images, tuple(found))


def _check_blobs(content: ContentStore, repair: bool, note: ProblemCallback) -> int:
    recorded = content.recorded_sizes()
    stored = content.stored_digests()
    for digest in stored:
        try:
            actual = content.hash_blob(digest)
        except StoreError:
            continue  # deleted meanwhile (a concurrent rmi): nothing wrong
        want_size = recorded.get(digest)
        if actual.digest != digest:
            detail = f"its content hashes to {actual.digest}"
        elif want_size is not None and want_size != actual.size:
            detail = f"{actual.size} bytes, {want_size} recorded"
        else:
            continue
        if repair:
            content.drop_bad(digest)
        note(Problem("corrupt-blob", digest, detail, repaired=repair))
    present = set(stored)
    for digest in sorted(set(recorded) - present):
        if repair:
            content.drop_bad(digest)
        note(Problem("missing-blob", digest, "recorded, but its file is gone", repaired=repair))
    return len(stored)




def _check_snapshots(root: StateRoot, repair: bool, note: ProblemCallback) -> tuple[int, int]:
    db = root.connect()
    rows = snapshot_rows(db)
    by_id = {row.id: row for row in rows}
    broken: dict[int, str] = {}
    for row in rows:  # oldest first: a parent comes before its children
        if row.kind != "committed":
            continue  # active ones are their live owner's (or reaped on open)
        if not (root.snapshots_dir / str(row.id)).is_dir():
            broken[row.id] = "its directory is gone"
        elif row.parent_id is not None and row.parent_id in broken:
            broken[row.id] = f"stacked on missing snapshot {by_id[row.parent_id].key}"
    for sid, detail in broken.items():
        note(Problem("missing-snapshot", by_id[sid].key, detail, repaired=repair))
    if repair and broken:
        _drop_snapshots(root, [by_id[sid] for sid in broken])
    with root.transaction() if repair else contextlib.nullcontext(db) as tx:
        live, _ = snapshot_keys_and_ids_in(tx)
        gone = CacheRecords.snapshots_named_in(tx) - live
        for key in sorted(gone):
            detail = "cache records name it, but no snapshot has this key"
            note(Problem("dangling-record", key, detail, repaired=repair))
        if repair:
            CacheRecords.forget_snapshots_in(tx, sorted(gone))
    records = len(CacheRecords(root).all())
    return len(rows), records


def _drop_snapshots(root: StateRoot, rows: list[SnapshotRow]) -> None:
    """Drop the rows of `rows` (children first) with the cache records that name their
    keys, unless another snapshotter's snapshot of the same key survives."""
    doomed = sorted(rows, key=lambda r: r.id, reverse=True)
    with root.transaction() as db:
        for row in doomed:
            UsageMemory.forget_snapshot_size_in(db, row.id)
            delete_snapshot_row_in(db, row.id)
        live, _ = snapshot_keys_and_ids_in(db)
        CacheRecords.forget_snapshots_in(db, sorted({r.key for r in doomed} - live))
    for row in doomed:
        root.discard(root.snapshots_dir / str(row.id))


def _check_images(images: ImageStore, note: ProblemCallback) -> int:
    content = images.content
    manifests = images.manifests_with_first_name()
    for manifest, name in manifests:
        label = parse_reference(name).familiar() if name else manifest
        if not content.has(manifest):
            note(
                Problem("image-incomplete", label, f"lacks its manifest {manifest}; {REPAIR_HINT}")
            )
            continue
        try:
            image = images.image(manifest)
        except StoreError as exc:
            note(Problem("image-incomplete", label, exc.message))
            continue
        for digest in (image.config_digest, *(layer.digest for layer in image.layers)):
            if not content.has(digest):
                note(
                    Problem(
                        "image-incomplete",
                        label,
                        f"lacks blob {digest}; load, import or pull it again",
                    )
                )
    return len(manifests)

"""Removing build cache: `strata prune`, and the automatic GC after builds.

Semantics follow BuildKit `cache/manager.go` (`prune`, `pruneOnce`) as buildx drives it
(`commands/prune.go`):

- without `all`, every record is a candidate except `internal`/`frontend` records and
  records shared with the image store (unpacked layers of stored images);
- a record still used by a running build or container is never removed, and a snapshot
  is removed only once no child snapshot needs it (children go first, in rounds, as
  BuildKit releases parents when their last child goes);
- `until` keeps records used within that duration; filters select by `id` (regular
  expression), `type`, `description`, `parents`, `inuse`, `mutable`, `shared`, `private`
  with `==`, `!=` or `~=` (containerd's filter syntax);
- with a `keep_storage` size, records are removed one at a time, least recently used
  first, until the unshared total is below it (BuildKit also weighs the usage count;
  strata only breaks ties with it).

Removing a snapshot removes, in one transaction, its row, the cache records that point
at it, its remembered checksums and layer rows, and its layer blobs that nothing else
holds; the files go after the commit. A prune killed at any point leaves a root whose
metadata only names complete things; the leftovers (a directory without a row) are swept
by the next prune.

## Not removing what a running build uses

Every build holds `build_lease(root)` (a shared lock) from before it looks up its first
cache record until its export is done. Prune and GC take the same lock exclusively:
`prune` waits for running builds (telling `on_wait`), `auto_gc` skips when a build is
running (the last build to finish collects). A build that starts while prune runs waits
for it. Cache-mount directories are additionally checked through their own locks, and
active snapshots through the mount table.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import math
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from strata import gotext
from strata.errors import UsageError
from strata.solver.records import CacheRecords
from strata.store.cachemounts import CacheMounts
from strata.store.content import ContentStore
from strata.store.root import StateRoot
from strata.store.usage import (
    BUILD_LOCK,
    UsageMemory,
    UsageRecord,
    build_lock_path,
    disk_usage,
)
from strata.worker.contenthash import DigestCache
from strata.worker.snapshots.storage import (
    delete_snapshot_row_in,
    leaf_snapshot_in,
    snapshot_keys_and_ids_in,
)

DEFAULT_BLOB_GRACE_SECONDS = 3600.0
"""Unreferenced blobs younger than this are kept: an image import that does not hold a
build lease may have written a blob it has not referenced yet."""

GC_BUDGET_ENV = "STRATA_GC_BUDGET"
DEFAULT_GC_PERCENT = 10
DEFAULT_GC_CAP = 10 * 10**9
"""Default GC budget: 10% of the file system holding the state root, at most 10 GB —
BuildKit's default reserved space (`cmd/buildkitd/config/gcpolicy.go`,
`DetectDefaultGCCap`, with its rounding)."""

WaitCallback = Callable[[str], None]
RemovedCallback = Callable[[UsageRecord], None]
WAITING_MESSAGE = "waiting for running builds to finish before pruning"


@dataclass(frozen=True)
class PruneReport:
    """What a prune removed, in removal order, and the bytes given back (records plus
    blobs nothing referenced)."""

    removed: list[UsageRecord] = field(default_factory=list)
    reclaimed: int = 0


# -- parsing what users type ---------------------------------------------------------------

def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration (`24h`, `1h30m`, `90s`, `1.5h`), as `time.ParseDuration`
    reads it, with its error texts."""
    return gotext.parse_go_duration(text) / 1e9


_SIZE_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """Bytes in a size as `--keep-storage` takes it (go-units `RAMInBytes`: `512mb`,
    `1GB`, `10g`, `1.5GiB`; the units are binary, the `b` optional, case ignored)."""
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    if text[sep] == " ":
        number, suffix = text[:sep], text[sep + 1 :]
    else:
        number, suffix = text[: sep + 1], text[sep + 1 :]
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{number}": invalid syntax') from None
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"invalid size: '{text}'")
    if not suffix:
        return int(value)
    lowered = suffix.lower()
    if len(lowered) > 3:
        raise ValueError(f"invalid suffix: '{lowered}'")
    if lowered == "b":
        return int(value)
    multiplier = _SIZE_UNITS.get(lowered[0])
    if (
        multiplier is None
        or (len(lowered) == 2 and lowered[1] != "b")
        or (len(lowered) == 3 and lowered[1:] != "ib")
    ):
        raise ValueError(f"invalid suffix: '{lowered}'")
    return int(value * multiplier)


@dataclass(frozen=True)
class Selector:
    """One containerd filter term: `key==value`, `key!=value`, `key~=regexp`, `key`."""

    key: str
    operator: str
    value: str = ""

    def matches(self, record: UsageRecord) -> bool:
        value, present = record_field(record, self.key)
        if self.operator == "":
            return present
        if self.operator == "==":
            return present and value == self.value
        if self.operator == "!=":
            return value != self.value
        return re.search(self.value, value) is not None


@dataclass(frozen=True)
class PruneFilters:
    """Parsed `--filter` values: the `until` age (seconds) and the selectors (all must
    match)."""

    until: float | None = None
    selectors: tuple[Selector, ...] = ()

    def matches(self, record: UsageRecord) -> bool:
        return all(s.matches(record) for s in self.selectors)


def record_field(record: UsageRecord, key: str) -> tuple[str, bool]:
    """A record's field for filters, as BuildKit's `adaptUsageInfo` exposes it."""
    if key == "id":
        return record.id, bool(record.id)
    if key == "parents":
        return ";".join(record.parents), bool(record.parents)
    if key == "description":
        return record.description, bool(record.description)
    if key == "type":
        return record.type, True
    if key == "inuse":
        return "", record.in_use
    if key == "mutable":
        return "", record.mutable
    if key == "immutable":
        return "", not record.mutable
    if key == "shared":
        return "", record.shared
    if key == "private":
        return "", not record.shared
    return "", False


def parse_filters(items: Iterable[str]) -> PruneFilters:
    """`--filter KEY=VALUE` values, read as buildx reads them (`toBuildkitPruneInfo`):
    `until` (or its old name `unused-for`) is a Go duration, `id` a regular expression,
    `KEY!=V` a negation, anything else an exact match."""
    values: dict[str, list[str]] = {}
    for item in items:
        if item == "":
            continue
        if "=" not in item:
            raise UsageError("bad format of filter (expected name=value)", option="--filter")
        name, _, value = item.partition("=")
        values.setdefault(name.strip().lower(), []).append(value.strip())
    if "until" in values and "unused-for" in values:
        raise UsageError('conflicting filters "until" and "unused-for"', option="--filter")
    until_key = "unused-for" if "unused-for" in values else "until"
    until: float | None = None
    selectors: list[Selector] = []
    for key, given in values.items():
        if len(given) > 1:
            raise UsageError(f'"{key}" filter expects only one value', option="--filter")
        value = given[0]
        if key == until_key:
            try:
                until = parse_go_duration(value)
            except ValueError as exc:
                raise UsageError(
                    f"\"{key}\" filter expects a duration (e.g., '24h'): {exc}", option="--filter"
                ) from None
            continue
        if key == "id":
            selectors.append(_selector(key, "~=", value))
        elif key.endswith("!"):
            selectors.append(_selector(key[:-1], "!=", value))
        elif key.endswith("~"):
            selectors.append(_selector(key[:-1], "~=", value))
        else:
            selectors.append(_selector(key, "==", value))
    return PruneFilters(until=until, selectors=tuple(selectors))


def _selector(key: str, operator: str, value: str) -> Selector:
    if operator == "~=":
        try:
            re.compile(value)
        except re.error as exc:
            raise UsageError(f"invalid filter regular expression {value!r}: {exc}") from None
    return Selector(key, operator, value)


# -- the lock ----------------------------------------------------------------------------------


@contextlib.contextmanager
def build_lease(root: StateRoot) -> Iterator[None]:
    """Held (shared) by every build for its whole run; prune waits for it, GC skips."""
    with root.lock(BUILD_LOCK, shared=True):
        yield


@contextlib.contextmanager
def exclusive_cache_access(
    root: StateRoot, *, wait: bool, on_wait: WaitCallback | None = None
) -> Iterator[bool]:
    """The build lock, exclusively. Yields True when held; with `wait=False` yields
    False at once if a build is running. Must not be entered while this process holds
    a `build_lease` (flock would wait for ourselves)."""
    fd = os.open(build_lock_path(root), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            if on_wait is not None:
                on_wait(WAITING_MESSAGE)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- prune ---------------------------------------------------------------------------------------


def prune(
    root: StateRoot,
    *,
    all: bool = False,
    filters: PruneFilters | Sequence[str] = (),
    keep_storage: int | None = None,
    until: float | None = None,
    reserved_space: int | None = None,
    max_used_space: int | None = None,
    min_free_space: int | None = None,
    on_wait: WaitCallback | None = None,
    on_removed: RemovedCallback | None = None,
    blob_grace: float = DEFAULT_BLOB_GRACE_SECONDS,
) -> PruneReport:
    """Remove build cache as `docker buildx prune` does (see the module docstring).

    `filters` are parsed `PruneFilters` or raw `KEY=VALUE` strings; `until` (seconds)
    overrides a filter's. `keep_storage` is `reserved_space` by its old name; with any
    of the three sizes, records go least recently used first until the unshared total
    is below the target BuildKit derives from them (`calculateKeepBytes`). Waits for
    running builds to finish first; `on_removed` hears of each record as it goes."""
    parsed = filters if isinstance(filters, PruneFilters) else parse_filters(filters)
    if until is not None:
        parsed = PruneFilters(until=until, selectors=parsed.selectors)
    if keep_storage is not None:
        reserved_space = keep_storage
    target = SpaceTarget(reserved_space, max_used_space, min_free_space)
    with exclusive_cache_access(root, wait=True, on_wait=on_wait):
        return _prune_locked(
            root,
            all=all,
            filters=parsed,
            target=target,
            blob_grace=blob_grace,
            on_removed=on_removed,
        )


@dataclass(frozen=True)
class SpaceTarget:
    """`--reserved-space`, `--max-used-space`, `--min-free-space` (None: not given)."""

    reserved: int | None = None
    max_used: int | None = None
    min_free: int | None = None

    def keep_bytes(self, total: int, free: int) -> int | None:
        """How many unshared bytes may stay (None: no size limit), as BuildKit's
        `calculateKeepBytes` combines the three."""
        if self.reserved is None and self.max_used is None and self.min_free is None:
            return None
        keep = self.max_used or 0
        min_free = self.min_free or 0
        excess = min_free - free
        if min_free and excess > 0:
            keep = total - excess if keep == 0 else min(keep, total - excess)
        elif min_free and keep == 0:
            keep = total
        return max(keep, self.reserved or 0)


def free_space(root: StateRoot) -> int:
    """Bytes available to us on the state root's file system."""
    vfs = os.statvfs(root.path)
    return vfs.f_bavail * vfs.f_frsize


def _candidate(
    record: UsageRecord,
    *,
    all: bool,
    filters: PruneFilters,
    cutoff: float | None,
    children: Mapping[str, int],
) -> bool:
    if record.in_use or children.get(record.id, 0) > 0:
        return False
    if not all and (record.type in ("internal", "frontend") or record.shared):
        return False
    if cutoff is not None and record.last_used is not None and record.last_used > cutoff:
        return False
    return filters.matches(record)


def _lru_order(record: UsageRecord) -> tuple[float, int]:
    """Sort key: least recently used first (never used before anything), then the
    least used (BuildKit weighs both; strata breaks ties with the count)."""
    last = record.last_used if record.last_used is not None else -math.inf
    return (last, record.usage_count)


def _prune_locked(
    root: StateRoot,
    *,
    all: bool,
    filters: PruneFilters,
    target: SpaceTarget,
    blob_grace: float,
    on_removed: RemovedCallback | None = None,
    count_shared: bool = False,
) -> PruneReport:
    content = ContentStore(root)
    records = disk_usage(root, assume_idle=True)
    remaining = {r.id: r for r in records}
    children: dict[str, int] = {}
    for record in records:
        for parent in record.parents:
            children[parent] = children.get(parent, 0) + 1
    cutoff = time.time() - filters.until if filters.until else None
    total = sum(r.size for r in records if count_shared or not r.shared)
    keep_storage = target.keep_bytes(total, free_space(root) if target.min_free else 0)
    removed: list[UsageRecord] = []
    reclaimed = 0

    def eligible(record: UsageRecord) -> bool:
        return _candidate(record, all=all, filters=filters, cutoff=cutoff, children=children)

    # Least recently used first; a parent joins the queue once its last child is gone
    # (BuildKit gets there by repeating `pruneOnce`; a queue keeps this linear).
    queue = [(_lru_order(r), r.id) for r in records if eligible(r)]
    heapq.heapify(queue)
    while queue:
        if keep_storage is not None and total < keep_storage:
            break
        _, record_id = heapq.heappop(queue)
        picked = remaining.pop(record_id, None)
        if picked is None or not _remove(root, content, picked):
            continue
        record = picked
        removed.append(record)
        if on_removed is not None:
            on_removed(record)
        reclaimed += record.size
        total -= record.size
        for parent_id in record.parents:
            children[parent_id] -= 1
            parent_record = remaining.get(parent_id)
            if parent_record is not None and eligible(parent_record):
                heapq.heappush(queue, (_lru_order(parent_record), parent_id))
    unfiltered = not filters.selectors and filters.until is None and keep_storage is None
    reclaimed += sweep_leftovers(
        root, content, forget_empty_results=unfiltered, blob_grace=blob_grace
    )
    return PruneReport(removed=removed, reclaimed=reclaimed)


def _remove(root: StateRoot, content: ContentStore, record: UsageRecord) -> bool:
    kind = record.source.kind
    if kind == "snapshot":
        return remove_snapshot(root, content, record.source.ref)
    if kind == "cachemount":
        return remove_cache_mount(root, record.source.ref)
    return forget_digest_cache(root)


def remove_snapshot(root: StateRoot, content: ContentStore, snapshot_id: int) -> bool:
    """Remove one snapshot that has no children, with every row that refers to it, in
    one transaction; then its files. False if it is gone or has children now."""
    with root.transaction() as db:
        leaf = leaf_snapshot_in(db, snapshot_id)
        if leaf is None:
            return False
        key, twin = leaf
        digests: list[str] = []
        if not twin:
            digests = CacheRecords.forget_snapshots_in(db, [key])
        UsageMemory.forget_snapshot_size_in(db, snapshot_id)
        delete_snapshot_row_in(db, snapshot_id)
        _delete_orphan_blobs(db, content, digests)
    root.discard(root.snapshots_dir / str(snapshot_id))
    return True


def _delete_orphan_blobs(
    db: sqlite3.Connection, content: ContentStore, digests: Iterable[str]
) -> list[str]:
    """Of `digests`, delete the blobs no image holds and no snapshot remembers."""
    orphans = [d for d in dict.fromkeys(digests) if not CacheRecords.holds_layer_in(db, d)]
    return content.delete_unreferenced_in(db, orphans)


def remove_cache_mount(root: StateRoot, number: int) -> bool:
    """Remove one cache-mount directory unless a RUN holds it right now."""
    return CacheMounts(root).remove(number)


def forget_digest_cache(root: StateRoot) -> bool:
    """Drop every remembered context file digest (the next build hashes again)."""
    DigestCache(root).forget_all()
    return True


def sweep_leftovers(
    root: StateRoot,
    content: ContentStore,
    *,
    forget_empty_results: bool,
    blob_grace: float = DEFAULT_BLOB_GRACE_SECONDS,
) -> int:
    """Clean what no record names (call with the build lock held exclusively): rows of
    the solver about snapshots that are gone, directories without a row, half-removed
    directories, and blobs no image, record or snapshot holds. Returns the blob bytes
    freed. `forget_empty_results` also drops results that have no snapshot (an empty
    `FROM scratch` step), which only an unfiltered prune should do."""
    with root.transaction() as db:
        live, snapshot_ids = snapshot_keys_and_ids_in(db)
        stale = CacheRecords.snapshots_named_in(db) - live
        digests = CacheRecords.forget_snapshots_in(db, sorted(stale))
        if forget_empty_results:
            CacheRecords.forget_empty_results_in(db)
        UsageMemory.keep_sizes_of_in(db, snapshot_ids)
        _delete_orphan_blobs(db, content, digests)
        mount_ids = CacheMounts(root, reap=False).numbers()
    _sweep_directory(root, root.snapshots_dir, {str(i) for i in snapshot_ids})
    _sweep_directory(root, root.cachemounts_dir, {str(n) for n in mount_ids})
    return _sweep_blobs(root, content, blob_grace)


def _sweep_directory(root: StateRoot, directory: Path, keep: set[str]) -> None:
    """Delete numbered directories no row names, and trash whose remover is gone."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        if name.isdigit() and name not in keep:
            shutil.rmtree(directory / name, ignore_errors=True)
    root.remove_dead_trash(directory)


def _sweep_blobs(root: StateRoot, content: ContentStore, blob_grace: float) -> int:
    """Delete blobs nothing holds (no image, no remembered layer, no live lease) older than
    the grace, through the content store's own sweep; returns the bytes freed."""
    sizes: dict[str, int] = {}
    try:
        with os.scandir(root.blobs_dir) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    sizes[f"sha256:{entry.name}"] = entry.stat().st_blocks * 512
    except FileNotFoundError:
        return 0
    return sum(sizes.get(digest, 0) for digest in content.sweep_orphans(blob_grace))


# -- automatic GC ------------------------------------------------------------------------------


def default_gc_budget(root: StateRoot) -> int:
    """10% of the state root's file system (rounded up as BuildKit rounds), at most 10 GB."""
    vfs = os.statvfs(root.path)
    total = vfs.f_blocks * vfs.f_frsize
    if total == 0:
        return 2 * 10**9
    share = total * DEFAULT_GC_PERCENT // 100
    rounded = (share // (1 << 30) + 1) * 10**9
    return min(rounded, DEFAULT_GC_CAP)


def gc_budget(
    root: StateRoot, flag: str | None = None, environ: Mapping[str, str] | None = None
) -> int | None:
    """The budget after a build: `--gc-budget`, else `$STRATA_GC_BUDGET`, else the
    default. `off` (or `none`) disables the GC (None)."""
    env = os.environ if environ is None else environ
    text = flag if flag is not None else env.get(GC_BUDGET_ENV)
    if text is None or text.strip() == "":
        return default_gc_budget(root)
    if text.strip().lower() in ("off", "none", "false"):
        return None
    try:
        return parse_size(text.strip())
    except ValueError as exc:
        option = "--gc-budget" if flag is not None else GC_BUDGET_ENV
        raise UsageError(f"invalid GC budget {text!r}: {exc}", option=option) from None


def auto_gc(
    root: StateRoot, budget_bytes: int, *, blob_grace: float = DEFAULT_BLOB_GRACE_SECONDS
) -> PruneReport | None:
    """Bring the build cache under `budget_bytes`, least recently used first.

    Mirrors the last two rules of BuildKit's default GC policy: first everything but
    internal and image-shared records, then, if that was not enough, those too. Unlike
    `prune --reserved-space`, the budget counts image-shared layers: in strata an
    unpacked base image is a copy of the image's blobs, and can be unpacked again.
    Returns None without doing anything while a build is running (call it after the
    build has released its lease)."""
    with exclusive_cache_access(root, wait=False) as held:
        if not held:
            return None
        if _total(root) <= budget_bytes:
            return PruneReport()
        removed: list[UsageRecord] = []
        reclaimed = 0
        for everything in (False, True):  # the two rules, in BuildKit's order
            report = _prune_locked(
                root,
                all=everything,
                filters=PruneFilters(),
                target=SpaceTarget(reserved=budget_bytes),
                blob_grace=blob_grace,
                count_shared=True,
            )
            removed += report.removed
            reclaimed += report.reclaimed
            if _total(root) < budget_bytes:
                break
        return PruneReport(removed=removed, reclaimed=reclaimed)


def _total(root: StateRoot) -> int:
    return sum(r.size for r in disk_usage(root, assume_idle=True))

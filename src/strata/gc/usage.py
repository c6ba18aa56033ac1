"""Disk usage of the build cache: one row per thing `strata prune` can remove.

BuildKit's `du` lists cache records (`cache/manager.go` `DiskUsage`); strata's records are:

- every snapshot (`regular`, or `source.git.checkout` for a fetched git tree, or
  `internal` for helper trees such as the cache-mount permission directory): its own
  directory under `snapshots/<id>` plus the layer blobs remembered for it
  (`solver_layers`) that no image holds. Snapshots chain to their parent, so a child's
  `parents` names its parent's record. Base-image layers unpacked from an image that is
  still in the image store are `shared` with it (BuildKit's `PruneRefChecker`);
- every cache-mount directory (`exec.cachemount`, mutable);
- the context digest cache (`source.local`): remembered file digests of build contexts.

Each table is read through its owner (`store/schema.py` draws them): the solver's
`CacheRecords` and `StepMemory`, the worker's `DigestCache` and snapshot store, the
store's `CacheMounts`, `ContentStore`, `ImageStore` and `UsageMemory`. Committed
snapshots never change, so their measured size is remembered (`UsageMemory`; ids are
never reused).

Sizes are disk usage (allocated blocks, hard links counted once), as containerd's
snapshotter `Usage` measures them: that is what removing the record gives back.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from strata.solver.explain import StepMemory
from strata.solver.records import CacheRecords
from strata.store.cachemounts import CacheMounts
from strata.store.content import ContentStore
from strata.store.root import StateRoot
from strata.store.usage import UsageMemory
from strata.worker.contenthash import DigestCache
from strata.worker.snapshots.storage import snapshot_rows

BUILD_LOCK = "build-in-use"
PROBE_LOCK = "lock-probe"
"""Held by `lock_in_use` while it probes, so that probers never overlap."""
"""The lock every build holds shared for its whole run (`prune.build_lease`)."""

RecordType = Literal[
    "regular", "exec.cachemount", "source.local", "source.git.checkout", "internal", "frontend"
]
SourceKind = Literal["snapshot", "cachemount", "digestcache"]

INTERNAL_PREFIX = "[internal]"
GIT_KINDS = frozenset({"GitSource"})


@dataclass(frozen=True)
class RecordSource:
    """What a usage row stands for: a snapshot (`ref` = its row id), a cache-mount
    directory (`ref` = its number) or the digest cache (`ref` = 0)."""

    kind: SourceKind
    ref: int


@dataclass(frozen=True)
class UsageRecord:
    """One row of `strata du`, with the fields buildx prints."""

    id: str
    type: RecordType
    size: int
    reclaimable: bool
    shared: bool
    in_use: bool
    mutable: bool
    created: float | None
    last_used: float | None
    description: str
    usage_count: int
    parents: tuple[str, ...]
    source: RecordSource


# -- identities ------------------------------------------------------------------------------

_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def record_id(source: RecordSource, snapshotter: str = "") -> str:
    """A stable 25-character id in BuildKit's style (`--filter id=` can select it)."""
    text = f"{source.kind}:{snapshotter}:{source.ref}"
    number = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    chars = []
    for _ in range(25):
        number, digit = divmod(number, 36)
        chars.append(_ID_ALPHABET[digit])
    return "".join(chars)


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """OCI image-spec config.md ChainID after each layer (the unpacked snapshots' names)."""
    chain: list[str] = []
    for diff_id in diff_ids:
        if not chain:
            chain.append(diff_id)
        else:
            text = f"{chain[-1]} {diff_id}"
            chain.append("sha256:" + hashlib.sha256(text.encode()).hexdigest())
    return chain


# -- measuring ---------------------------------------------------------------------------------


def disk_usage_of(path: Path) -> int:
    """Bytes allocated below `path` (itself excluded), each inode counted once."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [str(path)]
    while stack:
        directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                    ident = (st.st_dev, st.st_ino)
                    if ident in seen:
                        continue
                    seen.add(ident)
                total += st.st_blocks * 512
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
    return total


def lock_in_use(root: StateRoot, path: Path) -> bool:
    """Whether some process holds a flock on `path`, shared or exclusive. Build leases
    and shared cache mounts hold theirs shared, which only an exclusive probe notices
    (`root.lock_held`'s shared probe is for locks always held exclusively). Probers take
    turns under one root lock, so two du or prune runs never take each other's probe
    for a user. Never creates `path`: a missing file is held by nobody."""
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except OSError:
        return False
    with fh, root.lock(PROBE_LOCK):
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def build_lock_path(root: StateRoot) -> Path:
    """The file `root.lock(BUILD_LOCK)` locks (same naming as `StateRoot.lock`)."""
    return root.locks_dir / f"{BUILD_LOCK}.lock"


def builds_running(root: StateRoot) -> bool:
    """Whether some process holds a build lease on this root right now."""
    return lock_in_use(root, build_lock_path(root))


def _mount_table() -> str:
    try:
        with open("/proc/self/mountinfo") as fh:
            return fh.read()
    except OSError:
        return ""


def cache_mount_description(cache_id: str, target: str | None, args: list[str] | None) -> str:
    """BuildKit's text for a cache mount record; only the id when nothing else is known."""
    quoted = json.dumps(cache_id, ensure_ascii=False)
    if target is None or args is None:
        return f"cached mount with id {quoted}"
    text = f"cached mount {target} from exec {' '.join(args)}"
    if cache_id != target:
        text += f" with id {quoted}"
    return text


# -- the listing ---------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A record while it is assembled (parents' in-use and last-used depend on children)."""

    source: RecordSource
    snapshotter: str
    type: RecordType
    size: int
    shared: bool
    in_use: bool
    mutable: bool
    created: float | None
    last_used: float | None
    description: str
    usage_count: int
    parent: int | None = None


def disk_usage(root: StateRoot, *, assume_idle: bool = False) -> list[UsageRecord]:
    """Every build-cache record of `root`, oldest first.

    A record is `in_use` when a running build or container holds it: an active snapshot
    or view whose owning process lives (or that was disowned for a kept container), or
    any while a build runs or while it is mounted; a committed snapshot below one; a
    cache-mount directory whose lock is held. `assume_idle` is for a caller that holds
    the build lock exclusively (prune): then no build is running by construction."""
    running = False if assume_idle else builds_running(root)
    drafts: list[_Draft] = []
    drafts.extend(_snapshot_drafts(root, running))
    drafts.extend(_cache_mount_drafts(root))
    drafts.extend(_digest_cache_drafts(root, running))
    return _finish(drafts)


def _snapshot_drafts(root: StateRoot, running: bool) -> list[_Draft]:
    rows = snapshot_rows(root.connect())
    if not rows:
        return []
    memory = UsageMemory(root)
    solver = CacheRecords(root)
    records = solver.results_by_snapshot()
    uses = StepMemory(root).key_uses()
    blob_sizes = _private_layer_blob_sizes(root, solver)
    base_images = _base_image_layers(root)
    known_sizes = memory.snapshot_sizes()
    mounts = _mount_table() if not running else ""
    new_sizes: list[tuple[int, int]] = []
    drafts: list[_Draft] = []
    for row in rows:
        directory = root.snapshots_dir / str(row.id)
        committed = row.kind == "committed"
        if committed and row.id in known_sizes:
            size = known_sizes[row.id]
        else:
            size = disk_usage_of(directory)
            if committed:
                new_sizes.append((row.id, size))
        size += blob_sizes.pop(row.key, 0)
        own = records.get(row.key, [])
        kind_names = {r.kind for r in own}
        description = own[-1].description if own else ""
        last_used = max((r.last_used for r in own), default=row.created)
        count = sum(uses.get(r.key, 0) for r in own) or max(len(own), 1)
        record_type: RecordType = "regular"
        if kind_names & GIT_KINDS:
            record_type = "source.git.checkout"
        elif description.startswith(INTERNAL_PREFIX):
            record_type = "internal"
        image_name = base_images.get(row.key)
        shared = image_name is not None
        if not description:
            if image_name is not None:
                description = f"pulled from {image_name}"
            elif not committed:
                description = f"{row.kind} snapshot {row.key}"
        in_use = False
        if not committed:
            in_use = (
                running
                or f"{directory}/" in mounts
                or row.owner is None  # disowned: a kept `strata run` container
                or root.owner_alive(row.owner)
            )
        drafts.append(
            _Draft(
                source=RecordSource("snapshot", row.id),
                snapshotter=row.snapshotter,
                type=record_type,
                size=size,
                shared=shared,
                in_use=in_use,
                mutable=not committed,
                created=row.created,
                last_used=last_used,
                description=description,
                usage_count=count,
                parent=row.parent_id,
            )
        )
    if new_sizes:
        memory.remember_snapshot_sizes(new_sizes)
    return drafts


def _private_layer_blob_sizes(root: StateRoot, solver: CacheRecords) -> dict[str, int]:
    """snapshot key -> bytes of its remembered layer blobs that no image holds (each
    blob counted for one snapshot only)."""
    layers = solver.layer_digests_by_snapshot()
    if not layers:
        return {}
    held = ContentStore(root).referenced_digests()
    out: dict[str, int] = {}
    counted: set[str] = set()
    for snapshot, digest in layers:
        if digest in held or digest in counted:
            continue
        counted.add(digest)
        try:
            size = (root.blobs_dir / digest.removeprefix("sha256:")).stat().st_blocks * 512
        except OSError:
            continue
        out[snapshot] = out.get(snapshot, 0) + size
    return out


def _base_image_layers(root: StateRoot) -> dict[str, str]:
    """chain id -> the name of a stored image it is a layer of (`shared` records)."""
    from strata.errors import StrataError
    from strata.store.images import ImageStore

    store = ImageStore(root)
    names: dict[str, str] = {}
    for manifest, name in store.manifests_with_first_name():
        try:
            image = store.image(manifest)
        except (StrataError, OSError, ValueError, KeyError):
            continue
        shown = f"{name}@{manifest}" if name else manifest
        for chain_id in chain_ids(layer.diff_id for layer in image.layers):
            names.setdefault(chain_id, shown)
    return names


def _cache_mount_drafts(root: StateRoot) -> list[_Draft]:
    directories = CacheMounts(root, reap=False).directories()
    if not directories:
        return []
    described = UsageMemory(root).cache_mount_descriptions()
    drafts: list[_Draft] = []
    for cache in directories:
        directory = root.cachemounts_dir / str(cache.number)
        target, args = described.get(cache.cache_id, (None, None))
        drafts.append(
            _Draft(
                source=RecordSource("cachemount", cache.number),
                snapshotter="",
                type="exec.cachemount",
                size=disk_usage_of(directory / "data"),
                shared=False,
                in_use=lock_in_use(root, directory / "lock"),
                mutable=True,
                created=cache.created,
                last_used=cache.last_used,
                description=cache_mount_description(cache.cache_id, target, args),
                usage_count=1,
            )
        )
    return drafts


def _digest_cache_drafts(root: StateRoot, running: bool) -> list[_Draft]:
    """The remembered context file digests, as one `source.local` record (its rows'
    bytes; the database file shrinks only on VACUUM)."""
    cache = DigestCache(root)
    count, size = cache.usage()
    if not count:
        return []
    created, last_used = cache.used()
    return [
        _Draft(
            source=RecordSource("digestcache", 0),
            snapshotter="",
            type="source.local",
            size=size,
            shared=False,
            in_use=running,
            mutable=True,
            created=created,
            last_used=last_used,
            description=f"local source for context ({count} file digests)",
            usage_count=1,
        )
    ]


def _finish(drafts: list[_Draft]) -> list[UsageRecord]:
    """Propagate in-use and last-used from children to parents, then freeze the rows."""
    snapshots: Mapping[int, _Draft] = {
        d.source.ref: d for d in drafts if d.source.kind == "snapshot"
    }
    # Children have larger ids than their parents (a parent exists before its child),
    # so one pass from the newest down carries facts to the root.
    for ref in sorted(snapshots, reverse=True):
        draft = snapshots[ref]
        if draft.parent is None or draft.parent not in snapshots:
            continue
        parent = snapshots[draft.parent]
        parent.in_use = parent.in_use or draft.in_use
        if draft.shared:
            parent.shared = True
        if draft.last_used is not None and (
            parent.last_used is None or draft.last_used > parent.last_used
        ):
            parent.last_used = draft.last_used
    out: list[UsageRecord] = []
    for draft in drafts:
        parents: tuple[str, ...] = ()
        if draft.parent is not None and draft.parent in snapshots:
            parent = snapshots[draft.parent]
            parents = (record_id(parent.source, parent.snapshotter),)
        out.append(
            UsageRecord(
                id=record_id(draft.source, draft.snapshotter),
                type=draft.type,
                size=draft.size,
                reclaimable=not draft.in_use,
                shared=draft.shared,
                in_use=draft.in_use,
                mutable=draft.mutable,
                created=draft.created,
                last_used=draft.last_used,
                description=draft.description,
                usage_count=draft.usage_count,
                parents=parents,
                source=draft.source,
            )
        )
    out.sort(key=lambda r: (r.created if r.created is not None else 0.0, r.id))
    return out

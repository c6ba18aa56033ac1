"""The whole SQLite schema of a state root (`metadata.db`), its version and its migrations.

As containerd draws its metadata database in `core/metadata/buckets.go` and keeps the
steps between versions in `migrations.go`, this module is the one place where every
table is defined. Each table has exactly one owning class, in the module named beside
it; only that module writes SQL naming the table (`tests/unit/test_schema.py` scans
`src/strata` for it), and everyone else, prune, du and GC included, calls the owner's
methods. Methods ending in `_in` take the caller's open transaction, so that a change
spanning several owners (prune removing a snapshot with its cache records, sizes and
blobs) still lands as one transaction.

    metadata.db   (PRAGMA user_version = SCHEMA_VERSION)
    │
    ├── content_blobs            ContentStore            store/content.py
    │     digest PK, size, created, last_used            one row per blobs/sha256/<hex>
    ├── content_refs             ContentStore            store/content.py
    │     digest ─▶ content_blobs, owner                 PK (digest, owner); by owner
    │     owner = "image:<manifest>" | "lease:<tmp owner dir>/<id>"
    ├── content_layers           ContentStore            store/content.py
    │     digest PK ─▶ content_blobs, diff_id, compression, media_type,
    │     uncompressed_size                              by (diff_id, compression)
    │
    ├── images                   ImageStore              store/images.py
    │     manifest PK ─▶ content_blobs, config ─▶ content_blobs, created, size, added
    ├── image_names              ImageStore              store/images.py
    │     name PK ("docker.io/library/x:tag"), manifest ─▶ images, tagged
    │
    ├── cache_mounts             CacheMounts             store/cachemounts.py
    │     n PK AUTOINCREMENT (dir cachemounts/<n>), id, base_key, created, last_used
    ├── cache_mount_descriptions UsageMemory             store/usage.py
    │     id PK ─▶ cache_mounts.id, target, args (JSON), updated
    ├── usage_snapshot_sizes     UsageMemory             store/usage.py
    │     snapshot_id PK ─▶ snapshots.id, size           measured once per committed snapshot
    │
    ├── snapshots                SnapshotStore           worker/snapshots/storage.py
    │     id PK AUTOINCREMENT (dir snapshots/<id>), snapshotter, key, parent_id ─▶ snapshots,
    │     kind (active|view|committed), created, size, owner (tmp owner dir; NULL when
    │     committed or disowned)                         UNIQUE (snapshotter, key); by parent
    ├── snapshotter_probe        remember_probe()        worker/snapshots/storage.py
    │     kernel PK ("<release> uid=<n>"), overlay (0|1)
    │
    ├── solver_cache             CacheRecords            solver/records.py
    │     key PK (cache key), snapshot ─▶ snapshots.key (NULL: empty result), kind,
    │     created, last_used, description, components (JSON)         by snapshot
    ├── solver_checksums         CacheRecords            solver/records.py
    │     snapshot ─▶ snapshots.key, selector, checksum  PK (snapshot, selector)
    ├── solver_layers            CacheRecords            solver/records.py
    │     snapshot ─▶ snapshots.key, compression, diff_id, digest ─▶ content_blobs,
    │     media_type, size, uncompressed_size            PK (snapshot, compression)
    │     (a blob named here is held: no sweep deletes it)
    ├── solver_steps             StepMemory              solver/explain.py
    │     step_id PK, key ─▶ solver_cache.key (may be pruned), components (JSON), built_at
    ├── solver_key_uses          StepMemory              solver/explain.py
    │     key PK ─▶ solver_cache.key, uses, last_used
    │
    ├── contenthash_files        DigestCache             worker/contenthash.py
    │     path PK (bytes), dev, ino, size, mtime_ns, ctime_ns, content, xattrs
    │                                                    WITHOUT ROWID
    ├── contenthash_usage        DigestCache             worker/contenthash.py
    │     id PK (always 1), created, last_used           when the remembered digests were
    │                                                    first and last used (du, prune until=)
    │
    ├── registry_pulls           PulledNames             registry/pull.py
    │     name ("docker.io/library/x:tag"), platform, digest (what the name resolved to:
    │     index or manifest), manifest ─▶ content_blobs, resolved     PK (name, platform)
    │     (its index, manifest and config are held by content_refs owner "pull:<name>@<platform>")
    ├── blob_sources             BlobSources             registry/sources.py
    │     digest, source ("<domain>/<path>": a repository known to hold the blob), seen
    │                                                    PK (digest, source)
    │
    ├── copy_manifests           CopyManifests           solver/copies.py
    │     snapshot PK ─▶ snapshots.key, lineage (op, parent, context), created,
    │     files (zlib JSON: dest path ─▶ source stamp)      by lineage
    └── schema_migrations        migrate()               store/schema.py
          version PK, strata (the strata version that applied it), applied

The arrows are by value: SQLite enforces none of them except `snapshots.parent_id`.
Rows that point at something gone are cleaned by their owner when prune asks
(`CacheRecords.forget_snapshots_in`, `UsageMemory.keep_sizes_of_in`, ...).

## Versions

`PRAGMA user_version` holds the version a root's tables have. Version 0 is a root made
by strata 0.1.0 before this module existed: its modules created their tables lazily, so
it has any subset of them (an empty database, or only the image tables after an
`import`), and `snapshots` may lack the `owner` column that release added by hand.

`StateRoot.open` calls `migrate`: a root at `SCHEMA_VERSION` costs one `PRAGMA` read;
an older one gets every missing migration in one `BEGIN IMMEDIATE` transaction (SQLite
DDL is transactional, so a process killed halfway leaves the old version intact, and
concurrent openers wait and then find the work done); a newer one is refused with a
`StoreError` naming the strata that wrote it. A fresh root is version 0 with no tables,
so it takes the same path as an old one.

Adding a column or table later: append a `Migration(SCHEMA_VERSION + 1, ...)` whose
`apply` makes the change (ALTER TABLE, CREATE TABLE, a data copy), bump
`SCHEMA_VERSION`, update the drawing and the owner. Never edit an applied migration:
roots in the field already ran it. `tests/unit/test_schema.py` checks that a fresh root
and the version-0 fixture root end with identical schemas.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from strata.errors import StoreError

SCHEMA_VERSION = 5


@dataclass(frozen=True)
class Table:
    """One table of the drawing: its name, owning class and the module that owns it."""

    name: str
    owner: str
    module: str
    """Path of the owning module below `src/`, e.g. `strata/store/content.py`."""


TABLES: tuple[Table, ...] = (
    Table("content_blobs", "ContentStore", "strata/store/content.py"),
    Table("content_refs", "ContentStore", "strata/store/content.py"),
    Table("content_layers", "ContentStore", "strata/store/content.py"),
    Table("images", "ImageStore", "strata/store/images.py"),
    Table("image_names", "ImageStore", "strata/store/images.py"),
    Table("cache_mounts", "CacheMounts", "strata/store/cachemounts.py"),
    Table("cache_mount_descriptions", "UsageMemory", "strata/store/usage.py"),
    Table("usage_snapshot_sizes", "UsageMemory", "strata/store/usage.py"),
    Table("snapshots", "SnapshotStore", "strata/worker/snapshots/storage.py"),
    Table("snapshotter_probe", "remember_probe", "strata/worker/snapshots/storage.py"),
    Table("solver_cache", "CacheRecords", "strata/solver/records.py"),
    Table("solver_checksums", "CacheRecords", "strata/solver/records.py"),
    Table("solver_layers", "CacheRecords", "strata/solver/records.py"),
    Table("solver_steps", "StepMemory", "strata/solver/explain.py"),
    Table("solver_key_uses", "StepMemory", "strata/solver/explain.py"),
    Table("contenthash_files", "DigestCache", "strata/worker/contenthash.py"),
    Table("contenthash_usage", "DigestCache", "strata/worker/contenthash.py"),
    Table("registry_pulls", "PulledNames", "strata/registry/pull.py"),
    Table("blob_sources", "BlobSources", "strata/registry/sources.py"),
    Table("copy_manifests", "CopyManifests", "strata/solver/copies.py"),
    Table("schema_migrations", "migrate", "strata/store/schema.py"),
)


# -- version 1 -----------------------------------------------------------------------------
# The tables as strata 0.1.0 created them lazily, word for word (each module's
# `CREATE ... IF NOT EXISTS`), so that a version-0 root keeps the tables it has and gains
# the ones it lacks. Frozen: see "Versions" above.

_V1_CONTENT = (
    """CREATE TABLE IF NOT EXISTS content_blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    last_used REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS content_refs (
    digest TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (digest, owner)
)""",
    "CREATE INDEX IF NOT EXISTS content_refs_by_owner ON content_refs(owner)",
    """CREATE TABLE IF NOT EXISTS content_layers (
    digest TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    compression TEXT NOT NULL,
    media_type TEXT NOT NULL,
    uncompressed_size INTEGER NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS content_layers_by_diff ON content_layers(diff_id, compression)",
)

_V1_IMAGES = (
    """CREATE TABLE IF NOT EXISTS images (
    manifest TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created TEXT,
    size INTEGER NOT NULL,
    added REAL NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS images_by_config ON images(config)",
    """CREATE TABLE IF NOT EXISTS image_names (
    name TEXT PRIMARY KEY,
    manifest TEXT NOT NULL,
    tagged REAL NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS image_names_by_manifest ON image_names(manifest)",
)

_V1_CACHE_MOUNTS = (
    """CREATE TABLE IF NOT EXISTS cache_mounts (
    n          INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL,
    base_key   TEXT NOT NULL,
    created    REAL NOT NULL,
    last_used  REAL NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS cache_mounts_id ON cache_mounts(id, base_key)",
)

_V1_USAGE = (
    """CREATE TABLE IF NOT EXISTS usage_snapshot_sizes (
    snapshot_id INTEGER PRIMARY KEY,
    size        INTEGER NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS cache_mount_descriptions (
    id      TEXT PRIMARY KEY,
    target  TEXT NOT NULL,
    args    TEXT NOT NULL,
    updated REAL NOT NULL
)""",
)

_V1_SNAPSHOTS = (
    """CREATE TABLE IF NOT EXISTS snapshots (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    snapshotter TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    parent_id   INTEGER REFERENCES snapshots(id),
    kind        TEXT    NOT NULL,
    created     REAL    NOT NULL,
    size        INTEGER NOT NULL DEFAULT 0,
    owner       TEXT,
    UNIQUE (snapshotter, key)
)""",
    "CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id)",
    """CREATE TABLE IF NOT EXISTS snapshotter_probe (
    kernel    TEXT PRIMARY KEY,
    overlay   INTEGER NOT NULL
)""",
)

_V1_SOLVER = (
    """CREATE TABLE IF NOT EXISTS solver_cache (
    key         TEXT PRIMARY KEY,
    snapshot    TEXT,
    kind        TEXT NOT NULL,
    created     REAL NOT NULL,
    last_used   REAL NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    components  TEXT NOT NULL DEFAULT '{}'
)""",
    "CREATE INDEX IF NOT EXISTS solver_cache_snapshot ON solver_cache(snapshot)",
    """CREATE TABLE IF NOT EXISTS solver_checksums (
    snapshot  TEXT NOT NULL,
    selector  TEXT NOT NULL,
    checksum  TEXT NOT NULL,
    PRIMARY KEY (snapshot, selector)
)""",
    """CREATE TABLE IF NOT EXISTS solver_layers (
    snapshot          TEXT NOT NULL,
    compression       TEXT NOT NULL,
    diff_id           TEXT NOT NULL,
    digest            TEXT NOT NULL,
    media_type        TEXT NOT NULL,
    size              INTEGER NOT NULL,
    uncompressed_size INTEGER NOT NULL,
    PRIMARY KEY (snapshot, compression)
)""",
    """CREATE TABLE IF NOT EXISTS solver_steps (
    step_id    TEXT PRIMARY KEY,
    key        TEXT NOT NULL,
    components TEXT NOT NULL,
    built_at   REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS solver_key_uses (
    key       TEXT PRIMARY KEY,
    uses      INTEGER NOT NULL,
    last_used REAL NOT NULL
)""",
)

_V1_CONTENTHASH = (
    """CREATE TABLE IF NOT EXISTS contenthash_files (
    path     BLOB PRIMARY KEY,
    dev      INTEGER NOT NULL,
    ino      INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    content  BLOB NOT NULL,  -- sha256 hex of a regular file's bytes; a symlink's target
    xattrs   BLOB NOT NULL   -- the hashed xattrs, encoded as in the entry header
) WITHOUT ROWID""",
)

_V1_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    strata  TEXT NOT NULL,
    applied REAL NOT NULL
)"""


def _to_v1(db: sqlite3.Connection) -> None:
    """Every table, whichever of them the lazy release had made; and the `owner` column
    that release added to `snapshots` by hand when it found it missing."""
    for ddl in (
        *_V1_CONTENT,
        *_V1_IMAGES,
        *_V1_CACHE_MOUNTS,
        *_V1_USAGE,
        *_V1_SNAPSHOTS,
        *_V1_SOLVER,
        *_V1_CONTENTHASH,
        _V1_MIGRATIONS_TABLE,
    ):
        db.execute(ddl)
    columns = {str(r[1]) for r in db.execute("PRAGMA table_info(snapshots)")}
    if "owner" not in columns:
        db.execute("ALTER TABLE snapshots ADD COLUMN owner TEXT")


# -- version 2 -----------------------------------------------------------------------------

_V2_REGISTRY_PULLS = """CREATE TABLE registry_pulls (
    name     TEXT NOT NULL,
    platform TEXT NOT NULL,
    digest   TEXT NOT NULL,
    manifest TEXT NOT NULL,
    resolved REAL NOT NULL,
    PRIMARY KEY (name, platform)
)"""


def _to_v2(db: sqlite3.Connection) -> None:
    """What base-image names resolved to at their registries (`strata.registry.pull`)."""
    db.execute(_V2_REGISTRY_PULLS)


# -- version 3 -----------------------------------------------------------------------------

_V3_BLOB_SOURCES = """CREATE TABLE blob_sources (
    digest TEXT NOT NULL,
    source TEXT NOT NULL,
    seen   REAL NOT NULL,
    PRIMARY KEY (digest, source)
)"""

def _to_v3(db: sqlite3.Connection) -> None:
    """Which repositories hold which blobs, for cross-repository mounts on push
    (`strata.registry.sources`)."""
    db.execute(_V3_BLOB_SOURCES)


# -- version 4 -----------------------------------------------------------------------------

_V4_CONTENTHASH_USAGE = """CREATE TABLE contenthash_usage (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    created   REAL NOT NULL,
    last_used REAL NOT NULL
)"""


def _to_v4(db: sqlite3.Connection) -> None:
    """When the context digest cache was made and last used, so du and `prune --filter
    until=` see the build context's record with real times. A root that already
    remembers digests is dated at the migration (its older history is unknown)."""
    db.execute(_V4_CONTENTHASH_USAGE)
    now = time.time()
    db.execute(
        "INSERT INTO contenthash_usage (id, created, last_used)"
        " SELECT 1, ?, ? WHERE EXISTS (SELECT 1 FROM contenthash_files)",
        (now, now),
    )


# -- version 5 -----------------------------------------------------------------------------

_V5_COPY_MANIFESTS = (
    """CREATE TABLE copy_manifests (
    snapshot TEXT PRIMARY KEY,
    lineage  TEXT NOT NULL,
    created  REAL NOT NULL,
    files    BLOB NOT NULL
)""",
    "CREATE INDEX copy_manifests_by_lineage ON copy_manifests(lineage)",
)


def _to_v5(db: sqlite3.Connection) -> None:
    """What each context copy wrote from where, for incremental COPY (`solver.copies`)."""
    for ddl in _V5_COPY_MANIFESTS:
        db.execute(ddl)


# -- migrations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """One forward step: `apply` turns a root at `version - 1` into one at `version`."""

    version: int
    summary: str
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "one schema: every table made up front; snapshots.owner", _to_v1),
    Migration(2, "registry_pulls: names resolved at registries", _to_v2),
    Migration(3, "blob_sources: repositories known to hold a blob", _to_v3),
    Migration(4, "contenthash_usage: when context digests were made and used", _to_v4),
    Migration(5, "copy_manifests: sources of context copies, for incremental COPY", _to_v5),
)


def schema_version(db: sqlite3.Connection) -> int:
    """The version recorded in the database (0: unversioned or new)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, where: Path) -> int:
    """Bring the database behind `db` (an autocommit connection) to `SCHEMA_VERSION`;
    return the version it had. Refuses a root written by a newer strata (StoreError)."""
    found = schema_version(db)
    if found == SCHEMA_VERSION:
        return found
    if found > SCHEMA_VERSION:
        raise _too_new(db, where, found)
    db.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(db)  # another process may have migrated meanwhile
        if found > SCHEMA_VERSION:
            raise _too_new(db, where, found)
        for step in MIGRATIONS:
            if step.version > found:
                step.apply(db)
                db.execute(
                    "INSERT OR REPLACE INTO schema_migrations (version, strata, applied)"
                    " VALUES (?, ?, ?)",
                    (step.version, strata_version(), time.time()),
                )
        # PRAGMA takes no parameters; the value is our own integer.
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return found


def _too_new(db: sqlite3.Connection, where: Path, found: int) -> StoreError:
    needed = "a newer strata"
    with contextlib.suppress(sqlite3.Error):
        row = db.execute(
            "SELECT strata FROM schema_migrations ORDER BY version DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            needed = f"strata {row[0]} or newer"
    return StoreError(
        f"state root {where} has metadata schema version {found}, newer than this"
        f" strata {strata_version()} reads (up to {SCHEMA_VERSION}): use {needed}"
        " with this root, or choose another root"
    )


def strata_version() -> str:
    """This installation's strata version, as recorded with each applied migration."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("strata")
    except PackageNotFoundError:
        return "unknown"

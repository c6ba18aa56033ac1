"""Snapshots: layered file trees with containerd's verbs, and the mounts that expose them.

A snapshot is *active* (writable, made by `prepare`), a *view* (read-only, made by `view`)
or *committed* (immutable, made by `commit` from an active one, usable as a parent).
Two implementations satisfy the `Snapshotter` protocol: `OverlaySnapshotter`
(`worker/overlay.py`, kernel overlayfs) and `NativeSnapshotter` (`worker/native.py`,
plain copies, for hosts where overlayfs cannot be mounted). `open_snapshotter` picks one.

Metadata lives in the `snapshots` table of metadata.db; the files live under
`snapshots/<id>/`. Numeric ids keep paths short, which matters for deep overlay chains.

Active snapshots and views belong to the process that made them: their row names that
process's tmp directory (`StateRoot.owner_dir`). When the owner dies without removing
them (SIGKILL, power loss), the next snapshotter opened on the root removes them, as
`StateRoot.open` removes the dead process's bundles and mounts. A snapshot meant to
outlive its maker (a named `strata run` container) is `disown`ed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from strata.errors import StoreError
from strata.store.root import TRASH_PREFIX, StateRoot, mounts_under

SnapshotKind = Literal["active", "view", "committed"]
ApplyMode = Literal["overlay", "tree"]

PROBE_PREFIX = ".probe-"

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    snapshotter TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    parent_id   INTEGER REFERENCES snapshots(id),
    kind        TEXT    NOT NULL,
    created     REAL    NOT NULL,
    size        INTEGER NOT NULL DEFAULT 0,
    owner       TEXT,
    UNIQUE (snapshotter, key)
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id);
CREATE TABLE IF NOT EXISTS snapshotter_probe (
    kernel    TEXT PRIMARY KEY,
    overlay   INTEGER NOT NULL
);
"""

# mount(2) flags from <sys/mount.h>
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

_FLAG_OPTIONS = {
    "ro": MS_RDONLY,
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "bind": MS_BIND,
    "rbind": MS_BIND | MS_REC,
}


@dataclass(frozen=True)
class MountSpec:
    """One mount, as containerd's `mount.Mount`: type, source and options (`ro`, `rbind`,
    `lowerdir=...`). A list of them describes how to assemble a snapshot at a target."""

    type: str
    source: str
    options: tuple[str, ...] = ()

    @property
    def readonly(self) -> bool:
        return "ro" in self.options

    def to_oci(self, destination: str) -> dict[str, object]:
        """This mount as an entry of an OCI runtime spec's `mounts`."""
        return {
            "destination": destination,
            "type": self.type,
            "source": self.source,
            "options": list(self.options),
        }


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
    applier or differ needs."""

    name: str
    apply_mode: ApplyMode
    """How a layer must be applied into `upper_dir`: "overlay" keeps whiteouts as
    0:0 character devices (the dir is an overlay upper); "tree" deletes (the dir is a
    full tree)."""

    def prepare(self, key: str, parent: str | None) -> list[MountSpec]: ...
    def view(self, key: str, parent: str) -> list[MountSpec]: ...
    def commit(self, name: str, key: str) -> None: ...
    def remove(self, key: str) -> None: ...
    def mounts(self, key: str) -> list[MountSpec]: ...
    def upper_dir(self, key: str) -> Path: ...
    def diff_dir(self, name: str) -> Path: ...
    def stat(self, key: str) -> SnapshotInfo: ...
    def exists(self, key: str) -> bool: ...
    def list(self) -> list[SnapshotInfo]: ...
    def disown(self, key: str) -> None: ...


class SnapshotStore:
    """The metadata both snapshotters share: rows in `snapshots`, dirs `snapshots/<id>`."""

    def __init__(self, root: StateRoot, snapshotter: str) -> None:
        self.root = root
        self.snapshotter = snapshotter
        root.ensure_schema("snapshots", SCHEMA)
        _add_owner_column(root)
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


def _add_owner_column(root: StateRoot) -> None:
    """Give a `snapshots` table made before owners were recorded its `owner` column."""
    db = root.connect()
    columns = {str(r[1]) for r in db.execute("PRAGMA table_info(snapshots)")}
    if "owner" in columns:
        return
    with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
        db.execute("ALTER TABLE snapshots ADD COLUMN owner TEXT")


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

    def stat(self, key: str) -> SnapshotInfo:
        return self.store.get(key)

    def exists(self, key: str) -> bool:
        return self.store.exists(key)

    def list(self) -> list[SnapshotInfo]:
        return self.store.list()

    def disown(self, key: str) -> None:
        """Keep `key` when this process exits (see `SnapshotStore.disown`)."""
        self.store.disown(key)


# -- mounting ---------------------------------------------------------------------------


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _sys_mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    res = _libc().mount(
        source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags), data.encode()
    )
    if res != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} {source} on {target}: {os.strerror(err)}")


def _split_options(options: Sequence[str]) -> tuple[int, list[str]]:
    flags = 0
    data: list[str] = []
    for opt in options:
        if opt in _FLAG_OPTIONS:
            flags |= _FLAG_OPTIONS[opt]
        elif opt == "rw":
            continue
        else:
            data.append(opt)
    return flags, data


def _page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


def _mount_overlay_relative(options: list[str], target: str) -> None:
    """Mount an overlay whose option string would not fit in one page.

    The kernel copies mount data into a single page (4096 bytes here), so 130 absolute
    lowerdir paths do not fit. Paths relative to their common parent are much shorter;
    the kernel resolves them against the cwd of the mounting process, so the mount is
    made by `mount(8)` started in that directory (our own cwd stays untouched)."""
    dirs: list[str] = []
    for opt in options:
        key, _, value = opt.partition("=")
        if key == "lowerdir":
            dirs.extend(value.split(":"))
        elif key in ("upperdir", "workdir"):
            dirs.append(value)
    base = os.path.commonpath(dirs)
    rewritten: list[str] = []
    for opt in options:
        key, _, value = opt.partition("=")
        if key == "lowerdir":
            rewritten.append(
                "lowerdir=" + ":".join(os.path.relpath(d, base) for d in value.split(":"))
            )
        elif key in ("upperdir", "workdir"):
            rewritten.append(f"{key}={os.path.relpath(value, base)}")
        else:
            rewritten.append(opt)
    data = ",".join(rewritten)
    if len(data) >= _page_size():
        raise StoreError(
            f"overlay mount options too long even with relative paths ({len(data)} bytes)"
        )
    proc = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", data, os.path.abspath(target)],
        cwd=base,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise OSError(errno.EINVAL, f"mount overlay on {target}: {proc.stderr.strip()}")


def mount_one(mount: MountSpec, target: Path | str) -> None:
    """Mount one `MountSpec` at `target` (bind mounts made read-only by a remount)."""
    tgt = str(target)
    flags, data = _split_options(mount.options)
    if flags & MS_BIND:
        _sys_mount(mount.source, tgt, "", flags & (MS_BIND | MS_REC), "")
        extra = flags & ~(MS_BIND | MS_REC)
        if extra:
            _sys_mount("", tgt, "", MS_BIND | MS_REMOUNT | extra, "")
        return
    joined = ",".join(data)
    if mount.type == "overlay" and len(joined) >= _page_size():
        _mount_overlay_relative(data, tgt)
        return
    _sys_mount(mount.source, tgt, mount.type, flags, joined)


def mount_all(mounts: Sequence[MountSpec], target: Path | str) -> None:
    """Mount every spec at `target` in order (containerd's `mount.All`); undo on failure."""
    done = 0
    try:
        for m in mounts:
            mount_one(m, target)
            done += 1
    except BaseException:
        for _ in range(done):
            unmount(target)
        raise


def _umount2(target: str, flags: int) -> int:
    res = int(_libc().umount2(target.encode(), ctypes.c_int(flags)))
    return 0 if res == 0 else ctypes.get_errno()


def unmount(target: Path | str) -> None:
    """Unmount everything at and below `target`, deepest first; lazily if busy."""
    paths = mounts_under(Path(target))
    for p in paths:
        err = _umount2(str(p), 0)
        if err == errno.EBUSY:
            err = _umount2(str(p), MNT_DETACH)
        if err not in (0, errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"unmount {p}: {os.strerror(err)}")


def is_mounted(target: Path | str) -> bool:
    resolved = Path(target).resolve()
    return any(p == resolved for p in mounts_under(resolved))


@contextlib.contextmanager
def mounted(mounts: Sequence[MountSpec], target: Path) -> Iterator[Path]:
    """`mount_all` for the duration of a `with` block."""
    mount_all(mounts, target)
    try:
        yield target
    finally:
        unmount(target)


# -- choosing an implementation ---------------------------------------------------------


def overlay_supported(root: StateRoot) -> bool:
    """Whether overlayfs mounts work here with our options; probed once per kernel and
    remembered in metadata.db, since the answer depends on the kernel and privileges."""
    root.ensure_schema("snapshots", SCHEMA)
    kernel = f"{os.uname().release} uid={os.geteuid()}"
    db = root.connect()
    row = db.execute("SELECT overlay FROM snapshotter_probe WHERE kernel = ?", (kernel,)).fetchone()
    if row is not None:
        return bool(row[0])
    ok = _probe_overlay(root)
    with root.transaction() as tx:
        tx.execute(
            "INSERT OR REPLACE INTO snapshotter_probe (kernel, overlay) VALUES (?, ?)",
            (kernel, int(ok)),
        )
    return ok


def _probe_overlay(root: StateRoot) -> bool:
    from strata.worker.overlay import overlay_options

    # The probe must run on the file system that will hold the snapshots.
    probe = root.snapshots_dir / f"{PROBE_PREFIX}{root.owner_dir().name}"
    try:
        for d in ("lower", "upper", "work", "merged"):
            (probe / d).mkdir(parents=True, exist_ok=True)
        (probe / "lower" / "f").write_text("x")
        opts = overlay_options([str(probe / "lower")], str(probe / "upper"), str(probe / "work"))
        try:
            mount_one(MountSpec("overlay", "overlay", tuple(opts)), probe / "merged")
        except OSError:
            return False
        try:
            (probe / "merged" / "f").unlink()
            ok = (probe / "upper" / "f").is_char_device()
        finally:
            unmount(probe / "merged")
        return ok
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def open_snapshotter(root: StateRoot, name: str = "auto") -> Snapshotter:
    """The snapshotter called `name` ("overlay", "native"), or for "auto" overlay when
    overlayfs can be mounted here and native otherwise."""
    from strata.worker.native import NativeSnapshotter
    from strata.worker.overlay import OverlaySnapshotter

    if name == "auto":
        name = "overlay" if overlay_supported(root) else "native"
    if name == "overlay":
        return OverlaySnapshotter(root)
    if name == "native":
        return NativeSnapshotter(root)
    raise StoreError(f"unknown snapshotter {name!r} (expected overlay or native)")

"""The state root: one directory holding everything strata keeps.

    metadata.db          SQLite in WAL mode; its tables, their owners and versions are drawn
                         in `store/schema.py`, and `open` migrates an older root
    blobs/sha256/<hex>   content store
    snapshots/<id>/      layer file trees
    cachemounts/<id>/    RUN --mount=type=cache directories
    locks/               advisory lock files shared by processes
    tmp/<owner>/         one directory per live strata process: bundles, mount points,
                         partial downloads. Each holds `owner.lock`, locked for the life of
                         the process; a directory whose lock is free belongs to a dead
                         process and is reaped (containers killed, mounts undone, files
                         removed) by the next `StateRoot.open`.
    tmp/.new-<owner>/    the same directory while it is being made: it gets its name only
                         once its lock is held, so no reaper can take it for a dead one.

The root and the directories above are 0700 and metadata.db (with its -wal and -shm) and
the lock files 0600, whatever the umask: snapshots hold setuid binaries, device nodes and
files other users must not read (cache mounts, secrets a step copied), all reachable by
path, so the root itself is the gate (moby CVE-2021-41091; Docker keeps its data root
0710 and containerd 0700). A root made by an earlier release, 0755 and 0644 under umask
022, is closed on the next `StateRoot.open`.

Several processes may open one root at once: SQLite serialises metadata writes and file
locks guard what SQLite cannot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from strata.errors import StoreError
from strata.faults import database_fault, is_out_of_space, space_error
from strata.store.schema import migrate

BUSY_TIMEOUT_SECONDS = 60.0
STAGING_PREFIX = ".new-"
TRASH_PREFIX = ".removed-"
STAGING_GRACE_SECONDS = 60.0
LOCK_POLL_SECONDS = 0.05
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
METADATA_SUFFIXES = ("", "-wal", "-shm", "-journal")
"""How long a half-made owner directory is left alone: its maker is between `mkdir`
and taking its lock for microseconds, so one this old was left by a killed process."""


class StateRoot:
    """An opened state root. Create with `StateRoot.open(path)`; one per process is enough."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.blobs_dir = path / "blobs" / "sha256"
        self.snapshots_dir = path / "snapshots"
        self.cachemounts_dir = path / "cachemounts"
        self.locks_dir = path / "locks"
        self.tmp_root = path / "tmp"
        self.db_path = path / "metadata.db"
        self._local = threading.local()
        self._owner_dir: Path | None = None
        self._owner_dir_guard = threading.Lock()
        self._owner_lock: IO[bytes] | None = None

    @classmethod
    def open(cls, path: Path | str) -> StateRoot:
        """Create the layout if needed, bring metadata.db to the current schema version
        (`store/schema.py`: one transaction; a root from a newer strata is refused with
        a StoreError) and reap what dead processes left behind."""
        root = cls(Path(path).absolute())
        try:
            root.make_private()
        except OSError as exc:
            if is_out_of_space(exc):
                raise space_error(exc, f"the state root {root.path}") from exc
            raise StoreError(f"cannot use state root {root.path}: {exc.strerror}") from exc
        root.reap_stale()
        migrate(root.connect(), root.path)
        return root

    def make_private(self) -> None:
        """Create the layout with owner-only modes, or close an existing one: the root,
        its top directories and blobs/sha256 0700; metadata.db and its -wal/-shm/-journal
        and every lock file 0600. `mkdir` alone would honour the umask (0755 under 022)
        and never change an existing directory, hence the `chmod` after it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for d in (
            self.path,
            self.blobs_dir.parent,
            self.blobs_dir,
            self.snapshots_dir,
            self.cachemounts_dir,
            self.locks_dir,
            self.tmp_root,
        ):
            d.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
            _set_mode(d, PRIVATE_DIR_MODE)
        # Made before SQLite opens it: SQLite creates a new database under the umask,
        # and its -wal and -shm files with the database file's mode (`findCreateFileMode`
        # in sqlite's os_unix.c), so a 0600 database keeps those 0600 too.
        fd = os.open(self.db_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        os.close(fd)
        for suffix in METADATA_SUFFIXES:
            with contextlib.suppress(FileNotFoundError):
                _set_mode(Path(f"{self.db_path}{suffix}"), PRIVATE_FILE_MODE)
        for lock_file in self.locks_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                _set_mode(lock_file, PRIVATE_FILE_MODE)

    # -- metadata ---------------------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """This thread's connection to metadata.db (WAL, long busy timeout, autocommit)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.db_path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=True,
                factory=_Metadata,
            )
            conn.db_path = self.db_path
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE): all of it lands, or none of it.

        A full disk or a damaged database is a one-line StoreError (`strata.faults`),
        whether it strikes a statement in the block or the COMMIT; the rollback after
        it may itself fail (SQLite may have rolled back already), which changes nothing."""
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error, StoreError):
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error, StoreError):
                conn.execute("ROLLBACK")
            raise

    # -- locks ------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(
        self, name: str, *, shared: bool = False, poll: Callable[[], None] | None = None
    ) -> Iterator[None]:
        """An advisory lock across processes and threads, held for the `with` block.

        With `poll`, waiting is a loop that calls it every `LOCK_POLL_SECONDS`, so a
        waiter can give up (`poll` raises) instead of blocking in the kernel until the
        holder is done."""
        safe = name.replace("/", "_")
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        with _open_lock_file(self.locks_dir / f"{safe}.lock") as fh:
            if poll is None:
                fcntl.flock(fh, mode)
            else:
                while True:
                    try:
                        fcntl.flock(fh, mode | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        poll()
                        time.sleep(LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- temporary space ----------------------------------------------------------------

    def owner_dir(self) -> Path:
        """This process's private directory under tmp/, locked while the process lives.
        Made once, under a lock: threads asking at once must not each make one."""
        with self._owner_dir_guard:
            return self._make_owner_dir()

    def _make_owner_dir(self) -> Path:
        if self._owner_dir is None:
            name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            # Made under a staging name and renamed once locked: another process's
            # `reap_stale` running in between would otherwise find a directory with a
            # free (or no) lock, take it for a dead process's and delete it under us.
            staging = self.tmp_root / f"{STAGING_PREFIX}{name}"
            staging.mkdir(mode=PRIVATE_DIR_MODE)
            fh = _open_lock_file(staging / "owner.lock")  # held for the process's life
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            d = self.tmp_root / name
            staging.rename(d)
            self._owner_lock = fh
            self._owner_dir = d
        return self._owner_dir

    def mkdtemp(self, prefix: str = "t") -> Path:
        """A fresh directory inside this process's tmp space."""
        d = self.owner_dir() / f"{prefix}-{uuid.uuid4().hex[:12]}"
        d.mkdir(mode=PRIVATE_DIR_MODE)
        return d

    def close(self) -> None:
        """Release this process's tmp space (mounts must already be undone)."""
        with self._owner_dir_guard:
            if self._owner_dir is not None:
                reap_directory(self._owner_dir)
                self._owner_dir = None
            if self._owner_lock is not None:
                self._owner_lock.close()
                self._owner_lock = None
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def discard(self, directory: Path) -> None:
        """Delete `directory` after moving it aside (one rename) to a trash name that
        records this process's owner dir, `.removed-<name>-<owner>`. Callers drop the
        directory's metadata row first and commit: a kill after that leaves only trash,
        never a row whose files are gone. `remove_dead_trash` deletes what a killed
        process left, judging liveness by the owner's lock, not by a reusable pid."""
        trash = directory.with_name(f"{TRASH_PREFIX}{directory.name}-{self.owner_dir().name}")
        try:
            directory.rename(trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def remove_dead_trash(self, parent: Path, prefixes: tuple[str, ...] = (TRASH_PREFIX,)) -> None:
        """Delete the entries of `parent` named `<prefix>...-<owner>` (see `discard`)
        whose owner process is gone; those of live processes are theirs to finish."""
        try:
            entries = list(parent.iterdir())
        except FileNotFoundError:
            return
        for entry in entries:
            prefix = next((p for p in prefixes if entry.name.startswith(p)), None)
            if prefix is None:
                continue
            if not self.owner_alive(trash_owner(entry.name[len(prefix) :])):
                shutil.rmtree(entry, ignore_errors=True)

    def owner_alive(self, name: str) -> bool:
        """Whether the process that made `tmp/<name>` (see `owner_dir`) still runs."""
        if self._owner_dir is not None and name == self._owner_dir.name:
            return True
        return _owner_alive(self.tmp_root / name)

    def reap_stale(self) -> None:
        """Remove tmp/ directories of processes that no longer run (SIGKILL leftovers)."""
        for entry in sorted(self.tmp_root.iterdir()):
            if entry == self._owner_dir or not entry.is_dir():
                continue
            if entry.name.startswith(STAGING_PREFIX) and _younger_than(
                entry, STAGING_GRACE_SECONDS
            ):
                continue
            if _owner_alive(entry):
                continue
            reap_directory(entry)


class _Metadata(sqlite3.Connection):
    """metadata.db's connection: a statement that fails for a full disk or a damaged
    file raises a one-line StoreError naming the file (`strata.faults`); any other
    SQLite error (a constraint, a lock timeout) is raised as is."""

    db_path: Path | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            fault = database_fault(exc, self.db_path)
            if fault is None:
                raise
            raise fault from exc

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as exc:
            fault = database_fault(exc, self.db_path)
            if fault is None:
                raise
            raise fault from exc


def _set_mode(path: Path, mode: int) -> None:
    """`chmod` unless `path` already has exactly `mode`."""
    if stat.S_IMODE(os.stat(path).st_mode) != mode:
        os.chmod(path, mode)


def _open_lock_file(path: Path) -> IO[bytes]:
    """`path` opened for flock, created 0600 whatever the umask."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    return os.fdopen(fd, "a+b")


def trash_owner(suffix: str) -> str:
    """The owner dir name at the end of a trash or probe name's `suffix`: owner names
    are `<pid>-<hex>`, so the last two dash-separated fields."""
    return "-".join(suffix.rsplit("-", 2)[-2:])


def _younger_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except FileNotFoundError:
        return False


def lock_held(lock_path: Path) -> bool:
    """Whether a live process holds an exclusive flock on `lock_path`: how strata tells
    that the process behind an owner dir or a named container still runs. The kernel
    drops a dead process's flocks, so unlike a recorded pid this cannot be fooled by a
    reused pid. Never creates the file: a missing one means nobody holds it. The probe
    asks for a shared lock, so two processes probing at once never see each other."""
    try:
        fh = open(lock_path, "rb")  # noqa: SIM115
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def _owner_alive(directory: Path) -> bool:
    """Whether a process holds `directory/owner.lock`. A directory without one is a
    dead process's leftover (or being reaped)."""
    return lock_held(directory / "owner.lock")


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below `directory`, deepest first (from /proc/self/mountinfo)."""
    prefix = str(directory.resolve())
    found: list[Path] = []
    with open("/proc/self/mountinfo", "rb") as fh:
        for line in fh:
            mount_point = _unescape_mountinfo(line.split(b" ")[4])
            if mount_point == prefix or mount_point.startswith(prefix + "/"):
                found.append(Path(mount_point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _unescape_mountinfo(field: bytes) -> str:
    """A mountinfo path as `str(Path)` spells it: the kernel writes space, tab, newline
    and backslash as 3-digit octal escapes and every other byte as is (so non-ASCII
    names are raw UTF-8, or whatever bytes the name has: decoded as the OS decodes)."""
    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)
    return os.fsdecode(raw)


def reap_directory(directory: Path) -> None:
    """Kill containers recorded under `directory/runc`, undo its mounts, delete it."""
    runc_root = directory / "runc"
    if runc_root.is_dir():
        for runtime in ("runc", "crun"):
            if shutil.which(runtime) is None:
                continue
            listed = subprocess.run(
                [runtime, "--root", str(runc_root), "list", "-q"], capture_output=True, text=True
            )
            for cid in listed.stdout.split():
                subprocess.run(
                    [runtime, "--root", str(runc_root), "delete", "--force", cid],
                    capture_output=True,
                )
    for mount_point in mounts_under(directory):
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
    shutil.rmtree(directory, ignore_errors=True)

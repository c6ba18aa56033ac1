"""Faults of the machine, not of the user's input, turned into one line each.

A full disk (ENOSPC, or EDQUOT past a quota) and a damaged `metadata.db` are not bugs
in strata, so they must not print a traceback; but they are not the user's typo either,
so what they need is the thing being written (or the file that is damaged) and what to
do. The layers that know what they were writing (the content store, the solver's step,
the state root's SQLite connection, `save -o`) call these to say so; `cli/main.py`
calls `fault_error` as a backstop for whatever escapes them.

SQLite reports its own full disk as `SQLITE_FULL` ("database or disk is full", an
`OperationalError`) and a damaged file as `SQLITE_NOTADB` ("file is not a database")
or `SQLITE_CORRUPT` ("database disk image is malformed"), both `DatabaseError`s
(sqlite3.c `sqlite3ErrStr`). In WAL mode a full disk may also surface as
`SQLITE_IOERR` ("disk I/O error": the -shm or -wal file cannot grow), which is told
apart from a failing disk by the space left. This module imports no sqlite3: the backstop runs in the
CLI, which must stay quick to start, so SQLite errors are recognised by their class
names and messages.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from strata.errors import StoreError

SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = "database or disk is full"
_SQLITE_DAMAGED = ("file is not a database", "malformed")
_SQLITE_IOERR = "disk I/O error"
FULL_BELOW_BYTES = 1 << 20


def is_out_of_space(exc: BaseException) -> bool:
    """An OSError (or SQLite error) that says the disk or the quota is full."""
    if isinstance(exc, OSError):
        return exc.errno in SPACE_ERRNOS
    return _is_sqlite(exc) and _SQLITE_FULL in str(exc)


def space_error(exc: BaseException, writing: str, *, needed: int | None = None) -> StoreError:
    """`no space left on device writing <what>` (with the size needed when known)."""
    reason = "disk quota exceeded" if getattr(exc, "errno", None) == errno.EDQUOT else None
    reason = reason or "no space left on device"
    need = f" ({human_bytes(needed)} needed)" if needed else ""
    return StoreError(f"{reason} writing {writing}{need}; free some space and try again")


def damaged_database_error(exc: BaseException, path: Path | str | None) -> StoreError:
    """A `metadata.db` SQLite cannot read: which file, and how to go on."""
    where = str(path) if path is not None else "the state root's metadata.db"
    return StoreError(
        f"metadata database {where} is damaged ({exc}): move it away"
        f" (mv {where} {where}.damaged) and strata starts an empty one, forgetting the"
        " images and build cache it recorded (`strata prune` then frees their space)"
    )


def database_fault(exc: BaseException, path: Path | str | None) -> StoreError | None:
    """The StoreError for an SQLite error that is a fault (full disk, damaged file);
    None for any other (a constraint, a lock timeout), which callers re-raise as is."""
    if not _is_sqlite(exc):
        return None
    text = str(exc)
    if _SQLITE_FULL in text:
        return space_error(exc, f"the metadata database {path or 'metadata.db'}")
    if any(marker in text for marker in _SQLITE_DAMAGED):
        return damaged_database_error(exc, path)
    if _SQLITE_IOERR in text:
        # In WAL mode a full disk often shows as an I/O error instead (the -shm file
        # cannot grow): tell them apart by the space left where the database lives.
        where = f"the metadata database {path or 'metadata.db'}"
        if path is not None and _nearly_full(Path(path).parent):
            return space_error(exc, where)
        return StoreError(f"cannot read or write {where}: {text}")
    return None


def fault_error(exc: BaseException) -> StoreError | None:
    """The backstop: a one-line StoreError for a fault that escaped its layer, or None."""
    if isinstance(exc, OSError) and exc.errno in SPACE_ERRNOS:
        target = exc.filename if exc.filename is not None else "the output"
        return space_error(exc, str(target))
    return database_fault(exc, None)


def _nearly_full(directory: Path) -> bool:
    """Less than a megabyte left for this process on `directory`'s file system."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < FULL_BELOW_BYTES


def _is_sqlite(exc: BaseException) -> bool:
    return type(exc).__module__ == "sqlite3"


def human_bytes(n: int) -> str:
    """`512 B`, `21.0 MiB`: sizes in fault messages."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"

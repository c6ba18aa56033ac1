"""A file written whole or not at all, beside its destination (`strata save -o F`).

The bytes go to `.F.strata-<pid>.tmp` in F's directory, renamed over F once complete:
the same file system, so the rename is atomic and a reader of F never sees half an
archive. The writer holds an exclusive flock on its temporary file for as long as it
writes; a writer killed by SIGKILL loses that lock with its life (the kernel drops it),
so the next `atomic_write` into the same directory knows the file for a leftover and
deletes it. As with the state root's owner directories (`store/root.py`), liveness is
the lock, never the pid in the name, which may have been reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_MARK = "strata"
_TEMP_NAME = re.compile(rf"^\..+\.{TEMP_MARK}-\d+\.tmp$")


def temp_path_for(dest: Path) -> Path:
    """This process's temporary file for `dest`."""
    return dest.with_name(f".{dest.name}.{TEMP_MARK}-{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_write(dest: Path) -> Iterator[BinaryIO]:
    """A file to write `dest`'s bytes to; renamed over `dest` when the block ends
    cleanly, deleted when it raises. Leftovers of killed writers in the same directory
    are deleted first. OSErrors are the caller's to word."""
    reap_leftovers(dest.parent)
    tmp = temp_path_for(dest)
    fh = _open_locked(tmp)
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            os.rename(tmp, dest)
    finally:
        # A cleanup that fails too (nothing to remove on a read-only file system) must
        # not replace the error that matters.
        with contextlib.suppress(OSError):
            tmp.unlink()


def _open_locked(path: Path) -> BinaryIO:
    """`path` created afresh and flocked. A reaper that took the lock between the create
    and the flock has deleted the file: then start again, so the file named `path` is
    the one this process holds."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return os.fdopen(fd, "wb")
        except FileNotFoundError:
            pass
        os.close(fd)


def reap_leftovers(directory: Path) -> list[Path]:
    """Delete the temporary files in `directory` whose writers are gone (their flock is
    free); return them. One a live writer holds is left alone."""
    removed: list[Path] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if not _TEMP_NAME.match(name):
            continue
        path = directory / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    path.unlink()
                    removed.append(path)
        finally:
            os.close(fd)
    return removed

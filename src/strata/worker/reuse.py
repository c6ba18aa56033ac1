"""Incremental COPY: reuse the unchanged files of the previous result of the same copy.

A `COPY . /app` that re-runs because one file of a 5,000-file context changed would
otherwise write every byte of the context into a new snapshot again. When the same copy
(same op, same parent snapshot, same context directory) was made before, its snapshot
already holds every unchanged file, byte for byte and with the metadata the copy gives
it. So the copy runs as usual, but a regular file whose source is unchanged since that
copy is not written: a placeholder stands at its path while the copy runs (so every
existence check, overwrite and hard link of the copy behaves as in a full copy), and
after the snapshot is unmounted, each surviving placeholder is replaced by a hard link
to the previous snapshot's file. Only changed, added and deleted entries cost work
beyond an `lstat` and a link.

Why this is the same as a full copy
-----------------------------------
The bytes and metadata a copy gives a regular file at destination path R depend on the
op (sources, destination, `--chown`, `--chmod`, ...), on the parent snapshot (where
`--chown` names resolve) and on the source file. The first two are the same by the
choice of the previous result (its *lineage*, `solver.copies`). The source file is
"unchanged" when its path, device, inode, size, mtime and ctime are those recorded when
the previous copy read it (`Stamp`): every write, chmod, chown, xattr change, rename or
new hard link updates the ctime. As git and `contenthash.DigestCache` do, a file whose
mtime or ctime was within `RACY_WINDOW_NS` of the copy is never recorded, since a second
change in the same clock tick would leave its stamp unchanged. Directories, symlinks and
devices are always made anew (cheap), so renames, deletions and a directory replaced by
a file come out as in a full copy.

Why sharing inodes is safe
--------------------------
Committed snapshots are immutable: a later RUN, chmod or chown changes its own
snapshot's copy (overlay copies a file up before changing it; the native snapshotter
`cp -a`s the parent tree, which breaks links to files outside it). Nothing here writes
into a linked inode: the copy's writes go to placeholders (new inodes), and the
placeholder of a reused file gets no metadata. Only the link count and ctime of the
previous snapshot's files change, which no layer or checksum reads. A layer tar links
entries only within one tree, so links to another snapshot are invisible in it.

A crash before the new snapshot is committed leaves an active snapshot, which the next
process reaps (its owner is dead); a manifest is written only after the commit, so no
later build trusts a half-made copy.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

RACY_WINDOW_NS = 1_000_000_000


class Stamp(NamedTuple):
    """What identifies a source file's state: its path below the context and its stat."""

    source: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, source: str, st: os.stat_result) -> Stamp:
        return cls(source, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


Manifest = dict[str, Stamp]
"""Destination path (relative to the snapshot root) -> the stamp of the source file the
copy wrote there."""


@dataclass
class CopyReuse:
    """One FileOp's incremental copy into `rootfs` (the new snapshot, mounted).

    `previous_dir` holds the previous result's own files at their paths (the snapshotter's
    `tree_dir`), `previous` its manifest; both None for a first copy, which only records.
    The copier calls `defer`, `link_deferred`, `wrote` and `touched`; after unmounting,
    the op runner calls `finish` with the new snapshot's upper directory.
    """

    rootfs: Path
    context: Path
    previous_dir: Path | None = None
    previous: Mapping[str, Stamp] = field(default_factory=dict)
    started_ns: int = field(default_factory=lambda: _now_ns())
    files: Manifest = field(default_factory=dict)
    deferred: dict[str, str] = field(default_factory=dict)
    poisoned: bool = False
    # A placeholder is an empty file with this mtime (ns after the epoch): a write over
    # it by a later action or an archive would change its size or mtime.
    sentinel_ns: int = field(default_factory=lambda: 1 + secrets.randbelow(999_999_998))
    reused: int = 0

    # -- during the copy -------------------------------------------------------------

    def _rel(self, target: Path | str) -> str:
        return os.path.relpath(target, self.rootfs)

    def _source_rel(self, source: str) -> str | None:
        prefix = str(self.context).rstrip("/") + "/"
        return source[len(prefix) :] if source.startswith(prefix) else None

    def _recordable(self, st: os.stat_result) -> bool:
        return max(st.st_mtime_ns, st.st_ctime_ns) < self.started_ns - RACY_WINDOW_NS

    def touched(self, target: Path) -> None:
        """Something not from the context (or not a regular file) was written at
        `target`: whatever the manifest said of that path is no longer true."""
        self.files.pop(self._rel(target), None)

    def wrote(self, target: Path, source: str, st: os.stat_result) -> None:
        """The copier wrote `target` from context file `source` (stat `st`)."""
        rel = self._rel(target)
        self.files.pop(rel, None)
        source_rel = self._source_rel(source)
        if source_rel is not None and self._recordable(st):
            self.files[rel] = Stamp.of(source_rel, st)

    def defer(self, target: Path, source: str, st: os.stat_result, mtime_ns: int) -> bool:
        """Whether regular file `target` can come from the previous result instead of
        being written (`mtime_ns`: the mtime the copy would give it). If so a
        placeholder now stands at `target` and the copier must neither write nor
        change it."""
        rel = self._rel(target)
        source_rel = self._source_rel(source)
        if self.previous_dir is None or source_rel is None or not self._recordable(st):
            return False
        stamp = Stamp.of(source_rel, st)
        if self.previous.get(rel) != stamp:
            return False
        old = os.path.join(self.previous_dir, rel)
        try:
            old_st = os.lstat(old)
        except OSError:
            return False
        if (
            not stat.S_ISREG(old_st.st_mode)
            or old_st.st_size != st.st_size
            or old_st.st_mtime_ns != mtime_ns
        ):
            return False
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.utime(fd, ns=(self.sentinel_ns, self.sentinel_ns))
        finally:
            os.close(fd)
        self.deferred[rel] = old
        self.files[rel] = stamp
        return True

    def link_deferred(self, first: Path, target: Path, source: str, st: os.stat_result) -> bool:
        """The copier hard-linked `target` to `first` (an earlier path of the same
        source inode). True when `first` is a placeholder: `target` then comes from the
        same previous file, and its metadata (shared with `first`) must not be set."""
        first_rel = self._rel(first)
        old = self.deferred.get(first_rel)
        if old is None:
            self.wrote(target, source, st)
            return False
        rel = self._rel(target)
        self.deferred[rel] = old
        self.files.pop(rel, None)
        source_rel = self._source_rel(source)
        if source_rel is not None and self._recordable(st):
            self.files[rel] = Stamp.of(source_rel, st)
        return True

    def poison(self) -> None:
        """Something wrote files the manifest cannot follow (an extracted archive): this
        copy's manifest is not kept. Placeholders it overwrote fail their check."""
        self.poisoned = True

    # -- after the copy --------------------------------------------------------------

    def finish(self, upper: Path) -> None:
        """Replace every placeholder still standing in `upper` (the new snapshot's own
        files, unmounted) by a hard link to the previous result's file. Directories keep
        the times the copy gave them."""
        dir_times: dict[str, tuple[int, int]] = {}
        for rel in sorted(self.deferred):
            path = os.path.join(upper, rel)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                self.files.pop(rel, None)
                continue
            if not (
                stat.S_ISREG(st.st_mode) and st.st_size == 0 and st.st_mtime_ns == self.sentinel_ns
            ):
                # A later action or archive replaced it, as it would a full copy's file.
                self.files.pop(rel, None)
                continue
            parent = os.path.dirname(path)
            if parent not in dir_times:
                pst = os.lstat(parent)
                dir_times[parent] = (pst.st_atime_ns, pst.st_mtime_ns)
            os.unlink(path)
            _link_or_copy(self.deferred[rel], path)
            self.reused += 1
        for parent, times in dir_times.items():
            os.utime(parent, ns=times, follow_symlinks=False)

    def manifest(self) -> Manifest | None:
        """What this copy wrote where, for the next incremental copy; None when poisoned."""
        return None if self.poisoned else dict(self.files)


def _now_ns() -> int:
    import time

    return time.time_ns()


def _link_or_copy(old: str, path: str) -> None:
    """Hard-link `old` at `path`; when the file system refuses (too many links), copy it
    with its metadata instead."""
    try:
        os.link(old, path, follow_symlinks=False)
        return
    except OSError as exc:
        if exc.errno not in (errno.EMLINK, errno.EXDEV, errno.EPERM):
            raise
    from strata.worker.fileops import chown_quietly, copy_file_content, copy_xattrs

    st = os.lstat(old)
    copy_file_content(old, Path(path))
    chown_quietly(Path(path), st.st_uid, st.st_gid)
    os.chmod(path, stat.S_IMODE(st.st_mode))
    copy_xattrs(old, Path(path))
    with contextlib.suppress(OSError):
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

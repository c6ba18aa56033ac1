"""Incremental COPY: reuse the unchanged files of the previous result of the same copy.

A `COPY . /app` that re-runs because one file of a 5,000-file context changed would
otherwise write every byte of the context into a new snapshot again. When the same copy
(same op, same parent snapshot, same context directory) was made before, its snapshot
already holds every unchanged file, byte for byte and with the metadata the copy gives
it. So the copy runs as usual, except that a regular file whose source is unchanged
since that copy is not written: it is left *pending*, and after the new snapshot is
unmounted, each pending file is hard-linked from the previous snapshot straight into the
new snapshot's own directory (`finish`). A link costs a directory entry; creating a
file through overlayfs costs a hundred times more. Only changed, added and deleted
entries cost work beyond an `lstat` and a link.

While the copy runs, a pending file counts as the file it will be: the copier's
existence checks see it (`pending_stat`), a later write over it cancels it, `mkdir`
through it fails, and a hard link to it becomes pending too. Its parent directory is
copied up in the overlay as the write would have done. A directory whose times the copy
set after its pending children keeps those times; one whose children were written last
gets the time of the link, as a full copy's gets the time of the write.

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
into a linked inode: links are made last, and get no metadata. Only the link count and
ctime of the previous snapshot's files change, which no layer or checksum reads. A layer
tar links entries only within one tree, so links to another snapshot are invisible in it.

A crash before the new snapshot is committed leaves an active snapshot, which the next
process reaps (its owner is dead); a manifest is written only after the commit, so no
later build trusts a half-made copy.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

RACY_WINDOW_NS = 1_000_000_000
_UNCLEAN = re.compile(r"//|/\.\.?(/|$)")


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
    """One FileOp's incremental copy into `rootfs` (the new snapshot, mounted), whose own
    directory is `upper` (overlay: the upper dir; native: the tree itself).

    `previous_dir` holds the previous result's own files at their paths (the snapshotter's
    `tree_dir`), `previous` its manifest; both None for a first copy, which only records.
    The copier reports to it as it goes; after unmounting, the op runner calls `finish`.
    """

    rootfs: Path
    upper: Path
    context: Path
    previous_dir: Path | None = None
    previous: Mapping[str, Stamp] = field(default_factory=dict)
    started_ns: int = field(default_factory=time.time_ns)
    files: Manifest = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    """Destination path -> the previous snapshot's file to link there."""
    poisoned: bool = False
    reused: int = 0
    _events: int = 0
    _last_pending_in: dict[str, int] = field(default_factory=dict)
    _last_times_set: dict[str, int] = field(default_factory=dict)
    _in_upper: set[str] = field(default_factory=set)

    # -- during the copy -------------------------------------------------------------

    def _rel(self, target: Path | str) -> str:
        """`target` relative to the new snapshot's root; "" for the root itself (the
        `os.path.dirname` of a top-level entry)."""
        text = os.fspath(target)
        root = os.fspath(self.rootfs).rstrip("/")
        if text.startswith(root + "/") and not _UNCLEAN.search(text):
            return text[len(root) + 1 :].rstrip("/")  # the copier's paths: joined, clean
        rel = os.path.relpath(text, root)
        return "" if rel == "." else rel

    def _source_rel(self, source: str) -> str | None:
        prefix = str(self.context).rstrip("/") + "/"
        return source[len(prefix) :] if source.startswith(prefix) else None

    def _recordable(self, st: os.stat_result) -> bool:
        return max(st.st_mtime_ns, st.st_ctime_ns) < self.started_ns - RACY_WINDOW_NS

    def _record(self, rel: str, source: str, st: os.stat_result) -> None:
        self.files.pop(rel, None)
        source_rel = self._source_rel(source)
        if source_rel is not None and self._recordable(st):
            self.files[rel] = Stamp.of(source_rel, st)

    def pending_stat(self, target: Path) -> os.stat_result | None:
        """The stat of the file pending at `target`, None when none is."""
        old = self.pending.get(self._rel(target))
        return None if old is None else os.lstat(old)

    def pending_in(self, path: Path) -> str | None:
        """The destination path (`/x/y`) of a pending file at `path` or above it."""
        rel = self._rel(path)
        if not rel:
            return None
        parts = rel.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if prefix in self.pending:
                return "/" + prefix
        return None

    def cancel(self, target: Path) -> None:
        """A write replaces the file pending at `target`."""
        rel = self._rel(target)
        self.pending.pop(rel, None)
        self.files.pop(rel, None)

    def touched(self, target: Path) -> None:
        """Something not from the context (or not a regular file) was written at
        `target`: whatever the manifest said of that path is no longer true."""
        self.files.pop(self._rel(target), None)

    def wrote(self, target: Path, source: str, st: os.stat_result) -> None:
        """The copier wrote `target` from context file `source` (stat `st`)."""
        self._record(self._rel(target), source, st)

    def times_set(self, directory: Path) -> None:
        """The copier set `directory`'s times (after writing its children)."""
        self._events += 1
        self._last_times_set[self._rel(directory)] = self._events

    def defer(self, target: Path, source: str, st: os.stat_result, mtime_ns: int) -> bool:
        """Whether regular file `target` can come from the previous result instead of
        being written (`mtime_ns`: the mtime the copy would give it). If so it is now
        pending, and the copier must neither write it nor set its metadata."""
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
            or not self._parent_in_upper(rel)
        ):
            return False
        self._pend(rel, old)
        self.files[rel] = stamp
        return True

    def link_deferred(self, first: Path, target: Path, source: str, st: os.stat_result) -> bool:
        """The copier is about to hard-link `target` to `first` (an earlier path of the
        same source inode). True when `first` is pending: `target` is then pending too,
        from the same previous file, and the copier must not touch it."""
        first_rel = self._rel(first)
        old = self.pending.get(first_rel)
        if old is None:
            return False
        rel = self._rel(target)
        if not self._parent_in_upper(rel):
            # Write `first` now, so that the copier can link to it as it would.
            del self.pending[first_rel]
            _copy_with_metadata(old, os.path.join(self.rootfs, first_rel))
            return False
        self._pend(rel, old)
        self._record(rel, source, st)
        return True

    def _pend(self, rel: str, old: str) -> None:
        self.pending[rel] = old
        self._events += 1
        self._last_pending_in[os.path.dirname(rel)] = self._events

    def _parent_in_upper(self, rel: str) -> bool:
        """Make sure `rel`'s directory is in the new snapshot's own directory, as
        writing `rel` would have made it (overlay copies a lower directory up)."""
        parent = os.path.dirname(rel)
        if parent in self._in_upper:
            return True
        if os.path.isdir(os.path.join(self.upper, parent)):
            self._in_upper.add(parent)
            return True
        through = os.path.join(self.rootfs, parent)
        try:
            st = os.lstat(through)
            # Any change of attributes copies a directory up; this one changes nothing.
            os.utime(through, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        except OSError:
            return False
        if os.path.isdir(os.path.join(self.upper, parent)):
            self._in_upper.add(parent)
            return True
        return False

    def poison(self) -> None:
        """Something is about to write files this cannot follow (an extracted archive):
        write the pending files now, through the mount, and reuse nothing more; this
        copy's manifest is not kept."""
        self.poisoned = True
        self.previous_dir = None
        self._place(self.rootfs, link=False)

    # -- after the copy --------------------------------------------------------------

    def finish(self) -> None:
        """Hard-link every pending file into `upper` (the new snapshot unmounted)."""
        self._place(self.upper, link=True)

    def _place(self, base: Path, *, link: bool) -> None:
        restore: dict[str, tuple[int, int]] = {}
        for parent, pended in self._last_pending_in.items():
            # The copy set this directory's times after its last pending child was due.
            if self._last_times_set.get(parent, -1) > pended:
                st = os.lstat(os.path.join(base, parent))
                restore[parent] = (st.st_atime_ns, st.st_mtime_ns)
        for rel, old in sorted(self.pending.items()):
            path = os.path.join(base, rel)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                pass
            else:
                if not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0):
                    raise RuntimeError(f"incremental copy: {rel} was written behind its back")
                os.unlink(path)  # the whiteout of the parent's file the copy replaced
            if link:
                _link_or_copy(old, path)
            else:
                _copy_with_metadata(old, path)
            self.reused += 1
        for parent, times in restore.items():
            os.utime(os.path.join(base, parent), ns=times, follow_symlinks=False)
        self.pending.clear()
        self._last_pending_in.clear()

    def manifest(self) -> Manifest | None:
        """What this copy wrote where, for the next incremental copy; None when poisoned."""
        return None if self.poisoned else dict(self.files)


def _link_or_copy(old: str, path: str) -> None:
    """Hard-link `old` at `path`; when the file system refuses (too many links), copy it
    with its metadata instead."""
    try:
        os.link(old, path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EMLINK, errno.EXDEV, errno.EPERM):
            raise
        _copy_with_metadata(old, path)


def _copy_with_metadata(old: str, path: str) -> None:
    from strata.worker.fileops import chown_quietly, copy_file_content, copy_xattrs

    st = os.lstat(old)
    copy_file_content(old, Path(path))
    chown_quietly(Path(path), st.st_uid, st.st_gid)
    os.chmod(path, stat.S_IMODE(st.st_mode))
    copy_xattrs(old, Path(path))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

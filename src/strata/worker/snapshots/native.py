"""The native snapshotter: full copies, for hosts where overlayfs cannot be mounted.

Each snapshot's `snapshots/<id>/fs` is a complete tree: `prepare` copies the parent's
tree (`cp -a`, which keeps owners, modes, times, xattrs, devices and hard links) and
`commit` compares the result with the parent to write `snapshots/<id>/diff`, the same
overlay-upper format the overlay snapshotter produces, so one layer writer serves both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from strata.errors import StoreError
from strata.fsutil import copy_tree
from strata.modes import ApplyMode
from strata.worker.snapshots.base import StoredSnapshotter, tree_size
from strata.worker.snapshots.mount import MountSpec
from strata.worker.snapshots.snapshotter import SnapshotInfo

OPAQUE_XATTR = "trusted.overlay.opaque"


class NativeSnapshotter(StoredSnapshotter):
    """Snapshots as full directory copies; slower, but needs nothing from the kernel."""

    name = "native"
    apply_mode: ApplyMode = "tree"
    diff_subdir = "diff"  # `fs` is a whole tree; `commit` writes the changes beside it

    def prepare(self, key: str, parent: str | None) -> list[MountSpec]:
        parent_fs = self._committed_fs(parent) if parent is not None else None
        with self.store.create(key, parent, "active") as (_, directory):
            fs = directory / "fs"
            fs.mkdir(mode=0o755)
            if parent_fs is not None:
                copy_tree(parent_fs, fs)
        return self.mounts(key)

    def view(self, key: str, parent: str) -> list[MountSpec]:
        with self.store.create(key, parent, "view"):
            pass
        return self.mounts(key)

    def _mounts_of(self, info: SnapshotInfo) -> list[MountSpec]:
        """A view binds its parent's tree read-only; an active snapshot binds its own."""
        if info.kind == "view":
            assert info.parent is not None
            return [MountSpec("bind", str(self._committed_fs(info.parent)), ("rbind", "ro"))]
        return [MountSpec("bind", str(self.store.dir_of(info.id) / "fs"), ("rbind", "rw"))]

    def commit(self, name: str, key: str) -> None:
        info = self.store.get(key)
        if info.kind != "active":
            raise StoreError(f"snapshot {key} is not active and cannot be committed")
        directory = self.store.dir_of(info.id)
        diff = directory / "diff"
        shutil.rmtree(diff, ignore_errors=True)
        diff.mkdir()
        old = self._committed_fs(info.parent) if info.parent is not None else None
        write_diff(old, directory / "fs", diff)
        self.store.mark_committed(name, key, tree_size(diff))

    def _committed_fs(self, name: str) -> Path:
        info = self.store.get(name)
        if info.kind != "committed":
            raise StoreError(f"parent snapshot {name} is not committed")
        return self.store.dir_of(info.id) / "fs"


# -- computing a diff -------------------------------------------------------------------


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    found: dict[str, bytes] = {}
    for name in names:
        with contextlib.suppress(OSError):
            found[name] = os.getxattr(path, name, follow_symlinks=False)
    return found


def _same_content(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca = fa.read(1 << 20)
            cb = fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True


def _changed(old_path: str, o: os.stat_result, new_path: str, n: os.stat_result) -> bool:
    """Whether an entry differs the way BuildKit's differ counts (metadata, then content
    when the mtime carries no nanoseconds and so may have been truncated by a tar)."""
    if stat.S_IFMT(o.st_mode) != stat.S_IFMT(n.st_mode):
        return True
    if (o.st_mode, o.st_uid, o.st_gid) != (n.st_mode, n.st_uid, n.st_gid):
        return True
    if stat.S_ISLNK(n.st_mode):
        return os.readlink(old_path) != os.readlink(new_path)
    if (stat.S_ISCHR(n.st_mode) or stat.S_ISBLK(n.st_mode)) and o.st_rdev != n.st_rdev:
        return True
    if _xattrs(old_path) != _xattrs(new_path):
        return True
    if stat.S_ISDIR(n.st_mode):
        return o.st_mtime_ns != n.st_mtime_ns
    if stat.S_ISREG(n.st_mode):
        if o.st_size != n.st_size:
            return True
        if o.st_mtime_ns != n.st_mtime_ns:
            return True
        if n.st_mtime_ns % 1_000_000_000 == 0:
            return not _same_content(old_path, new_path)
    return False


class _DiffWriter:
    """Writes changed entries of `new` into `out`, keeping metadata and hard links."""

    def __init__(self, new: Path, out: Path) -> None:
        self.new = str(new)
        self.out = str(out)
        self.links: dict[tuple[int, int], str] = {}
        self.dirs_made: list[tuple[str, str]] = []

    def ensure_dir(self, rel: str) -> None:
        """Make `out/rel` (and parents) carrying the metadata of `new/rel`."""
        if rel == "":
            return
        target = os.path.join(self.out, rel)
        if os.path.lexists(target):
            return
        self.ensure_dir(os.path.dirname(rel))
        os.mkdir(target)
        self.dirs_made.append((os.path.join(self.new, rel), target))

    def copy_entry(self, rel: str, st: os.stat_result) -> None:
        src = os.path.join(self.new, rel)
        dst = os.path.join(self.out, rel)
        self.ensure_dir(os.path.dirname(rel))
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(dst)
            self.dirs_made.append((src, dst))
            return
        ident = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and ident in self.links:
            os.link(self.links[ident], dst)
            return
        if stat.S_ISREG(mode):
            # `fs` and `diff` are both this snapshot's, immutable once it is committed:
            # the diff shares the tree's file rather than holding a second copy (so a
            # COPY of a big context is written once, and an incremental one not at all).
            try:
                os.link(src, dst, follow_symlinks=False)
            except OSError:
                shutil.copyfile(src, dst, follow_symlinks=False)
            else:
                if st.st_nlink > 1:
                    self.links[ident] = dst
                return
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(dst, mode, st.st_rdev)
        else:
            return  # sockets are not part of layers
        _copy_metadata(src, dst, st)
        if st.st_nlink > 1:
            self.links[ident] = dst

    def copy_subtree(self, rel: str) -> None:
        st = os.lstat(os.path.join(self.new, rel))
        self.copy_entry(rel, st)
        if stat.S_ISDIR(st.st_mode):
            for name in sorted(os.listdir(os.path.join(self.new, rel))):
                self.copy_subtree(os.path.join(rel, name))

    def whiteout(self, rel: str) -> None:
        self.ensure_dir(os.path.dirname(rel))
        os.mknod(os.path.join(self.out, rel), stat.S_IFCHR | 0o000, os.makedev(0, 0))

    def finish(self) -> None:
        """Set directory metadata last, deepest first, so child writes keep their mtime."""
        for src, dst in reversed(self.dirs_made):
            _copy_metadata(src, dst, os.lstat(src))


def _copy_metadata(src: str, dst: str, st: os.stat_result) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    for name, value in _xattrs(src).items():
        with contextlib.suppress(OSError):
            os.setxattr(dst, name, value, follow_symlinks=False)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def write_diff(old: Path | None, new: Path, out: Path) -> None:
    """Write into `out` what changed from tree `old` (None: empty) to tree `new`, in
    overlay upper format: added/changed entries copied, deleted ones as 0:0 char devices,
    changed dirs present with their new metadata."""
    writer = _DiffWriter(new, out)
    old_root = str(old) if old is not None else None

    def walk(rel: str) -> None:
        new_dir = os.path.join(writer.new, rel)
        new_names = set(os.listdir(new_dir))
        old_names: set[str] = set()
        if old_root is not None:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                old_names = set(os.listdir(os.path.join(old_root, rel)))
        for name in sorted(old_names - new_names):
            writer.whiteout(os.path.join(rel, name))
        for name in sorted(new_names):
            child = os.path.join(rel, name)
            n = os.lstat(os.path.join(writer.new, child))
            if name not in old_names or old_root is None:
                writer.copy_subtree(child)
                continue
            old_path = os.path.join(old_root, child)
            o = os.lstat(old_path)
            if stat.S_ISDIR(n.st_mode) and stat.S_ISDIR(o.st_mode):
                if _changed(old_path, o, os.path.join(writer.new, child), n):
                    writer.ensure_dir(child)
                walk(child)
            elif _changed(old_path, o, os.path.join(writer.new, child), n):
                writer.copy_subtree(child)

    walk("")
    # The root directory's own metadata travels with the diff like any directory.
    writer.dirs_made.insert(0, (writer.new, writer.out))
    writer.finish()

"""The local and tar exporters: the target's files, not an image.

`type=local` copies the target's root file system into a directory, like BuildKit's
`exporter/local` as the client receives it (`session/filesync/diffcopy.go`
`syncTargetDiffCopy`): the directory is created 0700 if missing and otherwise merged
into, its own metadata is left alone, and every file written is owned by the user
running the build (modes, times and links as in the image). `type=tar` writes the same
tree as one tar stream (to a file or stdout), entries in sorted order with the image's
numeric owners, like `exporter/tar`.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from strata.fsutil import copy_tree


def export_local(tree: Path, dest: Path) -> int:
    """Copy `tree`'s contents into `dest`, owned by this process's user and group;
    returns the bytes of regular files copied."""
    if not dest.is_dir():
        dest.mkdir(mode=0o700, parents=True)
    kept = os.lstat(dest)
    copy_tree(tree, dest)
    # `cp -a` also gave `dest` the tree root's metadata: the client never does.
    os.chown(dest, kept.st_uid, kept.st_gid)
    os.chmod(dest, stat.S_IMODE(kept.st_mode))
    os.utime(dest, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    _give_to_caller(tree, dest)
    return _regular_bytes(tree)


def _give_to_caller(tree: Path, dest: Path) -> None:
    """Own every copied entry by the caller; restore modes that chown cleared (setuid)."""
    uid, gid = os.getuid(), os.getgid()
    for rel, source in _sorted_walk(tree):
        target = dest / rel
        st = os.lstat(source)
        if (st.st_uid, st.st_gid) == (uid, gid):
            continue
        os.lchown(target, uid, gid)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(target, stat.S_IMODE(st.st_mode))


def export_tar(tree: Path, out: BinaryIO) -> int:
    """Write `tree` as a tar stream to `out`; returns the bytes of regular files written."""
    total = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for rel, full in _sorted_walk(tree):
            info = archive.gettarinfo(str(full), arcname=rel)
            info.uname = ""
            info.gname = ""
            if info.isreg():
                total += info.size
                with open(full, "rb") as fh:
                    archive.addfile(info, fh)
            else:
                archive.addfile(info)
    return total


def _sorted_walk(tree: Path) -> list[tuple[str, Path]]:
    entries: list[tuple[str, Path]] = []

    def visit(directory: Path, prefix: str) -> None:
        for name in sorted(os.listdir(directory)):
            full = directory / name
            rel = f"{prefix}{name}"
            entries.append((rel, full))
            if stat.S_ISDIR(os.lstat(full).st_mode):
                visit(full, rel + "/")

    visit(tree, "")
    return entries


def _regular_bytes(tree: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total

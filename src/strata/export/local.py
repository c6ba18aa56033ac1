"""The local and tar exporters: the target's files, not an image.

`type=local` copies the target's root file system into a directory (created if
missing, merged into if present), like BuildKit's `exporter/local`. `type=tar` writes
the same tree as one tar stream (to a file or stdout), entries in sorted order with
numeric owners, like `exporter/tar`.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from strata.worker.native import copy_tree


def export_local(tree: Path, dest: Path) -> int:
    """Copy `tree`'s contents into `dest`; returns the bytes of regular files copied."""
    dest.mkdir(parents=True, exist_ok=True)
    copy_tree(tree, dest)
    return _regular_bytes(tree)


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

"""Helpers for the image-store integration tests: describing a file tree exactly.

`tree_state` captures everything a layer must carry (type, mode, owner, mtime, size,
content digest, link target, device numbers, xattrs, which paths share an inode), so
two trees can be compared with one `==` and a failing test shows the difference.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

STRATA = Path(sys.executable).parent / "strata"
OVERLAY_PREFIXES = ("trusted.overlay.", "user.overlay.")


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _raise(error: OSError) -> None:
    """os.walk skips directories it cannot list unless told otherwise: never hide that."""
    raise error


def tree_state(root: Path, *, keep_overlay_xattrs: bool = True) -> dict[str, Any]:
    """{relative path: its full description}; hard links share a `link_group`."""
    state: dict[str, Any] = {}
    groups: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            entry: dict[str, Any] = {
                "mode": stat.filemode(st.st_mode),
                "uid": st.st_uid,
                "gid": st.st_gid,
                "xattrs": {
                    x: os.getxattr(path, x, follow_symlinks=False)
                    for x in sorted(os.listxattr(path, follow_symlinks=False))
                    if keep_overlay_xattrs or not x.startswith(OVERLAY_PREFIXES)
                },
            }
            entry["mtime"] = st.st_mtime_ns // 1_000_000_000
            if stat.S_ISREG(st.st_mode):
                entry["size"] = st.st_size
                entry["sha256"] = file_digest(path)
                if st.st_nlink > 1:
                    entry["link_group"] = groups.setdefault((st.st_dev, st.st_ino), rel)
            elif stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                entry["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            state[rel] = entry
    return state


def tree_differences(expected: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    """{path: (expected, got)} for every path whose description differs (None: absent).

    Comparing two 10,000-entry states with `==` gives a diff pytest truncates before
    the one path that differs; this names it.
    """
    return {
        path: (expected.get(path), got.get(path))
        for path in sorted(expected.keys() | got.keys())
        if expected.get(path) != got.get(path)
    }


def strata(
    root: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the real CLI in a child process against state root `root`."""
    return subprocess.run(
        [str(STRATA), "--root", str(root), *args],
        input=stdin,
        capture_output=True,
        check=False,
    )

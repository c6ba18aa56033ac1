"""Mounts as data, and the system calls that make and undo them.

A `MountSpec` is containerd's `mount.Mount` (`core/mount/mount.go`): the lingua franca
between a snapshotter, which says how to assemble a snapshot, and whoever mounts it (the
executor, a file op, a view). `mount_all` is containerd's `mount.All`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from strata.errors import StoreError
from strata.store.root import mounts_under

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

"""Applying a layer tar to a directory, refusing anything that would escape it.

A layer is untrusted input: its names may be absolute, climb out with `..`, or plant
a symlink and then write "through" it (`lib -> /etc`, then `lib/passwd`). Every
entry's name is cleaned and refused if it climbs or is absolute; every parent
directory on the way is checked to be a real directory of this tree (never a
symlink), and the final component is created without following links. The error is
a StoreError naming the refused entry.

Two modes:

- `overlay`: `dest` becomes one snapshot in overlayfs upper-dir format. `.wh.<x>`
  becomes a character device 0:0 and `.wh..wh..opq` the xattr
  `trusted.overlay.opaque=y`. The layer is applied into a staging directory beside
  `dest` and renamed onto it at the end, so `dest` either holds the whole layer or
  is untouched.
- `tree`: `dest` is a full file tree (lower layers already applied) and whiteouts
  delete from it. Contract: the caller owns `dest` as scratch; if the layer is
  refused or fails midway, `dest` is removed, so a half-applied tree never survives.

Whiteouts only hide what lower layers hold (OCI image-spec layer.md): a path the same
layer also creates is kept.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import stat
import tarfile
import uuid
from pathlib import Path
from typing import BinaryIO, cast

from strata.errors import StoreError
from strata.image.compress import CHUNK, open_decompressed, read_decompressed
from strata.image.layer import (
    OPAQUE_MARKER,
    OVERLAY_OPAQUE_XATTR,
    OVERLAY_XATTR_PREFIXES,
    WHITEOUT_PREFIX,
)
from strata.modes import ApplyMode

_ZEROS = bytes(CHUNK)
SPARSE_BLOCK = 64 << 10
_XATTR_KEYS = ("SCHILY.xattr.",)


class _HashingReader(io.RawIOBase):
    """Hands the decompressed tar to `tarfile` while hashing it: the layer's diff_id."""

    def __init__(self, raw: BinaryIO) -> None:
        self.hash = hashlib.sha256()
        self._raw = raw

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = read_decompressed(self._raw, size)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def apply_layer(stream: BinaryIO, dest: Path, *, mode: ApplyMode) -> str:
    """Apply the (gzip, zstd or plain) layer tar in `stream` to `dest`; return its diff_id."""
    if mode == "overlay":
        return _apply_overlay(stream, dest)
    if mode == "tree":
        if not dest.is_dir() or dest.is_symlink():
            raise StoreError(f"cannot apply layer: {dest} is not a directory")
        try:
            return _Applier(dest, overlay=False).run(stream)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
    raise ValueError(f"unknown apply mode {mode!r}")


def _apply_overlay(stream: BinaryIO, dest: Path) -> str:
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise StoreError(f"cannot apply layer: {dest} exists and is not an empty directory")
    staging = dest.parent / f".{dest.name}.apply-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    os.chmod(staging, 0o755)
    try:
        diff_id = _Applier(staging, overlay=True).run(stream)
        os.rename(staging, dest)  # replaces an empty dest directory atomically
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return diff_id


class _Applier:
    def __init__(self, dest: Path, *, overlay: bool) -> None:
        self.dest = os.fsencode(dest)
        self.overlay = overlay
        self.is_root = os.geteuid() == 0
        # Directories (relative paths) already checked to be real directories.
        self.checked_dirs: set[bytes] = {b""}
        # Paths this layer created: whiteouts and opaque markers never remove them.
        self.created: set[bytes] = set()
        self.dir_times: dict[bytes, int] = {}
        self.entry = ""

    def run(self, stream: BinaryIO) -> str:
        raw, _ = open_decompressed(stream)
        reader = _HashingReader(raw)
        try:
            archive = tarfile.open(fileobj=cast(BinaryIO, reader), mode="r|")  # noqa: SIM115
            while (member := archive.next()) is not None:
                self.entry = member.name
                self._apply_member(archive, member)
                forget_members(archive)
        except tarfile.TarError as exc:
            raise StoreError(f"invalid layer tar: {exc}") from exc
        except OSError as exc:
            raise StoreError(
                f"cannot apply layer entry {self.entry!r}: {exc.strerror or exc}"
            ) from exc
        reader.drain()
        for rel in sorted(self.dir_times, key=lambda p: p.count(b"/"), reverse=True):
            ns = self.dir_times[rel]
            os.utime(self._path(rel), ns=(ns, ns), follow_symlinks=False)
        return "sha256:" + reader.hash.hexdigest()

    # -- names ------------------------------------------------------------------------

    def _refuse(self, why: str) -> StoreError:
        return StoreError(f"refusing layer entry {self.entry!r}: {why}")

    def _clean(self, name: str) -> bytes:
        raw = os.fsencode(name)
        if raw.startswith(b"/"):
            raise self._refuse("absolute path")
        parts = [p for p in raw.split(b"/") if p not in (b"", b".")]
        if b".." in parts:
            raise self._refuse("path escapes the destination with '..'")
        return b"/".join(parts)

    def _path(self, rel: bytes) -> bytes:
        return self.dest + b"/" + rel if rel else self.dest

    def _ensure_dir(self, rel: bytes, *, create: bool) -> None:
        """Make sure every component of `rel` is a real directory (created if missing)."""
        if rel in self.checked_dirs:
            return
        parent = rel.rpartition(b"/")[0]
        self._ensure_dir(parent, create=create)
        path = self._path(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if not create:
                raise self._refuse(f"{os.fsdecode(rel)!r} does not exist") from None
            os.mkdir(path, 0o755)
            self.created.add(rel)
        else:
            if stat.S_ISLNK(st.st_mode):
                raise self._refuse(f"path goes through the symbolic link {os.fsdecode(rel)!r}")
            if not stat.S_ISDIR(st.st_mode):
                raise self._refuse(f"{os.fsdecode(rel)!r} is not a directory")
        self.checked_dirs.add(rel)

    def _remove(self, rel: bytes) -> None:
        """Remove whatever is at `rel` (a directory with all it holds)."""
        path = self._path(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
            prefix = rel + b"/"
            self.checked_dirs = {
                d for d in self.checked_dirs if d != rel and not d.startswith(prefix)
            }
            self.dir_times = {
                d: t for d, t in self.dir_times.items() if d != rel and not d.startswith(prefix)
            }
        else:
            os.unlink(path)

    # -- entries ----------------------------------------------------------------------

    def _apply_member(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        rel = self._clean(member.name)
        if not rel:
            if not member.isdir():
                raise self._refuse("the root of the layer must be a directory")
            self._set_metadata(rel, member)
            self.dir_times[rel] = _mtime_ns(member)
            return
        parent, _, base = rel.rpartition(b"/")
        self._ensure_dir(parent, create=True)
        if base.startswith(WHITEOUT_PREFIX):
            self._apply_whiteout(parent, base, _mtime_ns(member))
            return
        path = self._path(rel)
        if member.isdir():
            try:
                st: os.stat_result | None = os.lstat(path)
            except FileNotFoundError:
                st = None
            if st is None or not stat.S_ISDIR(st.st_mode):
                self._remove(rel)
                os.mkdir(path, 0o700)
            self.checked_dirs.add(rel)
            self.created.add(rel)
            self._set_metadata(rel, member)
            self.dir_times[rel] = _mtime_ns(member)
            return
        if member.islnk():
            target = self._clean(member.linkname)
            if not target:
                raise self._refuse("hard link to the root directory")
            self._ensure_dir(target.rpartition(b"/")[0], create=False)
            target_path = self._path(target)
            try:
                target_st = os.lstat(target_path)
            except FileNotFoundError:
                raise self._refuse(f"hard link target {member.linkname!r} does not exist") from None
            if stat.S_ISDIR(target_st.st_mode):
                raise self._refuse("hard link to a directory")
            if target == rel:
                return
            self._remove(rel)
            os.link(target_path, path, follow_symlinks=False)
            self.created.add(rel)
            return
        self._remove(rel)
        if member.isreg():
            self._write_file(archive, member, rel)
        elif member.issym():
            os.symlink(os.fsencode(member.linkname), path)
            self._set_metadata(rel, member)
        elif member.ischr() or member.isblk():
            if not self.is_root:
                return  # without CAP_MKNOD device nodes cannot exist (rootless convention)
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
            self._set_metadata(rel, member)
        elif member.isfifo():
            os.mkfifo(path, 0o600)
            self._set_metadata(rel, member)
        else:
            return  # GNU volume headers and the like carry no files
        self.created.add(rel)

    def _apply_whiteout(self, parent: bytes, base: bytes, mtime_ns: int) -> None:
        if base == OPAQUE_MARKER:
            if self.overlay:
                self._set_xattr(self._path(parent), OVERLAY_OPAQUE_XATTR, b"y", required=True)
                return
            prefix = parent + b"/" if parent else b""
            with os.scandir(self._path(parent)) as it:
                names = [e.name for e in it]
            for name in names:
                if prefix + name not in self.created:
                    self._remove(prefix + name)
            return
        if base.startswith(WHITEOUT_PREFIX * 2):
            return  # other AUFS metadata (.wh..wh.plnk, ...): not part of the image
        name = base[len(WHITEOUT_PREFIX) :]
        if name in (b".", b".."):
            raise self._refuse("whiteout of '.' or '..'")
        rel = parent + b"/" + name if parent else name
        if rel in self.created:
            return
        self._remove(rel)
        if self.overlay:
            if not self.is_root:
                raise self._refuse("whiteouts in overlay mode need root (mknod)")
            # mode 0, as overlayfs makes them
            os.mknod(self._path(rel), stat.S_IFCHR, os.makedev(0, 0))
            os.utime(self._path(rel), ns=(mtime_ns, mtime_ns), follow_symlinks=False)

    def _write_file(self, archive: tarfile.TarFile, member: tarfile.TarInfo, rel: bytes) -> None:
        """Write content; runs of zeros become holes, so sparse files stay sparse."""
        source = archive.extractfile(member)
        assert source is not None
        fd = os.open(
            self._path(rel),
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
        )
        try:
            while chunk := read_decompressed(cast(BinaryIO, source), CHUNK):
                _write_sparse(fd, chunk)
            os.ftruncate(fd, member.size)
            self._set_metadata(rel, member, fd=fd)
            ns = _mtime_ns(member)
            os.utime(fd, ns=(ns, ns))
        finally:
            os.close(fd)

    def _set_metadata(self, rel: bytes, member: tarfile.TarInfo, *, fd: int | None = None) -> None:
        """Owner, then mode, then xattrs (chown clears set-id bits and capabilities)."""
        path = self._path(rel)
        is_link = member.issym()
        if self.is_root:
            if fd is not None:
                os.fchown(fd, member.uid, member.gid)
            else:
                os.chown(path, member.uid, member.gid, follow_symlinks=False)
        if not is_link:
            if fd is not None:
                os.fchmod(fd, member.mode & 0o7777)
            else:
                os.chmod(path, member.mode & 0o7777)
        for key, value in sorted(member.pax_headers.items()):
            if not key.startswith(_XATTR_KEYS):
                continue
            name = key.split(".", 2)[2]
            if name.startswith(OVERLAY_XATTR_PREFIXES):
                continue  # a layer must not steer overlayfs (redirects, opaque flags)
            raw = value.encode("utf-8", "surrogateescape")
            self._set_xattr(fd if fd is not None else path, name, raw, required=False)
        if fd is None and not member.isdir():
            ns = _mtime_ns(member)
            os.utime(path, ns=(ns, ns), follow_symlinks=False)

    def _set_xattr(self, target: bytes | int, name: str, value: bytes, *, required: bool) -> None:
        try:
            if isinstance(target, int):
                os.setxattr(target, name, value)
            else:
                os.setxattr(target, name, value, follow_symlinks=False)
        except OSError as exc:
            unsupported = exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EACCES)
            if required or not unsupported or self.is_root:
                raise


def _write_sparse(fd: int, chunk: bytes) -> None:
    """Write `chunk` at the current offset, seeking over each all-zero 64 KiB block."""
    if chunk == _ZEROS[: len(chunk)]:
        os.lseek(fd, len(chunk), os.SEEK_CUR)
        return
    start = 0
    while start < len(chunk):
        end = min(start + SPARSE_BLOCK, len(chunk))
        # bytes slices compare with memcmp; memoryview comparison is 50x slower
        if chunk[start:end] == _ZEROS[: end - start]:
            os.lseek(fd, end - start, os.SEEK_CUR)
        else:
            view = memoryview(chunk)[start:end]
            while view:
                view = view[os.write(fd, view) :]
        start = end


def forget_members(archive: tarfile.TarFile) -> None:
    """In stream mode `tarfile` keeps every member read; drop them to stay constant-memory."""
    archive.members = []  # type: ignore[attr-defined]


def _mtime_ns(member: tarfile.TarInfo) -> int:
    return round(member.mtime * 1_000_000_000)

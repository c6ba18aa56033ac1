"""Turning a snapshot directory (overlayfs upper-dir format) into an OCI layer blob.

A snapshot records deletions the way overlayfs does: a removed path is a character
device 0:0 and a directory whose lower contents are hidden carries the xattr
`trusted.overlay.opaque=y`. A layer tar says the same with AUFS-style names:
`.wh.<name>` and `.wh..wh..opq` (OCI image-spec layer.md, "Whiteouts").

The tar is deterministic: entries depth-first in byte order of names, numeric
ids only, no user or group names, mtimes in whole seconds (optionally clamped to
SOURCE_DATE_EPOCH), and a fixed header format (tarformat.py). The uncompressed tar
is hashed (diff_id), compressed and hashed again (digest) in one streaming pass,
so memory stays constant whatever the layer size.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from strata.image.compress import CHUNK, Compressor
from strata.image.oci import Compression, layer_media_type
from strata.image.tarformat import (
    BLKTYPE,
    CHRTYPE,
    DIRTYPE,
    END_OF_ARCHIVE,
    FIFOTYPE,
    LNKTYPE,
    REGTYPE,
    SYMTYPE,
    TarHeader,
    padding,
)

WHITEOUT_PREFIX = b".wh."
OPAQUE_MARKER = b".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
# overlayfs keeps its own bookkeeping in these namespaces (origin, impure, redirect...);
# none of it describes the files, so none of it may enter a layer.
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")

_ZEROS = bytes(CHUNK)


@dataclass(frozen=True)
class LayerInfo:
    """What writing a layer produced: both digests, both sizes, and the media type."""

    diff_id: str
    digest: str
    size: int
    media_type: str
    uncompressed_size: int
    compression: Compression


class _LayerOutput:
    """Tar bytes in; diff_id and digest hashes, sizes and compressed bytes out.

    The compressor always receives whole CHUNK-sized pieces, whatever the sizes of the
    writes: ISA-L's output depends on how its input is split, and how a file is split
    depends on where its holes happen to be, which must not change the digest.
    """

    def __init__(self, out: BinaryIO, compression: Compression) -> None:
        self.tar_hash = hashlib.sha256()
        self.blob_hash = hashlib.sha256()
        self.tar_size = 0
        self.blob_size = 0
        self._out = out
        self._pending = bytearray()
        self._compressor = Compressor(compression, self._emit)

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        self.blob_hash.update(data)
        self.blob_size += len(data)
        self._out.write(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.tar_hash.update(data)
        self.tar_size += len(data)
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            take = min(CHUNK - len(self._pending), len(view) - pos)
            if take == CHUNK:
                self._compressor.write(view[pos : pos + CHUNK])
            else:
                self._pending += view[pos : pos + take]
                if len(self._pending) == CHUNK:
                    self._compressor.write(self._pending)
                    self._pending.clear()
            pos += take

    def finish(self) -> None:
        if self._pending:
            self._compressor.write(self._pending)
            self._pending.clear()
        self._compressor.finish()


def write_layer(
    diff_dir: Path,
    out: BinaryIO,
    *,
    compression: Compression = "gzip",
    source_date_epoch: int | None = None,
) -> LayerInfo:
    """Write `diff_dir` (upper-dir format) to `out` as a compressed OCI layer tar."""
    base = os.fsencode(diff_dir)
    output = _LayerOutput(out, compression)
    seen_inodes: dict[tuple[int, int], bytes] = {}
    buffer = bytearray(CHUNK)

    def clamp(mtime_ns: int) -> int:
        seconds = mtime_ns // 1_000_000_000
        if source_date_epoch is not None and seconds > source_date_epoch:
            return source_date_epoch
        return seconds

    if _is_opaque(base):
        output.write(_marker(OPAQUE_MARKER, clamp(os.lstat(base).st_mtime_ns)))

    for rel, st in _walk(base):
        path = base + b"/" + rel
        mode = st.st_mode
        mtime = clamp(st.st_mtime_ns)
        if stat.S_ISCHR(mode) and st.st_rdev == 0:
            parent, _, name = rel.rpartition(b"/")
            whiteout = (parent + b"/" if parent else b"") + WHITEOUT_PREFIX + name
            output.write(_marker(whiteout, mtime))
            continue
        if stat.S_ISSOCK(mode):
            continue  # sockets cannot be stored in a tar; they are never content
        header = TarHeader(
            name=rel,
            type=REGTYPE,
            mode=stat.S_IMODE(mode),
            uid=st.st_uid,
            gid=st.st_gid,
            mtime=mtime,
            xattrs=_xattrs(path),
        )
        if stat.S_ISDIR(mode):
            header.name = rel + b"/"
            header.type = DIRTYPE
            output.write(header.encode())
            if _is_opaque(path):
                output.write(_marker(rel + b"/" + OPAQUE_MARKER, mtime))
            continue
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = seen_inodes.get(key)
            if first is not None:
                header.type = LNKTYPE
                header.linkname = first
                output.write(header.encode())
                continue
            seen_inodes[key] = rel
        if stat.S_ISREG(mode):
            header.size = st.st_size
            output.write(header.encode())
            _copy_content(path, st.st_size, output, buffer)
            output.write(bytes(padding(st.st_size)))
            continue
        if stat.S_ISLNK(mode):
            header.type = SYMTYPE
            header.linkname = os.readlink(path)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            header.type = CHRTYPE if stat.S_ISCHR(mode) else BLKTYPE
            header.devmajor = os.major(st.st_rdev)
            header.devminor = os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            header.type = FIFOTYPE
        else:
            continue
        output.write(header.encode())

    output.write(END_OF_ARCHIVE)
    output.finish()
    return LayerInfo(
        diff_id="sha256:" + output.tar_hash.hexdigest(),
        digest="sha256:" + output.blob_hash.hexdigest(),
        size=output.blob_size,
        media_type=layer_media_type(compression),
        uncompressed_size=output.tar_size,
        compression=compression,
    )


def _walk(base: bytes) -> Iterator[tuple[bytes, os.stat_result]]:
    """Every path below `base`, depth-first, siblings in byte order (filepath.Walk order)."""
    stack: list[Iterator[tuple[bytes, os.stat_result]]] = [_children(base, b"")]
    while stack:
        try:
            rel, st = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        yield rel, st
        if stat.S_ISDIR(st.st_mode):
            stack.append(_children(base, rel))


def _children(base: bytes, rel: bytes) -> Iterator[tuple[bytes, os.stat_result]]:
    directory = base + b"/" + rel if rel else base
    with os.scandir(directory) as it:
        entries = sorted((e.name, e.stat(follow_symlinks=False)) for e in it)
    for name, st in entries:
        yield (rel + b"/" + name if rel else name), st


def _marker(name: bytes, mtime: int) -> bytes:
    return TarHeader(name=name, type=REGTYPE, mode=0o644, mtime=mtime).encode()


def _is_opaque(path: bytes) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _xattrs(path: bytes) -> dict[bytes, bytes]:
    """The path's extended attributes except overlayfs's own, sorted by name."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    found: dict[bytes, bytes] = {}
    for name in sorted(names):
        if name.startswith(OVERLAY_XATTR_PREFIXES):
            continue
        try:
            found[name.encode()] = os.getxattr(path, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.ENODATA:
                raise
    return found


def _copy_content(path: bytes, size: int, output: _LayerOutput, buffer: bytearray) -> None:
    """Stream exactly `size` bytes of a file, skipping the reads of sparse holes.

    Holes are emitted as zeros from a constant buffer (found with SEEK_DATA/SEEK_HOLE),
    so a 1 GiB sparse file costs hashing and compressing, not reading. A file that
    shrinks while we read is padded with zeros and one that grows is cut, so the tar
    stays well-formed; snapshots are not written while they are exported.
    """
    view = memoryview(buffer)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        pos = 0
        while pos < size:
            data_start = _seek(fd, pos, os.SEEK_DATA, size)
            _emit_zeros(output, data_start - pos)
            pos = data_start
            if pos >= size:
                break
            data_end = _seek(fd, pos, os.SEEK_HOLE, size)
            os.lseek(fd, pos, os.SEEK_SET)
            while pos < data_end:
                n = os.readv(fd, [view[: min(CHUNK, data_end - pos)]])
                if n == 0:
                    _emit_zeros(output, size - pos)
                    return
                output.write(view[:n])
                pos += n
    finally:
        os.close(fd)


def _seek(fd: int, pos: int, whence: int, size: int) -> int:
    try:
        return min(os.lseek(fd, pos, whence), size)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no data after pos: the rest is a hole
            return size
        if exc.errno == errno.EINVAL:  # file system without SEEK_DATA: read everything
            return pos if whence == os.SEEK_DATA else size
        raise


def _emit_zeros(output: _LayerOutput, count: int) -> None:
    zeros = memoryview(_ZEROS)
    while count > 0:
        n = min(count, CHUNK)
        output.write(zeros[:n])
        count -= n

"""Writing tar headers ourselves, so layer and archive bytes are ours to pin down.

Every entry is a POSIX ustar header, preceded by a PAX extended header only when a
value does not fit ustar (long names, big sizes or ids) or carries xattrs. The PAX
header itself is named `././@PaxHeader` with zero times and ids, and its records are
sorted, so identical inputs give identical bytes. (Python's `tarfile` reads all of
this; we only use it for reading.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

BLOCK = 512
END_OF_ARCHIVE = bytes(2 * BLOCK)

REGTYPE = b"0"
LNKTYPE = b"1"
SYMTYPE = b"2"
CHRTYPE = b"3"
BLKTYPE = b"4"
DIRTYPE = b"5"
FIFOTYPE = b"6"
PAXTYPE = b"x"

PAX_XATTR_PREFIX = b"SCHILY.xattr."
_NAME_MAX = 100
_PAX_NAME = b"././@PaxHeader"


@dataclass
class TarHeader:
    """One tar entry's metadata. Names and link targets are raw bytes (file names are)."""

    name: bytes
    type: bytes
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0
    linkname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[bytes, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The header block(s) for this entry: PAX record block(s) if needed, then ustar."""
        pax: dict[bytes, bytes] = {}
        if len(self.name) > _NAME_MAX:
            pax[b"path"] = self.name
        if len(self.linkname) > _NAME_MAX:
            pax[b"linkpath"] = self.linkname
        for key, value, width in (
            (b"size", self.size, 12),
            (b"uid", self.uid, 8),
            (b"gid", self.gid, 8),
            (b"mtime", self.mtime, 12),
        ):
            if not _fits_octal(value, width):
                pax[key] = str(value).encode()
        for xname, xvalue in self.xattrs.items():
            pax[PAX_XATTR_PREFIX + xname] = xvalue
        out = b""
        if pax:
            records = b"".join(_pax_record(k, pax[k]) for k in sorted(pax))
            out += _ustar_block(_PAX_NAME, PAXTYPE, 0o644, 0, 0, len(records), 0, b"", 0, 0)
            out += records + bytes(padding(len(records)))
        out += _ustar_block(
            self.name[:_NAME_MAX],
            self.type,
            self.mode & 0o7777,
            self.uid,
            self.gid,
            self.size,
            self.mtime,
            self.linkname[:_NAME_MAX],
            self.devmajor,
            self.devminor,
        )
        return out


def padding(size: int) -> int:
    """Zero bytes that follow `size` bytes of content to fill the last block."""
    return -size % BLOCK


def _fits_octal(value: int, width: int) -> bool:
    return 0 <= value < 1 << (3 * (width - 1))


def _octal(value: int, width: int) -> bytes:
    if not _fits_octal(value, width):
        value = 0  # the PAX header carries the real value
    return b"%0*o\0" % (width - 1, value)


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    digits = len(str(len(body)))
    length = len(body) + digits
    if len(str(length)) != digits:
        length = len(body) + len(str(length))
    return str(length).encode() + body


def _ustar_block(
    name: bytes,
    type_: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    linkname: bytes,
    devmajor: int,
    devminor: int,
) -> bytes:
    block = bytearray(BLOCK)
    block[0:100] = name.ljust(100, b"\0")
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(uid, 8)
    block[116:124] = _octal(gid, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(mtime, 12)
    block[148:156] = b" " * 8
    block[156:157] = type_
    block[157:257] = linkname.ljust(100, b"\0")
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    # uname (265:297) and gname (297:329) stay empty: ids are numeric only.
    block[329:337] = _octal(devmajor, 8)
    block[337:345] = _octal(devminor, 8)
    checksum = sum(block)
    block[148:155] = b"%06o\0" % checksum
    return bytes(block)


class TarStream:
    """A tar archive written front to back through `write`: for archives of blobs."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write

    def add_dir(self, name: str, *, mtime: int = 0) -> None:
        self._write(
            TarHeader(name.rstrip("/").encode() + b"/", DIRTYPE, 0o755, mtime=mtime).encode()
        )

    def add_bytes(self, name: str, data: bytes, *, mtime: int = 0) -> None:
        self._write(TarHeader(name.encode(), REGTYPE, 0o644, size=len(data), mtime=mtime).encode())
        self._write(data + bytes(padding(len(data))))

    def add_stream(self, name: str, size: int, source: BinaryIO, *, mtime: int = 0) -> None:
        """Copy exactly `size` bytes from `source`; a short or long source is an error."""
        self._write(TarHeader(name.encode(), REGTYPE, 0o644, size=size, mtime=mtime).encode())
        left = size
        while left:
            chunk = source.read(min(left, 1 << 20))
            if not chunk:
                raise ValueError(f"{name}: source ended {left} bytes early")
            self._write(chunk)
            left -= len(chunk)
        if source.read(1):
            raise ValueError(f"{name}: source is longer than {size} bytes")
        self._write(bytes(padding(size)))

    def close(self) -> None:
        self._write(END_OF_ARCHIVE)

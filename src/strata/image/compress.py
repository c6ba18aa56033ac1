"""Layer compression: streaming compressors, and decompression chosen by sniffing.

gzip goes through ISA-L (`isal`), several times faster than zlib at a similar ratio,
which is what makes exporting big layers cheap. zstd uses `zstandard`. Every
compressor here writes deterministic bytes (gzip header with mtime 0, single-threaded
zstd), so the same tar always gives the same blob digest.
"""

from __future__ import annotations

import bz2
import io
import lzma
from collections.abc import Callable
from typing import Any, BinaryIO, Literal, cast

import zstandard
from isal import igzip, igzip_lib, isal_zlib

from strata.errors import StoreError
from strata.image.oci import Compression

# ISA-L level 2 (its default): within ~10% of `gzip -6`'s ratio at over 10x its speed
# (bench/export.py). Level 3 gains 1% of ratio but is 40x slower on runs of zeros.
GZIP_LEVEL = 2
ZSTD_LEVEL = 3
CHUNK = 1 << 20

# isal ships no type hints; its decompression error is a plain Exception subclass.
_ISAL_ERROR = cast(type[Exception], igzip_lib.IsalError)

Sniffed = Literal["gzip", "zstd", "bzip2", "xz", "none"]

_MAGICS: tuple[tuple[bytes, Sniffed], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)


def sniff(head: bytes) -> Sniffed:
    """The compression a stream starting with `head` (≥ 6 bytes when available) uses."""
    for magic, kind in _MAGICS:
        if head.startswith(magic):
            return kind
    return "none"


def sniff_archive(head: bytes) -> Sniffed:
    """As moby/go-archive's `DetectCompression` reads a build context on stdin: `sniff`,
    except that gzip also needs its deflate method byte (`1f 8b 08`)."""
    kind = sniff(head)
    if kind == "gzip" and not head.startswith(b"\x1f\x8b\x08"):
        return "none"
    return kind


class Compressor:
    """Feeds compressed bytes to `sink` as data is written; `finish()` flushes the tail."""

    def __init__(
        self, kind: Compression, sink: Callable[[bytes | bytearray | memoryview], object]
    ) -> None:
        self.kind = kind
        self._sink = sink
        # Any: the compressors take any buffer (bytes, bytearray, memoryview).
        self._compress: Callable[[Any], bytes] | None
        self._flush: Callable[[], bytes] | None
        if kind == "gzip":
            gz = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)
            self._compress, self._flush = gz.compress, gz.flush
        elif kind == "zstd":
            zs = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
            self._compress, self._flush = zs.compress, zs.flush
        elif kind == "none":
            self._compress = self._flush = None
        else:
            raise ValueError(f"unknown compression {kind!r}")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._compress is None:
            self._sink(data)
            return
        out = self._compress(data)
        if out:
            self._sink(out)

    def finish(self) -> None:
        if self._flush is not None:
            out = self._flush()
            if out:
                self._sink(out)


class _Rewound(io.RawIOBase):
    """A stream with bytes already read from it pushed back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        if not data:
            return 0
        buffer[: len(data)] = data
        return len(data)


class _Checked(io.RawIOBase):
    """A decompressing stream whose format errors are StoreErrors.

    Readers such as `tarfile` call `read` directly; without this, a corrupt gzip
    member would escape them as a decompressor's own exception (a traceback).
    """

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return read_decompressed(self._inner, -1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


def open_decompressed(
    stream: BinaryIO, *, allowed: tuple[Sniffed, ...] = ("gzip", "zstd", "none")
) -> tuple[BinaryIO, Sniffed]:
    """Wrap `stream` so reads return its decompressed bytes; the format is sniffed.

    Layers only come as gzip, zstd or plain tar; `docker import` also takes bzip2 and
    xz, which callers enable through `allowed`.
    """
    head = b""
    while len(head) < 6:
        more = stream.read(6 - len(head))
        if not more:
            break
        head += more
    kind = sniff(head)
    if kind not in allowed:
        raise StoreError(f"unsupported compression {kind}")
    raw = io.BufferedReader(_Rewound(head, stream), CHUNK)
    decompressed: Any
    if kind == "gzip":
        decompressed = igzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call]
    elif kind == "zstd":
        decompressed = zstandard.ZstdDecompressor().stream_reader(
            raw, read_across_frames=True, closefd=False
        )
    elif kind == "bzip2":
        decompressed = bz2.BZ2File(raw)
    elif kind == "xz":
        decompressed = lzma.LZMAFile(raw)  # noqa: SIM115 - the caller closes it
    else:
        return cast(BinaryIO, raw), kind
    return cast(BinaryIO, _Checked(cast(BinaryIO, decompressed))), kind


def read_decompressed(stream: BinaryIO, size: int) -> bytes:
    """`stream.read(size)`, turning a corrupt compressed stream into a StoreError."""
    try:
        return stream.read(size)
    except (OSError, EOFError, zstandard.ZstdError, lzma.LZMAError, _ISAL_ERROR) as exc:
        raise StoreError(f"corrupt compressed data: {exc}") from exc

"""`strata import`: a root file system tarball becomes a one-layer image.

As with `docker import`, the tarball (plain, gzip, zstd, bzip2 or xz) is the layer:
its decompressed bytes are the diff_id, stored gzip-compressed. The bytes are read
once: they are hashed, compressed into the content store and parsed as tar on the way
(so a file that is not a tar is refused), in constant memory. Names in the tarball
are checked when a layer is applied (`apply_layer`), not here.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from strata.errors import StoreError
from strata.hostplatform import host_platform
from strata.image.apply import forget_members
from strata.image.changes import apply_changes
from strata.image.compress import CHUNK, Compressor, open_decompressed, read_decompressed
from strata.image.layer import LayerInfo
from strata.image.oci import layer_media_type
from strata.store.content import BlobWriter
from strata.store.images import ImageStore


class _TeeReader(io.RawIOBase):
    """What `tarfile` reads is also hashed (diff_id) and compressed into the blob."""

    def __init__(self, raw: BinaryIO, compressor: Compressor) -> None:
        self.hash = hashlib.sha256()
        self.size = 0
        self._raw = raw
        self._compressor = compressor

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = read_decompressed(self._raw, size)
        self.hash.update(data)
        self.size += len(data)
        self._compressor.write(data)
        return data


def created_now() -> str:
    """RFC 3339 UTC time for `created`; SOURCE_DATE_EPOCH pins it for reproducible imports."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch) if epoch else time.time(), UTC)
    return when.isoformat().replace("+00:00", "Z")


def import_tarball(
    images: ImageStore,
    stream: BinaryIO,
    *,
    source: str,
    changes: list[str] | None = None,
    message: str | None = None,
) -> str:
    """Store `stream` as a one-layer image; returns its manifest digest (dangling)."""
    content = images.content
    container_config = apply_changes({}, changes or [])  # a bad --change fails before reading
    # The lease holds the layer blob (perhaps already stored, unreferenced) until the
    # image does, whatever a concurrent rmi or sweep removes meanwhile.
    with content.lease() as lease:
        with content.writer(hold=lease) as blob:
            layer = _ingest_layer(stream, blob, source)
        return _commit(images, blob, layer, source, container_config, message)


def _commit(
    images: ImageStore,
    blob: BlobWriter,
    layer: LayerInfo,
    source: str,
    container_config: dict[str, Any],
    message: str | None,
) -> str:
    layer = LayerInfo(
        diff_id=layer.diff_id,
        digest=blob.digest,
        size=blob.size,
        media_type=layer.media_type,
        uncompressed_size=layer.uncompressed_size,
        compression="gzip",
    )
    os_name, arch, variant = host_platform()
    created = created_now()
    config: dict[str, Any] = {
        "architecture": arch,
        "os": os_name,
        "created": created,
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [
            {"created": created, "created_by": "", "comment": message or f"Imported from {source}"}
        ],
    }
    if variant:
        config["variant"] = variant
    return images.commit_image(config, [layer])


def _ingest_layer(stream: BinaryIO, blob: BlobWriter, source: str) -> LayerInfo:
    compressor = Compressor("gzip", blob.write)
    try:
        raw, _ = open_decompressed(stream, allowed=("gzip", "zstd", "bzip2", "xz", "none"))
        tee = _TeeReader(raw, compressor)
        archive = tarfile.open(fileobj=cast(BinaryIO, tee), mode="r|")  # noqa: SIM115
        while archive.next() is not None:
            forget_members(archive)
        while tee.read(CHUNK):
            pass
    except tarfile.TarError as exc:
        raise StoreError(f"{source}: not a tar archive ({exc})") from exc
    except StoreError as exc:  # corrupt or unsupported compression
        raise StoreError(f"{source}: {exc.message}") from exc
    compressor.finish()
    return LayerInfo(
        diff_id="sha256:" + tee.hash.hexdigest(),
        digest="",
        size=0,
        media_type=layer_media_type("gzip"),
        uncompressed_size=tee.size,
        compression="gzip",
    )

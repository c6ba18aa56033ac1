"""The image documents an output asks for, when they are not the image store's own.

The image store keeps one form of an image: an OCI manifest, gzip layers (base layers
as they came). Exporter attributes ask for others (`bk:exporter/containerimage/opts.go`,
`bk:cache/remote.go` for the compression rules):

- `compression=zstd|uncompressed|gzip`: new layers are written in it; layers that have
  a blob already keep it unless `force-compression=true` converts them too;
  `compression-level` sets the level of what is written now;
- `oci-mediatypes=false`: Docker schema 2 media types for the manifest, config and
  layers (same blob bytes);
- `rewrite-timestamp=true` (with SOURCE_DATE_EPOCH): the build's own layers are
  written again with every file time clamped to the epoch (base layers stay as pulled);
- `annotation.*`/`annotation-manifest.*` on the manifest; `annotation-index.*` and
  `annotation-manifest-descriptor.*` ask for an OCI index around it (platform set).

Every blob written here goes into the content store under the caller's lease.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, cast

import zstandard

from strata.export.outputs import ImageOptions, LayerCompression
from strata.image.compress import Compressor, open_decompressed
from strata.image.layer import write_layer
from strata.image.oci import (
    MEDIA_DOCKER_CONFIG,
    MEDIA_DOCKER_LAYER,
    MEDIA_DOCKER_LAYER_GZIP,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    Compression,
    Descriptor,
    canonical_json,
    compression_of_media_type,
    descriptor,
    layer_media_type,
)
from strata.solver.layers import ChainLayer
from strata.solver.records import LayerRow
from strata.store.content import ContentStore

__all__ = [
    "ImageDocuments",
    "convert_layers",
    "needs_conversion",
    "store_compression",
    "write_documents",
]

COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImageDocuments:
    """What `write_documents` stored: the top descriptor (manifest, or the index around
    it) and the manifest's own."""

    top: Descriptor
    manifest: Descriptor
    config_digest: str


def store_compression(compression: LayerCompression) -> Compression:
    """The content store's name for an exporter's compression value."""
    return "none" if compression == "uncompressed" else compression


class _Sink:
    """A write-only file that compresses into a content-store writer."""

    def __init__(
        self,
        write: Callable[[bytes | bytearray | memoryview], object],
        kind: Compression,
        level: int | None,
    ) -> None:
        self._write = write
        self._compress: Callable[[bytes], bytes] | None
        self._flush: Callable[[], bytes] | None
        self._plain: Compressor | None = None
        if level is None:
            self._plain = Compressor(kind, self._write)
            self._compress = self._flush = None
        elif kind == "gzip":
            # ISA-L has levels 0-3 only; a level asked for by number gets zlib's.
            gz = zlib.compressobj(max(0, min(9, level)), zlib.DEFLATED, 31)
            self._compress, self._flush = gz.compress, gz.flush
        elif kind == "zstd":
            zs = zstandard.ZstdCompressor(level=max(1, min(22, level))).compressobj()
            self._compress, self._flush = zs.compress, zs.flush
        else:
            self._compress = self._flush = None
        self.uncompressed = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.uncompressed += len(data)
        if self._plain is not None:
            self._plain.write(data)
        elif self._compress is not None:
            out = self._compress(bytes(data))
            if out:
                self._write(out)
        else:
            self._write(bytes(data))
        return len(data)

    def finish(self) -> None:
        if self._plain is not None:
            self._plain.finish()
        elif self._flush is not None:
            out = self._flush()
            if out:
                self._write(out)


def _record(content: ContentStore, row: LayerRow, kind: Compression) -> None:
    content.record_layer(
        digest=row.digest,
        diff_id=row.diff_id,
        compression=kind,
        media_type=row.media_type,
        uncompressed_size=row.uncompressed_size,
    )


def recompress(
    content: ContentStore, layer: LayerRow, kind: Compression, level: int | None, hold: str
) -> LayerRow:
    """The same diff as a blob in `kind` compression (streamed: constant memory)."""
    with content.open(layer.digest) as raw:
        stream, _ = open_decompressed(raw)
        with content.writer(hold=hold) as blob:
            sink = _Sink(blob.write, kind, level)
            while chunk := stream.read(COPY_CHUNK):
                sink.write(chunk)
            sink.finish()
    row = LayerRow(layer.diff_id, blob.digest, layer_media_type(kind), blob.size, sink.uncompressed)
    _record(content, row, kind)
    return row


def rewrite_layer(
    content: ContentStore,
    diff_dir: Any,
    kind: Compression,
    level: int | None,
    epoch: int,
    hold: str,
) -> LayerRow:
    """A snapshot's diff written again with file times clamped to `epoch`."""
    with content.writer(hold=hold) as blob:
        sink = _Sink(blob.write, kind, level)
        written = write_layer(
            diff_dir, cast(BinaryIO, sink), compression="none", source_date_epoch=epoch
        )
        sink.finish()
    row = LayerRow(written.diff_id, blob.digest, layer_media_type(kind), blob.size,
                   written.uncompressed_size)
    _record(content, row, kind)
    return row


def convert_layers(
    content: ContentStore,
    layers: Sequence[ChainLayer],
    options: ImageOptions,
    *,
    base_diff_ids: Sequence[str],
    diff_dir: Callable[[str], Any],
    source_date_epoch: int | None,
    hold: str,
) -> list[ChainLayer]:
    """`layers` as `options` want them (see the module docstring). The first layers
    matching `base_diff_ids` are the base image's: never rewritten for timestamps."""
    kind = store_compression(options.compression)
    level = options.compression_level
    out: list[ChainLayer] = []
    for index, item in enumerate(layers):
        row = item.layer
        is_base = index < len(base_diff_ids) and base_diff_ids[index] == row.diff_id
        if options.rewrite_timestamp and source_date_epoch is not None and not is_base:
            row = rewrite_layer(
                content, diff_dir(item.snapshot.key), kind, level, source_date_epoch, hold
            )
        elif _must_convert(options, compression_of_media_type(row.media_type), kind):
            row = recompress(content, row, kind, level, hold)
        else:
            content.add_refs(hold, [row.digest])
        out.append(replace(item, layer=row))
    return out


def _must_convert(options: ImageOptions, current: Compression | None, wanted: Compression) -> bool:
    """Forced, or a zstd blob where Docker media types are asked for (they have no
    zstd type: BuildKit converts it, `bk:cache/remote.go` needsForceCompression)."""
    if current == wanted:
        return False
    return options.force_compression or (not options.oci_mediatypes and current == "zstd")


def needs_conversion(options: ImageOptions) -> bool:
    """Whether `convert_layers` may change anything for these options."""
    return options.force_compression or options.rewrite_timestamp or not options.oci_mediatypes


def _docker_layer_type(media_type: str) -> str:
    kind = compression_of_media_type(media_type)
    if kind == "gzip":
        return MEDIA_DOCKER_LAYER_GZIP
    if kind == "none":
        return MEDIA_DOCKER_LAYER
    return media_type  # zstd has no Docker type: it keeps the OCI one


def write_documents(
    content: ContentStore,
    config: dict[str, Any],
    layers: Sequence[ChainLayer],
    options: ImageOptions,
    *,
    hold: str,
) -> ImageDocuments:
    """Store the config, the manifest (and the index when asked for) of the image."""
    docker = not options.oci_mediatypes and all(
        compression_of_media_type(item.layer.media_type) != "zstd" for item in layers
    )
    config_bytes = canonical_json(config)
    config_digest = content.ingest_bytes(config_bytes, hold=hold)
    manifest_type = MEDIA_DOCKER_MANIFEST if docker else MEDIA_OCI_MANIFEST
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": descriptor(
            MEDIA_DOCKER_CONFIG if docker else MEDIA_OCI_CONFIG, config_digest, len(config_bytes)
        ),
        "layers": [
            descriptor(
                _docker_layer_type(item.layer.media_type) if docker else item.layer.media_type,
                item.layer.digest,
                item.layer.size,
            )
            for item in layers
        ],
    }
    manifest_annotations = options.annotations_for("annotation", "annotation-manifest")
    if manifest_annotations:
        manifest["annotations"] = manifest_annotations
    manifest_bytes = canonical_json(manifest)
    manifest_digest = content.ingest_bytes(manifest_bytes, hold=hold)
    manifest_desc = descriptor(manifest_type, manifest_digest, len(manifest_bytes))
    if not options.needs_index:
        return ImageDocuments(manifest_desc, manifest_desc, config_digest)
    entry: dict[str, Any] = dict(manifest_desc)
    platform = {"architecture": config.get("architecture", ""), "os": config.get("os", "")}
    if config.get("variant"):
        platform["variant"] = config["variant"]
    entry["platform"] = platform
    descriptor_annotations = options.annotations_for("annotation-manifest-descriptor")
    if descriptor_annotations:
        entry["annotations"] = descriptor_annotations
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": [entry]}
    index_annotations = options.annotations_for("annotation-index")
    if index_annotations:
        index["annotations"] = index_annotations
    index_bytes = canonical_json(index)
    index_digest = content.ingest_bytes(index_bytes, hold=hold)
    return ImageDocuments(
        descriptor(MEDIA_OCI_INDEX, index_digest, len(index_bytes)), manifest_desc, config_digest
    )

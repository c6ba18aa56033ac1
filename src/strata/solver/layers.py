"""A result snapshot's chain as image layers, each compressed at most once.

The result of the target is a committed snapshot; its parents, up to the root, are the
image's layers in order (base image layers first). Each snapshot's diff becomes one
layer blob. Snapshots never change, so the blob written for one is remembered
(`solver_layers`) and reused by every later export; base image snapshots were recorded
with the image's own blobs when they were unpacked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, cast

from strata.image.layer import write_layer
from strata.image.oci import Compression
from strata.solver.records import CacheRecords, LayerRow
from strata.store.content import ContentStore
from strata.worker.snapshots.snapshotter import SnapshotInfo, Snapshotter

COMPRESSION: Compression = "gzip"


@dataclass(frozen=True)
class ChainLayer:
    """One layer of an exported image and the snapshot it came from."""

    snapshot: SnapshotInfo
    layer: LayerRow


def snapshot_chain(snapshotter: Snapshotter, name: str | None) -> list[SnapshotInfo]:
    """The committed snapshots from the root to `name` (empty for scratch)."""
    chain: list[SnapshotInfo] = []
    current = name
    while current is not None:
        info = snapshotter.stat(current)
        chain.append(info)
        current = info.parent
    chain.reverse()
    return chain


def layer_for_snapshot(
    snapshotter: Snapshotter,
    records: CacheRecords,
    content: ContentStore,
    info: SnapshotInfo,
    compression: Compression = COMPRESSION,
) -> LayerRow:
    """The stored layer blob of one snapshot's diff, writing it (in `compression`) if
    not known yet; a blob known in another compression is reused."""
    known = records.reusable_layer_of(info.key, compression)
    if known is not None and content.has(known.digest):
        return known
    with content.writer() as blob:
        written = write_layer(
            snapshotter.diff_dir(info.key), cast(BinaryIO, blob), compression=compression
        )
    row = LayerRow(
        diff_id=written.diff_id,
        digest=blob.digest,
        media_type=written.media_type,
        size=blob.size,
        uncompressed_size=written.uncompressed_size,
    )
    content.record_layer(
        digest=row.digest,
        diff_id=row.diff_id,
        compression=compression,
        media_type=row.media_type,
        uncompressed_size=row.uncompressed_size,
    )
    records.remember_layer(info.key, compression, row)
    return row


def image_layers(
    snapshotter: Snapshotter,
    records: CacheRecords,
    content: ContentStore,
    name: str | None,
    compression: Compression = COMPRESSION,
) -> list[ChainLayer]:
    return [
        ChainLayer(info, layer_for_snapshot(snapshotter, records, content, info, compression))
        for info in snapshot_chain(snapshotter, name)
    ]

"""Source ops: base images from the image store, and ADD's URLs and git repositories.

A base image is unpacked into a chain of snapshots named by chain ID
(`strata.worker.unpack`); its result is the top one, and each chain snapshot is
remembered as the image's own layer blob so an export never re-compresses a base layer.

A URL or git source is fetched on every build (BuildKit asks the server each time too);
its key covers what was fetched (file digest, name and Last-Modified, or commit), so an
unchanged download is a cache hit (printed CACHED) and keeps the steps reading it cached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from strata.image.oci import Descriptor, compression_of_media_type
from strata.plan.ops import GitSource, HttpSource
from strata.solver.records import CacheRecords, LayerRow
from strata.store.images import Image
from strata.store.root import StateRoot
from strata.worker.archive import fetch_git, fetch_url
from strata.worker.snapshots.snapshotter import Snapshotter
from strata.worker.unpack import FetchLayers, chain_ids, unpack_image


class BaseLayers(Protocol):
    """Where the layer blobs of a lazily pulled base image come from
    (`strata.registry.pull.ImagePuller`)."""

    def fetch_layers(
        self,
        source: str,
        layers: Sequence[Descriptor],
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Sequence[str]: ...


def image_chain(image: Image) -> list[str]:
    return chain_ids([layer.diff_id for layer in image.layers])


def unpack_base_image(
    root: StateRoot,
    snapshotter: Snapshotter,
    records: CacheRecords,
    image: Image,
    fetch: FetchLayers | None = None,
) -> tuple[str | None, bool]:
    """Unpack `image`, fetching missing layer blobs with `fetch`; returns (top snapshot
    name, whether every layer was there already)."""
    names = image_chain(image)
    present = all(snapshotter.exists(name) for name in names)
    top = unpack_image(root, snapshotter, image, fetch)
    if not present:
        for layer, name in zip(image.layers, names, strict=True):
            record = root_layer_row(
                records, layer.diff_id, layer.digest, layer.media_type, layer.size
            )
            # Filed under the blob's own compression; exports reuse it whatever that is
            # (`CacheRecords.reusable_layer_of`).
            compression = compression_of_media_type(layer.media_type) or "gzip"
            records.remember_layer(name, compression, record)
    return top, present


def root_layer_row(
    records: CacheRecords, diff_id: str, digest: str, media_type: str, size: int
) -> LayerRow:
    from strata.store.content import ContentStore

    content = ContentStore(records.root)
    described = content.layer_record(digest)
    uncompressed = described.uncompressed_size if described is not None else size
    return LayerRow(diff_id, digest, media_type, size, uncompressed)


def fetch_source(op: HttpSource | GitSource, dest: Path) -> tuple[str, Path]:
    """Fetch below the empty directory `dest`; returns what the content is keyed by and
    the directory holding the fetched tree."""
    if isinstance(op, HttpSource):
        fetched = fetch_url(
            op.url, dest, checksum=op.checksum or None, filename=op.filename or None
        )
        # The file's mtime is its Last-Modified, so that is part of the key too (BuildKit
        # source/http/source.go formatCacheKey: name, content digest, Last-Modified).
        modified = fetched.last_modified.isoformat() if fetched.last_modified else ""
        return f"{fetched.digest} {fetched.filename} {modified}".rstrip(), dest
    tree = dest / "tree"
    got = fetch_git(
        op.remote,
        tree,
        ref=op.ref,
        subdir=op.subdir,
        keep_git_dir=op.keep_git_dir,
        checksum=op.checksum,
    )
    return f"git {got.commit}", tree

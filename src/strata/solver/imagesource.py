"""The base image source (FROM): `ImageSourceRunner`, and unpacking an image's layers.

A base image is unpacked into a chain of snapshots named by chain ID
(`strata.worker.unpack`); its result is the top one, and each chain snapshot is
remembered as the image's own layer blob so an export never re-compresses a base layer.
The chain is the image's own cache: the vertex is CACHED when every snapshot of it was
here already. With a remote cache the steps on the base may all hit, so the base is
unpacked (and its layers downloaded) only when something needs its files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from strata.image.oci import Descriptor, compression_of_media_type, descriptor
from strata.plan.ops import ImageSource
from strata.solver.keys import image_source_key
from strata.solver.records import CacheRecords, LayerRow
from strata.solver.results import SnapshotResult
from strata.solver.runner import CacheMap, CachePolicy, Outcome, Step
from strata.store.images import Image, ImageLayer, ImageStore
from strata.store.root import StateRoot
from strata.worker.snapshots.snapshotter import Snapshotter
from strata.worker.unpack import FetchLayers, LayerRef, chain_ids, unpack_image


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


class ImageSourceRunner:
    """Solves an `ImageSource`: resolved for its key on every build, unpacked on need."""

    def __init__(
        self,
        *,
        root: StateRoot,
        snapshotter: Snapshotter,
        records: CacheRecords,
        images: ImageStore,
        base_layers: BaseLayers | None,
        lazy: bool,
    ) -> None:
        self.root = root
        self.snapshotter = snapshotter
        self.records = records
        self.images = images
        self.base_layers = base_layers
        # A remote cache is in use: a base not unpacked yet is unpacked only on need.
        self.lazy = lazy

    def cache_map(self, step: Step) -> CacheMap:
        op = self._op(step)
        image = self.images.image(op.manifest_digest)
        chain = image_chain(image)
        key, components = image_source_key(op, chain[-1] if chain else None)
        # The image is resolved for its cache key on every build, so even a CACHED FROM
        # shows `resolve ... done` first (BuildKit source/containerimage/pull.go).
        step.started()
        step.status(f"resolve {op.ref}@{op.manifest_digest}", done=True)
        return CacheMap(key, components, CachePolicy.RUNNER, found=image)

    def run(self, step: Step, cache: CacheMap) -> Outcome:
        op = self._op(step)
        image = cache.found
        assert isinstance(image, Image)
        chain = image_chain(image)
        fetch = self._layer_fetcher(step, op)
        if self.lazy and chain and not self.snapshotter.exists(chain[-1]):

            def unpack() -> None:
                unpack_base_image(self.root, self.snapshotter, self.records, image, fetch)

            return Outcome(SnapshotResult(chain[-1]), cached=True, unpack=unpack)
        # Whether the chain was all there is checked (before unpacking) by
        # `unpack_base_image`, not a second time here.
        top, present = unpack_base_image(self.root, self.snapshotter, self.records, image, fetch)
        return Outcome(SnapshotResult(top), cached=present)

    def _layer_fetcher(self, step: Step, op: ImageSource) -> FetchLayers | None:
        """Downloads of a lazily pulled base's layers, shown on its FROM vertex as
        BuildKit shows them (`sha256:<digest> 1.05MB / 3.40MB 0.2s done`)."""
        base_layers = self.base_layers
        if base_layers is None:
            return None

        def progress(digest: str, done: int, total: int) -> None:
            step.status(digest, current=done, total=total, done=0 < total <= done)

        def fetch(layers: Sequence[LayerRef]) -> None:
            wanted = [
                descriptor(layer.media_type, layer.digest, layer.size)
                for layer in layers
                if isinstance(layer, ImageLayer)
            ]
            base_layers.fetch_layers(op.ref, wanted, progress)

        return fetch

    @staticmethod
    def _op(step: Step) -> ImageSource:
        op = step.vertex.op
        assert isinstance(op, ImageSource)
        return op

"""Base images unpacked by the solver: each chain snapshot is remembered as the image's
own layer blob, under that blob's real compression."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.image.layer import write_layer
from strata.solver.records import CacheRecords
from strata.solver.sources import image_chain, unpack_base_image
from strata.store.images import ImageStore
from strata.store.root import StateRoot
from strata.worker.snapshot import open_snapshotter


@pytest.fixture
def root(tmp_path: Path) -> Iterator[StateRoot]:
    state = StateRoot.open(tmp_path / "root")
    yield state
    state.close()


def test_base_layers_are_remembered_under_their_own_compression(
    root: StateRoot, tmp_path: Path
) -> None:
    images = ImageStore(root)
    written = []
    kinds = ("zstd", "none", "gzip")
    for index, kind in enumerate(kinds):
        tree = tmp_path / f"layer{index}"
        tree.mkdir()
        (tree / f"file{index}").write_text(kind)
        with images.content.writer() as writer:
            written.append(write_layer(tree, writer, compression=kind))
    manifest = images.commit_image({"architecture": "amd64", "os": "linux"}, written)
    image = images.image(manifest)
    records = CacheRecords(root)
    snapshotter = open_snapshotter(root, "native")
    top, present = unpack_base_image(root, snapshotter, records, image)
    assert top is not None and not present
    digests = [layer.digest for layer in image.layers]
    for name, kind, digest in zip(image_chain(image), kinds, digests, strict=True):
        row = records.layer_of(name, kind)
        assert row is not None, kind
        assert row.digest == digest
        for other in set(kinds) - {kind}:
            assert records.layer_of(name, other) is None, (kind, other)

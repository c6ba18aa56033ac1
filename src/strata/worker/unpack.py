"""Unpacking an image's layers into a chain of committed snapshots.

Each layer becomes one snapshot named by its chain ID (OCI image-spec config.md:
ChainID(L0) = DiffID(L0), ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))),
so images sharing base layers share snapshots, and a second unpack of the same image
costs only metadata look-ups. Concurrent unpackers of one chain serialise on a lock
per chain ID; the second finds the snapshot committed and moves on.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

from strata.errors import StoreError
from strata.store.root import StateRoot
from strata.worker.snapshots.snapshotter import Snapshotter


class LayerRef(Protocol):
    @property
    def diff_id(self) -> str: ...
    @property
    def digest(self) -> str: ...


class ImageLike(Protocol):
    @property
    def layers(self) -> Sequence[LayerRef]: ...


# Brings the blobs of these layers into the content store (a lazily pulled base image:
# its layers are downloaded only when a snapshot has to be made from them).
FetchLayers = Callable[[Sequence[LayerRef]], None]


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain ID after each layer."""
    chain: list[str] = []
    for diff_id in diff_ids:
        if not chain:
            chain.append(diff_id)
        else:
            digest = hashlib.sha256(f"{chain[-1]} {diff_id}".encode()).hexdigest()
            chain.append(f"sha256:{digest}")
    return chain


def unpack_image(
    root: StateRoot,
    snapshotter: Snapshotter,
    image: ImageLike,
    fetch: FetchLayers | None = None,
) -> str | None:
    """Make sure every layer of `image` is a committed snapshot; return the top one's
    name (None for an image without layers, i.e. `FROM scratch`-like).

    Blobs the content store lacks for snapshots still to be made are first handed to
    `fetch`, all at once (so they download in parallel); layers whose snapshots exist
    are never fetched."""
    from strata.image.apply import apply_layer
    from strata.store.content import ContentStore

    content = ContentStore(root)
    layers = list(image.layers)
    names = chain_ids([layer.diff_id for layer in layers])
    if fetch is not None:
        wanted = [
            layer
            for layer, name in zip(layers, names, strict=True)
            if not snapshotter.exists(name) and not content.has(layer.digest)
        ]
        if wanted:
            fetch(wanted)
    parent: str | None = None
    for layer, name in zip(layers, names, strict=True):
        if not snapshotter.exists(name):
            with root.lock(f"unpack-{snapshotter.name}-{name}"):
                if not snapshotter.exists(name):
                    key = f"extract-{uuid.uuid4().hex}-{name}"
                    snapshotter.prepare(key, parent)
                    try:
                        with content.open(layer.digest) as blob:
                            diff_id = apply_layer(
                                blob, snapshotter.upper_dir(key), mode=snapshotter.apply_mode
                            )
                        if diff_id != layer.diff_id:
                            raise StoreError(
                                f"layer {layer.digest} unpacks to {diff_id}, "
                                f"but the image config says {layer.diff_id}"
                            )
                        snapshotter.commit(name, key)
                    except BaseException:
                        snapshotter.remove(key)
                        raise
        parent = name
    return parent

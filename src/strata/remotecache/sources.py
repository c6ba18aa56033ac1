"""Caches to import that are not in a registry: a layout directory, a local image.

Each is a `BlobSource` (where blobs come from when a hit is unpacked) and a
`CacheLoader` (`load`: the records it holds). The registry's is `registry.RegistrySource`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from strata.errors import StoreError, StrataError
from strata.image.oci import Descriptor
from strata.remotecache.config import decode_config
from strata.remotecache.imported import LoadedCache
from strata.remotecache.inline import INLINE_KEY, read_inline_entries
from strata.remotecache.layout import LayoutDir
from strata.remotecache.manifest import read_cache_document
from strata.remotecache.mounts import cache_mount_blobs
from strata.remotecache.spec import CacheSpec
from strata.store.content import ContentStore
from strata.store.images import ImageStore


class LocalSource:
    """A `type=local` cache being imported (a `BlobSource`)."""

    def __init__(self, spec: CacheSpec) -> None:
        self.layout = LayoutDir(Path(spec.get("src")))
        self.spec = spec

    @property
    def name(self) -> str:
        return str(self.layout.path)

    def fetch(self, layers: Sequence[Descriptor], content: ContentStore) -> None:
        self.layout.fetch(layers, content)

    def load(self) -> LoadedCache:
        top = self.layout.find(tag=self.spec.get("tag", "latest"), digest=self.spec.get("digest"))
        found = read_cache_document(self.layout.read(top))
        if found.config is None:
            raise StrataError(f"{self.name}: not a build cache (an image without cache config)")
        blobs = {d["digest"]: d for d in found.blobs}
        entries = decode_config(self.layout.read(found.config), blobs)
        return LoadedCache(self, entries, tuple(cache_mount_blobs(found.blobs)))


class ImageStoreSource:
    """An image in the local image store whose config holds inline cache records (a
    `type=registry` cache naming a local image, as `docker build --cache-from` reads
    local images). Its blobs are the image's own, already in the content store."""

    def __init__(self, spec: CacheSpec, images: ImageStore) -> None:
        self.spec = spec
        self.images = images

    @property
    def name(self) -> str:
        return self.spec.get("ref")

    def fetch(self, layers: Sequence[Descriptor], content: ContentStore) -> None:
        for desc in layers:
            if not content.has(desc["digest"]):
                raise StoreError(f"{self.name}: layer {desc['digest']} is not in the content store")

    def load(self) -> LoadedCache:
        image = self.images.load_image(self.name)
        layers = list(image.manifest["layers"])
        entries = read_inline_entries(image.config, layers)
        if not entries and INLINE_KEY not in image.config:
            raise StoreError(f"{self.name}: the image holds no inline cache")
        return LoadedCache(self, entries)


class CacheLoader(Protocol):
    def load(self) -> LoadedCache: ...

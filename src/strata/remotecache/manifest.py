"""The document that points at a cache: an OCI image manifest, or an index.

BuildKit `cache/remotecache/export.go` (`NewExportableCache`, `Finalize`):

- `image-manifest=true` (the default since BuildKit v0.21; needs OCI media types): an
  image manifest whose `config` is the cache config and whose `layers` are the blobs;
  registries that refuse indexes of non-manifests (ECR, GCR) take it;
- `image-manifest=false`: an index (a Docker manifest list with `oci-mediatypes=false`)
  whose `manifests` are the layer descriptors followed by the config's.

Reading sniffs which one it is (BuildKit `import.go` `Resolve`); a document with no
cache config is an image, whose config may hold inline cache records (`inline.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strata.errors import StoreError
from strata.image.oci import (
    MEDIA_DOCKER_LAYER_GZIP,
    MEDIA_DOCKER_MANIFEST_LIST,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER_GZIP,
    MEDIA_OCI_MANIFEST,
    Descriptor,
    canonical_json,
    descriptor,
    parse_json_object,
    sha256_digest,
)
from strata.remotecache.config import CACHE_CONFIG_MEDIA_TYPE

IMAGE_MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json")
INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST_LIST)


@dataclass(frozen=True)
class CacheDocument:
    """A written cache manifest or index: its bytes and its descriptor."""

    body: bytes
    media_type: str

    @property
    def descriptor(self) -> Descriptor:
        return descriptor(self.media_type, sha256_digest(self.body), len(self.body))


@dataclass(frozen=True)
class CacheManifest:
    """What a cache's top document names: the config and every other blob."""

    config: Descriptor | None  # None: not a cache (perhaps an image with inline cache)
    blobs: tuple[Descriptor, ...]
    image_config: Descriptor | None = None  # an image manifest's config


def layer_media_type(media_type: str, oci: bool) -> str:
    """A layer's media type in the family asked for (`oci-mediatypes`)."""
    if not oci and media_type == MEDIA_OCI_LAYER_GZIP:
        return MEDIA_DOCKER_LAYER_GZIP
    if oci and media_type == MEDIA_DOCKER_LAYER_GZIP:
        return MEDIA_OCI_LAYER_GZIP
    return media_type


def cache_document(
    config: Descriptor, blobs: Sequence[Descriptor], *, image_manifest: bool, oci: bool
) -> CacheDocument:
    """The manifest (or index) of a cache whose config and blobs are these."""
    if image_manifest:
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": config,
            "layers": list(blobs),
        }
        return CacheDocument(canonical_json(manifest), MEDIA_OCI_MANIFEST)
    media_type = MEDIA_OCI_INDEX if oci else MEDIA_DOCKER_MANIFEST_LIST
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": [*blobs, config]}
    return CacheDocument(canonical_json(index), media_type)


def read_cache_document(body: bytes) -> CacheManifest:
    """Sniff a cache's top document (a StoreError when it is neither form)."""
    document = parse_json_object(body, "cache manifest")
    if isinstance(document.get("manifests"), list):
        entries = [_checked(d) for d in document["manifests"]]
        configs = [d for d in entries if d["mediaType"] == CACHE_CONFIG_MEDIA_TYPE]
        if not configs:
            raise StoreError("cache manifest: an index without a cache config")
        return CacheManifest(configs[0], tuple(d for d in entries if d is not configs[0]))
    config = document.get("config")
    layers = document.get("layers")
    if isinstance(config, dict) and isinstance(layers, list):
        checked_config = _checked(config)
        blobs = tuple(_checked(d) for d in layers)
        if checked_config["mediaType"] == CACHE_CONFIG_MEDIA_TYPE:
            return CacheManifest(checked_config, blobs)
        return CacheManifest(None, blobs, image_config=checked_config)
    raise StoreError("cache manifest: neither an image manifest nor an index")


def _checked(value: object) -> Descriptor:
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("mediaType"), str)
        or not isinstance(value.get("digest"), str)
        or not isinstance(value.get("size"), int)
    ):
        raise StoreError(f"cache manifest: malformed descriptor {value!r}")
    return value  # type: ignore[return-value]

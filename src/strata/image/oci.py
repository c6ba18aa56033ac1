"""OCI and Docker image formats: media types, JSON shapes and canonical bytes.

The store keeps manifests and configs as the exact bytes they arrived in (their digest
is their identity), so these types describe JSON we read, not objects we own: unknown
fields must survive a load → save round trip, which is why they are `TypedDict`s over
plain dicts rather than classes.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal, NotRequired, TypedDict

from strata.errors import StoreError

Compression = Literal["gzip", "zstd", "none"]

# OCI image spec (image-spec/media-types.md)
OCI_LAYOUT_VERSION = "1.0.0"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

# Docker image manifest v2, schema 2
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_MEDIA_TYPES = frozenset({MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST})
INDEX_MEDIA_TYPES = frozenset({MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST_LIST})

# Annotations on index.json entries: the OCI tag, and the full name containerd, Docker
# (≥ 25) and BuildKit's OCI exporter add beside it.
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class Descriptor(TypedDict):
    mediaType: str
    digest: str
    size: int
    annotations: NotRequired[dict[str, str]]
    platform: NotRequired[dict[str, Any]]


class Manifest(TypedDict):
    schemaVersion: int
    mediaType: NotRequired[str]
    config: Descriptor
    layers: list[Descriptor]
    annotations: NotRequired[dict[str, str]]


class Index(TypedDict):
    schemaVersion: int
    mediaType: NotRequired[str]
    manifests: list[Descriptor]
    annotations: NotRequired[dict[str, str]]


def canonical_json(value: Any) -> bytes:
    """Stable bytes for a JSON value: sorted keys, no spaces, UTF-8.

    Two processes that build the same config must produce the same digest, so every
    document strata creates goes through this one encoder.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(value: str) -> bool:
    return bool(_DIGEST_RE.match(value))


def check_digest(value: str) -> str:
    """Return `value` if it is a `sha256:<64 hex>` digest, else raise a StoreError."""
    if not isinstance(value, str) or not _DIGEST_RE.match(value):
        raise StoreError(f"invalid digest {value!r}: expected sha256:<64 hex digits>")
    return value


def descriptor(media_type: str, digest: str, size: int) -> Descriptor:
    return {"mediaType": media_type, "digest": digest, "size": size}


def parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    """Decode a JSON object, naming `what` in the error when it is not one."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{what}: invalid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise StoreError(f"{what}: expected a JSON object")
    return value


def parse_manifest(data: bytes, what: str = "manifest") -> Manifest:
    """Check the fields strata relies on and return the manifest."""
    value = parse_json_object(data, what)
    config = value.get("config")
    layers = value.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise StoreError(f"{what}: not an image manifest (no config or layers)")
    for desc in [config, *layers]:
        _check_descriptor(desc, what)
    return value  # type: ignore[return-value]


def parse_index(data: bytes, what: str = "index") -> Index:
    value = parse_json_object(data, what)
    manifests = value.get("manifests")
    if not isinstance(manifests, list):
        raise StoreError(f"{what}: not an image index (no manifests)")
    for desc in manifests:
        _check_descriptor(desc, what)
    return value  # type: ignore[return-value]


def _check_descriptor(desc: Any, what: str) -> None:
    if (
        not isinstance(desc, dict)
        or not isinstance(desc.get("mediaType", ""), str)
        or not isinstance(desc.get("size"), int)
    ):
        raise StoreError(f"{what}: malformed descriptor {desc!r}")
    check_digest(desc.get("digest", ""))


def diff_ids_of(config: dict[str, Any]) -> list[str]:
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict):
        return []
    ids = rootfs.get("diff_ids")
    return [str(x) for x in ids] if isinstance(ids, list) else []


def layer_media_type(compression: Compression) -> str:
    return {
        "gzip": MEDIA_OCI_LAYER_GZIP,
        "zstd": MEDIA_OCI_LAYER_ZSTD,
        "none": MEDIA_OCI_LAYER,
    }[compression]


def compression_of_media_type(media_type: str) -> Compression | None:
    """What a layer media type says about its compression (None: not a layer type)."""
    if media_type in (
        MEDIA_OCI_LAYER_GZIP,
        MEDIA_DOCKER_LAYER_GZIP,
        MEDIA_DOCKER_LAYER_FOREIGN,
        MEDIA_OCI_LAYER_NONDIST_GZIP,
    ):
        return "gzip"
    if media_type == MEDIA_OCI_LAYER_ZSTD:
        return "zstd"
    if media_type in (MEDIA_OCI_LAYER, MEDIA_DOCKER_LAYER):
        return "none"
    return None

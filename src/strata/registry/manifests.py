"""Manifests as a registry serves them: media types, size cap, schema 1, digests.

The rules are containerd's resolver and BuildKit's, so an image that pulls there
pulls here, and one refused there is refused with the same words:

- the Accept list of a resolve (`ctd:core/remotes/docker/resolver.go` L171-181);
- the media type is `Content-Type` without parameters; `text/plain` is schema 1
  (`resolver.go` `getManifestMediaType`); when it is missing or not a manifest type
  the JSON says what it is (`bk:util/imageutil/config.go` `DetectManifestBlobMediaType`);
- manifests larger than 4*1048*1048 bytes are refused (`resolver.go` `MaxManifestSize`);
- schema 1 is refused with BuildKit's message (`bk:util/imageutil/config.go` L118-121).

The HTTP side lives in `client.py`; everything here works on bytes and headers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strata.errors import RegistryError
from strata.image.oci import (
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_DOCKER_MANIFEST_LIST,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    Descriptor,
    sha256_digest,
)
from strata.store.reference import Reference

MAX_MANIFEST_SIZE = 4 * 1048 * 1048
"""containerd's `MaxManifestSize` (sic: 1048, not 1024)."""

MAX_CONFIG_SIZE = 64 << 20
"""Image configs are read whole; larger than this is not an image config."""

ACCEPT_MANIFESTS = ", ".join(
    (
        MEDIA_DOCKER_MANIFEST,
        MEDIA_DOCKER_MANIFEST_LIST,
        MEDIA_OCI_MANIFEST,
        MEDIA_OCI_INDEX,
        "*/*",
    )
)

MEDIA_DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
MEDIA_DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
SCHEMA1_MEDIA_TYPES = frozenset({MEDIA_DOCKER_SCHEMA1, MEDIA_DOCKER_SCHEMA1_SIGNED, "text/plain"})

SCHEMA1_REFUSED = (
    "support Docker Image manifest version 2, schema 1 has been removed. "
    "More information at https://docs.docker.com/go/deprecated-image-specs/"
)

KNOWN_MEDIA_TYPES = MANIFEST_MEDIA_TYPES | INDEX_MEDIA_TYPES | SCHEMA1_MEDIA_TYPES


@dataclass(frozen=True)
class ResolvedImage:
    """What a build needs from a registry for FROM (see the registry interface note)."""

    reference: Reference
    digest: str  # what the reference resolved to (index or manifest): the pin
    manifest_digest: str  # the chosen platform's image manifest
    manifest: bytes  # its raw bytes, verified against manifest_digest
    config: bytes  # raw config bytes, verified against the manifest's config digest
    layers: tuple[Descriptor, ...]
    media_type: str  # of the image manifest
    source: str  # "<domain>/<path>": where the layers can be fetched
    index: bytes | None = None  # the index the reference named, verified (None: a manifest)


def header_media_type(headers: Mapping[str, str]) -> str:
    """`Content-Type` without parameters, lower-cased ('' when absent)."""
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def sniff_media_type(body: bytes) -> str:
    """What a manifest body is when its Content-Type does not say.

    Order as BuildKit's `DetectManifestBlobMediaType`: `config`/`layers` make it a
    manifest, else it is an index; a `mediaType` field refines that when consistent.
    `schemaVersion: 1` (with or without `signatures`) is schema 1.
    """
    try:
        value: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RegistryError("manifest is not a JSON object")
    if value.get("schemaVersion") == 1:
        return MEDIA_DOCKER_SCHEMA1_SIGNED if "signatures" in value else MEDIA_DOCKER_SCHEMA1
    is_manifest = "config" in value or "layers" in value
    if is_manifest and "manifests" in value:
        raise RegistryError("invalid ambiguous manifest and manifest list")
    declared = value.get("mediaType")
    if isinstance(declared, str):
        if declared in INDEX_MEDIA_TYPES:
            if is_manifest:
                raise RegistryError("mediaType in manifest does not match manifest contents")
            return declared
        if declared in MANIFEST_MEDIA_TYPES:
            if not is_manifest:
                raise RegistryError("mediaType in manifest does not match manifest contents")
            return declared
    return MEDIA_DOCKER_MANIFEST if is_manifest else MEDIA_DOCKER_MANIFEST_LIST


def manifest_media_type(headers: Mapping[str, str], body: bytes | None) -> str | None:
    """The media type of a manifest response; None when only the body could tell and
    there is none (a HEAD without a usable Content-Type)."""
    declared = header_media_type(headers)
    if declared in KNOWN_MEDIA_TYPES:
        return declared
    if body is None:
        return None
    return sniff_media_type(body)


def refuse_schema1(media_type: str, registry: str) -> None:
    if media_type in SCHEMA1_MEDIA_TYPES:
        raise RegistryError(SCHEMA1_REFUSED, registry=registry)


def check_manifest_size(size: int, ref: Reference) -> None:
    if size > MAX_MANIFEST_SIZE:
        raise RegistryError(
            f"{ref}: manifest too large: {size} bytes (limit {MAX_MANIFEST_SIZE})",
            registry=ref.domain,
        )


def verify_body(body: bytes, desc: Descriptor, ref: Reference, what: str = "manifest") -> None:
    """Refuse bytes whose size or digest is not the descriptor's."""
    if desc.get("size", -1) >= 0 and len(body) != desc["size"]:
        raise RegistryError(
            f"{ref}: {what} {desc['digest']} has {len(body)} bytes, expected {desc['size']}",
            registry=ref.domain,
        )
    actual = sha256_digest(body)
    if actual != desc["digest"]:
        raise RegistryError(
            f"{ref}: {what} digest mismatch: expected {desc['digest']}, got {actual}",
            registry=ref.domain,
        )


def is_index(media_type: str) -> bool:
    return media_type in INDEX_MEDIA_TYPES


def is_manifest(media_type: str) -> bool:
    return media_type in MANIFEST_MEDIA_TYPES

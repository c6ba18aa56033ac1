"""A cache in a registry (`type=registry,ref=...`): imported by pulling, exported by pushing.

Import resolves `ref` and reads what it names (BuildKit `cache/remotecache/import.go`
`Resolve`): a cache manifest (or index) with a cache config, or an image whose config
holds inline cache records. Blobs are fetched only when a hit is unpacked.

Export pushes each blob the registry lacks (a `HEAD` first, so an unchanged layer or
cache mount is never sent twice), the config, then the manifest under the ref's tag
(`latest` when it has none). It needs only the four push verbs of `CacheUploader`,
which `strata.registry.client.RegistryClient` has once registry push is in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from strata.errors import RegistryError, StrataError
from strata.image.oci import Descriptor
from strata.registry.client import RegistryClient
from strata.registry.hosts import RegistryConfig
from strata.remotecache.config import decode_config
from strata.remotecache.exporter import PreparedCache, Status
from strata.remotecache.imported import LoadedCache
from strata.remotecache.inline import read_inline_entries
from strata.remotecache.manifest import read_cache_document
from strata.remotecache.mounts import cache_mount_blobs
from strata.remotecache.spec import CacheSpec
from strata.store.content import ContentStore
from strata.store.reference import Reference, parse_reference


class CacheUploader(Protocol):
    """The registry verbs a cache export needs (`RegistryClient`'s push side)."""

    def blob_exists(self, ref: Reference, digest: str) -> bool: ...

    def start_upload(self, ref: Reference, digest: str) -> Any: ...

    def upload_blob(
        self, ref: Reference, session: Any, desc: Descriptor, path: Path, progress: Any = None
    ) -> None: ...

    def put_manifest(self, ref: Reference, reference: str, body: bytes, media_type: str) -> str: ...


def uploader_of(client: RegistryClient) -> CacheUploader:
    """The registry client as the narrow uploader the cache exporter needs."""
    return client


class RegistryClients:
    """The build's registry client, and one that skips TLS checks for caches that ask
    for it (`registry.insecure=true`, BuildKit's attribute), made on first use."""

    def __init__(
        self, default: Callable[[], RegistryClient], config: RegistryConfig | None
    ) -> None:
        self._default = default
        self._config = config
        self._insecure: RegistryClient | None = None
        self._lock = threading.Lock()

    def get(self, spec: CacheSpec) -> RegistryClient:
        if not spec.flag("registry.insecure", False):
            return self._default()
        with self._lock:
            if self._insecure is None:
                from strata.registry.credentials import CredentialStore

                config = self._config if self._config is not None else RegistryConfig.load()
                self._insecure = RegistryClient(config, CredentialStore(), insecure=True)
            return self._insecure

    def close(self) -> None:
        if self._insecure is not None:
            self._insecure.close()


def cache_reference(spec: CacheSpec) -> Reference:
    try:
        return parse_reference(spec.get("ref"))
    except StrataError as exc:
        raise StrataError(f'invalid cache reference "{spec.get("ref")}": {exc.message}') from None


class RegistrySource:
    """A `type=registry` cache being imported (a `BlobSource`)."""

    def __init__(self, spec: CacheSpec, client: RegistryClient, content: ContentStore) -> None:
        self.spec = spec
        self.client = client
        self.content = content
        self.ref = cache_reference(spec)

    @property
    def name(self) -> str:
        return self.spec.get("ref")

    def fetch(self, layers: Sequence[Descriptor], content: ContentStore) -> None:
        missing = [d for d in layers if not content.has(d["digest"])]
        if missing:
            self.client.fetch_blobs(self.ref, missing, content)

    def _small(self, desc: Descriptor) -> bytes:
        if desc["size"] > 4 << 20:
            raise RegistryError(f"{self.name}: {desc['digest']} is too large for a cache config")
        if not self.content.has(desc["digest"]):
            self.client.fetch_blob(self.ref, desc, self.content)
        return self.content.read_bytes(desc["digest"])

    def load(self) -> LoadedCache:
        top = self.client.resolve(self.ref)
        found = read_cache_document(self.client.fetch_manifest(self.ref, top))
        if found.config is not None:
            blobs = {d["digest"]: d for d in found.blobs}
            entries = decode_config(self._small(found.config), blobs)
            return LoadedCache(self, entries, tuple(cache_mount_blobs(found.blobs)))
        assert found.image_config is not None
        from strata.image.oci import parse_json_object

        config = parse_json_object(self._small(found.image_config), "image config")
        return LoadedCache(self, read_inline_entries(config, list(found.blobs)))


def push_cache(
    prepared: PreparedCache,
    ref: Reference,
    content: ContentStore,
    uploader: CacheUploader,
    status: Status,
) -> None:
    """Push the blobs the registry lacks, the config, then the manifest under the tag."""
    with content.lease() as lease:
        content.ingest_bytes(prepared.config, prepared.config_descriptor["digest"], hold=lease)
        for desc in (*prepared.layers, *prepared.extra_blobs):
            _push_blob(ref, desc, content, uploader, status, "layer")
        _push_blob(ref, prepared.config_descriptor, content, uploader, status, "config")
        document = prepared.document
        kind = (
            "cache image manifest"
            if document.media_type.endswith("manifest.v1+json")
            else "cache manifest"
        )
        label = f"writing {kind} {document.descriptor['digest']}"
        status(label, False)
        uploader.put_manifest(ref, ref.tag or "latest", document.body, document.media_type)
        status(label, True)


def _push_blob(
    ref: Reference,
    desc: Descriptor,
    content: ContentStore,
    uploader: CacheUploader,
    status: Status,
    what: str,
) -> None:
    label = f"writing {what} {desc['digest']}"
    status(label, False)
    if not uploader.blob_exists(ref, desc["digest"]):
        session = uploader.start_upload(ref, desc["digest"])
        uploader.upload_blob(ref, session, desc, content.path(desc["digest"]))
    status(label, True)

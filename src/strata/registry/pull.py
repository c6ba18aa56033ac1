"""Images from registries for builds and `strata pull`: which to use, and getting them.

The resolve policy (`ImagePuller.resolve`), after Docker's BuildKit integration (moby
builder-next `adapters/containerimage/pull.go`: local images first in the default mode)
and BuildKit's own source (`source/containerimage/source.go`: ask the registry, fall
back to the local store when that fails):

1. a digest-pinned reference whose manifest and config are in the content store needs no
   network (unless `--pull`);
2. a name the image store holds that did not come from a registry (loaded, imported or
   built here, also over a name pulled before) is used as it is (unless `--pull`), as
   `docker build` does;
3. otherwise the registry is asked; its answer is remembered (`PulledNames`), with the
   manifest and config kept in the content store;
4. when the registry cannot answer, a remembered or stored image of that name is used,
   with a warning saying why.

Only the manifest and the config are fetched to resolve: layer blobs come later, when a
step needs the base's files (`fetch_layers`, called while unpacking) or an output needs
the blobs, so a fully cached rebuild downloads nothing (BuildKit `util/pull/pull.go`).
Blobs are verified before they enter the content store (`strata.registry.blobs`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from strata.errors import Interrupted, RegistryError, StoreError, StrataError
from strata.image.oci import (
    INDEX_MEDIA_TYPES,
    Descriptor,
    parse_index,
    parse_json_object,
    parse_manifest,
)
from strata.plan.ops import Platform
from strata.registry.client import RegistryClient
from strata.registry.credentials import CredentialStore
from strata.registry.hosts import RegistryConfig
from strata.registry.platforms import choose_manifest
from strata.store.content import ContentStore
from strata.store.images import ImageStore
from strata.store.reference import Reference
from strata.store.root import StateRoot

# Who holds a remembered pull's manifest and config in the content store.
_OWNER_PREFIX = "pull:"

# (done, total) bytes of one blob, by digest.
BlobProgress = Callable[[str, int, int], None]
# A warning for the build's output.
Warn = Callable[[str], None]


@dataclass(frozen=True)
class Resolved:
    """A base image ready to plan with: its manifest is in the content store."""

    reference: Reference
    # What the reference resolved to: an index, or the manifest itself.
    digest: str
    manifest_digest: str
    config_digest: str
    config: dict[str, Any]
    # Where its blobs can be fetched from ("" for an image that never came from one).
    source: str


@dataclass(frozen=True)
class Pulled:
    """What `ImagePuller.pull` did."""

    resolved: Resolved
    layers: tuple[Descriptor, ...]
    fetched: tuple[str, ...]  # blobs downloaded now
    before: str | None  # the manifest the name pointed at before, if any


class PulledNames:
    """The table `registry_pulls`: which digest a name resolved to at a registry, per
    platform, and when. It is what lets a build go on offline with the image it used
    last, and what tells a pulled name (asked again each build) from one made here."""

    def __init__(self, root: StateRoot) -> None:
        self.root = root
        self.content = ContentStore(root)

    def get(self, name: str, platform: Platform) -> tuple[str, str] | None:
        """(digest the name resolved to, the platform's manifest digest), or None."""
        row = (
            self.root.connect()
            .execute(
                "SELECT digest, manifest FROM registry_pulls WHERE name = ? AND platform = ?",
                (name, str(platform)),
            )
            .fetchone()
        )
        return (str(row[0]), str(row[1])) if row else None

    def is_pulled(self, name: str) -> bool:
        row = (
            self.root.connect()
            .execute("SELECT 1 FROM registry_pulls WHERE name = ? LIMIT 1", (name,))
            .fetchone()
        )
        return row is not None

    def manifests(self, name: str) -> set[str]:
        """The platform manifests `name` resolved to at its registry (any platform)."""
        rows = (
            self.root.connect()
            .execute("SELECT manifest FROM registry_pulls WHERE name = ?", (name,))
            .fetchall()
        )
        return {str(row[0]) for row in rows}

    def remember(
        self, name: str, platform: Platform, digest: str, manifest: str, blobs: Sequence[str]
    ) -> None:
        """Remember a resolution; `blobs` (index, manifest, config) stay in the content
        store as long as the name is remembered."""
        owner = f"{_OWNER_PREFIX}{name}@{platform}"
        with self.root.transaction() as db:
            self.content.remove_refs_in(db, owner)
            self.content.add_refs_in(db, owner, blobs)
            db.execute(
                "INSERT INTO registry_pulls(name, platform, digest, manifest, resolved)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(name, platform) DO UPDATE SET"
                " digest = excluded.digest, manifest = excluded.manifest,"
                " resolved = excluded.resolved",
                (name, str(platform), digest, manifest, time.time()),
            )


class ImagePuller:
    """Resolves and fetches images of one state root through the configured registries.

    Thread-safe; one registry client (with its connection pools and token cache) is
    made on first use and shared. `force` is `--pull`: always ask the registry."""

    def __init__(
        self,
        root: StateRoot,
        *,
        config: RegistryConfig | None = None,
        credentials: CredentialStore | None = None,
        force: bool = False,
        on_token: Callable[[str, Sequence[str]], None] | None = None,
    ) -> None:
        self.root = root
        self.images = ImageStore(root)
        self.content = self.images.content
        self.names = PulledNames(root)
        self.force = force
        self._config = config
        self._credentials = credentials
        self._on_token = on_token
        self._client: RegistryClient | None = None
        self._guard = threading.Lock()
        self._cancelled = threading.Event()
        self._cancel_signal = 2

    def cancel(self, signal_number: int = 2) -> None:
        """Stop the layer downloads in progress at their next chunk, and any later one
        (a build's Ctrl-C or SIGTERM: the solver's cancel cannot reach a download
        thread). Their partial files stay for the next command to resume."""
        self._cancel_signal = signal_number
        self._cancelled.set()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> RegistryClient:
        with self._guard:
            if self._client is None:
                config = self._config if self._config is not None else RegistryConfig.load()
                credentials = (
                    self._credentials if self._credentials is not None else CredentialStore()
                )
                self._client = RegistryClient(
                    config, credentials, on_token=self._on_token, timeout=config.timeout
                )
            return self._client

    # -- resolving -------------------------------------------------------------------------

    def resolve(self, ref: Reference, platform: Platform, warn: Warn | None = None) -> Resolved:
        """The image `ref` names for `platform`, by the policy in the module docstring."""
        name = str(ref)
        if not self.force:
            local = self._local(ref, platform)
            if local is not None:
                return local
        try:
            return self._from_registry(ref, platform)
        except RegistryError as exc:
            if self.force:
                raise
            fallback = self._local(ref, platform, pulled_too=True)
            if fallback is None:
                raise
            if warn is not None:
                warn(f"{exc.message}; using the image stored locally for {name}")
            return fallback

    def _local(
        self, ref: Reference, platform: Platform, *, pulled_too: bool = False
    ) -> Resolved | None:
        """The image as this root has it, if policy lets it be used without asking: a
        stored digest, or a name made here; with `pulled_too` (the registry failed) also
        a name pulled before."""
        if ref.digest is not None:
            manifest = self._stored_manifest(ref.digest, platform)
            if manifest is not None:
                return self._resolved(ref, manifest, source=ref.name, digest=ref.digest)
            return None
        name = str(ref)
        stored = self.images.get(name)
        # A name is "pulled" while the image store's name still points at what the
        # registry gave: once a build (`-t`), `tag` or `load` names another image with
        # it, that image was made here and is used as stored (as docker does).
        pulled = self.names.is_pulled(name) and (
            stored is None or stored in self.names.manifests(name)
        )
        if stored is not None and (not pulled or pulled_too):
            return self._resolved(ref, stored, source=ref.name if pulled else "")
        if pulled_too:
            remembered = self.names.get(name, platform)
            if remembered is not None and self._has_documents(remembered[1]):
                return self._resolved(ref, remembered[1], source=ref.name, digest=remembered[0])
        return None

    def _from_registry(self, ref: Reference, platform: Platform) -> Resolved:
        client = self.client
        # A HEAD first: when the digest it names is stored with its config, nothing
        # more is fetched (Docker Hub counts manifest GETs, not HEADs).
        head = client.resolve(ref)
        stored = self._stored_manifest(head["digest"], platform)
        if stored is not None:
            if ref.digest is None:
                self.names.remember(
                    str(ref),
                    platform,
                    head["digest"],
                    stored,
                    self._documents(head["digest"], stored),
                )
            self._remember_sources(ref.name, stored)
            return self._resolved(ref, stored, source=ref.name, digest=head["digest"])
        pulled = client.resolve_image(ref, platform)
        blobs: list[str] = []
        if pulled.index is not None:
            # Keep the index too, so a later digest-pinned FROM resolves offline.
            self.content.ingest_bytes(pulled.index, expected=pulled.digest)
            blobs.append(pulled.digest)
        self.content.ingest_bytes(pulled.manifest, expected=pulled.manifest_digest)
        manifest = parse_manifest(pulled.manifest, f"manifest {pulled.manifest_digest}")
        config_digest = manifest["config"]["digest"]
        self.content.ingest_bytes(pulled.config, expected=config_digest)
        blobs += [pulled.manifest_digest, config_digest]
        if ref.digest is None:
            self.names.remember(str(ref), platform, pulled.digest, pulled.manifest_digest, blobs)
        self._remember_sources(pulled.source, pulled.manifest_digest)
        return self._resolved(
            ref, pulled.manifest_digest, source=pulled.source, digest=pulled.digest
        )

    def _remember_sources(self, source: str, manifest_digest: str) -> None:
        """Note that `source`'s repository holds the image's blobs, so a push to another
        repository of that registry mounts them (`strata.registry.sources`)."""
        from strata.registry.sources import BlobSources

        manifest = parse_manifest(self.content.read_bytes(manifest_digest))
        digests = [manifest_digest, manifest["config"]["digest"]]
        BlobSources(self.root).remember(source, digests + [d["digest"] for d in manifest["layers"]])

    def _resolved(
        self,
        ref: Reference,
        manifest_digest: str,
        *,
        source: str,
        digest: str | None = None,
    ) -> Resolved:
        manifest = parse_manifest(
            self.content.read_bytes(manifest_digest), f"manifest {manifest_digest}"
        )
        config = parse_json_object(
            self.content.read_bytes(manifest["config"]["digest"]), "image config"
        )
        return Resolved(
            ref,
            digest or manifest_digest,
            manifest_digest,
            manifest["config"]["digest"],
            config,
            source,
        )

    def _stored_manifest(self, digest: str, platform: Platform) -> str | None:
        """The platform's manifest digest for a stored manifest or index `digest`."""
        if not self.content.has(digest):
            return None
        try:
            data = self.content.read_bytes(digest, limit=4 << 20)
            document = parse_json_object(data, f"manifest {digest}")
            if document.get("mediaType") in INDEX_MEDIA_TYPES or "manifests" in document:
                index = parse_index(data, f"index {digest}")
                chosen = choose_manifest(list(index["manifests"]), platform)
                if chosen is None:
                    return None
                return chosen["digest"] if self._has_documents(chosen["digest"]) else None
        except StrataError:
            return None
        return digest if self._has_documents(digest) else None

    def _documents(self, digest: str, manifest_digest: str) -> list[str]:
        """The stored blobs a resolution to `digest` rests on: index, manifest, config."""
        manifest = parse_manifest(self.content.read_bytes(manifest_digest))
        blobs = [manifest_digest, manifest["config"]["digest"]]
        return [digest, *blobs] if digest != manifest_digest else blobs

    def _has_documents(self, manifest_digest: str) -> bool:
        if not self.content.has(manifest_digest):
            return False
        try:
            manifest = parse_manifest(self.content.read_bytes(manifest_digest))
        except StrataError:
            return False
        return self.content.has(manifest["config"]["digest"])

    # -- layers ----------------------------------------------------------------------------

    def fetch_layers(
        self,
        source: str,
        layers: Sequence[Descriptor],
        progress: BlobProgress | None = None,
    ) -> list[str]:
        """Bring the blobs of `layers` the content store lacks in from `source`'s
        registry (`domain/path`), in parallel, each verified before it is stored.
        Returns the digests fetched."""
        unique = {d["digest"]: d for d in layers}
        missing = [d for d in unique.values() if not self.content.has(d["digest"])]
        if not missing:
            return []
        if not source:
            raise RegistryError(
                f"blob {missing[0]['digest']} is missing from the content store and the image"
                " came from no registry (load or import it again)"
            )
        from strata.store.reference import parse_reference

        ref = parse_reference(source, default_tag=False)

        def watched(digest: str, done: int, total: int) -> None:
            if self._cancelled.is_set():
                raise Interrupted(signal_number=self._cancel_signal)
            if progress is not None:
                progress(digest, done, total)

        if self._cancelled.is_set():  # cancelled already: start nothing
            raise Interrupted(signal_number=self._cancel_signal)
        self.client.fetch_blobs(ref, missing, self.content, blob_progress=watched)
        return [d["digest"] for d in missing]

    # -- strata pull -----------------------------------------------------------------------

    def pull(
        self, ref: Reference, platform: Platform, progress: BlobProgress | None = None
    ) -> Pulled:
        """`strata pull`: resolve at the registry, fetch every layer, and name the image
        in the image store (a digest reference only registers it)."""
        resolved = self._from_registry(ref, platform)
        manifest = parse_manifest(self.content.read_bytes(resolved.manifest_digest))
        layers = list(manifest["layers"])
        fetched = self.fetch_layers(resolved.source, layers, progress)
        before = (
            self.images.get(str(ref))
            if ref.digest is None
            else self._stored_image(resolved.manifest_digest)
        )
        if ref.digest is None:
            self.images.put(str(ref), resolved.manifest_digest)
        else:
            self.images.register(resolved.manifest_digest)
        return Pulled(resolved, tuple(layers), tuple(fetched), before)

    def _stored_image(self, manifest_digest: str) -> str | None:
        """`manifest_digest` when the image store already has it (a digest pull of an
        image pulled before is "up to date", as docker says), else None."""
        try:
            return self.images.resolve(manifest_digest)
        except StoreError:
            return None

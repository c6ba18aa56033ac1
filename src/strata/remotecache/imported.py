"""Imported caches as the solver asks them (`strata.solver.remote.RemoteCache`).

Each `--cache-from` that loads adds its records; a key is looked up in them in the order
the flags were given. A hit (`ImportedHit`) names the snapshot its result becomes here,
the chain ID of its layers, so that results sharing base layers share snapshots with
each other and with unpacked base images. Its layers are downloaded from the cache they
came from and unpacked only when the solver needs the files (`materialize`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from strata.errors import StrataError
from strata.image.oci import Descriptor, compression_of_media_type
from strata.remotecache.config import CacheEntry, CacheLayer
from strata.remotecache.mounts import MountBlob, restore_cache_mount
from strata.solver.explain import step_id_from_name
from strata.solver.imagesource import root_layer_row
from strata.solver.records import CacheRecords
from strata.solver.remote import RemoteStep
from strata.store.content import ContentStore
from strata.store.root import StateRoot
from strata.worker.snapshots.snapshotter import Snapshotter
from strata.worker.unpack import LayerRef, chain_ids, unpack_image

# Steps of imported records are matched by stage and position only: the Dockerfile's
# path is machine-local, so it cannot be part of a portable step identity.
_PORTABLE_SCOPE = ""


class BlobSource(Protocol):
    """Where an imported cache's blobs are (a layout directory, a registry)."""

    @property
    def name(self) -> str:
        """The cache as the user named it (`/ci/cache`, `registry:5000/app:cache`)."""
        ...

    def fetch(self, layers: Sequence[Descriptor], content: ContentStore) -> None:
        """Bring these blobs into the content store, each verified."""
        ...


@dataclass(frozen=True)
class LoadedCache:
    """One imported cache's records and where their blobs are."""

    source: BlobSource
    entries: list[CacheEntry]
    mounts: tuple[MountBlob, ...] = ()


class _Chain:
    def __init__(self, layers: Sequence[CacheLayer]) -> None:
        self.layers = list(layers)


class ImportedHit:
    """A result in an imported cache (satisfies `strata.solver.remote.RemoteHit`)."""

    def __init__(self, entry: CacheEntry, source: BlobSource, owner: ImportedCaches) -> None:
        self.entry = entry
        self.source = source
        self._owner = owner
        self._checksums = dict(entry.checksums)
        names = chain_ids([layer.diff_id for layer in entry.layers])
        self._snapshot = names[-1] if names else None

    @property
    def snapshot(self) -> str | None:
        return self._snapshot

    def checksum(self, selector: str) -> str | None:
        return self._checksums.get(selector)

    def fetch_blobs(self, content: ContentStore) -> None:
        """The result's layer blobs into the content store (to export them again)."""
        self.source.fetch([layer.descriptor() for layer in self.entry.layers], content)

    def materialize(self) -> None:
        self._owner.unpack(self.entry.layers, self.source)


class ImportedCaches:
    """The caches one build imported (satisfies `strata.solver.remote.RemoteCache`)."""

    def __init__(self, root: StateRoot, snapshotter: Snapshotter, records: CacheRecords) -> None:
        self.root = root
        self.snapshotter = snapshotter
        self.records = records
        self.content = ContentStore(root)
        self._hits: dict[str, ImportedHit] = {}
        self._steps: dict[str, RemoteStep] = {}
        self._mounts: dict[tuple[str, str], tuple[MountBlob, BlobSource]] = {}
        self._seeded: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def add(
        self, source: BlobSource, entries: Sequence[CacheEntry], mounts: Sequence[MountBlob] = ()
    ) -> None:
        """Add one cache's records and cache mounts (an earlier cache wins a key both hold)."""
        with self._lock:
            for mount in mounts:
                self._mounts.setdefault((mount.cache_id, mount.base), (mount, source))
            for entry in entries:
                self._hits.setdefault(entry.key, ImportedHit(entry, source, self))
                step = step_id_from_name(_PORTABLE_SCOPE, entry.description)
                if step is not None and entry.components:
                    self._steps.setdefault(step, RemoteStep(dict(entry.components), source.name))

    def __len__(self) -> int:
        return len(self._hits)

    # -- RemoteCache ---------------------------------------------------------------------

    def lookup(self, key: str) -> ImportedHit | None:
        with self._lock:
            return self._hits.get(key)

    def previous_step(self, vertex_name: str) -> RemoteStep | None:
        step = step_id_from_name(_PORTABLE_SCOPE, vertex_name)
        if step is None:
            return None
        with self._lock:
            return self._steps.get(step)

    def seed_cache_mount(self, cache_id: str, base_key: str) -> None:
        with self._lock:
            found = self._mounts.get((cache_id, base_key))
            if found is None or (cache_id, base_key) in self._seeded:
                return
            self._seeded.add((cache_id, base_key))
        blob, source = found
        # A blob that cannot be fetched or unpacked leaves the mount empty, as if the
        # cache never held it: the RUN fills it, as on any fresh runner.
        with contextlib.suppress(StrataError, OSError):
            restore_cache_mount(self.root, blob, source.fetch)

    # -- unpacking -----------------------------------------------------------------------

    def unpack(self, layers: Sequence[CacheLayer], source: BlobSource) -> None:
        """Fetch what the content store lacks and unpack the chain into snapshots named
        by chain ID; each snapshot remembers its blob, so an export reuses it as is."""
        if not layers:
            return
        by_digest = {layer.digest: layer for layer in layers}

        def fetch(wanted: Sequence[LayerRef]) -> None:
            source.fetch([by_digest[w.digest].descriptor() for w in wanted], self.content)

        unpack_image(self.root, self.snapshotter, _Chain(layers), fetch)
        names = chain_ids([layer.diff_id for layer in layers])
        for layer, name in zip(layers, names, strict=True):
            compression = compression_of_media_type(layer.media_type) or "gzip"
            if self.records.layer_of(name, compression) is not None:
                continue
            row = root_layer_row(
                self.records, layer.diff_id, layer.digest, layer.media_type, layer.size
            )
            self.records.remember_layer(name, compression, row)

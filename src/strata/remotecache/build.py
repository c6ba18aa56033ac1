"""The remote caches of one build: imported before the solve, exported after it.

`builder` calls `load` before solving (its result is the solver's `remote`) and `export`
once the outputs are written. Import never fails a build (BuildKit
`solver/llbsolver/bridge.go`: a failing importer leaves an empty cache source): a missing
or broken cache is a warning on its `importing cache manifest from <name>` vertex.
Export failures fail the build unless the cache says `ignore-error=true`, as BuildKit's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

from strata.errors import StoreError, StrataError
from strata.image.oci import Descriptor
from strata.plan.ops import Vertex
from strata.progress.bus import ProgressBus
from strata.progress.internal import internal_vertex
from strata.remotecache.exporter import (
    cache_entries,
    prepare_cache,
    select_results,
    write_layout,
)
from strata.remotecache.imported import ImportedCaches
from strata.remotecache.inline import INLINE_KEY, inline_cache_value
from strata.remotecache.mounts import export_cache_mounts, used_cache_ids
from strata.remotecache.registry import (
    RegistryClients,
    RegistrySource,
    cache_reference,
    push_cache,
    uploader_of,
)
from strata.remotecache.sources import CacheLoader, ImageStoreSource, LocalSource
from strata.remotecache.spec import CacheSpec
from strata.solver.layers import snapshot_chain
from strata.solver.records import CacheRecords
from strata.solver.remote import CacheResult
from strata.store.content import ContentStore
from strata.store.images import ImageStore
from strata.store.root import StateRoot
from strata.worker.snapshots.snapshotter import Snapshotter


class BuildCaches:
    """`--cache-from` and `--cache-to` of one build."""

    def __init__(
        self,
        cache_from: Sequence[CacheSpec],
        cache_to: Sequence[CacheSpec],
        *,
        root: StateRoot,
        snapshotter: Snapshotter,
        records: CacheRecords,
        bus: ProgressBus,
        inline: bool = False,
        registry: RegistryClients | None = None,
    ) -> None:
        self.registry = registry
        self.inline = inline
        self.images = ImageStore(root)
        self.cache_from = list(cache_from)
        self.cache_to = list(cache_to)
        self.root = root
        self.snapshotter = snapshotter
        self.records = records
        self.content = ContentStore(root)
        self.bus = bus

    # -- import --------------------------------------------------------------------------

    def load(self) -> ImportedCaches | None:
        """Every `--cache-from` that can be read; None when none was asked for."""
        if not self.cache_from:
            return None
        caches = ImportedCaches(self.root, self.snapshotter, self.records)
        for spec in self.cache_from:
            with self._vertex(f"importing cache manifest from {spec.describe()}") as vertex:
                try:
                    loaded = self._source(spec).load()
                except (StrataError, OSError, ValueError) as exc:
                    message = exc.message if isinstance(exc, StrataError) else str(exc)
                    self._warn(vertex, f"failed to import cache from {spec.describe()}: {message}")
                    continue
                caches.add(loaded.source, loaded.entries, loaded.mounts)
                if loaded.mounts:
                    self._status(vertex, f"cache mounts: {len(loaded.mounts)}", True)
        return caches

    def _source(self, spec: CacheSpec) -> CacheLoader:
        if spec.type == "local":
            return LocalSource(spec)
        if spec.type == "registry" and self._stored_image(spec):
            return ImageStoreSource(spec, self.images)
        if spec.type == "registry" and self.registry is not None:
            return RegistrySource(spec, self.registry.get(spec), self.content)
        raise StrataError(f'importing a "{spec.type}" cache is not available yet')

    def _stored_image(self, spec: CacheSpec) -> bool:
        try:
            return self.images.get(spec.get("ref")) is not None
        except StrataError:
            return False

    def close(self) -> None:
        if self.registry is not None:
            self.registry.close()

    # -- export --------------------------------------------------------------------------

    def inline_config(self, results: Sequence[CacheResult], final: str | None) -> dict[str, str]:
        """What the image config gets for an inline cache (nothing unless asked for)."""
        if not self.inline:
            return {}
        chain = [info.key for info in snapshot_chain(self.snapshotter, final)]
        return {INLINE_KEY: inline_cache_value(results, chain, self.records)}

    def export(
        self,
        results: Sequence[CacheResult],
        final: str | None,
        vertices: Iterable[Vertex] = (),
    ) -> None:
        """Write every `--cache-to` (after the outputs, as BuildKit does); inline caches
        were written with the image (`inline_config`)."""
        cache_ids = used_cache_ids(vertices)
        for spec in self.cache_to:
            if spec.type == "inline":
                continue
            try:
                self._export_one(spec, results, final, cache_ids)
            except StrataError as exc:
                if not spec.flag("ignore-error", False):
                    raise
                # BuildKit's ignore-error: the build succeeds, the failure is a warning.
                with self._vertex(f"exporting cache to {spec.describe()}") as vertex:
                    self._warn(
                        vertex, f"failed to export cache to {spec.describe()}: {exc.message}"
                    )

    def _export_one(
        self,
        spec: CacheSpec,
        results: Sequence[CacheResult],
        final: str | None,
        cache_ids: set[str],
    ) -> None:
        if spec.type == "local":
            label = "exporting cache to client directory"
        else:
            label = "exporting cache to registry"
        with self._vertex(label) as vertex, self.content.lease() as lease, _os_errors(spec):
            compression = spec.get("compression")
            if compression not in ("", "gzip"):
                # Layers already written (the image's, base layers) keep their blobs, as
                # BuildKit's do without force-compression; new ones are gzip for now.
                self._warn(vertex, f"compression={compression}: cache layers are written gzip")
            preparing = "preparing build cache for export"
            self._status(vertex, preparing, False)
            chain = [info.key for info in snapshot_chain(self.snapshotter, final)]
            chosen = select_results(results, spec.mode, chain)
            entries = cache_entries(
                chosen, snapshotter=self.snapshotter, records=self.records, content=self.content
            )
            mounts: list[Descriptor] = []
            if spec.flag("cache-mounts", False):
                limit = spec.get("cache-mounts-max-size")
                mounts = export_cache_mounts(
                    self.root,
                    self.content,
                    cache_ids,
                    max_size=int(limit) if limit else None,
                    hold=lease,
                    warn=lambda message: self._warn(vertex, message),
                )
            prepared = prepare_cache(entries, spec, mounts)
            self._status(vertex, preparing, True)
            if spec.type == "local":
                write_layout(
                    prepared,
                    spec,
                    self.content,
                    lambda text, done: self._status(vertex, text, done),
                )
            elif spec.type == "registry" and self.registry is not None:
                push_cache(
                    prepared,
                    cache_reference(spec),
                    self.content,
                    uploader_of(self.registry.get(spec)),
                    lambda text, done: self._status(vertex, text, done),
                )
            else:
                raise StrataError(f'exporting a "{spec.type}" cache is not available')

    # -- progress ------------------------------------------------------------------------

    def _vertex(self, name: str) -> contextlib.AbstractContextManager[str]:
        return internal_vertex(self.bus, name)

    def _status(self, vertex: str, text: str, done: bool) -> None:
        self.bus.status(vertex, text, done=done)

    def _warn(self, vertex: str, message: str) -> None:
        self.bus.warn(vertex, message)


@contextlib.contextmanager
def _os_errors(spec: CacheSpec) -> Iterator[None]:
    """A file system failure while exporting, as the user's error (a StoreError)."""
    try:
        yield
    except OSError as exc:
        raise StoreError(
            f"failed to export cache to {spec.describe()}: {exc.strerror or exc}"
        ) from None

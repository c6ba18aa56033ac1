"""The solver: walks the target's graph, finds stored results by cache key, runs the rest.

Only vertices reachable from the target exist here (the planner converted only the
stages the target needs), and identical operations are one vertex (same digest), so
each runs at most once. A vertex is started as soon as all its inputs are solved;
independent vertices run in parallel on a small thread pool. For each vertex:

1. its key is computed from its op and its inputs (`keys.cache_key_for`): the key of an
   input the op builds on, or the content checksums of the paths it reads from one;
2. unless the vertex is forced (`--no-cache`), a cache record with that key whose
   snapshot still exists is the result (printed `CACHED`);
3. otherwise the op runs on the worker and its result is recorded under the key.

A forced vertex hands its dependents a fresh key, so whatever builds on it re-runs,
while readers keyed by content may still hit (BuildKit `solver/edge.go`).

The first failure cancels the rest: running containers are killed, their vertices print
`CANCELED`, and the failure is raised with the failing step's Dockerfile location. The
caller's signal handler calls `cancel` for SIGINT/SIGTERM.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import errno
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strata.errors import (
    BuildError,
    Interrupted,
    SourceNotFoundError,
    StepProcessError,
    StoreError,
    StrataError,
)
from strata.faults import is_out_of_space, space_error
from strata.fsutil import copy_tree
from strata.image.oci import descriptor
from strata.plan.ops import (
    ContextSource,
    ExecOp,
    FileOp,
    GitSource,
    HttpSource,
    ImageSource,
    MergeOp,
    MountType,
    SourceLocation,
    Vertex,
    post_order,
    sha256_json,
)
from strata.progress.bus import ProgressBus
from strata.progress.events import STDERR, STDOUT
from strata.progress.units import format_size
from strata.solver.checksums import (
    ChecksumCache,
    ChecksumRequest,
    keyed_by_content,
    requests_for,
)
from strata.solver.copies import CopyManifests
from strata.solver.execop import ExecEnvironment, run_exec_op
from strata.solver.explain import (
    compare_components,
    explain_miss,
    remember_step,
    step_id_from_name,
    write_step,
)
from strata.solver.failed import discard_kept
from strata.solver.fileop import run_file_op, run_merge_op
from strata.solver.keys import (
    InputKey,
    cache_key_for,
    combined_checksum,
    forced_key,
    image_source_key,
    input_label,
)
from strata.solver.records import CacheRecords, touch_record
from strata.solver.remote import CacheResult, RemoteCache, RemoteHit
from strata.solver.results import ContextResult, Result, SnapshotResult
from strata.solver.sources import BaseLayers, fetch_source, image_chain, unpack_base_image
from strata.solver.views import BuildViews
from strata.store.cachemounts import base_key_for
from strata.store.images import ImageLayer, ImageStore
from strata.store.root import StateRoot
from strata.store.usage import remember_cache_mount
from strata.worker.executor import Executor
from strata.worker.snapshots.snapshotter import Snapshotter
from strata.worker.unpack import FetchLayers, LayerRef

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Solved:
    """A solved vertex: its result, the key it is stored under, the key its dependents
    build on (different only when it was forced), and whether it came from the cache."""

    result: Result
    key: str
    dependent_key: str
    cached: bool


@dataclass
class SolveStats:
    """How the vertices of one solve ended (tests and benchmarks read these)."""

    cached: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SolveContext:
    """What a solve needs besides the graph: where errors point, and RUN's environment."""

    locations: Mapping[str, SourceLocation] = field(default_factory=dict)
    dockerfile_source: str | None = None
    exec_env: ExecEnvironment = field(default_factory=ExecEnvironment)
    max_workers: int = 2
    # Identifies "the same step" across builds for cache-miss explanations (the
    # Dockerfile's path, see `solver.explain`); None turns explanations off.
    step_scope: str | None = None
    build_arg_names: tuple[str, ...] = ()
    # Keep a failed RUN's container for a debug shell (`--on-error=shell`): its error is
    # then a StepProcessError whose container the caller must discard.
    keep_failed: bool = False


class Solver:
    """Solves one build's graph against one state root."""

    def __init__(
        self,
        *,
        root: StateRoot,
        snapshotter: Snapshotter,
        executor: Executor,
        records: CacheRecords,
        images: ImageStore,
        views: BuildViews,
        checksums: ChecksumCache,
        context: ContextResult | None,
        bus: ProgressBus | None,
        settings: SolveContext,
        base_layers: BaseLayers | None = None,
        remote: RemoteCache | None = None,
    ) -> None:
        self.root = root
        self.remote = remote
        self.base_layers = base_layers
        self.snapshotter = snapshotter
        self.executor = executor
        self.records = records
        self.images = images
        self.views = views
        self.checksums = checksums
        self.context = context
        self.bus = bus
        self.settings = settings
        self.stats = SolveStats()
        self.copies = CopyManifests(root)
        self._cancelled = threading.Event()
        self._signal: int | None = None
        self._solved: dict[str, Solved] = {}
        self._users: dict[str, list[Vertex]] = {}
        self._stats_lock = threading.Lock()
        # Every step solved, for `--cache-to` (see `strata.solver.remote`).
        self.cache_results: list[CacheResult] = []
        # Results not unpacked yet (remote hits, lazy bases), by snapshot name.
        self._lazy: dict[str, _Lazy] = {}

    # -- control ------------------------------------------------------------------------

    def cancel(self, signal_number: int | None = None) -> None:
        """Stop the solve: no new steps start and running containers are killed."""
        if signal_number is not None and self._signal is None:
            self._signal = signal_number
        self._cancelled.set()
        self.executor.cancel()

    # -- the walk -------------------------------------------------------------------------

    def solve(self, target: Vertex) -> Solved:
        """Solve `target` and everything it needs; raise the first failure."""
        order = post_order(target)
        for vertex in order:
            for item in _unique_inputs(vertex):
                self._users.setdefault(item.digest, []).append(vertex)
        pending = {v.digest: v for v in order}
        waiting_on = {v.digest: {i.digest for i in v.inputs} for v in order}
        running: dict[futures.Future[Solved], Vertex] = {}
        failure: BaseException | None = None
        pool = futures.ThreadPoolExecutor(
            max_workers=self.settings.max_workers, thread_name_prefix="strata-solve"
        )
        try:
            while pending or running:
                if failure is None and not self._cancelled.is_set():
                    ready = [v for d, v in pending.items() if not waiting_on[d]]
                    for vertex in ready:
                        del pending[vertex.digest]
                        inputs = [self._solved[i.digest] for i in vertex.inputs]
                        running[pool.submit(self._solve_vertex, vertex, inputs)] = vertex
                elif not running:
                    break
                if not running:
                    if pending:
                        raise RuntimeError("solver: graph has unsatisfiable inputs")
                    break
                done, _ = futures.wait(
                    list(running), timeout=POLL_SECONDS, return_when=futures.FIRST_COMPLETED
                )
                for future in done:
                    vertex = running.pop(future)
                    try:
                        solved = future.result()
                    except BaseException as exc:
                        if failure is None or (
                            isinstance(failure, Interrupted) and not isinstance(exc, Interrupted)
                        ):
                            discard_kept(failure)
                            failure = exc
                        else:
                            discard_kept(exc)  # only the first failure is debugged
                        self.cancel()
                        continue
                    self._solved[vertex.digest] = solved
                    for user in self._users.get(vertex.digest, []):
                        waiting_on[user.digest].discard(vertex.digest)
        except KeyboardInterrupt:
            self.cancel(2)
            discard_kept(failure)
            failure = Interrupted(signal_number=2)
            for future in running:
                future.cancel()
            for late in futures.wait(list(running)).done:
                if not late.cancelled():
                    discard_kept(late.exception())
        finally:
            pool.shutdown(wait=True)
        if self._signal is not None:
            discard_kept(failure)
            raise Interrupted(signal_number=self._signal)
        if failure is not None:
            raise failure
        return self._solved[target.digest]

    # -- one vertex -----------------------------------------------------------------------

    def _solve_vertex(self, vertex: Vertex, inputs: Sequence[Solved]) -> Solved:
        if self._cancelled.is_set():
            raise Interrupted(signal_number=self._signal or 2)
        op = vertex.op
        try:
            if isinstance(op, ImageSource):
                return self._image_source(vertex, op)
            if isinstance(op, ContextSource):
                return self._context_source(vertex, op)
            if isinstance(op, HttpSource | GitSource):
                return self._fetched_source(vertex, op)
            return self._operation(vertex, inputs)
        except Interrupted:
            if self.bus is not None and vertex.name:
                self.bus.vertex_canceled(vertex.digest)
            raise
        except StrataError as exc:
            if self._cancelled.is_set() and not isinstance(exc, BuildError):
                if self.bus is not None and vertex.name:
                    self.bus.vertex_canceled(vertex.digest)
                raise Interrupted(signal_number=self._signal or 2) from exc
            if self.bus is not None:
                shown = self._vertex_message(vertex, exc)
                self.bus.vertex_error(vertex.digest, shown, name=vertex.name or None)
            raise self._located(vertex, exc) from None
        except OSError as exc:
            # A fault of the machine, not a bug: one line at the step. The step's
            # active snapshot is already removed by whoever made it.
            fault = self._fault(vertex, exc)
            if fault is None:
                raise
            if self.bus is not None:
                self.bus.vertex_error(vertex.digest, fault.message, name=vertex.name or None)
            raise self._located(vertex, fault) from exc

    def _fault(self, vertex: Vertex, exc: OSError) -> StoreError | None:
        """A full disk while a step writes (naming the file, `strata.faults`), or a
        snapshot whose files someone deleted (a mount finds no directory); else None."""
        if is_out_of_space(exc):
            return space_error(exc, str(exc.filename or f"the result of {vertex.name}"))
        if exc.errno == errno.ENOENT:
            from strata.worker.snapshots.storage import missing_snapshot_files

            missing = missing_snapshot_files(self.root)
            if missing:
                return StoreError(
                    f"the files of {len(missing)} snapshot(s) are missing from the state"
                    f" root {self.root.path} (first: {missing[0]}); run `strata check"
                    " --repair`, then build again"
                )
        return None

    def _vertex_message(self, vertex: Vertex, exc: StrataError) -> str:
        """The error as the failing vertex shows it. A missing source is the checksum
        function's own error (BuildKit solver/llbsolver/ops/opsutils/contenthash.go);
        only the build's error adds `failed to compute cache key: ` (solver/edge.go)."""
        if isinstance(exc, SourceNotFoundError):
            return self._checksum_message(vertex, exc)
        return exc.message

    def _checksum_message(self, vertex: Vertex, exc: StrataError) -> str:
        ref = f"{uuid.uuid5(uuid.NAMESPACE_OID, vertex.digest)}::{vertex.digest[7:32]}"
        return f"failed to calculate checksum of ref {ref}: {exc.message}"

    def _located(self, vertex: Vertex, exc: StrataError) -> BuildError:
        """The error as a BuildError pointing at the step's Dockerfile lines (a kept
        container stays with it, named after the step)."""
        located = self._locate(vertex, exc)
        if not isinstance(exc, StepProcessError):
            return located
        exc.container.step_name = vertex.name
        return StepProcessError(
            located.message,
            exc.container,
            file=located.file,
            line=located.line,
            end_line=located.end_line,
            source=located.source,
        )

    def _locate(self, vertex: Vertex, exc: StrataError) -> BuildError:
        message = exc.message
        if isinstance(exc, SourceNotFoundError):
            message = "failed to compute cache key: " + self._checksum_message(vertex, exc)
        location = self.settings.locations.get(vertex.digest) or vertex.location
        if location is None:
            return BuildError(message)
        return BuildError(
            message,
            file=location.file,
            line=location.start_line,
            end_line=location.end_line,
            source=self.settings.dockerfile_source,
        )

    def _count(self, vertex: Vertex, cached: bool) -> None:
        with self._stats_lock:
            (self.stats.cached if cached else self.stats.ran).append(vertex.name or vertex.digest)

    def _started(self, vertex: Vertex) -> None:
        if self.bus is not None and vertex.name:
            self.bus.vertex_started(vertex.digest, vertex.name, [i.digest for i in vertex.inputs])

    def _done(self, vertex: Vertex) -> None:
        if self.bus is not None and vertex.name:
            self.bus.vertex_done(vertex.digest)
        self._count(vertex, cached=False)

    def _cached(self, vertex: Vertex) -> None:
        if self.bus is not None and vertex.name:
            self.bus.vertex_cached(vertex.digest, vertex.name, [i.digest for i in vertex.inputs])
        self._count(vertex, cached=True)

    def _image_source(self, vertex: Vertex, op: ImageSource) -> Solved:
        image = self.images.image(op.manifest_digest)
        chain = image_chain(image)
        key, _components = image_source_key(op, chain[-1] if chain else None)
        # The image is resolved for its cache key on every build, so even a CACHED FROM
        # shows `resolve ... done` first (BuildKit source/containerimage/pull.go).
        self._started(vertex)
        if self.bus is not None and vertex.name:
            self.bus.status(vertex.digest, f"resolve {op.ref}@{op.manifest_digest}", done=True)
        fetch = self._layer_fetcher(vertex, op)
        if self.remote is not None and chain and not self.snapshotter.exists(chain[-1]):
            # With a remote cache the steps on this base may all hit: unpack it (and
            # download its layers) only when something needs its files.
            def unpack() -> None:
                unpack_base_image(self.root, self.snapshotter, self.records, image, fetch)

            self._add_lazy(chain[-1], _Lazy(unpack))
            self._cached(vertex)
            return Solved(SnapshotResult(chain[-1]), key, key, cached=True)
        # Whether the chain was all there is checked (before unpacking) by
        # `unpack_base_image`, not a second time here.
        top, present = unpack_base_image(self.root, self.snapshotter, self.records, image, fetch)
        if present:
            self._cached(vertex)
        else:
            self._done(vertex)
        return Solved(SnapshotResult(top), key, key, cached=present)

    def _layer_fetcher(self, vertex: Vertex, op: ImageSource) -> FetchLayers | None:
        """Downloads of a lazily pulled base's layers, shown on its FROM vertex as
        BuildKit shows them (`sha256:<digest> 1.05MB / 3.40MB 0.2s done`)."""
        base_layers = self.base_layers
        if base_layers is None:
            return None
        bus = self.bus if vertex.name else None

        def progress(digest: str, done: int, total: int) -> None:
            if bus is not None:
                bus.status(vertex.digest, digest, current=done, total=total, done=0 < total <= done)

        def fetch(layers: Sequence[LayerRef]) -> None:
            wanted = [
                descriptor(layer.media_type, layer.digest, layer.size)
                for layer in layers
                if isinstance(layer, ImageLayer)
            ]
            base_layers.fetch_layers(op.ref, wanted, progress)

        return fetch

    def _context_source(self, vertex: Vertex, op: ContextSource) -> Solved:
        if self.context is None:
            raise BuildError(f"build context {op.name!r} was not provided")
        key = sha256_json({"context": op.name, "include": op.include, "exclude": op.exclude})
        self._started(vertex)
        # Hash everything the build reads from the context now: this is what BuildKit's
        # client transfers, and the bytes actually read are what changed since last time.
        for user in self._users.get(vertex.digest, []):
            for index, item in enumerate(user.inputs):
                if item.digest == vertex.digest and index in keyed_by_content(user):
                    for request in requests_for(user, index):
                        # A missing path is reported by the step that reads it.
                        with contextlib.suppress(SourceNotFoundError):
                            self.checksums.checksum(self.context, request)
        if self.bus is not None:
            size = format_size(self.checksums.context_stats.bytes_read)
            self.bus.status(vertex.digest, f"transferring context: {size}", done=True)
        self._done(vertex)
        return Solved(self.context, key, key, cached=False)

    def _fetched_source(self, vertex: Vertex, op: HttpSource | GitSource) -> Solved:
        self._started(vertex)
        staging = self.views.new_dir("fetch")
        fetched_key, tree = fetch_source(op, staging)
        key, components = cache_key_for(vertex, [])
        key = sha256_json({"op": key, "fetched": fetched_key})
        components["fetched"] = fetched_key
        stored = self.records.stored_result(key)
        if stored is not None and stored[0] and self.snapshotter.exists(stored[0]):
            # Fetched again, but what came is what is stored: BuildKit computes a
            # source's key before deciding to run it, and the vertex ends CACHED.
            self.records.touch(key)
            self._note(vertex, key, components, stored[0])
            self._cached(vertex)
            return Solved(SnapshotResult(stored[0]), key, key, cached=True)
        name = self._snapshot_of_tree(tree)
        self.records.put(
            key, name, kind=type(op).__name__, description=vertex.name, components=components
        )
        self._note(vertex, key, components, name)
        self._done(vertex)
        return Solved(SnapshotResult(name), key, key, cached=False)

    def _snapshot_of_tree(self, tree: object) -> str:
        from pathlib import Path

        from strata.solver.fileop import commit_new, new_snapshot

        assert isinstance(tree, Path)
        with new_snapshot(self.snapshotter, self.views, None) as (key, rootfs):
            copy_tree(tree, rootfs)
        return commit_new(self.snapshotter, key)

    def _input_keys(self, vertex: Vertex, inputs: Sequence[Solved]) -> list[InputKey]:
        content = keyed_by_content(vertex)
        keys: list[InputKey] = []
        for index, solved in enumerate(inputs):
            if index in content:
                requests = requests_for(vertex, index)
                pairs = tuple(
                    (request.selector(), self._checksum(solved.result, request))
                    for request in requests
                )
                label = input_label(vertex, index, [r.path for r in requests])
                keys.append(InputKey(index, label, checksums=pairs))
            else:
                keys.append(
                    InputKey(index, input_label(vertex, index, ()), key=solved.dependent_key)
                )
        return keys

    def _operation(self, vertex: Vertex, inputs: Sequence[Solved]) -> Solved:
        input_keys = self._input_keys(vertex, inputs)
        key, components = cache_key_for(vertex, input_keys)
        if vertex.no_cache:
            return self._keyed_operation(vertex, inputs, input_keys, key, components)
        # "Look up, else run and record" holds the key's lock, so identical steps of
        # concurrent builds on this root run once: the others wait, then find the
        # record (BuildKit merges equal vertices of concurrent solves, solver/jobs.go).
        with self.root.lock(step_lock_name(key), poll=self._stop_waiting):
            return self._keyed_operation(vertex, inputs, input_keys, key, components)

    def _stop_waiting(self) -> None:
        if self._cancelled.is_set():
            raise Interrupted(signal_number=self._signal or 2)

    def _keyed_operation(
        self,
        vertex: Vertex,
        inputs: Sequence[Solved],
        input_keys: list[InputKey],
        key: str,
        components: dict[str, Any],
    ) -> Solved:
        components["name"] = vertex.name
        step_id = self._step_id(vertex)
        if not vertex.no_cache:
            stored = self.records.stored_result(key)
            if stored is not None and (stored[0] is None or self.snapshotter.exists(stored[0])):
                self._record_hit(step_id, key, components)
                self._note(vertex, key, components, stored[0])
                self._cached(vertex)
                return Solved(SnapshotResult(stored[0]), key, key, cached=True)
            hit = self.remote.lookup(key) if self.remote is not None else None
            if hit is not None:
                self._remote_hit(vertex, key, components, hit)
                self._record_hit(step_id, key, components)
                self._cached(vertex)
                return Solved(SnapshotResult(hit.snapshot), key, key, cached=True)
        self._started(vertex)
        self._explain(vertex, step_id, components)
        results = [s.result for s in inputs]
        for result in results:
            self.materialize(result)
        op = vertex.op
        if isinstance(op, ExecOp):
            self._describe_cache_mounts(op)
            cache_keys = self._cache_mount_keys(op, input_keys)
            self._seed_cache_mounts(op, cache_keys)
            name = run_exec_op(
                op,
                results,
                snapshotter=self.snapshotter,
                executor=self.executor,
                views=self.views,
                env=self.settings.exec_env,
                cache_base_keys=cache_keys,
                on_output=lambda stream, line: self._log(vertex, stream, line),
                keep_failed=self.settings.keep_failed,
            )
        elif isinstance(op, FileOp):
            name = run_file_op(op, results, self.snapshotter, self.views, self.copies)
        elif isinstance(op, MergeOp):
            name = run_merge_op(results, self.snapshotter, self.views)
        else:
            raise TypeError(f"solver: unknown op {type(op).__name__}")
        self.records.put(
            key, name, kind=type(op).__name__, description=vertex.name, components=components
        )
        self._note(vertex, key, components, name)
        self._remember(step_id, key, components)
        self._done(vertex)
        dependent = forced_key(key, uuid.uuid4().hex) if vertex.no_cache else key
        return Solved(SnapshotResult(name), key, dependent, cached=False)

    # -- lazy results (remote cache hits, bases under a remote cache) ----------------------

    def materialize(self, result: Result) -> None:
        """Make sure `result`'s snapshot exists here: unpack a lazy one now (a step runs
        on it, or an output needs its files). Thread-safe; other results are left alone."""
        if not isinstance(result, SnapshotResult) or result.name is None:
            return
        with self._stats_lock:
            lazy = self._lazy.get(result.name)
        if lazy is not None:
            lazy.make()

    def _add_lazy(self, name: str, lazy: _Lazy) -> None:
        with self._stats_lock:
            self._lazy.setdefault(name, lazy)

    def _remote_hit(
        self, vertex: Vertex, key: str, components: dict[str, Any], hit: RemoteHit
    ) -> None:
        """Take a remote cache's result for `key`: recorded here once it is unpacked
        (at once when its snapshot is here already), lazily otherwise."""
        kind, name = type(vertex.op).__name__, vertex.name

        def record() -> None:
            self.records.put(key, hit.snapshot, kind=kind, description=name, components=components)

        if hit.snapshot is None or self.snapshotter.exists(hit.snapshot):
            record()
            self._note(vertex, key, components, hit.snapshot)
            return

        def unpack() -> None:
            hit.materialize()
            record()

        self._add_lazy(hit.snapshot, _Lazy(unpack, hit))
        self._note(vertex, key, components, hit.snapshot, hit)

    def _checksum(self, result: Result, request: ChecksumRequest) -> str:
        """A content checksum; of a lazy result, the one its cache carries if any (else
        the result is unpacked to hash it)."""
        if isinstance(result, SnapshotResult) and result.name is not None:
            with self._stats_lock:
                lazy = self._lazy.get(result.name)
            if lazy is not None and not lazy.made and lazy.hit is not None:
                known = lazy.hit.checksum(request.selector())
                if known is not None:
                    return known
            self.materialize(result)
        return self.checksums.checksum(result, request)

    def _note(
        self,
        vertex: Vertex,
        key: str,
        components: dict[str, Any],
        snapshot: str | None,
        remote: RemoteHit | None = None,
    ) -> None:
        item = CacheResult(key, type(vertex.op).__name__, vertex.name, components, snapshot, remote)
        with self._stats_lock:
            self.cache_results.append(item)

    def _step_id(self, vertex: Vertex) -> str | None:
        if self.settings.step_scope is None or not vertex.name:
            return None
        return step_id_from_name(self.settings.step_scope, vertex.name)

    def _explain(self, vertex: Vertex, step_id: str | None, components: dict[str, Any]) -> None:
        """Say why a step runs (`cache miss: ...`) when an earlier build of it is known."""
        if step_id is None or self.bus is None:
            return
        reasons = explain_miss(
            self.root,
            step_id,
            components,
            no_cache=vertex.no_cache,
            build_arg_names=self.settings.build_arg_names,
        )
        if reasons is None and self.remote is not None:
            # Never built here: say why against the imported cache, if it has the step.
            step = self.remote.previous_step(vertex.name)
            if step is not None:
                reasons = [
                    f"{reason} (cache from {step.source})"
                    for reason in compare_components(
                        step.components,
                        components,
                        no_cache=vertex.no_cache,
                        build_arg_names=self.settings.build_arg_names,
                    )
                ]
        if reasons:
            self.bus.cache_miss(vertex.digest, reasons)

    def _record_hit(self, step_id: str | None, key: str, components: dict[str, Any]) -> None:
        """A cache hit's bookkeeping (the record's last use, the step's memory and the
        key's use count) in one write transaction."""
        now = time.time()
        with self.root.transaction() as db:
            touch_record(db, key, now)
            if step_id is not None:
                write_step(db, step_id, key, components, now)

    def _remember(self, step_id: str | None, key: str, components: dict[str, Any]) -> None:
        if step_id is not None:
            remember_step(self.root, step_id, key, components)

    def _describe_cache_mounts(self, op: ExecOp) -> None:
        """Tell `du` which RUN a new cache mount comes from. BuildKit names a cache when
        it creates it (`cached mount <target> from exec <argv>`, solver/llbsolver/mounts/
        mount.go `getRefCacheDir`), so a cache that already exists keeps its first name."""
        caches = self.executor.cache_mounts
        existing = set(caches.ids()) if caches is not None else set()
        for mount in op.mounts[1:]:
            if mount.type == MountType.CACHE and mount.cache_id not in existing:
                remember_cache_mount(self.root, mount.cache_id, mount.target, op.args)

    def _seed_cache_mounts(self, op: ExecOp, cache_keys: Mapping[int, str]) -> None:
        """Let an imported cache restore the cache mounts this RUN is about to use."""
        if self.remote is None:
            return
        for position, mount in enumerate(op.mounts):
            if position == 0 or mount.type != MountType.CACHE:
                continue
            seed = Path("/") if mount.input is not None else None
            mode = mount.mode if mount.mode is not None else 0o755
            base = base_key_for(
                cache_keys.get(position), seed, mount.uid or 0, mount.gid or 0, mode
            )
            self.remote.seed_cache_mount(mount.cache_id, base)

    def _cache_mount_keys(self, op: ExecOp, input_keys: Sequence[InputKey]) -> dict[int, str]:
        """For each cache mount seeded `from` an input, a stable name of that seed."""
        by_index = {k.index: k for k in input_keys}
        out: dict[int, str] = {}
        for position, mount in enumerate(op.mounts):
            if position == 0 or mount.input is None or mount.type.value != "cache":
                continue
            known = by_index.get(mount.input)
            if known is None:
                continue
            out[position] = combined_checksum(known.checksums) if known.checksums else known.key
        return out

    def _log(self, vertex: Vertex, stream: str, line: bytes) -> None:
        if self.bus is not None:
            self.bus.log(vertex.digest, STDERR if stream == "stderr" else STDOUT, line)


class _Lazy:
    """A result to unpack on first need, once, whichever thread asks first."""

    def __init__(self, unpack: Callable[[], None], hit: RemoteHit | None = None) -> None:
        self._unpack = unpack
        self.hit = hit
        self.made = False
        self._lock = threading.Lock()

    def make(self) -> None:
        with self._lock:
            if not self.made:
                self._unpack()
                self.made = True


STEP_LOCK_STRIPES = 3
"""Hex digits of a cache key that name its step lock: 4,096 lock files at most, and
two different steps share one (and wait for each other) rarely."""


def step_lock_name(key: str) -> str:
    """The lock a step with cache key `key` runs under (`StateRoot.lock`)."""
    return "step-" + key.removeprefix("sha256:")[:STEP_LOCK_STRIPES]


def _unique_inputs(vertex: Vertex) -> list[Vertex]:
    seen: dict[str, Vertex] = {}
    for item in vertex.inputs:
        seen.setdefault(item.digest, item)
    return list(seen.values())

"""One build, from a request to its outputs: the orchestration behind `Client.build`.

`build` reads the Dockerfile, plans the target's graph (`strata.plan`), solves it
against the state root's cache (`strata.solver`) and exports the result: by default into
the local image store under every tag, or as `-o` outputs say. Progress goes to an
optional `ProgressBus`; every user-caused failure is a `StrataError` (a failing step's
error is a `BuildError` pointing at its Dockerfile lines). On the main thread SIGINT and
SIGTERM cancel the build: containers are killed, mounts undone, `Interrupted` raised.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, get_args

from strata.dockerfile.ast import Dockerfile
from strata.dockerfile.directives import CHECK_BUILD_ARG, CheckOptions, read_check_options
from strata.dockerfile.ignore import PatternMatcher, find_ignore_file, read_ignore_patterns
from strata.dockerfile.parser import parse
from strata.errors import (
    BuildError,
    DockerfileError,
    Interrupted,
    LintViolation,
    RegistryError,
    StepProcessError,
    StrataError,
    UsageError,
)
from strata.export.docker_archive import ExportEntry, write_docker_archive
from strata.export.image_store import (
    ExportedImage,
    image_config,
    store_image,
    write_unstored_image,
)
from strata.export.image_variant import (
    convert_layers,
    needs_conversion,
    store_compression,
    write_documents,
)
from strata.export.local import export_local, export_tar
from strata.export.oci_layout import write_oci_archive, write_oci_layout_dir
from strata.export.outputs import ImageOptions, OutputSpec, with_build_annotations
from strata.faults import is_out_of_space, space_error
from strata.gc.prune import (
    auto_gc,
    build_lease,
)
from strata.gc.prune import gc_budget as read_gc_budget
from strata.image.oci import Compression, Descriptor, diff_ids_of
from strata.model import (
    ENTITLEMENTS,
    BuildRequest,
    BuildResult,
    DebugSession,
    DebugShell,
    NetworkMode,
    OnError,
    SnapshotterName,
)
from strata.plan.convert import plan_build
from strata.plan.ops import ExecOp, Platform, Vertex
from strata.plan.platforms import native_platform, parse_platform
from strata.plan.result import BuildPlan, PlanWarning, ResolvedImage
from strata.progress.bus import ProgressBus
from strata.progress.internal import internal_vertex
from strata.progress.null import NullBus
from strata.progress.units import format_size
from strata.registry.hosts import RegistryConfig
from strata.registry.pull import ImagePuller
from strata.remotecache.build import BuildCaches
from strata.remotecache.inline import wants_inline
from strata.remotecache.registry import RegistryClients
from strata.remotecache.spec import check_cache_spec
from strata.solver.checksums import ChecksumCache
from strata.solver.execop import ExecEnvironment
from strata.solver.layers import ChainLayer, image_layers
from strata.solver.records import CacheRecords
from strata.solver.results import ContextResult, SnapshotResult
from strata.solver.solve import SolveContext, Solved, Solver, SolveStats
from strata.solver.source_epoch import source_epoch
from strata.solver.views import BuildViews
from strata.store.cachemounts import CacheMounts
from strata.store.images import ImageStore
from strata.store.reference import parse_reference
from strata.store.root import StateRoot
from strata.worker.contenthash import DigestCache
from strata.worker.context import read_stdin_context
from strata.worker.executor import Executor, Runtime
from strata.worker.snapshots.factory import open_snapshotter
from strata.worker.snapshots.snapshotter import Snapshotter


class _Progress:
    """The internal (non-op) vertices of a build: loads and exports."""

    def __init__(self, bus: ProgressBus) -> None:
        self.bus = bus

    def vertex(self, name: str, key: str | None = None) -> contextlib.AbstractContextManager[str]:
        return internal_vertex(self.bus, name, key)

    def status(self, digest: str, text: str, *, done: bool = True) -> None:
        self.bus.status(digest, text, done=done)


def _read_dockerfile(
    request: BuildRequest, context_dir: Path, from_stdin: bytes | None
) -> tuple[str, Path | None, str]:
    """(text, path or None, name shown) of the Dockerfile."""
    if request.dockerfile_text is not None:
        return request.dockerfile_text, None, "Dockerfile"
    if from_stdin is not None and request.dockerfile is None:
        return decode_dockerfile_text(from_stdin, "Dockerfile"), None, "Dockerfile"
    text, path = read_dockerfile(context_dir, request.dockerfile)
    return text, path, path.name


def decode_dockerfile_text(data: bytes, name: str) -> str:
    """A Dockerfile's or .dockerignore's text; bytes that are not UTF-8 are a
    DockerfileError naming the file and line.

    BuildKit itself never checks (frontend/dockerui reads both as bytes and the parser
    scans Go strings), but strata's plan hashes ops as UTF-8 JSON, so such a byte could
    not reach the build intact; saying where it is beats a mangled or failed build."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DockerfileError(
            f"failed to read {name}: invalid UTF-8 byte 0x{data[exc.start]:02x} on line {line}"
            " (save the file as UTF-8)",
            file=name,
            line=line,
        ) from None


def read_dockerfile(context_dir: Path, dockerfile: Path | None = None) -> tuple[str, Path]:
    """The text and path of the Dockerfile `dockerfile` names, by default
    `<context>/Dockerfile`, falling back to a lower-case `dockerfile` as BuildKit's dockerui
    does. A file that cannot be read is a DockerfileError naming it."""
    path = dockerfile
    if path is None:
        path = context_dir / "Dockerfile"
        if not path.exists() and (context_dir / "dockerfile").exists():
            path = context_dir / "dockerfile"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DockerfileError(
            f"failed to read dockerfile: open {path.name}: no such file or directory",
            file=path.name,
        ) from None
    except OSError as exc:
        raise DockerfileError(
            f"failed to read dockerfile: {exc.strerror}", file=path.name
        ) from None
    return decode_dockerfile_text(data, path.name), path


def _read_ignore_file(path: Path) -> str:
    """The .dockerignore's text; unreadable or not UTF-8 is a DockerfileError naming it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DockerfileError(
            f"failed to read {path.name}: {exc.strerror}", file=path.name
        ) from None
    return decode_dockerfile_text(data, path.name)


def _check_platform(value: str | None) -> Platform | None:
    if value is None or value == "":
        return None
    native = native_platform()
    wanted = [parse_platform(v.strip()) for v in value.split(",") if v.strip()]
    for platform in wanted:
        if (platform.os, platform.architecture) != (native.os, native.architecture) or (
            platform.variant and platform.variant != native.variant
        ):
            raise UsageError(
                f"platform {platform} is not supported: strata builds only for this "
                f"machine's platform ({native}); emulation is not available",
                option="--platform",
            )
    return wanted[0] if wanted else None


def _check_entitlements(plan: BuildPlan, request: BuildRequest, source: str) -> None:
    """RUN --network=host and --security=insecure need `--allow` (BuildKit entitlements)."""
    allowed = set(request.allow)
    if request.network == "host" and "network.host" not in allowed:
        raise BuildError("network.host is not allowed")
    for vertex in plan.all_vertices():
        op = vertex.op
        if not isinstance(op, ExecOp):
            continue
        needed = None
        if op.network == "host" and "network.host" not in allowed:
            needed = "network.host"
        elif op.security == "insecure" and "security.insecure" not in allowed:
            needed = "security.insecure"
        if needed is not None:
            where = plan.locations.get(vertex.digest) or vertex.location
            raise BuildError(
                f"{needed} is not allowed",
                file=where.file if where else None,
                line=where.start_line if where else 0,
                end_line=where.end_line if where else None,
                source=source,
            )


@contextlib.contextmanager
def _cancel_on_signals(cancel: Callable[[int], None]) -> Iterator[None]:
    """On the main thread, SIGINT/SIGTERM cancel the build instead of killing strata."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        cancel(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


class _Build:
    """One build's state between reading the request and exporting."""

    def __init__(
        self,
        request: BuildRequest,
        root: StateRoot,
        bus: ProgressBus,
        stdout: BinaryIO | None,
        debug_shell: DebugShell | None = None,
        registry_config: RegistryConfig | None = None,
    ) -> None:
        self.request = request
        self.root = root
        self.debug_shell = debug_shell if request.on_error == "shell" else None
        self.progress = _Progress(bus)
        self.bus = bus
        self.stdout = stdout
        self.images = ImageStore(root)
        self.records = CacheRecords(root)
        self.inline_cache: dict[str, str] = {}
        self.registry_config = registry_config
        self.puller = ImagePuller(
            root, config=registry_config, force=request.pull, on_token=self._token_fetched
        )

    def resolve_image(self, ref: str, platform: Platform) -> ResolvedImage:
        """A FROM's (or `--from`'s) image, by `ImagePuller`'s policy: only its manifest
        and config are fetched now; layers come when a step needs them."""
        try:
            parsed = parse_reference(ref)
        except StrataError as exc:
            raise BuildError(f'failed to parse stage name "{ref}": {exc.message}') from None
        normalized = str(parsed)
        with self.progress.vertex(f"[internal] load metadata for {normalized}") as vertex:
            try:
                resolved = self.puller.resolve(
                    parsed, platform, warn=lambda message: self._warn_text(vertex, message)
                )
            except RegistryError as exc:
                # BuildKit: "failed to resolve source metadata for <ref>: <why>", at the
                # FROM (or COPY --from) line: a BuildError, which the planner places.
                raise BuildError(
                    f"failed to resolve source metadata for {normalized}: {exc.message}"
                ) from None
        return ResolvedImage(
            ref=normalized, manifest_digest=resolved.manifest_digest, config=resolved.config
        )

    def _cancel(self, solver: Solver) -> Callable[[int], None]:
        """What SIGINT/SIGTERM do while solving and exporting: stop the solver, and the
        base-layer downloads, which run in the solver's threads out of its reach."""

        def cancel(signal_number: int) -> None:
            self.puller.cancel(signal_number)
            solver.cancel(signal_number)

        return cancel

    def _token_fetched(self, host: str, scopes: Sequence[str]) -> None:
        """BuildKit's `[auth] library/python:pull token for registry-1.docker.io`."""
        shown = " ".join(scope.removeprefix("repository:") for scope in scopes)
        with self.progress.vertex(f"[auth] {shown} token for {host}"):
            pass

    def _warn_text(self, vertex: str, message: str) -> None:
        self.bus.warn(vertex, message)

    def run(self) -> BuildResult:
        request = self.request
        scratch = self.root.mkdtemp("build")
        try:
            return self._run(request, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            self.puller.close()

    def _run(self, request: BuildRequest, scratch: Path) -> BuildResult:
        platform = _check_platform(request.platform)
        stdin_dockerfile: bytes | None = None
        if request.context_stream is not None:
            received = read_stdin_context(request.context_stream, scratch / "context")
            context_dir = received.directory
            stdin_dockerfile = received.dockerfile
        elif request.context is not None:
            context_dir = request.context.absolute()  # runc needs absolute mount sources
            if not context_dir.is_dir():
                raise UsageError(f'unable to prepare context: path "{context_dir}" not found')
        else:
            raise UsageError("a build context is required")
        with self.progress.vertex("[internal] load build definition from Dockerfile") as load:
            text, df_path, shown = _read_dockerfile(request, context_dir, stdin_dockerfile)
            self.progress.status(
                load, f"transferring dockerfile: {format_size(len(text.encode()))}"
            )
            # The lint options first: BuildKit reads them before parsing, so a bad
            # `# check=` is the error even when the file does not parse either.
            checks = read_check_options(
                text, filename=shown, build_arg=request.build_args.get(CHECK_BUILD_ARG)
            )
            dockerfile = parse(text, filename=shown)
            syntax = dockerfile.directives.get("syntax")
            if syntax:
                # BuildKit would pull this frontend image; strata is the frontend.
                self.progress.status(
                    load, f"syntax {syntax}: not pulled, strata reads the Dockerfile itself"
                )
        ignore_file = find_ignore_file(context_dir, df_path)
        ignore_text = _read_ignore_file(ignore_file) if ignore_file is not None else ""
        patterns = read_ignore_patterns(ignore_text)
        try:
            plan = self._plan(dockerfile, patterns, platform, checks, scratch)
        except LintViolation as violation:
            # BuildKit reports the findings, then fails with the violation.
            self._warn(load, violation.warnings)
            raise
        self._warn(load, plan.warnings)
        with self.progress.vertex("[internal] load .dockerignore") as ignore_vertex:
            self.progress.status(
                ignore_vertex, f"transferring context: {format_size(len(ignore_text.encode()))}"
            )
        _check_entitlements(plan, request, text)
        cache_mounts = CacheMounts(self.root)
        for cache_id in plan.cache_ids_to_clear:
            cache_mounts.discard(cache_id)
        matcher = PatternMatcher(patterns) if patterns else None
        context = ContextResult(context_dir, matcher)
        snapshotter = open_snapshotter(self.root, request.snapshotter)
        views = BuildViews(snapshotter, scratch)
        executor = Executor(self.root, request.runtime, cache_mounts=cache_mounts)
        caches = BuildCaches(
            request.cache_from,
            request.cache_to,
            root=self.root,
            snapshotter=snapshotter,
            records=self.records,
            bus=self.bus,
            inline=wants_inline(request.cache_to, request.build_args),
            registry=RegistryClients(lambda: self.puller.client, self.registry_config),
        )
        solver = Solver(
            root=self.root,
            snapshotter=snapshotter,
            executor=executor,
            records=self.records,
            images=self.images,
            views=views,
            checksums=ChecksumCache(views, self.records, DigestCache(self.root)),
            context=context,
            bus=self.bus,
            base_layers=self.puller,
            remote=caches.load(),
            settings=SolveContext(
                locations=plan.locations,
                dockerfile_source=text,
                exec_env=ExecEnvironment(
                    secrets=request.secrets,
                    ssh=request.ssh,
                    network=request.network,
                    resources=request.sandbox.resources,
                ),
                step_scope=str((df_path or context_dir).resolve()),
                build_arg_names=tuple(request.build_args),
                keep_failed=self.debug_shell is not None,
            ),
        )
        try:
            with build_lease(self.root), _cancel_on_signals(self._cancel(solver)):
                try:
                    solved = self._solve(solver, plan.target)
                except StepProcessError as failed:
                    try:
                        self._debug(failed, cache_mounts)
                    finally:
                        failed.container.discard()
                    raise
                if solved is not None:
                    solver.materialize(solved.result)  # a remote hit's files, for outputs
                top = solved.result if solved is not None else None
                final = top.name if isinstance(top, SnapshotResult) else None
                self.inline_cache = caches.inline_config(solver.cache_results, final)
                result = self._export(plan, solved, snapshotter, views, solver.stats)
                caches.export(solver.cache_results, final, plan.all_vertices())
                return result
        finally:
            views.close()
            caches.close()

    def _debug(self, failed: StepProcessError, cache_mounts: CacheMounts) -> None:
        """Hand the failed step's container to the debug shell callback. The solve's
        executor was cancelled with the build, so the shell gets a fresh one."""
        if self.debug_shell is None:
            return
        executor = Executor(self.root, self.request.runtime, cache_mounts=cache_mounts)
        self.debug_shell(
            DebugSession(failed.container.step_name, failed, failed.container, executor)
        )

    def _warn(self, vertex: str, warnings: Sequence[PlanWarning]) -> None:
        """Lint findings, on the Dockerfile's load vertex as BuildKit attaches them."""
        for warning in warnings:
            self.bus.warn(vertex, str(warning))

    def _plan(
        self,
        dockerfile: Dockerfile,
        patterns: list[str],
        platform: Platform | None,
        checks: CheckOptions,
        scratch: Path,
    ) -> BuildPlan:
        request = self.request
        return plan_build(
            dockerfile,
            checks=checks,
            # `SOURCE_DATE_EPOCH=<stage>`: the stage's source is fetched to date it.
            resolve_source_epoch=lambda source: source_epoch(source, scratch / "source-epoch"),
            target=request.target,
            build_args=dict(request.build_args),
            resolve_image=self.resolve_image,
            platform=platform,
            no_cache=request.no_cache,
            no_cache_filter=list(request.no_cache_filter),
            labels=dict(request.labels),
            dockerignore=patterns,
            network=request.network,
            sandbox=request.sandbox,
        )

    def _solve(self, solver: Solver, target: Vertex | None) -> Solved | None:
        if target is None:
            return None
        return solver.solve(target)

    # -- export -------------------------------------------------------------------------

    def _export(
        self,
        plan: BuildPlan,
        solved: Solved | None,
        snapshotter: Snapshotter,
        views: BuildViews,
        stats: SolveStats,
    ) -> BuildResult:
        request = self.request
        outputs = [
            with_build_annotations(output, request.annotations)
            for output in (list(request.outputs) or [OutputSpec(type="image")])
        ]
        top = solved.result if solved is not None else SnapshotResult(None)
        assert isinstance(top, SnapshotResult)
        exported: ExportedImage | None = None
        names: list[str] = list(request.tags)
        for output in outputs:
            if output.makes_image:
                names.extend(output.names)
        # Archives written without the image store hold their config and manifest blobs
        # through this lease only: BuildKit's docker/oci exporters with a destination
        # leave nothing in the image store (no dangling `<none>` image).
        top_desc: Descriptor | None = None
        with self.images.content.lease() as lease:
            for index, output in enumerate(outputs):
                if output.type in ("local", "tar"):
                    self._export_files(output, index, views.snapshot_tree(top))
                    continue
                if output.type in ("image", "registry") or (
                    output.type == "docker" and output.dest is None
                ):
                    exported, pushed = self._export_image(
                        plan, top, snapshotter, names, index, output, lease
                    )
                    top_desc = pushed or top_desc
                    continue
                exported = self._export_archive(
                    output,
                    index,
                    names,
                    exported,
                    lambda vertex, out=output: self._unstored_image(  # type: ignore[misc]
                        plan, top, snapshotter, vertex, lease, out.options
                    ),
                )
            manifest_size = (
                self.images.content.info(exported.manifest_digest).size if exported else 0
            )
        if exported is None:
            return BuildResult("", "", (), {}, stats)
        result_names = exported.names or tuple(str(parse_reference(n)) for n in names)
        if any(o.makes_image and o.options.name_canonical for o in outputs):
            # `name-canonical=true`: every name also as `<repository>@<digest>`
            # (`bk:exporter/containerimage/export.go`, nameCanonical).
            digest = top_desc["digest"] if top_desc else exported.manifest_digest
            result_names += tuple(
                f"{parse_reference(n).name}@{digest}" for n in dict.fromkeys(names)
            )
        return BuildResult(
            image_id=exported.image_id,
            manifest_digest=top_desc["digest"] if top_desc else exported.manifest_digest,
            names=result_names,
            config=exported.config,
            stats=stats,
            manifest_size=top_desc["size"] if top_desc else manifest_size,
            media_type=top_desc["mediaType"] if top_desc else "",
        )

    def _layers(
        self,
        top: SnapshotResult,
        snapshotter: Snapshotter,
        vertex: str,
        compression: Compression = "gzip",
    ) -> list[ChainLayer]:
        self.progress.status(vertex, "exporting layers", done=False)
        layers = image_layers(
            snapshotter, self.records, self.images.content, top.name, compression
        )
        self.progress.status(vertex, "exporting layers", done=True)
        return layers

    def _variant_layers(
        self,
        plan: BuildPlan,
        top: SnapshotResult,
        snapshotter: Snapshotter,
        vertex: str,
        options: ImageOptions,
        lease: str,
    ) -> list[ChainLayer]:
        """The layers in the compression (and with the timestamps) `options` ask for."""
        layers = self._layers(top, snapshotter, vertex, store_compression(options.compression))
        if not needs_conversion(options):
            return layers
        if options.rewrite_timestamp and plan.source_date_epoch is None:
            self.bus.warn(vertex, "rewrite-timestamp needs SOURCE_DATE_EPOCH: times are kept")
        base = plan.base_image
        base_diff_ids = diff_ids_of(dict(base.config)) if base is not None else []
        return convert_layers(
            self.images.content,
            layers,
            options,
            base_diff_ids=base_diff_ids,
            diff_dir=snapshotter.diff_dir,
            source_date_epoch=plan.source_date_epoch,
            hold=lease,
        )

    def _config(self, plan: BuildPlan, layers: Sequence[ChainLayer]) -> dict[str, Any]:
        base_created = None
        if plan.base_image is not None:
            created = plan.base_image.config.get("created")
            base_created = created if isinstance(created, str) else None
        config = image_config(
            plan.config,
            plan.history,
            layers,
            source_date_epoch=plan.source_date_epoch,
            base_created=base_created,
        )
        return {**config, **self.inline_cache}  # `--cache-to type=inline` records

    def _export_image(
        self,
        plan: BuildPlan,
        top: SnapshotResult,
        snapshotter: Snapshotter,
        names: Sequence[str],
        index: int,
        output: OutputSpec,
        lease: str,
    ) -> tuple[ExportedImage, Descriptor | None]:
        """The image exporter: store (unless `store=false`), then push when asked.
        Returns what was stored and the top descriptor pushed (None without a push)."""
        options = output.options
        label = "exporting to image"
        with self.progress.vertex(label, f"{label} {index}") as vertex:
            if options.is_default and not options.push and output.stores:
                # The image store's own documents, printed as moby's exporter does.
                layers = self._layers(top, snapshotter, vertex)
                exported = store_image(self.images, self._config(plan, layers), layers, names)
                self.progress.status(vertex, f"writing image {exported.image_id}")
                self._naming(vertex, names)
                return exported, None
            layers = self._variant_layers(plan, top, snapshotter, vertex, options, lease)
            config = self._config(plan, layers)
            stored: ExportedImage | None = None
            if output.stores:
                stored = store_image(self.images, config, layers, names)
            docs = write_documents(self.images.content, config, layers, options, hold=lease)
            self.progress.status(vertex, f"exporting manifest {docs.manifest['digest']}")
            self.progress.status(vertex, f"exporting config {docs.config_digest}")
            if docs.top is not docs.manifest:
                self.progress.status(vertex, f"exporting manifest list {docs.top['digest']}")
            if stored is not None:
                self._naming(vertex, names)
            if options.push:
                targets = output.names or tuple(self.request.tags)
                self._push(vertex, docs.top, targets, options)
            exported = stored or ExportedImage(
                image_id=docs.config_digest,
                manifest_digest=docs.manifest["digest"],
                config=config,
                names=(),
            )
        return exported, docs.top if options.push else None

    def _naming(self, vertex: str, names: Sequence[str]) -> None:
        # Named as given, normalised but without an added tag (moby's image exporter,
        # builder-next/exporter/mobyexporter/export.go: ParseNormalizedNamed(v).String()).
        for name in names:
            self.progress.status(vertex, f"naming to {parse_reference(name, default_tag=False)}")

    def _push(
        self, vertex: str, top: Descriptor, targets: Sequence[str], options: ImageOptions
    ) -> None:
        """Push `top` to every name, as BuildKit's image exporter prints it: `pushing
        layers` with each blob's bytes, then `pushing manifest for <name>@<digest>`."""
        from strata.registry.client import RegistryClient
        from strata.registry.credentials import CredentialStore
        from strata.registry.push import BlobEvent, ImagePusher

        config = self.registry_config or RegistryConfig.load()
        bus = self.bus

        def blob_progress(event: BlobEvent) -> None:
            if event.state == "preparing":
                return
            bus.status(
                vertex,
                event.digest,
                current=event.done,
                total=event.size,
                done=event.state != "pushing",
            )

        with RegistryClient(
            config, CredentialStore(), insecure=options.insecure, on_token=self._token_fetched
        ) as client:
            pusher = ImagePusher(
                self.root,
                client,
                fetch_missing=lambda source, descs: self.puller.fetch_layers(source, descs),
                max_concurrency=config.max_concurrency,
            )
            for name in targets:
                ref = parse_reference(name)
                self.progress.status(vertex, "pushing layers", done=False)
                pusher.push(
                    top,
                    ref,
                    blob_progress,
                    by_digest=options.push_by_digest,
                    before_manifests=lambda: self.progress.status(vertex, "pushing layers"),
                )
                shown = f"pushing manifest for {ref}@{top['digest']}"
                self.progress.status(vertex, shown, done=False)
                self.progress.status(vertex, shown)

    def _unstored_image(
        self,
        plan: BuildPlan,
        top: SnapshotResult,
        snapshotter: Snapshotter,
        vertex: str,
        lease: str,
        options: ImageOptions,
    ) -> ExportedImage:
        if options.is_default:
            layers = self._layers(top, snapshotter, vertex)
            return write_unstored_image(
                self.images, self._config(plan, layers), layers, hold=lease
            )
        layers = self._variant_layers(plan, top, snapshotter, vertex, options, lease)
        config = self._config(plan, layers)
        docs = write_documents(self.images.content, config, layers, options, hold=lease)
        return ExportedImage(
            image_id=docs.config_digest,
            manifest_digest=docs.manifest["digest"],
            config=config,
            names=(),
        )

    def _export_archive(
        self,
        output: OutputSpec,
        index: int,
        names: Sequence[str],
        exported: ExportedImage | None,
        make_image: Callable[[str], ExportedImage],
    ) -> ExportedImage:
        label = (
            "exporting to docker image format"
            if output.type == "docker"
            else "exporting to oci image format"
        )
        options = output.options
        with self.progress.vertex(label, f"{label} {index}") as vertex:
            if exported is None or not options.is_default:
                exported = make_image(vertex)
            image = self.images.image(exported.manifest_digest)
            self.progress.status(vertex, f"exporting manifest {exported.manifest_digest}")
            self.progress.status(vertex, f"exporting config {exported.image_id}")
            refs = tuple(parse_reference(n) for n in names)
            entries = [ExportEntry(image=image, names=refs)]
            if not options.tar:
                # `tar=false`: an OCI layout directory at dest (BuildKit's oci and docker
                # exporters both write a layout then).
                assert output.dest is not None
                self.progress.status(vertex, "sending files", done=False)
                write_oci_layout_dir(self.images.content, entries, Path(output.dest))
                self.progress.status(vertex, "sending files")
                return exported
            self.progress.status(vertex, "sending tarball", done=False)
            with self._open_dest(output) as out:
                if output.type == "docker":
                    write_docker_archive(self.images.content, entries, out)
                else:
                    write_oci_archive(self.images.content, entries, out)
            self.progress.status(vertex, "sending tarball")
        return exported

    def _export_files(self, output: OutputSpec, index: int, tree: Path) -> None:
        if output.type == "local":
            label = "exporting to client directory"
            with self.progress.vertex(label, f"{label} {index}") as vertex:
                assert output.dest is not None
                size = export_local(tree, Path(output.dest))
                self.progress.status(vertex, f"copying files {format_size(size)}")
            return
        label = "exporting to client tarball"
        with self.progress.vertex(label, f"{label} {index}") as vertex:
            self.progress.status(vertex, "sending tarball", done=False)
            with self._open_dest(output) as out:
                export_tar(tree, out)
            self.progress.status(vertex, "sending tarball")

    @contextlib.contextmanager
    def _open_dest(self, output: OutputSpec) -> Iterator[BinaryIO]:
        if output.to_stdout:
            if self.stdout is None:
                raise UsageError(
                    "output to stdout requested but no stdout given", option="--output"
                )
            yield self.stdout
            self.stdout.flush()
            return
        assert output.dest is not None
        path = Path(output.dest)
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "wb") as fh:
                yield fh
        except OSError as exc:
            # A full disk: one line naming the file, and no half-written archive left.
            if not is_out_of_space(exc):
                raise
            with contextlib.suppress(OSError):
                path.unlink()
            raise space_error(exc, str(path)) from exc


def build(
    request: BuildRequest,
    *,
    root: StateRoot,
    bus: ProgressBus | None = None,
    stdout: BinaryIO | None = None,
    debug_shell: DebugShell | None = None,
    registry_config: RegistryConfig | None = None,
) -> BuildResult:
    """Build `request` in the open state root `root`; see the module docstring.
    `registry_config` says how registries are reached (None: the default file).

    With `request.on_error == "shell"`, a RUN that fails is handed to `debug_shell`
    (a `DebugSession`) before the build fails with that step's error."""
    # Read before building, so a bad `--gc-budget` fails before any work is done.
    budget = read_gc_budget(root, request.gc_budget)
    # The edge of the engine: below here there is always a bus, a silent one if need be.
    shown = bus if bus is not None else NullBus()
    try:
        result = _Build(request, root, shown, stdout, debug_shell, registry_config).run()
    except Interrupted:
        raise
    except StrataError:
        _collect_garbage(root, budget)
        raise
    _collect_garbage(root, budget)
    return result


def validate(request: BuildRequest) -> None:
    """What the API takes that no flag would give, refused before any work is done
    (else a bad tag, say, fails only after the whole solve). Outputs check themselves
    (`OutputSpec`); the wording is buildx's where it has one."""
    if request.network not in get_args(NetworkMode):
        raise UsageError(f'invalid network mode "{request.network}"', option="--network")
    for item in request.allow:
        if item not in ENTITLEMENTS:
            raise UsageError(f"invalid entitlement: {item}", option="--allow")
    # buildx build/build.go (toSolveOpt): errors.Wrapf(err, "invalid tag %q", tag).
    for tag in request.tags:
        try:
            parse_reference(tag)
        except StrataError as exc:
            raise UsageError(f'invalid tag "{tag}": {exc.message}', option="--tag") from None
    if request.on_error not in get_args(OnError):
        raise UsageError(
            f'invalid on-error value "{request.on_error}" (use "error" or "shell")',
            option="--on-error",
        )
    if request.runtime is not None and request.runtime not in get_args(Runtime):
        raise UsageError(
            f'unknown OCI runtime "{request.runtime}" (use "runc" or "crun")',
            option="--oci-runtime",
        )
    if request.snapshotter not in get_args(SnapshotterName):
        raise UsageError(
            f'unknown snapshotter "{request.snapshotter}" (use "auto", "overlay" or "native")',
            option="--snapshotter",
        )
    for spec in request.cache_to:
        check_cache_spec(spec, "to")
    for spec in request.cache_from:
        check_cache_spec(spec, "from")
    if not all(isinstance(output, OutputSpec) for output in request.outputs):
        raise UsageError("outputs must be OutputSpec values", option="--output")
    for output in request.outputs:
        options = output.options
        if options.push:
            targets = output.names or tuple(request.tags)
            if not targets:
                raise UsageError(
                    "push requires a name: give -t NAME or -o type=image,name=NAME",
                    option="--output",
                )
            for name in targets:
                try:
                    parse_reference(name)
                except StrataError as exc:
                    raise UsageError(
                        f'invalid name "{name}": {exc.message}', option="--output"
                    ) from None
        if output.type in ("oci", "docker") and options.needs_index:
            raise UsageError(
                f"the {output.type} exporter takes annotation.* and annotation-manifest.*;"
                " index annotations need -o type=image or type=registry",
                option="--output",
            )


def _collect_garbage(root: StateRoot, budget: int | None) -> None:
    """BuildKit collects garbage after builds (its controller's throttled GC); so does
    strata, once this build's lease is released. Skipped when GC is `off`, and by
    `auto_gc` itself while another build still holds its lease (the last one collects)."""
    if budget is not None:
        auto_gc(root, budget)

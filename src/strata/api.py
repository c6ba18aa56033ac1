"""strata's public Python API: what `strata build` does, as objects.

    from strata.api import BuildRequest, build
    result = build(BuildRequest(context=Path("."), tags=("demo",)), root=Path("/var/lib/strata"))
    print(result.image_id)

`build` reads the Dockerfile, plans the target's graph (`strata.plan`), solves it
against the state root's cache (`strata.solver`) and exports the result: by default into
the local image store under every tag, or as `-o` outputs say. Progress goes to an
optional `ProgressBus`; every user-caused failure is a `StrataError` (a failing step's
error is a `BuildError` pointing at its Dockerfile lines). On the main thread SIGINT and
SIGTERM cancel the build: containers are killed, mounts undone, `Interrupted` raised.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, Literal, get_args

from strata.dockerfile.ast import Dockerfile
from strata.dockerfile.directives import CHECK_BUILD_ARG, CheckOptions, read_check_options
from strata.dockerfile.ignore import PatternMatcher, find_ignore_file, read_ignore_patterns
from strata.dockerfile.parser import parse
from strata.errors import (
    BuildError,
    DockerfileError,
    Interrupted,
    LintViolation,
    StepProcessError,
    StoreError,
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
from strata.export.load import LoadedImage, load_archive, load_oci_layout_dir
from strata.export.local import export_local, export_tar
from strata.export.oci_layout import write_oci_archive
from strata.export.outputs import OutputSpec
from strata.export.tarball_import import import_tarball
from strata.gotext import format_rfc3339_nano as rfc3339
from strata.image.oci import diff_ids_of
from strata.modes import NetworkMode as NetworkMode
from strata.plan.convert import plan_build
from strata.plan.ops import ExecOp, Platform, Vertex
from strata.plan.platforms import native_platform, parse_platform
from strata.plan.result import BuildPlan, PlanWarning, ResolvedImage
from strata.progress.bus import ProgressBus
from strata.progress.units import format_size
from strata.solver.checksums import ChecksumCache
from strata.solver.execop import ExecEnvironment, SSHSource
from strata.solver.failed import FailedContainer
from strata.solver.layers import ChainLayer, image_layers
from strata.solver.records import CacheRecords
from strata.solver.results import ContextResult, SnapshotResult
from strata.solver.solve import SolveContext, Solved, Solver, SolveStats
from strata.solver.source_epoch import source_epoch
from strata.solver.views import BuildViews
from strata.store.cachemounts import CacheMounts
from strata.store.images import ImageRecord, ImageStore
from strata.store.prune import (
    PruneReport,
    RemovedCallback,
    WaitCallback,
    auto_gc,
    build_lease,
    parse_filters,
)
from strata.store.prune import gc_budget as read_gc_budget
from strata.store.prune import prune as prune_cache
from strata.store.reference import Reference, parse_reference
from strata.store.root import StateRoot
from strata.store.usage import UsageRecord
from strata.store.usage import disk_usage as cache_usage
from strata.worker.contenthash import DigestCache
from strata.worker.context import read_stdin_context
from strata.worker.executor import Executor, Runtime
from strata.worker.snapshots.factory import open_snapshotter

__all__ = [
    "ArchiveFormat",
    "BuildRequest",
    "BuildResult",
    "DebugSession",
    "ImageRecord",
    "LoadedImage",
    "OutputSpec",
    "PruneReport",
    "SSHSource",
    "UsageRecord",
    "build",
    "disk_usage",
    "import_image",
    "inspect",
    "list_images",
    "load",
    "metadata_of",
    "prune",
    "remove_images",
    "save",
    "tag",
]

ENTITLEMENTS = ("network.host", "security.insecure")

# `--on-error`: fail, or first hand a failed RUN's container to `debug_shell`.
OnError = Literal["error", "shell"]
# `strata --snapshotter`: overlay where overlayfs mounts, else native ("auto").
SnapshotterName = Literal["auto", "overlay", "native"]


@dataclass(frozen=True)
class BuildRequest:
    """Everything `docker buildx build` takes that strata honours.

    `context` is the context directory; with `context_stream` (`build -`) the context is
    read from that stream instead: a tar, or a Dockerfile alone (empty context).
    `dockerfile` defaults to `<context>/Dockerfile`; `dockerfile_text` (`-f -`) wins
    over both. `outputs` empty means: store the image in the local image store."""

    context: Path | None = None
    context_stream: BinaryIO | None = None
    dockerfile: Path | None = None
    dockerfile_text: str | None = None
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, bytes] = field(default_factory=dict)
    ssh: Mapping[str, SSHSource] = field(default_factory=dict)
    no_cache: bool = False
    no_cache_filter: Sequence[str] = ()
    network: NetworkMode = "default"
    allow: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    tags: Sequence[str] = ()
    outputs: Sequence[OutputSpec] = ()
    platform: str | None = None
    snapshotter: SnapshotterName = "auto"
    # `--oci-runtime`: "runc" or "crun"; None picks runc (crun where runc is missing).
    runtime: Runtime | None = None
    # `--gc-budget`: a size (`512MB`) or `off`; None reads $STRATA_GC_BUDGET, then the
    # default (see `strata.store.prune.gc_budget`).
    gc_budget: str | None = None
    # `--on-error`: "error", or "shell" to hand a failed RUN's container to the
    # `debug_shell` callback of `build` before failing.
    on_error: OnError = "error"


@dataclass(frozen=True)
class BuildResult:
    """What a build produced. `image_id` is empty when no output made an image."""

    image_id: str
    manifest_digest: str
    names: tuple[str, ...]
    config: dict[str, Any]
    stats: SolveStats
    manifest_size: int = 0


@dataclass(frozen=True)
class DebugSession:
    """A RUN that failed under `on_error="shell"`, its container still there.

    `build` passes it to its `debug_shell` callback after the solve has failed and
    before anything is cleaned up; when the callback returns, the container's mounts
    and snapshot are removed and the step's error is raised as usual."""

    step_name: str
    error: BuildError
    container: FailedContainer
    executor: Executor

    @property
    def shell(self) -> str:
        """The shell `open_shell` starts (the stage's SHELL, else /bin/sh)."""
        return self.container.shell

    def open_shell(self, terminal: int) -> int:
        """Run the shell interactively on the terminal fd `terminal`; its exit status."""
        return self.container.open_shell(self.executor, terminal)


DebugShell = Callable[[DebugSession], None]


def metadata_of(result: BuildResult) -> dict[str, Any]:
    """The `--metadata-file` JSON, with buildx's keys."""
    data: dict[str, Any] = {}
    if result.image_id:
        data["containerimage.config.digest"] = result.image_id
        data["containerimage.digest"] = result.manifest_digest
        data["containerimage.descriptor"] = {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": result.manifest_digest,
            "size": result.manifest_size,
        }
    if result.names:
        data["image.name"] = ",".join(result.names)
    return data


def _vertex_digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


class _Progress:
    """The internal (non-op) vertices of a build: loads and exports."""

    def __init__(self, bus: ProgressBus | None) -> None:
        self.bus = bus

    @contextlib.contextmanager
    def vertex(self, name: str, key: str | None = None) -> Iterator[str]:
        digest = _vertex_digest(key or name)
        if self.bus is not None:
            self.bus.vertex_started(digest, name)
        try:
            yield digest
        except StrataError as exc:
            if self.bus is not None:
                self.bus.vertex_error(digest, exc.message)
            raise
        except BaseException:
            if self.bus is not None:
                self.bus.vertex_canceled(digest)
            raise
        if self.bus is not None:
            self.bus.vertex_done(digest)

    def status(self, digest: str, text: str, *, done: bool = True) -> None:
        if self.bus is not None:
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
        bus: ProgressBus | None,
        stdout: BinaryIO | None,
        debug_shell: DebugShell | None = None,
    ) -> None:
        self.request = request
        self.root = root
        self.debug_shell = debug_shell if request.on_error == "shell" else None
        self.progress = _Progress(bus)
        self.bus = bus
        self.stdout = stdout
        self.images = ImageStore(root)
        self.records = CacheRecords(root)

    def resolve_image(self, ref: str, platform: Platform) -> ResolvedImage:
        try:
            normalized = str(parse_reference(ref))
        except StrataError as exc:
            raise BuildError(f'failed to parse stage name "{ref}": {exc.message}') from None
        with self.progress.vertex(f"[internal] load metadata for {normalized}"):
            manifest = self.images.get(normalized)
            if manifest is None:
                raise BuildError(
                    f"{ref}: failed to resolve source metadata for {normalized}: "
                    f"{normalized}: not found (pulling from registries is not supported "
                    "yet: add it with strata load or strata import first)"
                )
            image = self.images.image(manifest)
        return ResolvedImage(ref=normalized, manifest_digest=manifest, config=image.config)

    def run(self) -> BuildResult:
        request = self.request
        scratch = self.root.mkdtemp("build")
        try:
            return self._run(request, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

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
            settings=SolveContext(
                locations=plan.locations,
                dockerfile_source=text,
                exec_env=ExecEnvironment(
                    secrets=request.secrets, ssh=request.ssh, network=request.network
                ),
                step_scope=str((df_path or context_dir).resolve()),
                build_arg_names=tuple(request.build_args),
                keep_failed=self.debug_shell is not None,
            ),
        )
        try:
            with build_lease(self.root), _cancel_on_signals(solver.cancel):
                try:
                    solved = self._solve(solver, plan.target)
                except StepProcessError as failed:
                    try:
                        self._debug(failed, cache_mounts)
                    finally:
                        failed.container.discard()
                    raise
                return self._export(plan, solved, snapshotter, views, solver.stats)
        finally:
            views.close()

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
        if self.bus is not None:
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
        snapshotter: Any,
        views: BuildViews,
        stats: SolveStats,
    ) -> BuildResult:
        request = self.request
        outputs = list(request.outputs) or [OutputSpec(type="image")]
        top = solved.result if solved is not None else SnapshotResult(None)
        assert isinstance(top, SnapshotResult)
        exported: ExportedImage | None = None
        names: list[str] = list(request.tags)
        for output in outputs:
            if output.type in ("image", "docker", "oci"):
                names.extend(output.names)
        # Archives written without the image store hold their config and manifest blobs
        # through this lease only: BuildKit's docker/oci exporters with a destination
        # leave nothing in the image store (no dangling `<none>` image).
        with self.images.content.lease() as lease:
            for index, output in enumerate(outputs):
                if output.type in ("local", "tar"):
                    self._export_files(output, index, views.snapshot_tree(top))
                    continue
                if output.type == "image" or (output.type == "docker" and output.dest is None):
                    exported = self._export_image(plan, top, snapshotter, names, index)
                    continue
                exported = self._export_archive(
                    output,
                    index,
                    names,
                    exported,
                    lambda vertex: self._unstored_image(plan, top, snapshotter, vertex, lease),
                )
            manifest_size = (
                self.images.content.info(exported.manifest_digest).size if exported else 0
            )
        if exported is None:
            return BuildResult("", "", (), {}, stats)
        return BuildResult(
            image_id=exported.image_id,
            manifest_digest=exported.manifest_digest,
            names=exported.names or tuple(str(parse_reference(n)) for n in names),
            config=exported.config,
            stats=stats,
            manifest_size=manifest_size,
        )

    def _layers(self, top: SnapshotResult, snapshotter: Any, vertex: str) -> list[ChainLayer]:
        self.progress.status(vertex, "exporting layers", done=False)
        layers = image_layers(snapshotter, self.records, self.images.content, top.name)
        self.progress.status(vertex, "exporting layers", done=True)
        return layers

    def _config(self, plan: BuildPlan, layers: Sequence[ChainLayer]) -> dict[str, Any]:
        base_created = None
        if plan.base_image is not None:
            created = plan.base_image.config.get("created")
            base_created = created if isinstance(created, str) else None
        return image_config(
            plan.config,
            plan.history,
            layers,
            source_date_epoch=plan.source_date_epoch,
            base_created=base_created,
        )

    def _export_image(
        self,
        plan: BuildPlan,
        top: SnapshotResult,
        snapshotter: Any,
        names: Sequence[str],
        index: int,
    ) -> ExportedImage:
        label = "exporting to image"
        with self.progress.vertex(label, f"{label} {index}") as vertex:
            layers = self._layers(top, snapshotter, vertex)
            exported = store_image(self.images, self._config(plan, layers), layers, names)
            self.progress.status(vertex, f"writing image {exported.image_id}")
            # Named as given, normalised but without an added tag (moby's image exporter,
            # builder-next/exporter/mobyexporter/export.go: ParseNormalizedNamed(v).String()).
            for name in names:
                self.progress.status(
                    vertex, f"naming to {parse_reference(name, default_tag=False)}"
                )
        return exported

    def _unstored_image(
        self, plan: BuildPlan, top: SnapshotResult, snapshotter: Any, vertex: str, lease: str
    ) -> ExportedImage:
        layers = self._layers(top, snapshotter, vertex)
        return write_unstored_image(self.images, self._config(plan, layers), layers, hold=lease)

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
        with self.progress.vertex(label, f"{label} {index}") as vertex:
            if exported is None:
                exported = make_image(vertex)
            image = self.images.image(exported.manifest_digest)
            self.progress.status(vertex, f"exporting manifest {exported.manifest_digest}")
            self.progress.status(vertex, f"exporting config {exported.image_id}")
            refs = tuple(parse_reference(n) for n in names)
            entries = [ExportEntry(image=image, names=refs)]
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
        with open(path, "wb") as fh:
            yield fh


def build(
    request: BuildRequest,
    *,
    root: StateRoot | Path,
    bus: ProgressBus | None = None,
    stdout: BinaryIO | None = None,
    debug_shell: DebugShell | None = None,
) -> BuildResult:
    """Build `request` in the state root `root`; see the module docstring.

    With `request.on_error == "shell"`, a RUN that fails is handed to `debug_shell`
    (a `DebugSession`) before the build fails with that step's error."""
    _validate(request)
    opened = root if isinstance(root, StateRoot) else StateRoot.open(root)
    try:
        # Read before building, so a bad `--gc-budget` fails before any work is done.
        budget = read_gc_budget(opened, request.gc_budget)
        try:
            result = _Build(request, opened, bus, stdout, debug_shell).run()
        except Interrupted:
            raise
        except StrataError:
            _collect_garbage(opened, budget)
            raise
        _collect_garbage(opened, budget)
        return result
    finally:
        if not isinstance(root, StateRoot):
            opened.close()


def _validate(request: BuildRequest) -> None:
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
    if not all(isinstance(output, OutputSpec) for output in request.outputs):
        raise UsageError("outputs must be OutputSpec values", option="--output")


def _collect_garbage(root: StateRoot, budget: int | None) -> None:
    """BuildKit collects garbage after builds (its controller's throttled GC); so does
    strata, once this build's lease is released. Skipped when GC is `off`, and by
    `auto_gc` itself while another build still holds its lease (the last one collects)."""
    if budget is not None:
        auto_gc(root, budget)


# -- images and build cache ---------------------------------------------------------------
#
# What `strata import/images/tag/rmi/inspect/save/load/prune/du` do, as functions: each
# opens `root` (a path, or a StateRoot the caller keeps open, as `build` takes it) and
# hands the work to the image store, the exporters or the cache pruner.

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time as Docker prints it (an image never tagged, an unset `Created`)."""

ArchiveFormat = Literal["docker", "oci"]
ErrorCallback = Callable[[StrataError], None]


@contextlib.contextmanager
def _open_root(root: StateRoot | Path) -> Iterator[StateRoot]:
    """`root` itself when the caller opened it, else opened here and closed after."""
    if isinstance(root, StateRoot):
        yield root
        return
    opened = StateRoot.open(root)
    try:
        yield opened
    finally:
        opened.close()


def parse_name(text: str, *, default_tag: bool = True) -> Reference:
    """An image name typed by a user; an invalid one names itself, as Docker's CLI does."""
    try:
        return parse_reference(text, default_tag=default_tag)
    except StoreError as exc:
        raise StoreError(
            f'Error parsing reference: "{text}" is not a valid repository/tag: {exc.message}'
        ) from None


def import_image(
    root: StateRoot | Path,
    source: BinaryIO,
    name: str | None = None,
    *,
    changes: Sequence[str] = (),
    message: str | None = None,
    source_name: str = "-",
) -> str:
    """`docker import`: store the root file system tar `source` as a one-layer image,
    named `name` if given; returns the image ID (its config digest). `changes` are
    Dockerfile instructions applied to its config (`-c`)."""
    ref = parse_name(name) if name else None
    with _open_root(root) as opened:
        store = ImageStore(opened)
        manifest = import_tarball(
            store, source, source=source_name, changes=list(changes), message=message
        )
        if ref is not None:
            store.put(str(ref), manifest)
        return store.image(manifest).config_digest


def list_images(root: StateRoot | Path, repository: str | None = None) -> list[ImageRecord]:
    """`docker images [REPOSITORY[:TAG]]`: one record per name (and per unnamed image)."""
    with _open_root(root) as opened:
        records = ImageStore(opened).list()
    if not repository:
        return records
    wanted = parse_name(repository, default_tag=False)
    return [
        r
        for r in records
        if r.name is not None
        and parse_reference(r.name).name == wanted.name
        and (wanted.tag is None or r.tag == wanted.tag)
    ]


def tag(root: StateRoot | Path, source: str, target: str) -> None:
    """`docker tag`: name `target` the image `source` names (a name or an ID)."""
    ref = parse_name(target)
    with _open_root(root) as opened:
        ImageStore(opened).tag(source, str(ref))


def remove_images(
    root: StateRoot | Path,
    names: Sequence[str],
    *,
    force: bool = False,
    on_error: ErrorCallback | None = None,
) -> list[str]:
    """`docker rmi`: remove each image; returns Docker's `Untagged:`/`Deleted:` lines.

    Without `on_error` the first failure raises; with it, a failure is handed to it and
    the other names are still removed (as `docker rmi a b` goes on past a missing `a`)."""
    lines: list[str] = []
    with _open_root(root) as opened:
        store = ImageStore(opened)
        for name in names:
            try:
                lines.extend(store.remove(name, force=force))
            except StrataError as exc:
                if on_error is None:
                    raise
                on_error(exc)
    return lines


def inspect(
    root: StateRoot | Path, names: Sequence[str], *, on_error: ErrorCallback | None = None
) -> list[dict[str, Any]]:
    """`docker image inspect`: Docker's document for each image found. Failures raise,
    or with `on_error` are handed to it and the image left out."""
    found: list[dict[str, Any]] = []
    with _open_root(root) as opened:
        store = ImageStore(opened)
        for name in names:
            try:
                found.append(_inspect_document(store, store.resolve(name)))
            except StrataError as exc:
                if on_error is None:
                    raise
                on_error(exc)
    return found


def _inspect_document(store: ImageStore, manifest_digest: str) -> dict[str, Any]:
    image = store.image(manifest_digest)
    config = image.config
    names = store.names_of(manifest_digest)
    history = config.get("history") or []
    comment = history[-1].get("comment", "") if history and isinstance(history[-1], dict) else ""
    doc: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": [n.familiar() for n in names],
        "RepoDigests": sorted({f"{n.familiar_name}@{manifest_digest}" for n in names}),
        "Parent": "",
        "Comment": comment,
        "Created": config.get("created") or ZERO_TIME,
        "DockerVersion": "",
        "Author": config.get("author", ""),
        "Config": config.get("config") or {},
        "Architecture": config.get("architecture", ""),
    }
    if config.get("variant"):
        doc["Variant"] = config["variant"]
    tagged = store.tagged_at(manifest_digest)
    doc.update(
        {
            "Os": config.get("os", ""),
            "Size": store.size_of(manifest_digest),
            "RootFS": {"Type": "layers", "Layers": diff_ids_of(config)},
            # Go's RFC 3339 (trailing zeros trimmed), Go's zero time if never tagged.
            "Metadata": {"LastTagTime": ZERO_TIME if tagged is None else rfc3339(tagged)},
        }
    )
    return doc


def save(
    root: StateRoot | Path,
    images: Sequence[str],
    dest: BinaryIO,
    *,
    format: ArchiveFormat = "docker",
) -> None:
    """`docker save`: write `images` to `dest` as a docker-archive (`docker load`
    reads it) or an OCI image layout tar. Every name is resolved before a byte is
    written, so an unknown image leaves `dest` untouched."""
    if format not in get_args(ArchiveFormat):
        raise UsageError(f'invalid format "{format}" (use "docker" or "oci")', option="--format")
    with _open_root(root) as opened:
        store = ImageStore(opened)
        entries = [_export_entry(store, name) for name in images]
        writer = write_oci_archive if format == "oci" else write_docker_archive
        writer(store.content, entries, dest)


def _export_entry(store: ImageStore, name: str) -> ExportEntry:
    """Saved by name: under that name. Saved by ID: no name, as `docker save <id>`."""
    manifest = store.resolve(name)
    image = store.image(manifest)
    names: list[Reference] = []
    try:
        ref = parse_reference(name)
    except StoreError:
        ref = None
    if ref is not None and ref.digest is None and store.get(str(ref)) == manifest:
        names.append(ref)
    return ExportEntry(image, names)


def load(
    root: StateRoot | Path, source: BinaryIO | Path, *, source_name: str | None = None
) -> list[LoadedImage]:
    """`docker load`: the images of a docker-archive or OCI layout, from a stream, a
    tar file or an OCI layout directory; each with its name and the ID it replaced."""
    with _open_root(root) as opened:
        store = ImageStore(opened)
        if isinstance(source, Path):
            if source.is_dir():
                return load_oci_layout_dir(store, source)
            with open(source, "rb") as stream:
                return load_archive(store, stream, source=source_name or str(source))
        return load_archive(store, source, source=source_name)


def prune(
    root: StateRoot | Path,
    *,
    all: bool = False,
    filters: Sequence[str] = (),
    reserved_space: int | None = None,
    max_used_space: int | None = None,
    min_free_space: int | None = None,
    on_wait: WaitCallback | None = None,
    on_removed: RemovedCallback | None = None,
) -> PruneReport:
    """`docker buildx prune`: remove build cache (by default what nothing references;
    `all` also what images share), as `filters` (`KEY=VALUE`, `until=24h`) and the
    space limits say. `on_removed` sees each record as it goes; `on_wait` is told when
    running builds hold the cache."""
    parsed = parse_filters(filters)
    with _open_root(root) as opened:
        return prune_cache(
            opened,
            all=all,
            filters=parsed,
            reserved_space=reserved_space,
            max_used_space=max_used_space,
            min_free_space=min_free_space,
            on_wait=on_wait,
            on_removed=on_removed,
        )


def disk_usage(root: StateRoot | Path, *, filters: Sequence[str] = ()) -> list[UsageRecord]:
    """`docker buildx du`: the build cache's records, oldest first, those `filters`
    select; `until` leaves out records used more recently than that (BuildKit's age
    limit)."""
    parsed = parse_filters(filters)
    with _open_root(root) as opened:
        records = cache_usage(opened)
    cutoff = time.time() - parsed.until if parsed.until else None
    return [
        r
        for r in records
        if parsed.matches(r)
        and not (cutoff is not None and r.last_used is not None and r.last_used > cutoff)
    ]

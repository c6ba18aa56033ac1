"""The values strata's public API takes and returns: what a build is asked to do and
what it made, and the small Literals that spell options.

Plain data with no behaviour beyond formatting, so importing it costs nothing: the
engine's types it mentions (a failed container, an executor) are imported for type
checking only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from strata.errors import BuildError, StrataError
from strata.modes import NetworkMode as NetworkMode
from strata.modes import Runtime as Runtime
from strata.sandbox import SandboxOptions

if TYPE_CHECKING:
    from strata.export.outputs import OutputSpec
    from strata.remotecache.spec import CacheSpec
    from strata.solver.execop import SSHSource
    from strata.solver.failed import FailedContainer
    from strata.solver.solve import SolveStats
    from strata.worker.executor import Executor

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
    # default (see `strata.gc.prune.gc_budget`).
    gc_budget: str | None = None
    # `--on-error`: "error", or "shell" to hand a failed RUN's container to the
    # `debug_shell` callback of `build` before failing.
    on_error: OnError = "error"
    # `--pull`: ask the registry for every base image, even one stored here.
    pull: bool = False
    # `--cache-from` / `--cache-to` (`strata.remotecache.spec.parse_cache_specs`).
    cache_from: Sequence[CacheSpec] = ()
    cache_to: Sequence[CacheSpec] = ()
    # `--add-host`, `--ulimit`, `--shm-size`, `--cgroup-parent`, `--resource` (and the
    # legacy `-m`, `--cpu-*`): what every RUN container gets (`strata.sandbox`).
    sandbox: SandboxOptions = field(default_factory=SandboxOptions)
    # `--annotation`: OCI annotations for the exporters that write manifests and
    # indexes, keyed as buildx spells them (`foo`, `manifest:foo`,
    # `index,manifest[linux/amd64]:foo`). The image store does not record them.
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildResult:
    """What a build produced. `image_id` is empty when no output made an image."""

    image_id: str
    manifest_digest: str
    names: tuple[str, ...]
    config: dict[str, Any]
    stats: SolveStats
    manifest_size: int = 0
    # The media type of `manifest_digest` when it is not the image store's OCI
    # manifest (a pushed index, Docker media types); "" otherwise.
    media_type: str = ""


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
            "mediaType": result.media_type or "application/vnd.oci.image.manifest.v1+json",
            "digest": result.manifest_digest,
            "size": result.manifest_size,
        }
    if result.names:
        data["image.name"] = ",".join(result.names)
    return data


@dataclass(frozen=True)
class Volume:
    """`strata run -v HOST:CONTAINER[:ro]`: a host path whose writes reach the host."""

    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class RunRequest:
    """What `strata run` (docker run's flags) asks of `Client.run`."""

    image: str
    command: Sequence[str] = ()
    # `--entrypoint`: replaces the image's entrypoint and drops its Cmd ("" clears it).
    entrypoint: str | None = None
    # `-e`/`--env-file` items as `K=V`, merged over the image's Env.
    env: Sequence[str] = ()
    workdir: str | None = None
    user: str | None = None
    volumes: Sequence[Volume] = ()
    network: NetworkMode = "default"
    interactive: bool = False
    tty: bool = False
    # Keep the container's writable layer under this name (until `remove_containers`).
    name: str | None = None
    remove: bool = False
    snapshotter: SnapshotterName | None = None
    runtime: Runtime | None = None
    # `--security-opt seccomp=unconfined`: no seccomp filter (Docker's default profile
    # applies otherwise).
    seccomp_unconfined: bool = False


ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time as Docker prints it (an image never tagged, an unset `Created`)."""

ArchiveFormat = Literal["docker", "oci"]
# Handed each failure of a many-image verb (`rmi a b`) so the others still run.
ErrorCallback = Callable[[StrataError], None]

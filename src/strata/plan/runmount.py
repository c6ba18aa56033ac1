"""`RUN --mount` values turned into exec-op mounts (dockerfile2llb/convert_runmount.go,
convert_secrets.go, convert_ssh.go).

The frontend has already parsed and validated each mount with the build environment; this
module decides what each one reads (the context, a stage, an image, scratch, or a small
helper vertex that sets cache-mount ownership), where it lands, and how it enters the op.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strata.dockerfile.instructions import Location
from strata.dockerfile.mounts import (
    BindMount,
    CacheMount,
    Mount,
    SecretMount,
    SshMount,
    TmpfsMount,
)
from strata.plan import paths
from strata.plan.ops import (
    Chown,
    ExecMount,
    FileOp,
    MkdirAction,
    MountType,
    Sharing,
    Vertex,
)
from strata.plan.result import SecretUse
from strata.plan.state import DispatchState, SharedState

SSH_SOCKET_PREFIX = "/run/buildkit/ssh_agent."
CACHE_PERMISSIONS_NAME = "[internal] setting cache mount permissions"


@dataclass
class ExecInputs:
    """The inputs of an exec op being assembled; index 0 is the root when it has one."""

    vertices: list[Vertex] = field(default_factory=list)

    def index_of(self, vertex: Vertex | None) -> int | None:
        if vertex is None:
            return None
        for index, existing in enumerate(self.vertices):
            if existing is vertex:
                return index
        self.vertices.append(vertex)
        return len(self.vertices) - 1


@dataclass
class ConvertedMounts:
    mounts: list[ExecMount]
    ssh_sock: str = ""  # first ssh socket target, for SSH_AUTH_SOCK


def _resolve_target(state: DispatchState, target: str, where: Location) -> str:
    """A relative (or empty) target joins the WORKDIR; `/` is refused."""
    if not paths.clean(target).startswith("/"):
        target = paths.join("/", state.workdir, target)
    if target == "/":
        raise where.error('invalid mount target "/"')
    return target


def _cache_permissions(base: Vertex | None, mount: CacheMount) -> Vertex:
    """The helper tree whose `/cache` seeds a cache mount with given uid/gid/mode."""
    uid = mount.uid or 0
    gid = mount.gid or 0
    mode = mount.mode if mount.mode is not None else 0o755
    op = FileOp(
        actions=(MkdirAction("/cache", mode=mode, chown=Chown(str(uid), str(gid))),),
        base=0 if base is not None else None,
    )
    return Vertex(op, (base,) if base is not None else (), name=CACHE_PERMISSIONS_NAME)


def convert_mounts(
    shared: SharedState,
    state: DispatchState,
    mounts: tuple[Mount, ...],
    sources: list[DispatchState | None],
    inputs: ExecInputs,
    where: Location,
) -> ConvertedMounts:
    """Exec mounts for a RUN's `--mount`s, in the order written.

    `sources[i]` is the state `from=` of mount i names (or the hidden scratch state for
    mounts without one); it must already be dispatched.
    """
    out = ConvertedMounts(mounts=[])
    ssh_count = 0
    for index, mount in enumerate(mounts):
        if isinstance(mount, SecretMount):
            out.mounts.append(_secret(shared, mount))
            continue
        if isinstance(mount, SshMount):
            ssh_mount = _ssh(shared, mount, ssh_count)
            if ssh_count == 0:
                out.ssh_sock = ssh_mount.target
            ssh_count += 1
            out.mounts.append(ssh_mount)
            continue
        source_state = sources[index] if index < len(sources) else None
        from_ = mount.from_ if isinstance(mount, BindMount | CacheMount) else ""
        if isinstance(mount, CacheMount) and not from_:
            from_ = "scratch"
        base: Vertex | None = shared.context
        if from_:
            if source_state is None or not source_state.dispatched:
                raise where.error(
                    f'cannot mount from stage "{from_}" to "{mount.target}", '
                    "stage needs to be defined before current command"
                )
            base = source_state.root
        target = _resolve_target(state, mount.target, where)
        if isinstance(mount, TmpfsMount):
            out.mounts.append(
                ExecMount(
                    target=target,
                    type=MountType.TMPFS,
                    readonly=mount.read_only,
                    size=mount.size or 0,
                )
            )
            continue
        selector = paths.join("/", mount.source)
        if isinstance(mount, CacheMount):
            if selector == "/" and (
                mount.uid is not None or mount.gid is not None or mount.mode is not None
            ):
                base = _cache_permissions(base, mount)
                selector = "/cache"
            # The frontend's cache id is "<namespace>/<id>" (convert_runmount.go).
            cache_id = f"{shared.options.cache_namespace}/{mount.cache_id}"
            out.mounts.append(
                ExecMount(
                    target=target,
                    type=MountType.CACHE,
                    input=inputs.index_of(base),
                    selector=selector,
                    readonly=mount.read_only,
                    cache_id=cache_id,
                    sharing=Sharing(mount.sharing),
                )
            )
            if state.ignore_cache:
                shared.cache_ids_to_clear.append(cache_id)
            continue
        # bind
        if not from_:
            shared.context_paths.add(selector)
        out.mounts.append(
            ExecMount(
                target=target,
                type=MountType.BIND,
                input=inputs.index_of(base),
                selector=selector,
                readonly=mount.read_only,
            )
        )
    return out


def _secret(shared: SharedState, mount: SecretMount) -> ExecMount:
    if mount.id not in shared.secrets:
        shared.secrets[mount.id] = SecretUse(mount.id, mount.required)
    return ExecMount(
        target=mount.file_target or "",
        type=MountType.SECRET,
        secret_id=mount.id,
        env=mount.env or "",
        required=mount.required,
        uid=mount.uid or 0,
        gid=mount.gid or 0,
        mode=mount.mode if mount.mode is not None else 0o400,
    )


def _ssh(shared: SharedState, mount: SshMount, position: int) -> ExecMount:
    ssh_id = mount.id or "default"
    if ssh_id not in shared.ssh:
        shared.ssh[ssh_id] = SecretUse(ssh_id, mount.required)
    return ExecMount(
        target=mount.target or f"{SSH_SOCKET_PREFIX}{position}",
        type=MountType.SSH,
        secret_id=ssh_id,
        required=mount.required,
        uid=mount.uid or 0,
        gid=mount.gid or 0,
        mode=mount.mode if mount.mode is not None else 0o600,
    )

"""Running an ExecOp (RUN): a container on a new snapshot of its root input.

Each non-root mount of the op becomes a runtime mount of `strata.worker.mounts`: binds of
the context, a stage or an image as read-only views (writable ones get a throwaway copy
from the executor), cache mounts through `CacheMounts` seeded from their `from` input,
tmpfs, secrets given with `--secret`, and ssh agents given with `--ssh`. The process's
output goes to the progress bus line by line. A non-zero exit is BuildKit's
`process "<argv>" did not complete successfully: exit code: <n>`.

`ExecRunner` is the op's runner for the solver (`strata.solver.runner`); before the
process runs it names new cache mounts for `du` and lets an imported cache restore them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from strata.errors import BuildError, StepProcessError
from strata.modes import NETWORK_MODES, NetworkMode, SecurityMode
from strata.plan.ops import ExecMount, ExecOp, MountType
from strata.sandbox import ResourceLimits, SandboxOptions
from strata.solver.failed import FailedContainer
from strata.solver.keys import InputKey, combined_checksum
from strata.solver.remote import RemoteCache
from strata.solver.results import ContextResult, Result, SnapshotResult, parent_snapshot
from strata.solver.runner import CacheMap, OperationRunner, Outcome, Step
from strata.solver.views import BuildViews
from strata.store.cachemounts import base_key_for
from strata.store.root import StateRoot
from strata.store.usage import remember_cache_mount
from strata.worker.context import resolve_in_root
from strata.worker.executor import Executor, ProcessSpec
from strata.worker.mounts import (
    RuntimeBindMount,
    RuntimeCacheMount,
    RuntimeMount,
    RuntimeSecretMount,
    RuntimeSSHMount,
    RuntimeTmpfsMount,
)
from strata.worker.snapshots.snapshotter import Snapshotter
from strata.worker.spec import process_failed_message

OutputSink = Callable[[str, bytes], None]
"""Receives ("stdout" | "stderr", one line of output)."""


@dataclass(frozen=True)
class SSHSource:
    """What `--ssh ID=...` forwards: an agent socket, or key files to serve."""

    agent_socket: Path | None = None
    key_files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class ExecEnvironment:
    """Build-wide inputs of RUN steps that are not part of any op."""

    secrets: Mapping[str, bytes] = field(default_factory=dict)
    ssh: Mapping[str, SSHSource] = field(default_factory=dict)
    network: str = "default"
    # `--resource` (and `-m`, `--cpu-*`): limits of every RUN, outside the cache key.
    resources: ResourceLimits = field(default_factory=ResourceLimits)


def _selected(views: BuildViews, result: Result, selector: str) -> Path:
    """Host path of `selector` inside an input, as a bind mount source."""
    tree = views.context_copy(result) if isinstance(result, ContextResult) else views.tree(result)
    if selector in ("", "/"):
        return tree
    return resolve_in_root(tree, selector)


def runtime_mounts(
    op: ExecOp,
    inputs: Sequence[Result],
    views: BuildViews,
    env: ExecEnvironment,
    cache_base_keys: Mapping[int, str],
) -> list[RuntimeMount]:
    """The op's mounts after the root, for the executor.

    `cache_base_keys` maps a mount's position to the checksum of its `from` seed, so a
    cache seeded from changed content is a different cache (BuildKit mounts.go)."""
    out: list[RuntimeMount] = []
    for position, mount in enumerate(op.mounts):
        if position == 0:
            continue
        out.append(_runtime_mount(position, mount, inputs, views, env, cache_base_keys))
    return out


def _runtime_mount(
    position: int,
    mount: ExecMount,
    inputs: Sequence[Result],
    views: BuildViews,
    env: ExecEnvironment,
    cache_base_keys: Mapping[int, str],
) -> RuntimeMount:
    if mount.type == MountType.BIND:
        source_result = inputs[mount.input] if mount.input is not None else SnapshotResult(None)
        source = _selected(views, source_result, mount.selector)
        if not source.exists():
            raise BuildError(f'failed to compute cache key: "{mount.selector}": not found')
        return RuntimeBindMount(target=mount.target, source=source, readonly=mount.readonly)
    if mount.type == MountType.CACHE:
        base: Path | None = None
        if mount.input is not None:
            base = _selected(views, inputs[mount.input], mount.selector)
        return RuntimeCacheMount(
            target=mount.target,
            id=mount.cache_id,
            sharing=mount.sharing.value,
            base=base,
            base_key=cache_base_keys.get(position),
            uid=mount.uid or 0,
            gid=mount.gid or 0,
            mode=mount.mode if mount.mode is not None else 0o755,
            readonly=mount.readonly,
        )
    if mount.type == MountType.TMPFS:
        return RuntimeTmpfsMount(
            target=mount.target, size=mount.size or None, readonly=mount.readonly
        )
    if mount.type == MountType.SECRET:
        return RuntimeSecretMount(
            id=mount.secret_id,
            data=env.secrets.get(mount.secret_id),
            target=mount.target or None,
            env=mount.env or None,
            uid=mount.uid or 0,
            gid=mount.gid or 0,
            mode=mount.mode if mount.mode is not None else 0o400,
            required=mount.required,
        )
    ssh_id = mount.secret_id or "default"
    forwarded = env.ssh.get(ssh_id)
    if forwarded is None and mount.required and env.ssh:
        # The client forwards other ids: buildx's ssh provider refuses this one
        # (session/sshforward/sshprovider CheckAgent). With no `--ssh` at all the worker
        # says `no SSH key "<id>" forwarded from the client` (BuildKit mounts/mount.go).
        raise BuildError(f"unset ssh forward key {ssh_id}")
    return RuntimeSSHMount(
        id=ssh_id,
        target=mount.target or None,
        agent_socket=forwarded.agent_socket if forwarded else None,
        key_files=forwarded.key_files if forwarded else (),
        uid=mount.uid or 0,
        gid=mount.gid or 0,
        mode=mount.mode if mount.mode is not None else 0o600,
        required=mount.required,
    )


def network_mode(op: ExecOp, env: ExecEnvironment) -> NetworkMode:
    """`RUN --network=default` means the build-wide mode (`--network` of the build)."""
    mode = op.network if op.network != "default" else env.network
    if mode not in NETWORK_MODES:
        raise BuildError(f'invalid network mode "{mode}"')
    return mode


def run_exec_op(
    op: ExecOp,
    inputs: Sequence[Result],
    *,
    snapshotter: Snapshotter,
    executor: Executor,
    views: BuildViews,
    env: ExecEnvironment,
    cache_base_keys: Mapping[int, str],
    on_output: OutputSink,
    keep_failed: bool = False,
) -> str:
    """Run the op's process on a new snapshot of its root; returns the committed name.

    With `keep_failed`, a process that exits non-zero leaves its snapshot in place and
    the error is a `StepProcessError` holding the container (for a debug shell)."""
    parent = parent_snapshot(inputs, op.mounts[0].input, "an ExecOp root")
    key = f"active-{uuid.uuid4().hex}"
    rootfs = snapshotter.prepare(key, parent)
    try:
        mounts = runtime_mounts(op, inputs, views, env, cache_base_keys)
        process = ProcessSpec(
            args=op.args,
            env=(*op.env, *op.proxy_env),
            cwd=op.cwd or "/",
            user=op.user,
            hostname=op.hostname,
            extra_hosts=op.extra_hosts,
            sandbox=SandboxOptions(
                ulimits=op.ulimits,
                shm_size=op.shm_size,
                cgroup_parent=op.cgroup_parent,
                resources=env.resources,
            ),
        )
        network = network_mode(op, env)
        security = cast(SecurityMode, op.security)
        code = executor.run(
            process,
            rootfs,
            mounts,
            network=network,
            security=security,
            on_output=lambda stream, line, _when: on_output(stream, line),
        )
        if code != 0 and keep_failed:
            kept = FailedContainer(snapshotter, key, rootfs, process, mounts, network, security)
            raise StepProcessError(process_failed_message(op.args, code), kept)
        if code != 0:
            raise BuildError(process_failed_message(op.args, code))
        name = f"result-{uuid.uuid4().hex}"
        snapshotter.commit(name, key)
        return name
    except StepProcessError:
        raise
    except BaseException:
        with contextlib.suppress(Exception):
            snapshotter.remove(key)
        raise


class ExecRunner(OperationRunner):
    """Runs an `ExecOp` (RUN) for the solver."""

    def __init__(
        self,
        *,
        root: StateRoot,
        snapshotter: Snapshotter,
        executor: Executor,
        views: BuildViews,
        env: ExecEnvironment,
        keep_failed: bool,
        remote: RemoteCache | None,
    ) -> None:
        super().__init__(snapshotter, views)
        self.root = root
        self.executor = executor
        self.env = env
        self.keep_failed = keep_failed
        self.remote = remote

    def run(self, step: Step, cache: CacheMap) -> Outcome:
        op = step.vertex.op
        assert isinstance(op, ExecOp)
        self._describe_cache_mounts(op)
        cache_keys = cache_mount_keys(op, step.input_keys())
        self._seed_cache_mounts(op, cache_keys)
        name = run_exec_op(
            op,
            step.results,
            snapshotter=self.snapshotter,
            executor=self.executor,
            views=self.views,
            env=self.env,
            cache_base_keys=cache_keys,
            on_output=step.log,
            keep_failed=self.keep_failed,
        )
        return Outcome(SnapshotResult(name))

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


def cache_mount_keys(op: ExecOp, input_keys: Sequence[InputKey]) -> dict[int, str]:
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

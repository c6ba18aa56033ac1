"""Runtime mounts of one container: bind, cache, tmpfs, secret and ssh.

The build engine resolves stages, context and secrets into host paths and bytes; this
module turns them into OCI spec mounts, creating on the host whatever must exist for
the run (throwaway overlays for writable binds, a private tmpfs per secret, agent
sockets) inside a directory of the state root's tmp space, so a crash leaves nothing
the next start does not reap. Everything is undone through the caller's `ExitStack`.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from strata.errors import ExecError
from strata.fsutil import copy_tree
from strata.modes import Sharing
from strata.store.cachemounts import CacheMounts, base_key_for
from strata.store.root import StateRoot
from strata.worker.snapshots.mount import MountSpec, mount_one, unmount


def container_path(target: str, cwd: str) -> str:
    """A mount target made absolute against the working directory, and cleaned."""
    joined = posixpath.normpath(posixpath.join("/", cwd, target))
    if joined.startswith("//"):
        joined = joined[1:]
    return joined


@dataclass(frozen=True)
class RuntimeBindMount:
    """A host file or directory at `target`. Writable binds of a build step write to a
    throwaway copy (`write_back=False`); `strata run -v` writes through to the host."""

    target: str
    source: Path
    readonly: bool = True
    write_back: bool = False


@dataclass(frozen=True)
class RuntimeCacheMount:
    """A persistent cache directory (see `strata.store.cachemounts`)."""

    target: str
    id: str
    sharing: Sharing = "shared"
    base: Path | None = None
    base_key: str | None = None
    uid: int = 0
    gid: int = 0
    mode: int = 0o755
    readonly: bool = False


@dataclass(frozen=True)
class RuntimeTmpfsMount:
    target: str
    size: int | None = None
    readonly: bool = False


@dataclass(frozen=True)
class RuntimeSecretMount:
    """A secret as a file (default /run/secrets/<basename(id)>) and/or an env var.
    `data` None means the client did not provide it."""

    id: str
    data: bytes | None
    target: str | None = None
    env: str | None = None
    uid: int = 0
    gid: int = 0
    mode: int = 0o400
    required: bool = False


@dataclass(frozen=True)
class RuntimeSSHMount:
    """An SSH agent socket: forwarded from `agent_socket` on the host, or served by an
    agent loaded with `key_files`. Neither given means the client forwards nothing."""

    id: str = "default"
    target: str | None = None
    agent_socket: Path | None = None
    key_files: tuple[Path, ...] = ()
    uid: int = 0
    gid: int = 0
    mode: int = 0o600
    required: bool = False


RuntimeMount = (
    RuntimeBindMount | RuntimeCacheMount | RuntimeTmpfsMount | RuntimeSecretMount | RuntimeSSHMount
)


@dataclass
class PreparedMounts:
    """What the spec needs from the runtime mounts."""

    oci_mounts: list[dict[str, object]] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)


def _bind_options(readonly: bool, *extra: str) -> list[str]:
    return ["rbind", "ro" if readonly else "rw", *extra]


def _scratch_dir(scratch: Path, prefix: str) -> Path:
    """A new directory under the run's scratch space (removed with the bundle)."""
    d = scratch / f"{prefix}-{uuid.uuid4().hex[:8]}"
    d.mkdir(mode=0o700)
    return d


def _throwaway_copy(scratch: Path, source: Path, stack: contextlib.ExitStack) -> Path:
    """A writable stand-in for `source` whose changes are discarded: an overlay with
    `source` as its only lower layer, or a copy where overlayfs refuses."""
    from strata.worker.snapshots.overlay import overlay_options

    work = _scratch_dir(scratch, "bindrw")
    if source.is_dir():
        for d in ("upper", "work", "merged"):
            (work / d).mkdir()
        opts = overlay_options([str(source)], str(work / "upper"), str(work / "work"))
        try:
            mount_one(MountSpec("overlay", "overlay", tuple(opts)), work / "merged")
        except OSError:
            copy_tree(source, work / "merged")
        else:
            stack.callback(unmount, work / "merged")
        return work / "merged"
    copy = work / "file"
    shutil.copy2(source, copy)
    st = source.stat()
    os.chown(copy, st.st_uid, st.st_gid)
    return copy


def _secret_file(
    scratch: Path, secret: RuntimeSecretMount, data: bytes, stack: contextlib.ExitStack
) -> Path:
    """The secret in a file on a private tmpfs, so it never touches a disk or a layer."""
    directory = _scratch_dir(scratch, "secret")
    flags = ["nosuid", "nodev", "mode=0700", "size=16m"]
    if not secret.mode & 0o111:
        flags.append("noexec")
    mount_one(MountSpec("tmpfs", "tmpfs", tuple(flags)), directory)
    stack.callback(unmount, directory)
    path = directory / "secret"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chown(path, secret.uid, secret.gid)
    os.chmod(path, secret.mode)
    return path


def prepare_mounts(
    root: StateRoot,
    mounts: Sequence[RuntimeMount],
    *,
    cwd: str,
    env: Sequence[str],
    scratch: Path,
    stack: contextlib.ExitStack,
    cache: CacheMounts | None = None,
    disk_scratch: Callable[[], Path] | None = None,
) -> PreparedMounts:
    """Turn runtime mounts into OCI mounts (sorted by target, parents first, as BuildKit
    applies them), registering every undo step on `stack`. Host-side helpers (overlays,
    secret tmpfs, sockets) are made under `scratch`, which must lie in the state root's
    tmp space so that a crash leaves nothing the reaper misses. Writable binds keep
    their throwaway changes in a directory from `disk_scratch` when given (so that a
    `scratch` in memory does not fill up with them)."""
    from strata.worker.ssh_agent import agent_socket

    prepared = PreparedMounts()
    entries: list[tuple[str, dict[str, object]]] = []
    caches: dict[tuple[str, str], Path] = {}
    env_names = {e.partition("=")[0] for e in env}
    ssh_index = 0

    def add(target: str, mount: dict[str, object]) -> None:
        if target == "/":
            raise ExecError('invalid mount target "/"')
        mount["destination"] = target
        entries.append((target, mount))

    for m in mounts:
        if isinstance(m, RuntimeBindMount):
            target = container_path(m.target, cwd)
            if not m.source.exists():
                raise ExecError(f"bind source {m.source} does not exist")
            source = m.source
            if not m.readonly and not m.write_back:
                where = disk_scratch() if disk_scratch is not None else scratch
                source = _throwaway_copy(where, m.source, stack)
            add(
                target,
                {"type": "bind", "source": str(source), "options": _bind_options(m.readonly)},
            )
        elif isinstance(m, RuntimeCacheMount):
            target = container_path(m.target, cwd)
            if cache is None:
                cache = CacheMounts(root)
            key = (m.id, base_key_for(m.base_key, m.base, m.uid, m.gid, m.mode))
            if key not in caches:
                caches[key] = stack.enter_context(
                    cache.acquire(
                        m.id,
                        m.sharing,
                        base=m.base,
                        base_key=m.base_key,
                        uid=m.uid,
                        gid=m.gid,
                        mode=m.mode,
                    )
                )
            add(
                target,
                {"type": "bind", "source": str(caches[key]), "options": _bind_options(m.readonly)},
            )
        elif isinstance(m, RuntimeTmpfsMount):
            target = container_path(m.target, cwd)
            options = ["nosuid"]
            if m.size is not None:
                options.append(f"size={m.size}")
            if m.readonly:
                options.append("ro")
            add(target, {"type": "tmpfs", "source": "tmpfs", "options": options})
        elif isinstance(m, RuntimeSecretMount):
            if m.data is None and m.required:
                raise ExecError(f"secret {m.id}: not found")
            if m.env is not None:
                value = m.data.decode(errors="surrogateescape") if m.data is not None else ""
                prepared.env.append(f"{m.env}={value}")
            if m.data is None or (m.env is not None and m.target is None):
                continue
            target = container_path(m.target or f"/run/secrets/{posixpath.basename(m.id)}", cwd)
            path = _secret_file(scratch, m, m.data, stack)
            options = ["rbind", "ro", "nosuid", "nodev"]
            if not m.mode & 0o111:
                options.append("noexec")
            add(target, {"type": "bind", "source": str(path), "options": options})
        else:
            default_target = f"/run/buildkit/ssh_agent.{ssh_index}"
            ssh_index += 1
            if m.agent_socket is None and not m.key_files:
                if m.required:
                    raise ExecError(f'no SSH key "{m.id}" forwarded from the client')
                continue
            target = container_path(m.target or default_target, cwd)
            sock = stack.enter_context(
                agent_socket(
                    _scratch_dir(scratch, "ssh"),
                    upstream=m.agent_socket,
                    key_files=m.key_files,
                    uid=m.uid,
                    gid=m.gid,
                    mode=m.mode,
                )
            )
            add(target, {"type": "bind", "source": str(sock), "options": ["rbind", "rw"]})
            if "SSH_AUTH_SOCK" not in env_names:
                prepared.env.append(f"SSH_AUTH_SOCK={target}")
                env_names.add("SSH_AUTH_SOCK")

    entries.sort(key=lambda e: e[0])
    prepared.oci_mounts = [e[1] for e in entries]
    prepared.targets = [e[0] for e in entries]
    return prepared

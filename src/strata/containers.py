"""`strata run` and `strata rm`: containers made from stored images.

The image's layers are unpacked into snapshots (shared with builds), a writable
snapshot is prepared on top, and the same executor that runs build steps runs the
command. Exit code, stdin, a terminal and signals pass through.

A named container keeps its writable snapshot (`container/NAME`) after it exits, even
after a crash, until `remove_containers` removes it. While it runs, its process holds
the lock file `locks/container-NAME.run`, which is how removal knows it is running.
"""

from __future__ import annotations

import contextlib
import fcntl
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from strata.errors import ExecError, StoreError, UsageError
from strata.model import RunRequest
from strata.store.images import Image
from strata.store.root import StateRoot, lock_held
from strata.worker.executor import Executor, ProcessSpec
from strata.worker.mounts import RuntimeBindMount
from strata.worker.snapshots.factory import open_snapshotter
from strata.worker.snapshots.snapshotter import Snapshotter
from strata.worker.unpack import unpack_image


def merge_env(base: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """`base` with each `K=V` of `overrides` replacing or appending by key."""
    merged: dict[str, str] = {}
    for item in [*base, *overrides]:
        key, _, _ = item.partition("=")
        merged[key] = item
    return list(merged.values())


def start_failure_status(message: str) -> int:
    """The exit status `docker run` gives when the command cannot be started: 127 when
    it does not exist, 126 when it cannot be executed, 125 for any other failure."""
    lowered = message.lower()
    if "not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered or "exec format error" in lowered:
        return 126
    return 125


def command_line(
    config: dict[str, Any], entrypoint: str | None, command: Sequence[str]
) -> list[str]:
    """Docker's rule: `--entrypoint` replaces the entrypoint and drops the image's Cmd;
    arguments after the image replace Cmd."""
    image_entry = cast(list[str], config.get("Entrypoint") or [])
    image_cmd = cast(list[str], config.get("Cmd") or [])
    if entrypoint is not None:
        entry = [entrypoint] if entrypoint else []
        return entry + list(command)
    return list(image_entry) + (list(command) if command else list(image_cmd))


def run_lock_path(locks_dir: Path, name: str) -> Path:
    return locks_dir / f"container-{name}.run"


@contextlib.contextmanager
def container_running(locks_dir: Path, name: str) -> Iterator[None]:
    """Mark container `name` as running for the `with` block (an flock, released by the
    kernel even when this process is killed); refused while another process runs it."""
    with open(run_lock_path(locks_dir, name), "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f'container name "{name}" is already in use', option="--name"
            ) from None
        yield


def is_running(locks_dir: Path, name: str) -> bool:
    """Whether a `strata run --name NAME` process is running container `name` now."""
    return lock_held(run_lock_path(locks_dir, name))


def find_container(root: StateRoot, preferred: str, key: str) -> Snapshotter | None:
    """The snapshotter holding snapshot `key`, looking in `preferred` first. Snapshot
    rows are keyed by (snapshotter, key), so a container kept by a run under another
    snapshotter than this command's is found (and its name counted as taken) too."""
    for name in dict.fromkeys((preferred, "overlay", "native")):
        snap = open_snapshotter(root, name)
        if snap.exists(key):
            return snap
    return None


def run_container(
    root: StateRoot, request: RunRequest, image: Image, default_snapshotter: str
) -> int:
    """Run `request` in a new container of `image`; its exit status."""
    config = cast(dict[str, Any], image.config.get("config") or {})
    args = command_line(config, request.entrypoint, request.command)
    if not args:
        raise UsageError("no command specified", option="COMMAND")
    snap = open_snapshotter(root, request.snapshotter or default_snapshotter)
    top = unpack_image(root, snap, image)
    container_id = uuid.uuid4().hex
    name = request.name
    key = f"container/{name}" if name else f"container/{container_id}"
    binds = [
        RuntimeBindMount(target=v.target, source=v.source, readonly=v.read_only, write_back=True)
        for v in request.volumes
    ]
    with contextlib.ExitStack() as running:
        if name:
            # Held from before the name is taken, so `rm` never sees it idle.
            running.enter_context(container_running(root.locks_dir, name))
        if name and find_container(root, snap.name, key) is not None:
            raise UsageError(f'container name "{name}" is already in use', option="--name")
        rootfs = snap.prepare(key, top)
        keep = bool(name) and not request.remove
        if keep:
            # Kept like a Docker container, even if this process is killed.
            snap.disown(key)
        running.callback(_remove_unless_kept, snap, key, keep=keep)
        process = ProcessSpec(
            args=tuple(args),
            env=tuple(merge_env(cast(list[str], config.get("Env") or []), request.env)),
            cwd=request.workdir or str(config.get("WorkingDir") or "/"),
            user=request.user if request.user is not None else str(config.get("User") or ""),
            hostname=container_id[:12],
        )
        executor = Executor(root, request.runtime)
        try:
            return executor.run(
                process,
                rootfs,
                binds,
                network=request.network,
                stdin=sys.stdin.fileno() if request.interactive else None,
                tty=request.tty,
                forward_signals=True,
                seccomp_unconfined=request.seccomp_unconfined,
            )
        except ExecError as err:
            err.exit_code = start_failure_status(err.message)
            raise


def _remove_unless_kept(snap: Snapshotter, key: str, *, keep: bool) -> None:
    if not keep:
        snap.remove(key)


def remove_containers(
    root: StateRoot,
    names: Sequence[str],
    *,
    force: bool,
    default_snapshotter: str,
    on_removed: Callable[[str], None] | None = None,
) -> list[str]:
    """Remove the kept files of named containers; the names removed, each also handed to
    `on_removed` as it goes. A running one is refused, as `docker rm` without -f refuses
    it (strata has no daemon that could stop it: stop its `strata run` first)."""
    preferred = open_snapshotter(root, default_snapshotter).name
    removed: list[str] = []
    for name in names:
        key = f"container/{name}"
        snap = find_container(root, preferred, key)
        if snap is None:
            if force:
                continue
            raise StoreError(f"No such container: {name}")
        if is_running(root.locks_dir, name):
            raise StoreError(
                f"cannot remove container {name}: container is running: "
                "stop the container before removing"
            )
        snap.remove(key)
        with contextlib.suppress(FileNotFoundError):
            run_lock_path(root.locks_dir, name).unlink()
        removed.append(name)
        if on_removed is not None:
            on_removed(name)
    return removed

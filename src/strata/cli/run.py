"""`strata run`: run a command in a container made from a stored image.

The image's layers are unpacked into snapshots (shared with builds), a writable
snapshot is prepared on top, and the same executor that runs build steps runs the
command. Exit code, stdin (`-i`), a terminal (`-t`) and signals pass through.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import click

from strata.errors import UsageError
from strata.worker.mounts import BindMount
from strata.worker.spec import NetworkMode


def parse_volume(text: str) -> BindMount:
    """`HOST:CONTAINER[:ro|rw]` as a bind mount whose writes reach the host."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UsageError(f"invalid volume specification: {text!r}", option="--volume")
    host, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise UsageError(f"invalid mode {mode!r} in volume {text!r}", option="--volume")
    if not host.startswith("/") or not target.startswith("/"):
        raise UsageError(f"volume paths must be absolute: {text!r}", option="--volume")
    if not Path(host).exists():
        raise UsageError(f"volume source {host} does not exist", option="--volume")
    return BindMount(target=target, source=Path(host), readonly=mode == "ro", write_back=True)


def read_env_file(path: Path) -> list[str]:
    """Docker's --env-file: `K=V` lines, `#` comments, a bare `K` taken from our env."""
    out: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.extend(_env_item(line))
    return out


def _env_item(item: str) -> list[str]:
    if "=" in item:
        return [item]
    value = os.environ.get(item)
    return [f"{item}={value}"] if value is not None else []


def merge_env(base: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """`base` with each `K=V` of `overrides` replacing or appending by key."""
    merged: dict[str, str] = {}
    for item in [*base, *overrides]:
        key, _, _ = item.partition("=")
        merged[key] = item
    return list(merged.values())


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


@click.command(
    "run",
    context_settings={"allow_interspersed_args": False, "ignore_unknown_options": False},
)
@click.option("--rm", "remove", is_flag=True, help="Remove the container's files on exit.")
@click.option("-v", "--volume", "volumes", multiple=True, help="Bind HOST:CONTAINER[:ro].")
@click.option("-w", "--workdir", default=None, help="Working directory in the container.")
@click.option("-e", "--env", "envs", multiple=True, help="Set K=V (or pass K from here).")
@click.option(
    "--env-file",
    "env_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read K=V lines from a file.",
)
@click.option("--entrypoint", default=None, help="Override the image's entrypoint.")
@click.option("-u", "--user", default=None, help="User (name|uid[:group|gid]).")
@click.option(
    "--network",
    type=click.Choice(["default", "none", "host"]),
    default="default",
    help="Network mode (default: a private namespace with loopback only).",
)
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a terminal.")
@click.option("--name", default=None, help="Keep the container's files under this name.")
@click.option(
    "--snapshotter",
    type=click.Choice(["auto", "overlay", "native"]),
    default="auto",
    help="How layers are stacked (auto: overlay when the kernel allows it).",
)
@click.option("--runtime", type=click.Choice(["runc", "crun"]), default=None)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run_command(
    ctx: click.Context,
    remove: bool,
    volumes: tuple[str, ...],
    workdir: str | None,
    envs: tuple[str, ...],
    env_files: tuple[Path, ...],
    entrypoint: str | None,
    user: str | None,
    network: str,
    interactive: bool,
    tty: bool,
    name: str | None,
    snapshotter: str,
    runtime: str | None,
    image: str,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND in a new container from IMAGE.

    Without --name the container's writable layer is discarded when it exits; with
    --name it is kept as snapshot `container/NAME` unless --rm is given."""
    from strata.store.images import ImageStore
    from strata.store.root import StateRoot
    from strata.worker.executor import Executor, ProcessSpec
    from strata.worker.snapshot import open_snapshotter
    from strata.worker.unpack import unpack_image

    binds = [parse_volume(v) for v in volumes]
    extra_env: list[str] = []
    for f in env_files:
        extra_env.extend(read_env_file(f))
    for e in envs:
        extra_env.extend(_env_item(e))

    root = StateRoot.open(cast(Path, ctx.obj["root"]))
    code = 0
    try:
        stored = ImageStore(root).load_image(image)
        config = cast(dict[str, Any], stored.config.get("config") or {})
        args = command_line(config, entrypoint, command)
        if not args:
            raise UsageError("no command specified", option="COMMAND")
        snap = open_snapshotter(root, snapshotter)
        top = unpack_image(root, snap, stored)
        container_id = uuid.uuid4().hex
        key = f"container/{name}" if name else f"container/{container_id}"
        if snap.exists(key):
            raise UsageError(f'container name "{name}" is already in use', option="--name")
        rootfs = snap.prepare(key, top)
        try:
            process = ProcessSpec(
                args=tuple(args),
                env=tuple(merge_env(cast(list[str], config.get("Env") or []), extra_env)),
                cwd=workdir or str(config.get("WorkingDir") or "/"),
                user=user if user is not None else str(config.get("User") or ""),
                hostname=container_id[:12],
            )
            executor = Executor(root, cast(Any, runtime))
            code = executor.run(
                process,
                rootfs,
                binds,
                network=cast(NetworkMode, network),
                stdin=sys.stdin.fileno() if interactive else None,
                tty=tty,
                forward_signals=True,
            )
        finally:
            if remove or not name:
                snap.remove(key)
    finally:
        root.close()
    # sys.exit, not ctx.exit: main() runs click with standalone_mode=False, which turns
    # ctx.exit(n) into a return value that main() does not pass on.
    sys.exit(code)


COMMANDS: list[click.Command] = [run_command]

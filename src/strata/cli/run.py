"""`strata run`: run a command in a container made from a stored image.

The image's layers are unpacked into snapshots (shared with builds), a writable
snapshot is prepared on top, and the same executor that runs build steps runs the
command. Exit code, stdin (`-i`), a terminal (`-t`) and signals pass through.

A `--name`d container keeps its writable snapshot (`container/NAME`) after it exits,
even after a crash, until `strata rm NAME` removes it. While it runs, its process holds
the lock file `locks/container-NAME.run`, which is how `rm` knows it is running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args

import click

from strata.cli.context import client
from strata.errors import ExecError, StoreError, UsageError
from strata.worker.mounts import BindMount
from strata.worker.spec import NetworkMode

if TYPE_CHECKING:
    from strata.store.images import Image, ImageStore
    from strata.store.root import StateRoot
    from strata.worker.snapshots.snapshotter import Snapshotter

# moby daemon/names: the names `docker run --name` accepts.
CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


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
    """Docker's --env-file: `K=V` lines, `#` comments, a bare `K` taken from our env.
    A line without a name or a name with blanks is refused as docker/cli's
    `pkg/kvfile` refuses it."""
    out: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key = line.partition("=")[0]
        if not key:
            raise UsageError(f"no variable name on line '{line}'", option="--env-file")
        if any(blank in key for blank in " \t"):
            raise UsageError(f"variable '{key}' contains whitespaces", option="--env-file")
        out.extend(_env_item(line))
    return out


def env_flag_items(items: Sequence[str]) -> list[str]:
    """The `-e` values as `K=V`, checked before anything starts: an empty name is a
    usage error, as docker/cli's `opts.ValidateEnv` makes it while parsing flags (runc
    would only refuse it inside the container's init)."""
    out: list[str] = []
    for item in items:
        if not item.partition("=")[0]:
            raise UsageError(f"invalid environment variable: {item}", option="--env")
        out.extend(_env_item(item))
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


def start_failure_status(message: str) -> int:
    """The exit status `docker run` gives when the command cannot be started: 127 when
    it does not exist, 126 when it cannot be executed, 125 for any other failure."""
    lowered = message.lower()
    if "not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered or "exec format error" in lowered:
        return 126
    return 125


def check_network(network: str) -> NetworkMode:
    """`network` as a mode strata can give a container. docker run takes any name while
    parsing flags and the daemon refuses one it does not know, so an unknown name is
    an error about that network, not click's invalid-choice usage error."""
    if network not in get_args(NetworkMode):
        raise UsageError(
            f"network {network} not found (strata run supports default, none and host)",
            option="--network",
        )
    return cast(NetworkMode, network)


def check_container_name(name: str) -> str:
    """`name` if Docker would accept it as a container name (it becomes a file name)."""
    if CONTAINER_NAME.fullmatch(name) is None:
        raise UsageError(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
            option="--name",
        )
    return name


def _run_lock_path(locks_dir: Path, name: str) -> Path:
    return locks_dir / f"container-{name}.run"


@contextlib.contextmanager
def container_running(locks_dir: Path, name: str) -> Iterator[None]:
    """Mark container `name` as running for the `with` block (an flock, released by the
    kernel even when this process is killed); refused while another process runs it."""
    with open(_run_lock_path(locks_dir, name), "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f'container name "{name}" is already in use', option="--name"
            ) from None
        yield


def is_running(locks_dir: Path, name: str) -> bool:
    """Whether a `strata run --name NAME` process is running container `name` now."""
    from strata.store.root import lock_held

    return lock_held(_run_lock_path(locks_dir, name))


def _image_or_pull(ctx: click.Context, store: ImageStore, image: str) -> Image:
    """The stored image `image` names; a name the store lacks is pulled first, as
    `docker run` does ("Unable to find image ... locally")."""
    from strata.client import parse_name

    try:
        return store.load_image(image)
    except StoreError as missing:
        try:
            ref = parse_name(image)
        except StoreError:
            raise missing from None
        if store.get(str(ref)) is not None or (ref.digest is not None and store.content.has(
            ref.digest
        )):
            raise
    click.echo(f"Unable to find image '{ref.familiar()}' locally", err=True)
    result = client(ctx).pull(image)
    click.echo(f"Digest: {result.digest}", err=True)
    click.echo(f"Status: Downloaded newer image for {result.familiar}", err=True)
    return store.image(result.manifest_digest)


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
    default="default",
    help="Network: default (the host's: strata has no bridge), none (loopback only) or host.",
)
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a terminal.")
@click.option("--name", default=None, help="Keep the container's files under this name.")
@click.option(
    "--snapshotter",
    type=click.Choice(["auto", "overlay", "native"]),
    default=None,
    help="How layers are stacked (default: the global --snapshotter, auto: overlay when"
    " the kernel allows it).",
)
@click.option(
    "--oci-runtime",
    "--runtime",
    "runtime",
    type=click.Choice(["runc", "crun"]),
    default=None,
    help="OCI runtime (default: runc, or crun when runc is not installed).",
)
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
    snapshotter: str | None,
    runtime: str | None,
    image: str,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND in a new container from IMAGE.

    Without --name the container's writable layer is discarded when it exits; with
    --name it is kept as snapshot `container/NAME` (remove it with `strata rm NAME`)
    unless --rm is given."""
    from strata.store.images import ImageStore
    from strata.worker.executor import Executor, ProcessSpec
    from strata.worker.snapshots.factory import open_snapshotter
    from strata.worker.unpack import unpack_image

    if name is not None:
        check_container_name(name)
    network_mode = check_network(network)
    if workdir is not None and not workdir.startswith("/"):
        raise UsageError(
            f"the working directory '{workdir}' is invalid, it needs to be an absolute path",
            option="--workdir",
        )
    binds = [parse_volume(v) for v in volumes]
    extra_env: list[str] = []
    for f in env_files:
        extra_env.extend(read_env_file(f))
    extra_env.extend(env_flag_items(envs))

    root = client(ctx).state
    code = 0
    stored = _image_or_pull(ctx, ImageStore(root), image)
    config = cast(dict[str, Any], stored.config.get("config") or {})
    args = command_line(config, entrypoint, command)
    if not args:
        raise UsageError("no command specified", option="COMMAND")
    snap = open_snapshotter(root, snapshotter or cast(str, ctx.obj["snapshotter"]))
    top = unpack_image(root, snap, stored)
    container_id = uuid.uuid4().hex
    key = f"container/{name}" if name else f"container/{container_id}"
    with contextlib.ExitStack() as running:
        if name:
            # Held from before the name is taken, so `rm` never sees it idle.
            running.enter_context(container_running(root.locks_dir, name))
        if name and find_container(root, snap.name, key) is not None:
            raise UsageError(f'container name "{name}" is already in use', option="--name")
        rootfs = snap.prepare(key, top)
        if name and not remove:
            # Kept like a Docker container, even if this process is killed.
            snap.disown(key)
        running.callback(_remove_unless_kept, snap, key, keep=bool(name) and not remove)
        process = ProcessSpec(
            args=tuple(args),
            env=tuple(merge_env(cast(list[str], config.get("Env") or []), extra_env)),
            cwd=workdir or str(config.get("WorkingDir") or "/"),
            user=user if user is not None else str(config.get("User") or ""),
            hostname=container_id[:12],
        )
        executor = Executor(root, cast(Any, runtime))
        try:
            code = executor.run(
                process,
                rootfs,
                binds,
                network=network_mode,
                stdin=sys.stdin.fileno() if interactive else None,
                tty=tty,
                forward_signals=True,
            )
        except ExecError as err:
            err.exit_code = start_failure_status(err.message)
            raise
    # sys.exit, not ctx.exit: main() runs click with standalone_mode=False, which turns
    # ctx.exit(n) into a return value that main() does not pass on.
    sys.exit(code)


def _remove_unless_kept(snap: Snapshotter, key: str, *, keep: bool) -> None:
    if not keep:
        snap.remove(key)


def find_container(root: StateRoot, preferred: str, key: str) -> Snapshotter | None:
    """The snapshotter holding snapshot `key`, looking in `preferred` first. Snapshot
    rows are keyed by (snapshotter, key), so a container kept by a run under another
    snapshotter than this command's is found (and its name counted as taken) too."""
    from strata.worker.snapshots.factory import open_snapshotter

    for name in dict.fromkeys((preferred, "overlay", "native")):
        snap = open_snapshotter(root, name)
        if snap.exists(key):
            return snap
    return None


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Do not fail for containers that do not exist.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm_command(ctx: click.Context, force: bool, names: tuple[str, ...]) -> None:
    """Remove the files of containers kept by `strata run --name`.

    A container that is still running is refused, as `docker rm` without -f refuses it
    (strata has no daemon that could stop it for you: stop its `strata run` first)."""
    from strata.worker.snapshots.factory import open_snapshotter

    root = client(ctx).state
    preferred = open_snapshotter(root, cast(str, ctx.obj["snapshotter"])).name
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
            _run_lock_path(root.locks_dir, name).unlink()
        click.echo(name)


COMMANDS: list[click.Command] = [run_command, rm_command]

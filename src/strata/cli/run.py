"""`strata run` and `strata rm`: docker's flags, parsed and checked here; the work is
`Client.run` and `Client.remove_containers` (see `strata.containers`)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast, get_args

import click

from strata.api import NetworkMode, RunRequest, SnapshotterName, Volume
from strata.cli.context import client
from strata.errors import UsageError

if TYPE_CHECKING:
    from strata.api import PullResult, Runtime

# moby daemon/names: the names `docker run --name` accepts.
CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def parse_volume(text: str) -> Volume:
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
    return Volume(source=Path(host), target=target, read_only=mode == "ro")


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


def parse_security_opts(options: Sequence[str]) -> bool:
    """`--security-opt` values; True when seccomp is lifted. Only the seccomp option
    strata can honour is accepted: anything else is refused by name, not ignored."""
    unconfined = False
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            key, sep, value = option.partition(":")
        if key == "seccomp" and value == "unconfined":
            unconfined = True
            continue
        raise UsageError(
            f"unsupported security option {option!r} (strata run supports seccomp=unconfined)",
            option="--security-opt",
        )
    return unconfined


def check_container_name(name: str) -> str:
    """`name` if Docker would accept it as a container name (it becomes a file name)."""
    if CONTAINER_NAME.fullmatch(name) is None:
        raise UsageError(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
            option="--name",
        )
    return name


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
@click.option(
    "--security-opt",
    "security_opts",
    multiple=True,
    help="seccomp=unconfined runs without Docker's default seccomp profile.",
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
    security_opts: tuple[str, ...],
    image: str,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND in a new container from IMAGE.

    Without --name the container's writable layer is discarded when it exits; with
    --name it is kept as snapshot `container/NAME` (remove it with `strata rm NAME`)
    unless --rm is given."""
    if name is not None:
        check_container_name(name)
    network_mode = check_network(network)
    if workdir is not None and not workdir.startswith("/"):
        raise UsageError(
            f"the working directory '{workdir}' is invalid, it needs to be an absolute path",
            option="--workdir",
        )
    volumes_parsed = tuple(parse_volume(v) for v in volumes)
    extra_env: list[str] = []
    for f in env_files:
        extra_env.extend(read_env_file(f))
    extra_env.extend(env_flag_items(envs))
    request = RunRequest(
        image=image,
        command=tuple(command),
        entrypoint=entrypoint,
        env=tuple(extra_env),
        workdir=workdir,
        user=user,
        volumes=volumes_parsed,
        network=network_mode,
        interactive=interactive,
        tty=tty,
        name=name,
        remove=remove,
        snapshotter=cast("SnapshotterName | None", snapshotter),
        runtime=cast("Runtime | None", runtime),
        seccomp_unconfined=parse_security_opts(security_opts),
    )

    from strata.api import require_privileges

    require_privileges("strata run")
    def pulling(familiar: str, result: PullResult | None) -> None:
        if result is None:
            click.echo(f"Unable to find image '{familiar}' locally", err=True)
            return
        click.echo(f"Digest: {result.digest}", err=True)
        click.echo(f"Status: Downloaded newer image for {result.familiar}", err=True)

    code = client(ctx).run(request, on_pull=pulling)
    # sys.exit, not ctx.exit: main() runs click with standalone_mode=False, which turns
    # ctx.exit(n) into a return value that main() does not pass on.
    sys.exit(code)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Do not fail for containers that do not exist.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm_command(ctx: click.Context, force: bool, names: tuple[str, ...]) -> None:
    """Remove the files of containers kept by `strata run --name`.

    A container that is still running is refused, as `docker rm` without -f refuses it
    (strata has no daemon that could stop it for you: stop its `strata run` first)."""
    client(ctx).remove_containers(names, force=force, on_removed=click.echo)


COMMANDS: list[click.Command] = [run_command, rm_command]

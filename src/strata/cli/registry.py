"""`strata pull`, `strata push`, `strata login`, `strata logout`: docker's commands of those
names, with their output shapes, over `strata.Client`."""

from __future__ import annotations

import sys
import threading

import click

from strata.cli.context import client
from strata.errors import Interrupted, UsageError


def short_id(digest: str) -> str:
    """The 12 hex digits docker prints for a layer."""
    return digest.removeprefix("sha256:")[:12]


@click.command("pull")
@click.argument("name")
@click.option(
    "--platform", default=None, help="Pick this platform from an index (os/arch[/variant])."
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the image's name.")
@click.pass_context
def pull_command(ctx: click.Context, name: str, platform: str | None, quiet: bool) -> None:
    """Download an image from a registry into the image store."""
    from strata.api import parse_name

    ref = parse_name(name)
    shown_tag = ref.digest or ref.tag or "latest"
    # docker prints the repository path without its registry: `1: Pulling from app/base`.
    path = ref.path
    if not quiet:
        click.echo(f"{shown_tag}: Pulling from {path}")
    completed: set[str] = set()
    guard = threading.Lock()

    def progress(digest: str, done: int, total: int) -> None:
        if quiet or total <= 0 or done < total:
            return
        with guard:
            if digest in completed:
                return
            completed.add(digest)
            click.echo(f"{short_id(digest)}: Pull complete")

    try:
        result = client(ctx).pull(name, platform=platform, progress=progress)
    except KeyboardInterrupt:
        # Ctrl-C: the downloads stopped at their next chunk, their partial files kept
        # for the next pull. One line and 130, as a build says it (click would print
        # "Aborted!" and exit 1).
        raise Interrupted(signal_number=2) from None
    if not quiet:
        for layer in result.layers:
            if layer not in result.fetched:
                click.echo(f"{short_id(layer)}: Already exists")
        click.echo(f"Digest: {result.digest}")
        if result.updated:
            click.echo(f"Status: Downloaded newer image for {result.familiar}")
        else:
            click.echo(f"Status: Image is up to date for {result.familiar}")
    click.echo(result.reference)


@click.command("push")
@click.argument("name")
@click.option("--platform", default=None, help="Check that the image is for this platform.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the pushed reference.")
@click.pass_context
def push_command(ctx: click.Context, name: str, platform: str | None, quiet: bool) -> None:
    """Upload an image from the image store to its registry."""
    from strata.api import parse_name

    ref = parse_name(name)
    if not quiet:
        click.echo(f"The push refers to repository [{ref.name}]")
    result = client(ctx).push(name, platform=platform)
    if quiet:
        click.echo(result.reference)
        return
    # docker push's lines (cli/command/image/push.go through jsonmessage), top layer
    # first as docker lists them; the config blob is not shown.
    for layer in reversed(result.layers):
        if layer.how == "exists":
            click.echo(f"{short_id(layer.digest)}: Layer already exists")
        elif layer.how == "mounted":
            click.echo(f"{short_id(layer.digest)}: Mounted from {layer.mounted_from}")
        else:
            click.echo(f"{short_id(layer.digest)}: Pushed")
    click.echo(f"{result.tag}: digest: {result.digest} size: {result.size}")


@click.command("login")
@click.argument("server", required=False)
@click.option("-u", "--username", default=None, help="Username.")
@click.option("-p", "--password", default=None, help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin.")
@click.pass_context
def login_command(
    ctx: click.Context,
    server: str | None,
    username: str | None,
    password: str | None,
    password_stdin: bool,
) -> None:
    """Log in to a registry (Docker Hub when SERVER is omitted)."""
    if password_stdin:
        if password is not None:
            raise UsageError(
                "--password and --password-stdin are mutually exclusive", option="--password"
            )
        if username is None:
            raise UsageError("Must provide --username with --password-stdin", option="--username")
        password = sys.stdin.read().rstrip("\r\n")
    elif password is not None:
        click.echo(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True
        )
    if username is None:
        if not sys.stdin.isatty():
            raise UsageError(
                "Cannot perform an interactive login from a non TTY device", option="--username"
            )
        username = click.prompt("Username", err=True)
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError(
                "Cannot perform an interactive login from a non TTY device", option="--password"
            )
        password = click.prompt("Password", hide_input=True, err=True)
    if not password:
        raise UsageError("password is empty", option="--password")
    client(ctx).login(server, username, password)
    click.echo("Login Succeeded")


@click.command("logout")
@click.argument("server", required=False)
@click.pass_context
def logout_command(ctx: click.Context, server: str | None) -> None:
    """Log out from a registry (Docker Hub when SERVER is omitted)."""
    from strata.api import server_address

    shown = server_address(server)
    if client(ctx).logout(server):
        click.echo(f"Removing login credentials for {shown}")
    else:
        click.echo(f"Not logged in to {shown}")


COMMANDS: list[click.Command] = [pull_command, push_command, login_command, logout_command]

"""The `strata` command: global options, then one sub-command per module of this package.

Each command module exports `COMMANDS`, a list of click commands; this file only
assembles them and turns a `StrataError` into one clear message and an exit code.

A command's module is imported only when that command runs (`LazyGroup`), so that
`strata --version` and `strata --help` load no build, store or worker code. `--help`
lists each command with the summary in `LAZY_COMMANDS`, which must be the first
paragraph of the command's own help (a unit test holds them together).
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import sys
from collections.abc import Mapping
from gettext import gettext as _
from pathlib import Path
from typing import NamedTuple

import click

import strata
from strata.errors import StrataError

SNAPSHOTTERS = ("auto", "overlay", "native")
SNAPSHOTTER_ENV = "STRATA_SNAPSHOTTER"


class LazyCommand(NamedTuple):
    """Where a sub-command lives and what `--help` says of it before it is loaded."""

    module: str
    summary: str


LAZY_COMMANDS: Mapping[str, LazyCommand] = {
    "build": LazyCommand(
        "strata.cli.build",
        "Build an image from a Dockerfile and a context (a directory, or - for stdin).",
    ),
    "builder": LazyCommand(
        "strata.cli.docker_aliases", "Manage builds (docker builder build, prune, du)."
    ),
    "buildx": LazyCommand(
        "strata.cli.docker_aliases", "Docker buildx's spellings (buildx build, du, prune)."
    ),
    "check": LazyCommand(
        "strata.cli.check",
        "Verify the state root: blobs, snapshots, cache records and images.",
    ),
    "du": LazyCommand("strata.cli.cache", "Disk usage of the build cache."),
    "history": LazyCommand("strata.cli.history", "Show the history of an image."),
    "image": LazyCommand(
        "strata.cli.docker_aliases",
        "Manage images (docker image ls, inspect, rm, history, pull, tag, save, load, prune).",
    ),
    "images": LazyCommand("strata.cli.images", "List images."),
    "import": LazyCommand(
        "strata.cli.images",
        "Import a root file system tarball (FILE or - for stdin) as a one-layer image.",
    ),
    "inspect": LazyCommand(
        "strata.cli.images",
        "Display detailed information on one or more images (a JSON array).",
    ),
    "login": LazyCommand(
        "strata.cli.registry", "Log in to a registry (Docker Hub when SERVER is omitted)."
    ),
    "logout": LazyCommand(
        "strata.cli.registry", "Log out from a registry (Docker Hub when SERVER is omitted)."
    ),
    "load": LazyCommand(
        "strata.cli.images",
        "Load images from a docker-archive or OCI layout (a tar, or a layout directory).",
    ),
    "pull": LazyCommand(
        "strata.cli.registry", "Download an image from a registry into the image store."
    ),
    "prune": LazyCommand("strata.cli.cache", "Remove build cache."),
    "push": LazyCommand("strata.cli.registry", "Upload an image from the image store to its registry."),
    "rm": LazyCommand(
        "strata.cli.run", "Remove the files of containers kept by `strata run --name`."
    ),
    "rmi": LazyCommand("strata.cli.images", "Remove one or more images."),
    "run": LazyCommand("strata.cli.run", "Run COMMAND in a new container from IMAGE."),
    "save": LazyCommand(
        "strata.cli.images",
        "Save one or more images to a tar archive (to stdout unless -o is given).",
    ),
    "system": LazyCommand(
        "strata.cli.docker_aliases",
        "Docker system's spellings (system df: the build cache's disk usage).",
    ),
    "tag": LazyCommand("strata.cli.images", "Create a tag TARGET that refers to SOURCE."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported from their modules on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module = importlib.import_module(LAZY_COMMANDS[cmd_name].module)
            for command in module.COMMANDS:
                self.commands.setdefault(str(command.name), command)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, with a stand-in carrying the summary for each command
        not loaded yet, so that `--help` imports no command module."""
        commands: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None:
                command = click.Command(name, help=LAZY_COMMANDS[name].summary)
            if not command.hidden:
                commands.append((name, command))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            rows = [(name, command.get_short_help_str(limit)) for name, command in commands]
            with formatter.section(_("Commands")):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    # Not checked here: strata's own check says whose root it is and what to do.
    type=click.Path(file_okay=False, readable=False, path_type=Path),
    default=None,
    help="State root directory (default: $STRATA_ROOT, /var/lib/strata for root).",
)
@click.option(
    "--snapshotter",
    type=click.Choice(SNAPSHOTTERS),
    envvar=SNAPSHOTTER_ENV,
    default="auto",
    show_default=True,
    help="How layers are stacked: overlay (overlayfs), native (plain copies, for hosts"
    " where overlayfs cannot be mounted) or auto (overlay when it mounts here)."
    f" Also ${SNAPSHOTTER_ENV}.",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="STRATA_CONFIG",
    default=None,
    help="Registry configuration (buildkitd.toml's [registry] tables; default:"
    " $STRATA_CONFIG, /etc/strata/strata.toml for root, else"
    " $XDG_CONFIG_HOME/strata/strata.toml).",
)
# The version from the package, not from its installed metadata: reading that imports
# importlib.metadata and the email parser, which would double `strata --version`'s time.
@click.version_option(version=strata.__version__)
@click.pass_context
def cli(ctx: click.Context, root: Path | None, snapshotter: str, config: Path | None) -> None:
    """strata: build container images from Dockerfiles, the BuildKit way, without a daemon."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    # None: the client's default (`strata.client.default_root`).
    ctx.obj["root"] = root
    ctx.obj["snapshotter"] = snapshotter


def main() -> None:
    """Console entry point: user errors print one message and exit non-zero, and so do
    faults of the machine (a full disk, a damaged metadata.db: `strata.faults`); Ctrl-C
    at any moment exits 130 without a traceback."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = _run()
    except KeyboardInterrupt:
        # Also one raised while an error below was being printed.
        code = _interrupted()
    # What follows is the interpreter's shutdown (thread joins, atexit): a late Ctrl-C
    # must not turn a finished command into a traceback or a death by SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def _run() -> int:
    try:
        # Without standalone mode click returns `ctx.exit(n)`'s code instead of exiting.
        result = cli.main(standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Abort as exc:
        # click turns a KeyboardInterrupt into Abort (core.py `Command.main`).
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            return _interrupted()
        click.echo("Aborted!", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except StrataError as exc:
        from strata.cli.report import print_error

        print_error(exc)
        return exc.exit_code
    except Exception as exc:
        from strata.api import fault_error

        fault = fault_error(exc)
        if fault is None:
            raise  # a bug: loud
        click.echo(f"ERROR: {fault.message}", err=True)
        return fault.exit_code


def _interrupted() -> int:
    """Ctrl-C: ignore any further one, say so, exit 130 as a shell reports SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        click.echo("ERROR: interrupted", err=True)
    return 130

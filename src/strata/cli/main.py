"""The `strata` command: global options, then one sub-command per module of this package.

Each command module exports `COMMANDS`, a list of click commands; this file only
assembles them and turns a `StrataError` into one clear message and an exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from strata.errors import StrataError

SNAPSHOTTERS = ("auto", "overlay", "native")
SNAPSHOTTER_ENV = "STRATA_SNAPSHOTTER"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
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
@click.version_option(package_name="strata")
@click.pass_context
def cli(ctx: click.Context, root: Path | None, snapshotter: str) -> None:
    """strata: build container images from Dockerfiles, the BuildKit way, without a daemon."""
    ctx.ensure_object(dict)
    # None: the client's default (`strata.client.default_root`).
    ctx.obj["root"] = root
    ctx.obj["snapshotter"] = snapshotter


def _register() -> None:
    from strata.cli import build, cache, images, run

    for module in (build, images, run, cache):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Console entry point: user errors print one message and exit non-zero."""
    try:
        # Without standalone mode click returns `ctx.exit(n)`'s code instead of exiting.
        result = cli.main(standalone_mode=False)
        if isinstance(result, int):
            sys.exit(result)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except StrataError as exc:
        from strata.cli.report import print_error

        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("ERROR: interrupted", err=True)
        sys.exit(130)

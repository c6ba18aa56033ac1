"""`strata check [--repair]`: verify the state root and, if asked, repair it.

One line per problem as it is found, then a summary; exit status 1 while anything is
left wrong (as `fsck` does), so a script can tell. The work is `Client.check`.
"""

from __future__ import annotations

import click

from strata.api import Problem
from strata.cli.context import client

__all__ = ["COMMANDS"]


@click.command("check")
@click.option(
    "--repair",
    is_flag=True,
    help="Drop corrupt blobs (the next load, import or pull replaces them) and records"
    " that name missing snapshots.",
)
@click.pass_context
def check_command(ctx: click.Context, repair: bool) -> None:
    """Verify the state root: blobs, snapshots, cache records and images."""

    def show(problem: Problem) -> None:
        click.echo(str(problem))

    def waiting(message: str) -> None:
        click.echo(message, err=True)

    report = client(ctx).check(repair=repair, on_problem=show, on_wait=waiting)
    left = sum(1 for p in report.problems if not p.repaired)
    repaired = len(report.problems) - left
    summary = (
        f"checked {report.blobs} blobs, {report.snapshots} snapshots,"
        f" {report.records} cache records, {report.images} images:"
    )
    if not report.problems:
        click.echo(f"{summary} no problems")
        return
    click.echo(f"{summary} {len(report.problems)} problems, {repaired} repaired")
    if left:
        if not repair:
            click.echo("run `strata check --repair` to repair what can be repaired", err=True)
        ctx.exit(1)


COMMANDS: list[click.Command] = [check_command]

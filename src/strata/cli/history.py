"""`strata history IMAGE`: an image's history, printed as `docker history` prints it.

Columns, truncation and sizes follow docker/cli `cli/command/formatter/history.go`:
IDs shortened to 12 hex digits, CREATED BY cut to 45 characters with an ellipsis,
sizes go-units `HumanSizeWithPrecision(.., 3)`; `-H=false` prints RFC 3339 times and
sizes in bytes. The work is `strata.Client.history`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import click

from strata.api import HistoryRecord
from strata.cli.buildx_flags import GoBoolCommand
from strata.cli.context import client
from strata.cli.gotemplate import parse_format, render_items
from strata.cli.images import created_ago, short_id
from strata.progress.units import human_size

__all__ = ["COMMANDS", "ellipsis", "history_fields"]

HISTORY_TABLE = "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}"
HISTORY_HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}
CREATED_BY_WIDTH = 45


def ellipsis(text: str, width: int) -> str:
    """docker/cli `formatter.Ellipsis`: at most `width` characters, the last one `…`
    when cut."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return text[0]
    return text[: width - 1] + "…"


def go_rfc3339(created: datetime | None) -> str:
    """Go's `time.Unix(t, 0).Format(time.RFC3339)` in this machine's zone."""
    if created is None:
        return "N/A"
    local = datetime.fromtimestamp(int(created.timestamp())).astimezone()
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if minutes == 0:
        return text + "Z"
    sign = "+" if minutes > 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def history_fields(
    record: HistoryRecord, now: float, *, human: bool, no_trunc: bool
) -> dict[str, Any]:
    """The fields a `docker history --format` template sees."""
    created_by = record.created_by.replace("\t", " ")
    if not no_trunc:
        created_by = ellipsis(created_by, CREATED_BY_WIDTH)
    created_at = go_rfc3339(record.created)
    return {
        "ID": record.id if no_trunc else short_id(record.id),
        "CreatedSince": created_ago(record.created, now) if human else created_at,
        "CreatedAt": created_at,
        "CreatedBy": created_by,
        "Size": human_size(record.size, precision=3) if human else str(record.size),
        "Comment": record.comment,
    }


class HistoryCommand(GoBoolCommand):
    bool_flags = frozenset({"-H", "--human", "--no-trunc", "-q", "--quiet"})
    negations: Mapping[str, str] = MappingProxyType({"-H": "--no-human", "--human": "--no-human"})


@click.command("history", cls=HistoryCommand)
@click.argument("image")
@click.option(
    "-H",
    "--human",
    "human",
    is_flag=True,
    default=True,
    flag_value=True,
    help="Print sizes and dates in human readable format (default; -H=false for raw).",
)
@click.option("--no-human", "human", flag_value=False, hidden=True)
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--format", "output_format", default=None, help="table, json or a Go template.")
@click.pass_context
def history_command(
    ctx: click.Context,
    image: str,
    human: bool,
    no_trunc: bool,
    quiet: bool,
    output_format: str | None,
) -> None:
    """Show the history of an image."""
    records = client(ctx).history(image)
    now = time.time()
    if quiet:
        output_format = "{{.ID}}"
    fmt = parse_format(output_format or "table", table_default=HISTORY_TABLE)
    items = [history_fields(r, now, human=human, no_trunc=no_trunc) for r in records]
    from strata.cli.cache import docker_table

    sys.stdout.write(render_items(fmt, items, HISTORY_HEADERS, docker_table))


COMMANDS: list[click.Command] = [history_command]

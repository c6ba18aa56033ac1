"""`strata prune` and `strata du`: the build cache, printed as buildx prints it.

Output follows buildx `commands/prune.go` and `commands/diskusage.go`: sizes are
go-units `HumanSize` (decimal units, four significant digits), ages `HumanDuration`,
tables laid out by Go's tabwriter with the same settings (so the tabs and spaces match
byte for byte). The work is `strata.api.prune` and `strata.api.disk_usage`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import click

from strata.api import UsageRecord, parse_filters, parse_size
from strata.cli.context import client
from strata.cli.images import human_duration
from strata.errors import UsageError
from strata.progress.units import human_size

__all__ = ["COMMANDS", "buildx_tabs", "docker_table", "go_time", "human_size", "prune_row"]

NORMAL_WARNING = (
    "WARNING! This will remove all dangling build cache. Are you sure you want to continue?"
)
ALL_WARNING = "WARNING! This will remove all build cache. Are you sure you want to continue?"


# -- Go formatting ----------------------------------------------------------------------------


def go_time(timestamp: float | None) -> str:
    """Go's `time.Time.String()` of a UTC time (`2024-05-01 10:20:30.5 +0000 UTC`)."""
    if timestamp is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    moment = datetime.fromtimestamp(timestamp, UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if fraction:
        text += "." + fraction
    return text + " +0000 UTC"


def ago(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return ""
    return human_duration(max(0.0, now - timestamp)) + " ago"


def go_tabwriter(text: str, *, minwidth: int, tabwidth: int, padding: int, padchar: str) -> str:
    """Lay out `text` as Go's `text/tabwriter` does on Flush (flags 0).

    Cells are tab-terminated; a column block is a run of lines that all have a cell in
    that column; its width is the widest cell plus padding (at least minwidth). With
    padchar '\\t' the padding is tabs, the width rounded up to a multiple of tabwidth."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def pad(text_width: int, cell_width: int) -> None:
        if padchar == "\t":
            cell_width = (cell_width + tabwidth - 1) // tabwidth * tabwidth
            missing = cell_width - text_width
            out.append("\t" * ((missing + tabwidth - 1) // tabwidth))
        else:
            out.append(padchar * (cell_width - text_width))

    def write_lines(first: int, end: int) -> None:
        for i in range(first, end):
            for j, cell in enumerate(lines[i]):
                out.append(cell)
                if j < len(widths):
                    pad(len(cell), widths[j])
            if i + 1 < len(lines):
                out.append("\n")

    def layout(first: int, end: int) -> None:
        column = len(widths)
        this = first
        while this < end:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(first, this)
            first = this
            width = minwidth
            while this < end and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            layout(first, this)
            widths.pop()
            first = this
        write_lines(first, end)

    layout(0, len(lines))
    return "".join(out)


def buildx_tabs(text: str) -> str:
    """buildx's `tabwriter.NewWriter(out, 1, 8, 1, '\\t', 0)`."""
    return go_tabwriter(text, minwidth=1, tabwidth=8, padding=1, padchar="\t")


def docker_table(text: str) -> str:
    """docker/cli formatter tables: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`."""
    return go_tabwriter(text, minwidth=10, tabwidth=1, padding=3, padchar=" ")


# -- rows -----------------------------------------------------------------------------------------


def prune_row(record: UsageRecord, now: float) -> str:
    """buildx `printTableRow`: `%-40s\\t%-5v\\t%-10s\\t%s`."""
    ident = record.id + ("*" if record.mutable else "")
    size = human_size(record.size) + ("*" if record.shared else "")
    reclaimable = "true" if record.reclaimable else "false"
    return f"{ident:<40}\t{reclaimable:<5}\t{size:<10}\t{ago(record.last_used, now)}\n"


def _record_fields(record: UsageRecord, now: float, *, reclaimable: bool) -> list[tuple[str, str]]:
    """The fields buildx prints for a record after its ID and parents, in its order
    (prune's `printVerbose` and du's `--verbose` template show the same ones)."""
    fields = [
        ("Created at", go_time(record.created)),
        ("Mutable", _bool(record.mutable)),
        ("Reclaimable", _bool(reclaimable)),
        ("Shared", _bool(record.shared)),
        ("Size", human_size(record.size)),
    ]
    if record.description:
        fields.append(("Description", record.description))
    fields.append(("Usage count", str(record.usage_count)))
    if record.last_used is not None:
        fields.append(("Last used", ago(record.last_used, now)))
    fields.append(("Type", record.type))
    return fields


def verbose_block(record: UsageRecord, now: float) -> str:
    """buildx prune's `printVerbose` for one record (already laid out)."""
    lines = [f"ID:\t{record.id}\n"]
    if record.parents:
        lines.append(f"Parent:\t{','.join(record.parents)}\n")
    fields = _record_fields(record, now, reclaimable=not record.in_use)
    lines.extend(f"{key}:\t{value}\n" for key, value in fields)
    lines.append("\n")
    return buildx_tabs("".join(lines))


def du_pretty(record: UsageRecord, now: float) -> str:
    """buildx du's `--verbose` template for one record, plus the formatter's newline."""
    out = [f"ID:           {record.id}\n"]
    if record.parents:
        out.append("Parents:\n")
        out.extend(f" - {parent}\n" for parent in record.parents)
    fields = _record_fields(record, now, reclaimable=record.reclaimable)
    # The template pads every label to 14 columns (`Created at:   `).
    out.extend(f"{key + ':':<14}{value}\n" for key, value in fields)
    out.append("\n")
    return "".join(out)


def du_table(records: Sequence[UsageRecord], now: float) -> str:
    """buildx du's default table: `ID  RECLAIMABLE  SIZE  LAST ACCESSED`."""
    lines = ["ID\tRECLAIMABLE\tSIZE\tLAST ACCESSED\n"]
    for record in records:
        ident = record.id + ("*" if record.mutable else "")
        size = human_size(record.size) + ("*" if record.shared else "")
        lines.append(
            f"{ident}\t{_bool(record.reclaimable)}\t{size}\t{ago(record.last_used, now)}\n"
        )
    return docker_table("".join(lines))


def du_summary(records: Sequence[UsageRecord]) -> str:
    """buildx `printSummary`: Shared/Private (when something is shared), Reclaimable, Total."""
    total = reclaimable = shared = 0
    for record in records:
        if record.size > 0:
            total += record.size
            if not record.in_use:
                reclaimable += record.size
        if record.shared:
            shared += record.size
    lines = []
    if shared > 0:
        lines.append(f"Shared:\t{human_size(shared)}\n")
        lines.append(f"Private:\t{human_size(total - shared)}\n")
    lines.append(f"Reclaimable:\t{human_size(reclaimable)}\n")
    lines.append(f"Total:\t{human_size(total)}\n")
    return buildx_tabs("".join(lines))


def _bool(value: bool) -> str:
    return "true" if value else "false"


# -- commands -------------------------------------------------------------------------------------


def _size_option(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise UsageError(
            f'invalid argument "{value}" for "{option}" flag: {exc}', option=option
        ) from None


def confirm(message: str) -> bool:
    """buildx `promptForConfirmation`: the message and ` [y/N] ` on stdout, then one line
    of stdin; only `y`/`Y` agrees (end of input does not)."""
    sys.stdout.write(message + " [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    return answer.rstrip("\r\n").lower() == "y"


@click.command("prune")
@click.option(
    "-a", "--all", "all_records", is_flag=True, help="Include internal and image-shared records."
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (KEY=VALUE).")
@click.option("--reserved-space", help="Amount of disk space always allowed to keep for cache.")
@click.option("--keep-storage", help="Amount of disk space to keep for cache (old name).")
@click.option("--max-used-space", help="Maximum amount of disk space allowed to keep for cache.")
@click.option("--min-free-space", help="Target amount of free disk space after pruning.")
@click.option("--verbose", is_flag=True, help="Provide a more verbose output.")
@click.pass_context
def prune_command(
    ctx: click.Context,
    all_records: bool,
    force: bool,
    filters: tuple[str, ...],
    reserved_space: str | None,
    keep_storage: str | None,
    max_used_space: str | None,
    min_free_space: str | None,
    verbose: bool,
) -> None:
    """Remove build cache."""
    parse_filters(filters)  # a bad filter fails before the prompt
    reserved = _size_option(reserved_space, "--reserved-space")
    if keep_storage is not None:
        reserved = _size_option(keep_storage, "--keep-storage")
    max_used = _size_option(max_used_space, "--max-used-space")
    min_free = _size_option(min_free_space, "--min-free-space")
    if not force and not confirm(ALL_WARNING if all_records else NORMAL_WARNING):
        return
    now = time.time()
    printed_header = False

    def show(record: UsageRecord) -> None:
        nonlocal printed_header
        if verbose:
            sys.stdout.write(verbose_block(record, now))
        elif not printed_header:
            printed_header = True
            sys.stdout.write(
                buildx_tabs("ID\tRECLAIMABLE\tSIZE\tLAST ACCESSED\n" + prune_row(record, now))
            )
        else:
            sys.stdout.write(buildx_tabs(prune_row(record, now)))
        sys.stdout.flush()

    def waiting(message: str) -> None:
        click.echo(message, err=True)

    report = client(ctx).prune(
        all=all_records,
        filters=filters,
        reserved_space=reserved,
        max_used_space=max_used,
        min_free_space=min_free,
        on_wait=waiting,
        on_removed=show,
    )
    sys.stdout.write(buildx_tabs(f"Total:\t{human_size(report.reclaimed)}\n"))


DU_HEADERS = {
    "ID": "ID",
    "Parents": "PARENTS",
    "CreatedAt": "CREATED AT",
    "Mutable": "MUTABLE",
    "Reclaimable": "RECLAIMABLE",
    "Shared": "SHARED",
    "Size": "SIZE",
    "Description": "DESCRIPTION",
    "UsageCount": "USAGE COUNT",
    "LastUsed": "LAST ACCESSED",
    "Type": "TYPE",
}


def du_fields(record: UsageRecord, now: float) -> dict[str, object]:
    """The fields a `buildx du --format` template sees (commands/diskusage.go)."""
    return {
        "ID": record.id,
        "Parents": list(record.parents),
        "CreatedAt": go_time(record.created),
        "Mutable": record.mutable,
        "Reclaimable": record.reclaimable,
        "Shared": record.shared,
        "Size": human_size(record.size),
        "Description": record.description,
        "UsageCount": record.usage_count,
        "LastUsed": ago(record.last_used, now),
        "Type": record.type,
    }


@click.command("du")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (KEY=VALUE).")
@click.option("-v", "--verbose", is_flag=True, help='Shorthand for "--format=pretty".')
@click.option(
    "--format", "output_format", default=None, help="table, pretty, json or a Go template."
)
@click.pass_context
def du_command(
    ctx: click.Context, filters: tuple[str, ...], verbose: bool, output_format: str | None
) -> None:
    """Disk usage of the build cache."""
    from strata.cli.gotemplate import parse_format, render_items

    fmt = None
    if output_format not in (None, "", "table", "pretty"):
        fmt = parse_format(output_format, table_default="")
    shown = client(ctx).disk_usage(filters=filters)
    now = time.time()
    if fmt is not None:
        items = [du_fields(r, now) for r in shown]
        sys.stdout.write(render_items(fmt, items, DU_HEADERS, docker_table))
        return
    if verbose or output_format == "pretty":
        sys.stdout.write("".join(du_pretty(r, now) for r in shown))
    else:
        sys.stdout.write(du_table(shown, now))
    if not filters:  # unfiltered: `shown` is every record
        sys.stdout.write(du_summary(shown))


COMMANDS: list[click.Command] = [prune_command, du_command]

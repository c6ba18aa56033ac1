"""Image commands, printed as Docker prints them: import, images, tag, rmi, inspect, save, load.

Everything here parses arguments and formats output; the work is done by `strata.api`
(`import_image`, `list_images`, `tag`, `remove_images`, `inspect`, `save`, `load`).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast

import click

from strata.api import ZERO_TIME, ImageDetails, atomic_write, parse_name
from strata.api import format_rfc3339_nano as go_rfc3339
from strata.cli.context import client
from strata.cli.gotemplate import parse_format, parse_template, render_items
from strata.cli.report import print_error
from strata.errors import StoreError, StrataError, UsageError
from strata.progress.units import human_size

if TYPE_CHECKING:
    from strata.api import ImageRecord

__all__ = ["COMMANDS", "ZERO_TIME", "parse_name", "rfc3339"]


# -- formatting (Docker's go-units and tabwriter) ---------------------------------------------


def human_duration(seconds: float) -> str:
    """go-units `HumanDuration`: `About an hour`, `3 days`, `2 weeks`."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    minutes = seconds / 60
    if minutes < 1:
        return f"{int(seconds)} seconds"
    if int(minutes) == 1:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600 / 24 / 365)} years"


def created_ago(created: datetime | None, now: float) -> str:
    if created is None:
        return "N/A"
    return human_duration(max(0.0, now - created.timestamp())) + " ago"


def table(rows: list[list[str]]) -> str:
    """Columns as Docker's tabwriter lays them out (min width 10, padding 3)."""
    widths = [max(10, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append(("".join(cells) + row[-1]).rstrip())
    return "\n".join(lines)


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def rfc3339(timestamp: float | None) -> str:
    """Go's RFC 3339 with trailing zeros trimmed (`.12Z`, not `.120000Z`), as Docker's
    `LastTagTime`; Go's zero time when the image was never tagged."""
    if timestamp is None:
        return ZERO_TIME
    return go_rfc3339(timestamp)


# -- import ---------------------------------------------------------------------------------


@click.command("import")
@click.argument("file")
@click.argument("reference", required=False)
@click.option("-c", "--change", "changes", multiple=True, help="Apply a Dockerfile instruction.")
@click.option("-m", "--message", default=None, help="Commit message for the imported image.")
@click.pass_context
def import_command(
    ctx: click.Context,
    file: str,
    reference: str | None,
    changes: tuple[str, ...],
    message: str | None,
) -> None:
    """Import a root file system tarball (FILE or - for stdin) as a one-layer image."""
    if reference:
        parse_name(reference)  # a bad name fails before the tarball is read
    with _input(file) as stream:
        image_id = client(ctx).import_image(
            stream, reference, changes=changes, message=message, source_name=file
        )
    click.echo(image_id)


@contextlib.contextmanager
def _input(file: str) -> Iterator[BinaryIO]:
    if file == "-":
        yield sys.stdin.buffer
        return
    try:
        fh = open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"open {file}: {exc.strerror}", option="FILE") from exc
    with fh:
        yield fh


# -- images, tag, rmi, inspect --------------------------------------------------------------------


IMAGE_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGE_TABLE_DIGESTS = (
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)
# docker/cli formatter/image.go: the column header of each field.
IMAGE_HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "VirtualSize": "VIRTUAL SIZE",
}


def go_time_string(created: datetime | None) -> str:
    """Go's `time.Unix(t, 0).String()` in UTC (docker's `CreatedAt`)."""
    if created is None:
        return "1970-01-01 00:00:00 +0000 UTC"
    return created.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def image_fields(record: ImageRecord, now: float, *, no_trunc: bool) -> dict[str, Any]:
    """The fields a `docker images --format` template sees (formatter/image.go)."""
    size = human_size(record.size, precision=3)
    return {
        "ID": record.id if no_trunc else short_id(record.id),
        "Repository": record.repository,
        "Tag": record.tag,
        "Digest": record.manifest_digest if record.name is not None else "<none>",
        "CreatedSince": created_ago(record.created, now),
        "CreatedAt": go_time_string(record.created),
        "Size": size,
        "Containers": "N/A",
        "SharedSize": "N/A",
        "UniqueSize": "N/A",
        "VirtualSize": size,
    }


@click.command("images")
@click.argument("repository", required=False)
@click.option(
    "-a",
    "--all",
    "all_images",
    is_flag=True,
    help="Show all images (strata keeps no intermediate ones).",
)
@click.option("--digests", is_flag=True, help="Show digests.")
@click.option(
    "-f",
    "--filter",
    "filters",
    multiple=True,
    help="Filter output (dangling, reference, before, since, label, until).",
)
@click.option(
    "--format",
    "output_format",
    default=None,
    help="table, json, or a Go template ({{.Repository}}, {{json .}}, ...).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.pass_context
def images_command(
    ctx: click.Context,
    repository: str | None,
    all_images: bool,
    digests: bool,
    filters: tuple[str, ...],
    output_format: str | None,
    quiet: bool,
    no_trunc: bool,
) -> None:
    """List images."""
    records = client(ctx).images(repository, filters=filters)
    ids = [r.id if no_trunc else short_id(r.id) for r in records]
    if quiet:
        for image_id in dict.fromkeys(ids):
            click.echo(image_id)
        return
    now = time.time()
    if output_format or digests:
        from strata.cli.cache import docker_table  # cache imports this module

        fmt = parse_format(
            output_format or "table", table_default=IMAGE_TABLE_DIGESTS if digests else IMAGE_TABLE
        )
        items = [image_fields(r, now, no_trunc=no_trunc) for r in records]
        sys.stdout.write(render_items(fmt, items, IMAGE_HEADERS, docker_table))
        return
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
    for record, image_id in zip(records, ids, strict=True):
        rows.append(
            [
                record.repository,
                record.tag,
                image_id,
                created_ago(record.created, now),
                human_size(record.size, precision=3),
            ]
        )
    click.echo(table(rows))


@click.command("tag")
@click.argument("source")
@click.argument("target")
@click.pass_context
def tag_command(ctx: click.Context, source: str, target: str) -> None:
    """Create a tag TARGET that refers to SOURCE."""
    client(ctx).tag(source, target)


@click.command("rmi")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Remove an image referenced by several names.")
@click.pass_context
def rmi_command(ctx: click.Context, images: tuple[str, ...], force: bool) -> None:
    """Remove one or more images."""
    failed = False

    def report(exc: StrataError) -> None:
        nonlocal failed
        print_error(exc)
        failed = True

    # One name at a time, so each image's lines come out before the next one's error.
    for name in images:
        for line in client(ctx).remove_images([name], force=force, on_error=report):
            click.echo(str(line))
    if failed:
        ctx.exit(1)


def docker_inspect_document(details: ImageDetails) -> dict[str, Any]:
    """Docker's `image inspect` JSON object for one image, keys in Docker's order."""
    doc: dict[str, Any] = {
        "Id": details.id,
        "RepoTags": list(details.repo_tags),
        "RepoDigests": list(details.repo_digests),
        "Parent": "",
        "Comment": details.comment,
        "Created": details.created,
        "DockerVersion": "",
        "Author": details.author,
        "Config": details.config,
        "Architecture": details.architecture,
    }
    if details.variant:
        doc["Variant"] = details.variant
    doc.update(
        {
            "Os": details.os,
            "Size": details.size,
            "RootFS": {"Type": "layers", "Layers": list(details.layers)},
            "Metadata": {"LastTagTime": details.last_tag_time},
        }
    )
    return doc


@click.command("inspect")
@click.argument("images", nargs=-1, required=True)
@click.option(
    "-f", "--format", "output_format", default=None, help="Format each image with a Go template."
)
@click.pass_context
def inspect_command(ctx: click.Context, images: tuple[str, ...], output_format: str | None) -> None:
    """Display detailed information on one or more images (a JSON array)."""
    template = None
    if output_format not in (None, "", "json"):
        # Checked before any lookup, so a bad template is the only error.
        template = parse_template(output_format.replace("\\t", "\t").replace("\\n", "\n"))
    errors: list[StrataError] = []
    found = client(ctx).inspect(images, on_error=errors.append)
    documents = [docker_inspect_document(details) for details in found]
    if template is not None:
        for document in documents:
            click.echo(template.render(document))
    else:
        click.echo(json.dumps(documents, indent=4, ensure_ascii=False))
    for error in errors:
        print_error(error)
    if errors:
        ctx.exit(1)


# -- save, load ------------------------------------------------------------------------------


@click.command("save")
@click.argument("images", nargs=-1, required=True)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), default=None, help="Write to FILE."
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["docker", "oci"]),
    default="docker",
    show_default=True,
    help="docker-archive (docker load) or OCI image layout tar.",
)
@click.pass_context
def save_command(
    ctx: click.Context, images: tuple[str, ...], output: Path | None, output_format: str
) -> None:
    """Save one or more images to a tar archive (to stdout unless -o is given)."""
    if output is None and sys.stdout.isatty():
        raise UsageError(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect", option="-o"
        )
    if output is not None and output.is_dir():
        raise UsageError(f"invalid output path: -o {output} is a directory", option="-o")
    archive_format = cast(Literal["docker", "oci"], output_format)
    if output is None:
        client(ctx).save(images, sys.stdout.buffer, format=archive_format)
        sys.stdout.buffer.flush()
        return
    # Written beside `output` and renamed over it when complete; a killed save's
    # temporary file is deleted by the next save into that directory.
    try:
        with atomic_write(output) as fh:
            client(ctx).save(images, fh, format=archive_format)
    except OSError as exc:
        raise StoreError(f"cannot write {output}: {exc.strerror or exc}") from None


@click.command("load")
@click.option("-i", "--input", "input_file", default="-", help="Read from FILE (default: stdin).")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output.")
@click.pass_context
def load_command(ctx: click.Context, input_file: str, quiet: bool) -> None:
    """Load images from a docker-archive or OCI layout (a tar, or a layout directory)."""
    if input_file == "-" and sys.stdin.isatty():
        raise UsageError(
            "requested load from stdin, but stdin is empty; use -i FILE", option="--input"
        )
    if input_file != "-" and Path(input_file).is_dir():
        loaded = client(ctx).load(Path(input_file))
    else:
        with _input(input_file) as stream:
            source = "stdin" if input_file == "-" else input_file
            loaded = client(ctx).load(stream, source_name=source)
    if quiet:
        return
    for item in loaded:
        if item.name is None:
            click.echo(f"Loaded image ID: {item.image_id}")
            continue
        if item.replaced_id is not None:
            click.echo(
                f"The image {item.name.familiar()} already exists, renaming the old one"
                f" with ID {item.replaced_id} to empty string"
            )
        click.echo(f"Loaded image: {item.name.familiar()}")


COMMANDS: list[click.Command] = [
    import_command,
    images_command,
    tag_command,
    rmi_command,
    inspect_command,
    save_command,
    load_command,
]

"""Image commands, printed as Docker prints them: import, images, tag, rmi, inspect, save, load.

Everything here parses arguments and formats output; the work is done by the store
(`strata.store.images`) and the exporters (`strata.export`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import click

from strata.cli.report import print_error
from strata.errors import StoreError, StrataError, UsageError
from strata.export.docker_archive import ExportEntry, write_docker_archive
from strata.export.image_store import rfc3339 as go_rfc3339
from strata.export.load import load_archive, load_oci_layout_dir
from strata.export.oci_layout import write_oci_archive
from strata.export.tarball_import import import_tarball
from strata.image.oci import diff_ids_of
from strata.progress.units import human_size
from strata.store.images import ImageRecord, ImageStore
from strata.store.reference import Reference, parse_reference
from strata.store.root import StateRoot

ZERO_TIME = "0001-01-01T00:00:00Z"


@contextlib.contextmanager
def open_store(ctx: click.Context) -> Iterator[ImageStore]:
    root = StateRoot.open(ctx.obj["root"])
    try:
        yield ImageStore(root)
    finally:
        root.close()


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


def parse_name(text: str, *, default_tag: bool = True) -> Reference:
    """A reference typed by the user; an invalid one names itself, as Docker's CLI does."""
    try:
        return parse_reference(text, default_tag=default_tag)
    except StoreError as exc:
        raise StoreError(
            f'Error parsing reference: "{text}" is not a valid repository/tag: {exc.message}'
        ) from None


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
    ref = parse_name(reference) if reference else None
    with open_store(ctx) as store, _input(file) as stream:
        manifest = import_tarball(
            store, stream, source=file, changes=list(changes), message=message
        )
        if ref is not None:
            store.put(str(ref), manifest)
        click.echo(store.image(manifest).config_digest)


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


@click.command("images")
@click.argument("repository", required=False)
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.pass_context
def images_command(ctx: click.Context, repository: str | None, quiet: bool, no_trunc: bool) -> None:
    """List images."""
    with open_store(ctx) as store:
        records = store.list()
    if repository:
        records = _filter(records, repository)
    ids = [r.id if no_trunc else short_id(r.id) for r in records]
    if quiet:
        for image_id in dict.fromkeys(ids):
            click.echo(image_id)
        return
    now = time.time()
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


def _filter(records: list[ImageRecord], repository: str) -> list[ImageRecord]:
    ref = parse_name(repository, default_tag=False)
    return [
        r
        for r in records
        if r.name is not None
        and parse_reference(r.name).name == ref.name
        and (ref.tag is None or r.tag == ref.tag)
    ]


@click.command("tag")
@click.argument("source")
@click.argument("target")
@click.pass_context
def tag_command(ctx: click.Context, source: str, target: str) -> None:
    """Create a tag TARGET that refers to SOURCE."""
    ref = parse_name(target)
    with open_store(ctx) as store:
        store.tag(source, str(ref))


@click.command("rmi")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Remove an image referenced by several names.")
@click.pass_context
def rmi_command(ctx: click.Context, images: tuple[str, ...], force: bool) -> None:
    """Remove one or more images."""
    failed = False
    with open_store(ctx) as store:
        for name in images:
            try:
                lines = store.remove(name, force=force)
            except StrataError as exc:
                print_error(exc)
                failed = True
                continue
            for line in lines:
                click.echo(line)
    if failed:
        ctx.exit(1)


@click.command("inspect")
@click.argument("images", nargs=-1, required=True)
@click.pass_context
def inspect_command(ctx: click.Context, images: tuple[str, ...]) -> None:
    """Display detailed information on one or more images (a JSON array)."""
    found: list[dict[str, Any]] = []
    errors: list[StrataError] = []
    with open_store(ctx) as store:
        for name in images:
            try:
                found.append(inspect_image(store, store.resolve(name)))
            except StrataError as exc:
                errors.append(exc)
    click.echo(json.dumps(found, indent=4, ensure_ascii=False))
    for error in errors:
        print_error(error)
    if errors:
        ctx.exit(1)


def inspect_image(store: ImageStore, manifest_digest: str) -> dict[str, Any]:
    """Docker's `image inspect` document for one image."""
    image = store.image(manifest_digest)
    config = image.config
    names = store.names_of(manifest_digest)
    history = config.get("history") or []
    comment = history[-1].get("comment", "") if history and isinstance(history[-1], dict) else ""
    doc: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": [n.familiar() for n in names],
        "RepoDigests": sorted({f"{n.familiar_name}@{manifest_digest}" for n in names}),
        "Parent": "",
        "Comment": comment,
        "Created": config.get("created") or ZERO_TIME,
        "DockerVersion": "",
        "Author": config.get("author", ""),
        "Config": config.get("config") or {},
        "Architecture": config.get("architecture", ""),
    }
    if config.get("variant"):
        doc["Variant"] = config["variant"]
    doc.update(
        {
            "Os": config.get("os", ""),
            "Size": store.size_of(manifest_digest),
            "RootFS": {"Type": "layers", "Layers": diff_ids_of(config)},
            "Metadata": {"LastTagTime": rfc3339(store.tagged_at(manifest_digest))},
        }
    )
    return doc


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
    with open_store(ctx) as store:
        entries = [_export_entry(store, name) for name in images]
        writer = write_oci_archive if output_format == "oci" else write_docker_archive
        if output is None:
            writer(store.content, entries, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                writer(store.content, entries, fh)
            os.rename(tmp, output)
        except OSError as exc:
            raise StoreError(f"cannot write {output}: {exc.strerror or exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _export_entry(store: ImageStore, name: str) -> ExportEntry:
    """Saved by name: under that name. Saved by ID: no name, as `docker save <id>`."""
    manifest = store.resolve(name)
    image = store.image(manifest)
    names: list[Reference] = []
    try:
        ref = parse_reference(name)
    except StoreError:
        ref = None
    if ref is not None and ref.digest is None and store.get(str(ref)) == manifest:
        names.append(ref)
    return ExportEntry(image, names)


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
        with open_store(ctx) as store:
            loaded = load_oci_layout_dir(store, Path(input_file))
    else:
        with open_store(ctx) as store, _input(input_file) as stream:
            source = "stdin" if input_file == "-" else input_file
            loaded = load_archive(store, stream, source=source)
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

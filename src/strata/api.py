"""strata's public Python API as functions: each is one line over a throwaway `Client`.

    from pathlib import Path
    from strata.api import BuildRequest, build
    result = build(BuildRequest(context=Path("."), tags=("demo",)), root=Path("/var/lib/strata"))
    print(result.image_id)

A program that runs several verbs should hold a `strata.Client` instead (it opens the
state root once). `root` may be a path, an open `StateRoot`, or None for the default
root (`strata.client.default_root`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from strata.client import (
    Client,
    HistoryRecord,
    ImageDetails,
    ImagePruneReport,
    PullResult,
    default_root,
    open_client,
    parse_name,
)
from strata.model import (
    ENTITLEMENTS,
    ZERO_TIME,
    ArchiveFormat,
    BuildRequest,
    BuildResult,
    DebugSession,
    DebugShell,
    ErrorCallback,
    NetworkMode,
    OnError,
    RunRequest,
    Runtime,
    SnapshotterName,
    Volume,
    metadata_of,
)

if TYPE_CHECKING:
    from strata.builder import decode_dockerfile_text, read_dockerfile
    from strata.export.load import LoadedImage
    from strata.export.outputs import OutputSpec
    from strata.gc.prune import PruneReport, RemovedCallback, WaitCallback
    from strata.gc.usage import UsageRecord
    from strata.progress.bus import ProgressBus
    from strata.remotecache.spec import CacheSpec
    from strata.solver.execop import SSHSource
    from strata.store.images import ImageRecord, Removal
    from strata.store.root import StateRoot

    Root = Path | str | StateRoot | None

    # The helpers the CLI parses and prints with (flag values, filters, Go's text forms).
    from strata.atomicfile import atomic_write
    from strata.checkcall import check_json, render_check
    from strata.export.outputs import parse_outputs
    from strata.faults import fault_error
    from strata.gc.check import CheckReport, Problem
    from strata.gc.prune import parse_filters, parse_size
    from strata.gotext import format_rfc3339_nano, go_quote
    from strata.imagefilters import PRUNE_KEYS, parse_image_filters
    from strata.privileges import require_privileges
    from strata.registry.login import server_address
    from strata.remotecache.spec import parse_cache_specs
    from strata.sandbox import (
        SandboxOptions,
        parse_add_hosts,
        parse_resources,
        parse_shm_size,
        parse_ulimit,
    )

__all__ = [
    "ENTITLEMENTS",
    "PRUNE_KEYS",
    "ZERO_TIME",
    "ArchiveFormat",
    "BuildRequest",
    "BuildResult",
    "CacheSpec",
    "CheckReport",
    "Client",
    "DebugSession",
    "DebugShell",
    "ErrorCallback",
    "HistoryRecord",
    "ImageDetails",
    "ImagePruneReport",
    "ImageRecord",
    "LoadedImage",
    "NetworkMode",
    "OnError",
    "OutputSpec",
    "Problem",
    "PruneReport",
    "PullResult",
    "Removal",
    "RunRequest",
    "Runtime",
    "SSHSource",
    "SandboxOptions",
    "SnapshotterName",
    "UsageRecord",
    "Volume",
    "atomic_write",
    "build",
    "check_json",
    "decode_dockerfile_text",
    "default_root",
    "disk_usage",
    "fault_error",
    "format_rfc3339_nano",
    "go_quote",
    "import_image",
    "inspect",
    "list_images",
    "load",
    "metadata_of",
    "parse_add_hosts",
    "parse_cache_specs",
    "parse_filters",
    "parse_image_filters",
    "parse_name",
    "parse_outputs",
    "parse_resources",
    "parse_shm_size",
    "parse_size",
    "parse_ulimit",
    "prune",
    "read_dockerfile",
    "remove_images",
    "render_check",
    "require_privileges",
    "save",
    "server_address",
    "tag",
]

# Names whose modules load only when asked for (PEP 562), so `import strata.api`
# stays light: the record types live beside the stores that fill them.
_LAZY = {
    "ImageRecord": "strata.store.images",
    "LoadedImage": "strata.export.load",
    "OutputSpec": "strata.export.outputs",
    "CacheSpec": "strata.remotecache.spec",
    "PruneReport": "strata.gc.prune",
    "Removal": "strata.store.images",
    "SSHSource": "strata.solver.execop",
    "UsageRecord": "strata.gc.usage",
    "read_dockerfile": "strata.builder",
    "decode_dockerfile_text": "strata.builder",
    "SandboxOptions": "strata.sandbox",
    "parse_add_hosts": "strata.sandbox",
    "parse_resources": "strata.sandbox",
    "parse_shm_size": "strata.sandbox",
    "parse_ulimit": "strata.sandbox",
    "format_rfc3339_nano": "strata.gotext",
    "go_quote": "strata.gotext",
    "PRUNE_KEYS": "strata.imagefilters",
    "parse_image_filters": "strata.imagefilters",
    "server_address": "strata.registry.login",
    "require_privileges": "strata.privileges",
    "parse_filters": "strata.gc.prune",
    "atomic_write": "strata.atomicfile",
    "Problem": "strata.gc.check",
    "CheckReport": "strata.gc.check",
    "fault_error": "strata.faults",
    "parse_size": "strata.gc.prune",
    "parse_outputs": "strata.export.outputs",
    "parse_cache_specs": "strata.remotecache.spec",
    "check_json": "strata.checkcall",
    "render_check": "strata.checkcall",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'strata.api' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def build(
    request: BuildRequest,
    *,
    root: Root,
    bus: ProgressBus | None = None,
    stdout: BinaryIO | None = None,
    debug_shell: DebugShell | None = None,
) -> BuildResult:
    """`Client(root).build(...)`: see `strata.client.Client.build`."""
    with open_client(root) as client:
        return client.build(request, progress=bus, stdout=stdout, debug_shell=debug_shell)


def import_image(
    root: Root,
    source: BinaryIO,
    name: str | None = None,
    *,
    changes: Sequence[str] = (),
    message: str | None = None,
    source_name: str = "-",
) -> str:
    """`Client(root).import_image(...)`."""
    with open_client(root) as client:
        return client.import_image(
            source, name, changes=changes, message=message, source_name=source_name
        )


def list_images(root: Root, repository: str | None = None) -> list[ImageRecord]:
    """`Client(root).images(repository)`."""
    with open_client(root) as client:
        return client.images(repository)


def tag(root: Root, source: str, target: str) -> None:
    """`Client(root).tag(source, target)`."""
    with open_client(root) as client:
        client.tag(source, target)


def remove_images(
    root: Root,
    names: Sequence[str],
    *,
    force: bool = False,
    on_error: ErrorCallback | None = None,
) -> list[Removal]:
    """`Client(root).remove_images(...)`."""
    with open_client(root) as client:
        return client.remove_images(names, force=force, on_error=on_error)


def inspect(
    root: Root, names: Sequence[str], *, on_error: ErrorCallback | None = None
) -> list[ImageDetails]:
    """`Client(root).inspect(...)`."""
    with open_client(root) as client:
        return client.inspect(names, on_error=on_error)


def save(
    root: Root, images: Sequence[str], dest: BinaryIO, *, format: ArchiveFormat = "docker"
) -> None:
    """`Client(root).save(...)`."""
    with open_client(root) as client:
        client.save(images, dest, format=format)


def load(
    root: Root, source: BinaryIO | Path, *, source_name: str | None = None
) -> list[LoadedImage]:
    """`Client(root).load(...)`."""
    with open_client(root) as client:
        return client.load(source, source_name=source_name)


def prune(
    root: Root,
    *,
    all: bool = False,
    filters: Sequence[str] = (),
    reserved_space: int | None = None,
    max_used_space: int | None = None,
    min_free_space: int | None = None,
    on_wait: WaitCallback | None = None,
    on_removed: RemovedCallback | None = None,
) -> PruneReport:
    """`Client(root).prune(...)`."""
    with open_client(root) as client:
        return client.prune(
            all=all,
            filters=filters,
            reserved_space=reserved_space,
            max_used_space=max_used_space,
            min_free_space=min_free_space,
            on_wait=on_wait,
            on_removed=on_removed,
        )


def disk_usage(root: Root, *, filters: Sequence[str] = ()) -> list[UsageRecord]:
    """`Client(root).disk_usage(...)`."""
    with open_client(root) as client:
        return client.disk_usage(filters=filters)

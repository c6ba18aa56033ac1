"""strata: a daemonless container image builder that reads Dockerfiles as BuildKit does.

The public API: `strata.Client(root=None)`, a context manager whose verbs are what the
`strata` commands do (`client.build(BuildRequest(...)) -> BuildResult`, `images`, `tag`,
`pull`, ...; see `strata.client`), and one-line functions over a throwaway client
(`build(BuildRequest(...), root=...) -> BuildResult`, see `strata.api`),
the output spec parser, the errors every user-caused failure is an instance of, and
what `build` takes to show progress (`ProgressBus(make_printer("plain", sys.stderr))`)
or to open a shell in a failed RUN (`debug_shell` gets a `DebugSession`); and what the
image and cache commands do: `import_image`, `list_images`, `tag`, `remove_images`,
`inspect`, `save`, `load`, `prune`, `disk_usage`.

The names are exported lazily (PEP 562 `__getattr__`, as trio and resolvelib expose
their API): `import strata` loads only the errors, and the first use of, say,
`strata.build` imports `strata.api`. `_LAZY` says which module owns each name.
"""

from __future__ import annotations

from strata._startup import guard_command_start

guard_command_start()  # first: a Ctrl-C while the command imports exits 130 quietly

from typing import TYPE_CHECKING  # noqa: E402

from strata._lazy import lazy_exports  # noqa: E402
from strata.errors import (  # noqa: E402
    BuildError,
    DockerfileError,
    ExecError,
    Interrupted,
    RegistryError,
    StoreError,
    StrataError,
    UsageError,
)

if TYPE_CHECKING:
    from strata.api import (
        BuildRequest,
        BuildResult,
        CacheSpec,
        DebugSession,
        ImageRecord,
        LoadedImage,
        OutputSpec,
        PruneReport,
        SSHSource,
        UsageRecord,
        build,
        disk_usage,
        import_image,
        inspect,
        list_images,
        load,
        metadata_of,
        prune,
        remove_images,
        save,
        tag,
    )
    from strata.client import Client, HistoryRecord, ImageDetails, ImagePruneReport
    from strata.export.outputs import parse_output
    from strata.progress.bus import ProgressBus
    from strata.progress.printers import make_printer
    from strata.sandbox import ResourceLimits, SandboxOptions, Ulimit

_LAZY: dict[str, str] = {
    "BuildRequest": "strata.api",
    "BuildResult": "strata.api",
    "CacheSpec": "strata.api",
    "DebugSession": "strata.api",
    "ImageRecord": "strata.api",
    "LoadedImage": "strata.api",
    "OutputSpec": "strata.api",
    "PruneReport": "strata.api",
    "SSHSource": "strata.api",
    "UsageRecord": "strata.api",
    "build": "strata.api",
    "disk_usage": "strata.api",
    "import_image": "strata.api",
    "inspect": "strata.api",
    "list_images": "strata.api",
    "load": "strata.api",
    "metadata_of": "strata.api",
    "prune": "strata.api",
    "remove_images": "strata.api",
    "save": "strata.api",
    "tag": "strata.api",
    "Client": "strata.client",
    "ImageDetails": "strata.client",
    "HistoryRecord": "strata.client",
    "ImagePruneReport": "strata.client",
    "ResourceLimits": "strata.sandbox",
    "SandboxOptions": "strata.sandbox",
    "Ulimit": "strata.sandbox",
    "parse_output": "strata.export.outputs",
    "ProgressBus": "strata.progress.bus",
    "make_printer": "strata.progress.printers",
}

__all__ = [
    "BuildError",
    "BuildRequest",
    "BuildResult",
    "CacheSpec",
    "Client",
    "DebugSession",
    "DockerfileError",
    "ExecError",
    "HistoryRecord",
    "ImageDetails",
    "ImagePruneReport",
    "ImageRecord",
    "Interrupted",
    "LoadedImage",
    "OutputSpec",
    "ProgressBus",
    "PruneReport",
    "RegistryError",
    "ResourceLimits",
    "SSHSource",
    "SandboxOptions",
    "StoreError",
    "StrataError",
    "Ulimit",
    "UsageError",
    "UsageRecord",
    "build",
    "disk_usage",
    "import_image",
    "inspect",
    "list_images",
    "load",
    "make_printer",
    "metadata_of",
    "parse_output",
    "prune",
    "remove_images",
    "save",
    "tag",
]
__version__ = "0.1.0"


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)

"""strata: a daemonless container image builder that reads Dockerfiles as BuildKit does.

The public API: `build(BuildRequest(...), root=...) -> BuildResult` (see `strata.api`),
the output spec parser, the errors every user-caused failure is an instance of, and
what `build` takes to show progress (`ProgressBus(make_printer("plain", sys.stderr))`)
or to open a shell in a failed RUN (`debug_shell` gets a `DebugSession`); and what the
image and cache commands do: `import_image`, `list_images`, `tag`, `remove_images`,
`inspect`, `save`, `load`, `prune`, `disk_usage`.
"""

from strata.api import (
    BuildRequest,
    BuildResult,
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
from strata.errors import (
    BuildError,
    DockerfileError,
    ExecError,
    Interrupted,
    StoreError,
    StrataError,
    UsageError,
)
from strata.export.outputs import parse_output
from strata.progress.bus import ProgressBus
from strata.progress.printers import make_printer

__all__ = [
    "BuildError",
    "BuildRequest",
    "BuildResult",
    "DebugSession",
    "DockerfileError",
    "ExecError",
    "ImageRecord",
    "Interrupted",
    "LoadedImage",
    "OutputSpec",
    "ProgressBus",
    "PruneReport",
    "SSHSource",
    "StoreError",
    "StrataError",
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

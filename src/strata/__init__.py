"""strata: a daemonless container image builder that reads Dockerfiles as BuildKit does.

The public API: `build(BuildRequest(...), root=...) -> BuildResult` (see `strata.api`),
the output spec parser, the errors every user-caused failure is an instance of, and
what `build` takes to show progress (`ProgressBus(make_printer("plain", sys.stderr))`)
or to open a shell in a failed RUN (`debug_shell` gets a `DebugSession`).
"""

from strata.api import (
    BuildRequest,
    BuildResult,
    DebugSession,
    OutputSpec,
    SSHSource,
    build,
    metadata_of,
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
    "Interrupted",
    "OutputSpec",
    "ProgressBus",
    "SSHSource",
    "StoreError",
    "StrataError",
    "UsageError",
    "build",
    "make_printer",
    "metadata_of",
    "parse_output",
]
__version__ = "0.1.0"

"""strata: a daemonless container image builder that reads Dockerfiles as BuildKit does.

The public API: `build(BuildRequest(...), root=...) -> BuildResult` (see `strata.api`),
the output spec parser, and the errors every user-caused failure is an instance of.
"""

from strata.api import BuildRequest, BuildResult, OutputSpec, SSHSource, build, metadata_of
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

__all__ = [
    "BuildError",
    "BuildRequest",
    "BuildResult",
    "DockerfileError",
    "ExecError",
    "Interrupted",
    "OutputSpec",
    "SSHSource",
    "StoreError",
    "StrataError",
    "UsageError",
    "build",
    "metadata_of",
    "parse_output",
]
__version__ = "0.1.0"

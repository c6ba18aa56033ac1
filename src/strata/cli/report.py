"""How a user error reaches the terminal.

Errors that belong to a build (a Dockerfile that does not parse, a failing step) print as
buildx prints them: the Dockerfile excerpt, then `ERROR: failed to build: failed to solve:`.
Every other command's errors print one `ERROR: <message>` line.
"""

from __future__ import annotations

import sys

from strata.errors import BuildError, DockerfileError, StrataError
from strata.progress.report import format_build_error


def format_error(exc: StrataError) -> str:
    if isinstance(exc, DockerfileError | BuildError):
        return format_build_error(exc).rstrip("\n")
    return f"ERROR: {exc.message}"


def print_error(exc: StrataError) -> None:
    print(format_error(exc), file=sys.stderr)

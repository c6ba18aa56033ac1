"""How a user error reaches the terminal: the Dockerfile excerpt if any, then `ERROR: ...`."""

from __future__ import annotations

import sys

from strata.errors import BuildError, DockerfileError, StrataError
from strata.progress.excerpt import format_excerpt


def format_error(exc: StrataError) -> str:
    """BuildKit's shape: excerpt (when the error has a place in a Dockerfile), then ERROR."""
    parts: list[str] = []
    if isinstance(exc, DockerfileError | BuildError) and exc.source is not None and exc.line > 0:
        filename = exc.file or "Dockerfile"
        parts.append(format_excerpt(exc.source, filename, exc.line, exc.end_line))
    prefix = "failed to solve: " if isinstance(exc, DockerfileError | BuildError) else ""
    parts.append(f"ERROR: {prefix}{exc.message}")
    return "\n".join(parts)


def print_error(exc: StrataError) -> None:
    print(format_error(exc), file=sys.stderr)

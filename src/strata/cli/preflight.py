"""Checks `strata build` makes before any work, so that a mistake in a path is one line
and not a failure (or a traceback) after a long build.

- a remote context (a git repository or a URL) is refused: strata builds local
  directories and standard input;
- `-o -` (and any other output to stdout) with a terminal on stdout is refused, with
  buildx's words (build/opt.go: "dest file is required for tar exporter. refusing to
  write to console");
- an output, `--iidfile` or `--metadata-file` path must be of the right type (a
  directory for `type=local`, a file for the others) and writable, or creatable in a
  writable directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from strata.api import OutputSpec
from strata.errors import UsageError

__all__ = ["check_context", "check_destinations", "check_file_destination"]

# buildx/BuildKit's remote context forms (urlutil.IsGitURL / IsURL).
_REMOTE = re.compile(r"^(?:https?://|git://|ssh://|git@[^:]+:|github\.com/)")


def check_context(context: str) -> None:
    if _REMOTE.match(context) or (context.endswith(".git") and "://" in context):
        raise UsageError(
            f"unable to prepare context: {context}: remote build contexts (git repositories,"
            " URLs) are not supported; clone or download it and build the directory",
            option="CONTEXT",
        )


def check_destinations(
    outputs: Sequence[OutputSpec],
    *,
    iidfile: Path | None,
    metadata_file: Path | None,
    stdout: TextIO,
) -> None:
    for output in outputs:
        if output.dest is None:
            continue
        if output.to_stdout:
            if stdout.isatty():
                raise UsageError(
                    f"dest file is required for {output.type} exporter. refusing to write"
                    " to console",
                    option="--output",
                )
            continue
        if output.type == "local":
            _check_directory_destination(Path(output.dest), "--output")
        else:
            check_file_destination(Path(output.dest), "--output")
    if iidfile is not None:
        check_file_destination(iidfile, "--iidfile")
    if metadata_file is not None:
        check_file_destination(metadata_file, "--metadata-file")


def check_file_destination(path: Path, option: str) -> None:
    """`path` can be written as a file: not a directory; an existing file writable;
    otherwise its nearest existing ancestor a writable directory."""
    if path.is_dir():
        raise UsageError(f"invalid {option} destination {path}: it is a directory", option=option)
    if path.exists():
        if not os.access(path, os.W_OK):
            raise UsageError(_cannot_write(path, option, path), option=option)
        return
    _check_creatable(path, option)


def _check_directory_destination(path: Path, option: str) -> None:
    if path.exists():
        if not path.is_dir():
            raise UsageError(
                f"invalid {option} destination {path}: it is not a directory (type=local"
                " writes a directory)",
                option=option,
            )
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(_cannot_write(path, option, path), option=option)
        return
    _check_creatable(path, option)


def _check_creatable(path: Path, option: str) -> None:
    """The nearest existing ancestor of `path` must be a writable directory."""
    for ancestor in path.absolute().parents:
        if not ancestor.exists():
            continue
        if not ancestor.is_dir():
            raise UsageError(
                f"invalid {option} destination {path}: {ancestor} is not a directory",
                option=option,
            )
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise UsageError(_cannot_write(path, option, ancestor), option=option)
        return


def _cannot_write(path: Path, option: str, where: Path) -> str:
    reason = "read-only file system" if _read_only(where) else "permission denied"
    return f"invalid {option} destination {path}: cannot write to {where}: {reason}"


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False

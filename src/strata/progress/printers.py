"""Choosing a printer from `--progress`, as buildx does.

`auto` (the default, also an empty value) shows the tty view when the stream is
a terminal and plain text otherwise; `BUILDKIT_PROGRESS` in the environment
replaces `auto` only (buildx util/progress/printer.go). `tty` on something that
is not a terminal is an error, like buildkit's `failed to get console`.
`PROGRESS_NO_TRUNC=0` shortens plain vertex names to 72 bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

from rich.console import Console

from strata.errors import UsageError
from strata.progress.plain import PlainPrinter
from strata.progress.protocol import Printer
from strata.progress.quiet import QuietPrinter
from strata.progress.rawjson import RawJsonPrinter
from strata.progress.tty import TtyPrinter

MODES = ("auto", "plain", "tty", "rawjson", "quiet", "none")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def make_printer(mode: str, stream: TextIO, *, env: Mapping[str, str] | None = None) -> Printer:
    """The printer for `mode` writing to `stream` (the CLI passes stderr).

    Raises `UsageError("invalid progress mode <m>")` for an unknown mode.
    """
    environ = os.environ if env is None else env
    if mode in ("", "auto") and environ.get("BUILDKIT_PROGRESS"):
        mode = environ["BUILDKIT_PROGRESS"]
    if mode in ("", "auto", "tty"):
        if _is_terminal(stream):
            return TtyPrinter(Console(file=stream, force_terminal=True))
        if mode == "tty":
            raise UsageError(
                "failed to get console: provided file is not a console", option="--progress"
            )
        mode = "plain"
    if mode == "plain":
        return PlainPrinter(stream, truncate_names=environ.get("PROGRESS_NO_TRUNC") == "0")
    if mode == "rawjson":
        return RawJsonPrinter(stream)
    if mode in ("quiet", "none"):
        return QuietPrinter(mode)
    raise UsageError(f"invalid progress mode {mode}", option="--progress")

"""What a build prints on stderr after its progress display has ended.

The CLI calls one function, `report_build_end(stream, summary, error)`, with
the summary `ProgressBus.close()` returned and the build's error (None on
success), and exits with the code it returns. In order, as BuildKit's display
and buildx print them (buildkit util/progress/progressui/display.go
`printErrorLogs`; buildx commands/build.go `printWarnings`,
cmd/buildx/main.go):

1. for every failed (not canceled) vertex, in start order::

       ------
        > [2/3] RUN make:
       0.412 cc: error: main.c: No such file
       ------

   with its last 10 output lines (all retained lines after the tty view;
   none after rawjson or quiet, which keep no logs);
2. the warning summary (not in quiet/rawjson mode);
3. the Dockerfile excerpt around the error's location, if it has one;
4. `ERROR: failed to build: failed to solve: <message>`, the text of buildx
   0.25 and later (`failed to build: ` from buildx, `failed to solve: ` from
   BuildKit's client). Errors that are not the solver's (a store failure, a
   bad option found late) get only `failed to build: `; an interrupted build
   reads `failed to solve: Canceled: context canceled`.

Exit codes: 0 on success, 1 for an error, the error's own code for an
interruption (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from strata.errors import (
    BuildError,
    DockerfileError,
    ExecError,
    Interrupted,
    StrataError,
)
from strata.progress.events import VertexWarning
from strata.progress.excerpt import format_excerpt
from strata.progress.protocol import FailedStep, ProgressSummary

RULE = "------"
YELLOW = "\x1b[33m"
RESET = "\x1b[0m"
DEBUG_HINT = "(use --debug to expand)"
CANCELED_MESSAGE = "Canceled: context canceled"
SILENT_MODES = frozenset({"quiet", "none", "rawjson"})


def format_error_logs(steps: Sequence[FailedStep]) -> str:
    """The `------` blocks for failed steps; empty when none failed."""
    out: list[str] = []
    for step in steps:
        out.append(RULE)
        out.append(f" > {step.name}:")
        out.extend(step.log_lines)
        out.append(RULE)
    return "".join(line + "\n" for line in out)


def format_warning_summary(
    warnings: Sequence[VertexWarning], *, debug: bool = False, color: bool = True
) -> str:
    """buildx's end-of-build warning list; the count line is yellow even off a terminal."""
    if not warnings:
        return ""
    count = "1 warning found" if len(warnings) == 1 else f"{len(warnings)} warnings found"
    if not debug:
        count += " " + DEBUG_HINT
    heading = f"{count}:\n"
    out = ["\n ", f"{YELLOW}{heading}{RESET}" if color else heading]
    for warning in warnings:
        out.append(f" - {warning.short}\n")
        if not debug:
            continue
        out.extend(f"{line}\n" for line in warning.detail)
        if warning.url:
            out.append(f"More info: {warning.url}\n")
        source = warning.source
        if source is not None and source.text is not None and source.start_line > 0:
            excerpt = format_excerpt(
                source.text, source.filename, source.start_line, source.end_line
            )
            out.append(excerpt + "\n")
        out.append("\n")
    return "".join(out)


def error_message(error: StrataError) -> str:
    """The text after `ERROR: ` for a failed build."""
    if isinstance(error, Interrupted):
        return f"failed to build: failed to solve: {CANCELED_MESSAGE}"
    if isinstance(error, DockerfileError | BuildError | ExecError):
        return f"failed to build: failed to solve: {error.message}"
    return f"failed to build: {error.message}"


def format_build_error(error: StrataError) -> str:
    """The excerpt (when the error points into a Dockerfile) and the `ERROR:` line."""
    parts: list[str] = []
    if (
        isinstance(error, DockerfileError | BuildError)
        and error.source is not None
        and error.line > 0
    ):
        filename = error.file or "Dockerfile"
        parts.append(format_excerpt(error.source, filename, error.line, error.end_line))
    parts.append(f"ERROR: {error_message(error)}")
    return "\n".join(parts) + "\n"


def report_build_end(
    stream: TextIO,
    summary: ProgressSummary,
    error: StrataError | None,
    *,
    debug: bool = False,
) -> int:
    """Print the end of a build (see the module docstring) and return the exit code."""
    text = format_error_logs(summary.failed_steps)
    if summary.mode not in SILENT_MODES:
        text += format_warning_summary(summary.warnings, debug=debug)
    if error is not None:
        text += format_build_error(error)
    stream.write(text)
    stream.flush()
    if error is None:
        return 0
    return error.exit_code

"""The progress events a build emits, shaped like BuildKit's `client.SolveStatus`.

The solver, worker and exporters describe what they do as *vertices* (one per
build operation, identified by a digest; identical operations are one vertex)
that start, print output, report sub-progress ("statuses") and finish cached,
done or failed. Printers only format these records, so the same build can be
shown as plain text, a live terminal view or raw JSON.

Field names and meanings follow buildkit `client/graph.go`; times are Unix
seconds as floats (the bus stamps them with `time.time()`). strata adds one
event BuildKit lacks, `CacheMiss`: the reason a step had to run, which plain and
tty print right after the step's header (`#7 cache miss: file go.sum changed`).

The engine does not usually build these by hand: it calls `ProgressBus`
(`strata.progress.bus`), which keeps each vertex's full record and sends a
`SolveStatus` batch per change.
"""

from __future__ import annotations

from dataclasses import dataclass

STDOUT = 1
STDERR = 2

# BuildKit calls a vertex canceled (not failed) when its error ends with Go's
# `context.Canceled` text (buildkit: util/progress/progressui/printer.go).
CANCELED_ERROR = "context canceled"


def is_canceled(error: str | None) -> bool:
    """True when a vertex error means "stopped because something else failed"."""
    return error is not None and error.endswith(CANCELED_ERROR)


@dataclass(frozen=True)
class ProgressGroup:
    """Vertices that print as one (e.g. the parts of `COPY --link`), under `name`.

    A group stays hidden until a non-weak member starts.
    """

    id: str
    name: str
    weak: bool = False


@dataclass(frozen=True)
class ProgressVertex:
    """One build operation's state; every update carries the full record."""

    digest: str
    name: str
    inputs: tuple[str, ...] = ()
    started: float | None = None
    completed: float | None = None
    cached: bool = False
    error: str | None = None
    progress_group: ProgressGroup | None = None


@dataclass(frozen=True)
class VertexStatus:
    """Sub-progress of a vertex: `transferring context: 1.02kB`, a layer download.

    `total` 0 means unknown. Printers show a status only once it has `started`.
    """

    id: str
    vertex: str
    name: str = ""
    total: int = 0
    current: int = 0
    timestamp: float = 0.0
    started: float | None = None
    completed: float | None = None


@dataclass(frozen=True)
class VertexLog:
    """A chunk of a process' output (stream 1 stdout, 2 stderr); not split into lines."""

    vertex: str
    stream: int
    data: bytes
    timestamp: float


@dataclass(frozen=True)
class SourceExcerpt:
    """Lines `start_line..end_line` (1-based) of a file, with its text when known."""

    filename: str
    start_line: int
    end_line: int
    text: str | None = None


@dataclass(frozen=True)
class VertexWarning:
    """A warning attached to a vertex, e.g. a Dockerfile lint finding.

    `short` is the one-line text (`JSONArgsRecommended: ... (line 5)`); `detail`,
    `url` and `source` are what a debug summary expands to.
    """

    vertex: str
    short: str
    level: int = 1
    detail: tuple[str, ...] = ()
    url: str | None = None
    source: SourceExcerpt | None = None


@dataclass(frozen=True)
class CacheMiss:
    """strata's extension: why a vertex could not be taken from the cache.

    `reasons` is ordered most telling first; plain and tty show the first one,
    rawjson carries all of them.
    """

    vertex: str
    reasons: tuple[str, ...]
    timestamp: float


@dataclass(frozen=True)
class SolveStatus:
    """One batch of events, as a printer receives them."""

    vertexes: tuple[ProgressVertex, ...] = ()
    statuses: tuple[VertexStatus, ...] = ()
    logs: tuple[VertexLog, ...] = ()
    warnings: tuple[VertexWarning, ...] = ()
    cache_misses: tuple[CacheMiss, ...] = ()

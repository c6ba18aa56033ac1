"""The printers' picture of a build, rebuilt from the event stream.

The plain and tty printers both need the same bookkeeping: which vertices
started and in what order, their run intervals (a vertex can run more than
once), statuses, warnings, and output lines already prefixed with the time since
the vertex started. This follows the `trace` type of buildkit
`util/progress/progressui/display.go` (`trace.update`, `vertexGroup.refresh`,
`mergeIntervals`), so the printers built on it behave the same way.

Deliberate differences from BuildKit:
- the last 10 output lines kept for the failure report are whole lines in
  order (BuildKit's ring keeps only the tail of a line that arrived in pieces
  and can list an unfinished line first);
- a vertex record that repeats the previous one exactly is not a change (Go
  compares the `Completed` pointers, so a repeat would print `DONE` twice);
- where Go iterates a map (random order) we use start order.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from strata.progress.events import (
    ProgressVertex,
    SolveStatus,
    VertexStatus,
    VertexWarning,
    is_canceled,
)
from strata.progress.protocol import FailedStep
from strata.progress.units import format_log_elapsed

ERROR_LOG_LINES = 10  # buildkit printer.go: logsBufferSize
TERMINAL_LINES = 6  # buildkit init.go: termHeightMin, the live output rows per vertex

_ANSI_ESCAPE = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass(frozen=True)
class Interval:
    """One run of a vertex; `stop` None while it runs."""

    start: float
    stop: float | None

    def duration(self, now: float) -> float:
        return (self.stop if self.stop is not None else now) - self.start


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Join overlapping runs, so a vertex's time is not counted twice.

    An open run (no stop) swallows every run after it.
    """
    ordered = sorted(intervals, key=lambda ival: ival.start)
    if not ordered:
        return []
    merged: list[Interval] = []
    current = ordered[0]
    for following in ordered[1:]:
        if current.stop is None:
            break
        stop: float = current.stop
        if stop < following.start:
            merged.append(current)
            current = following
        elif following.stop is None:
            current = Interval(current.start, None)
            break
        elif following.stop > stop:
            current = Interval(current.start, following.stop)
    merged.append(current)
    return merged


class TerminalTail:
    """The last few screen lines of a vertex's output, for the tty view.

    BuildKit feeds output into a small vt100 emulator; we keep the last lines,
    honour carriage returns (progress bars redraw their line) and drop escape
    sequences, which covers what build tools print.
    """

    def __init__(self, height: int = TERMINAL_LINES) -> None:
        self.lines: deque[str] = deque(maxlen=height)
        self.height = height
        self.current = ""
        self.column = 0
        self.byte_count = 0
        self.shown_count = 0

    def write(self, data: bytes) -> None:
        self.byte_count += len(data)
        text = _ANSI_ESCAPE.sub(b"", data).decode("utf-8", "replace")
        for line_number, line in enumerate(text.split("\n")):
            if line_number:
                self.lines.append(self.current)
                self.current = ""
                self.column = 0
            for part_number, part in enumerate(line.split("\r")):
                if part_number:
                    self.column = 0  # carriage return: later text overwrites the line
                if part:
                    end = self.column + len(part)
                    self.current = self.current[: self.column] + part + self.current[end:]
                    self.column = end

    def content(self) -> list[str]:
        """Non-blank rows, oldest first, at most `height` of them."""
        rows = [*self.lines, self.current]
        return [row.expandtabs() for row in rows if row.strip()][-self.height :]


@dataclass(eq=False)
class TracedVertex:
    """Everything the printers remember about one vertex (or one progress group)."""

    digest: str
    record: ProgressVertex
    previous: ProgressVertex | None = None
    index: int = 0
    status_order: list[str] = field(default_factory=list)
    statuses: dict[str, VertexStatus] = field(default_factory=dict)
    status_updates: set[str] = field(default_factory=set)
    # output lines formatted `<elapsed> <text>` not yet printed (plain) or all (tty)
    logs: list[bytes] = field(default_factory=list)
    logs_partial: bool = False
    logs_offset: int = 0
    error_tail: deque[bytes] = field(default_factory=lambda: deque(maxlen=ERROR_LOG_LINES))
    events: list[str] = field(default_factory=list)
    last_block_time: float | None = None
    count: int = 0
    warnings: list[VertexWarning] = field(default_factory=list)
    warning_index: int = 0
    intervals: dict[float, Interval] = field(default_factory=dict)
    merged: list[Interval] = field(default_factory=list)
    hidden: bool = False
    cache_miss: tuple[str, ...] = ()
    terminal: TerminalTail | None = None
    members: dict[str, ProgressVertex] | None = None  # set for a progress group

    @property
    def name(self) -> str:
        return self.record.name

    def touch(self, now: float) -> None:
        """Count an update; the printer's time-slicing favours busy vertices."""
        if self.count == 0:
            self.last_block_time = now
        self.count += 1

    def most_recent_interval(self) -> Interval | None:
        return self.merged[-1] if self.merged else None

    def is_started(self) -> bool:
        return bool(self.merged)

    def is_completed(self) -> bool:
        last = self.most_recent_interval()
        return last is not None and last.stop is not None


class Trace:
    """Accumulates `SolveStatus` batches into per-vertex state; see the module doc."""

    def __init__(self, *, console: bool = False) -> None:
        self.console = console
        self.start_time: float | None = None
        self.vertexes: list[TracedVertex] = []  # in start order
        self.by_digest: dict[str, TracedVertex] = {}
        self.updates: dict[str, None] = {}  # digests changed since printed, in order
        self.groups: dict[str, TracedVertex] = {}

    def _new_vertex(self, record: ProgressVertex) -> TracedVertex:
        traced = TracedVertex(digest=record.digest, record=record)
        if self.console:
            traced.terminal = TerminalTail()
        return traced

    def update(self, status: SolveStatus, now: float) -> None:
        """Fold one batch into the picture; `now` only drives time-slicing."""
        touched_groups: list[str] = []
        for record in status.vertexes:
            if self.start_time is None:
                self.start_time = record.started
            if record.progress_group is not None:
                self._add_group_member(record, touched_groups)
                continue
            self._update_vertex(record, now)
        for group_id in touched_groups:
            self._refresh_group(self.groups[group_id], now)
        for item in status.statuses:
            self._update_status(item, now)
        for warning in status.warnings:
            traced = self.by_digest.get(warning.vertex)
            if traced is not None:
                traced.warnings.append(warning)
                traced.touch(now)
        for log in status.logs:
            traced = self.by_digest.get(log.vertex)
            if traced is None or not log.data:
                continue
            if traced.terminal is not None:
                traced.terminal.write(log.data)
            self._add_output(traced, log.data, log.timestamp)
            self.updates[traced.digest] = None
            traced.touch(now)
        for miss in status.cache_misses:
            traced = self.by_digest.get(miss.vertex)
            if traced is None or not miss.reasons:
                continue
            traced.cache_miss = miss.reasons
            # BuildKit prints a vertex's `events` right after its header; strata
            # uses that slot for the cache-miss explanation.
            traced.events.append(f"cache miss: {miss.reasons[0]}")
            self.updates[traced.digest] = None
            traced.touch(now)

    def _update_vertex(self, record: ProgressVertex, now: float) -> None:
        existing = self.by_digest.get(record.digest)
        was_started = existing is not None and existing.is_started()
        traced = existing if existing is not None else self._new_vertex(record)
        self.by_digest[record.digest] = traced
        if record.started is not None:
            previous = traced.previous
            if previous is None or _visible_change(previous, record):
                traced.touch(now)
                self.updates[record.digest] = None
            traced.previous = record
        if record.started is not None and not was_started:
            self.vertexes.append(traced)
        # a repeated initial record (not started) must not reset a running vertex
        if not was_started or record.started is not None:
            traced.record = record
        if record.started is not None:
            traced.intervals[record.started] = Interval(record.started, record.completed)
            traced.merged = merge_intervals(traced.intervals.values())

    def _add_group_member(self, record: ProgressVertex, touched: list[str]) -> None:
        group_info = record.progress_group
        assert group_info is not None
        group = self.groups.get(group_info.id)
        if group is None:
            group = self._new_vertex(ProgressVertex(digest=group_info.id, name=group_info.name))
            group.hidden = True
            group.members = {}
            self.groups[group_info.id] = group
            self.by_digest[group.digest] = group
        if group_info.id not in touched:
            touched.append(group_info.id)
        assert group.members is not None
        group.members[record.digest] = record
        self.by_digest[record.digest] = group

    def _refresh_group(self, group: TracedVertex, now: float) -> None:
        """A group is cached only if all members are, failed with its first member error."""
        assert group.members is not None
        changed = False
        newly_revealed = False
        was_hidden = group.hidden
        cached = True
        error = group.record.error
        for member in group.members.values():
            if member.started is not None:
                run = Interval(member.started, member.completed)
                if group.intervals.get(member.started) != run:
                    changed = True
                group.intervals[member.started] = run
                if member.progress_group is not None and not member.progress_group.weak:
                    group.hidden = False
            cached = cached and member.cached
            if error is None:
                error = member.error
            else:
                group.hidden = False
        if group.record.cached != cached or group.record.error != error:
            changed = True
        group.record = replace(group.record, cached=cached, error=error)
        if was_hidden and not group.hidden:
            changed = True
            newly_revealed = True
        group.merged = merge_intervals(group.intervals.values())
        if self.start_time is None and group.merged:
            self.start_time = group.merged[0].start
        if group.hidden:
            return
        if newly_revealed:
            self.vertexes.append(group)
        if changed:
            group.touch(now)
            self.updates[group.digest] = None

    def _update_status(self, item: VertexStatus, now: float) -> None:
        traced = self.by_digest.get(item.vertex)
        if traced is None:
            return
        previous = traced.statuses.get(item.id)
        if item.started is not None and (previous is None or previous.started is None):
            traced.status_order.append(item.id)
        traced.statuses[item.id] = item
        traced.status_updates.add(item.id)
        self.updates[traced.digest] = None
        traced.touch(now)

    def _add_output(self, traced: TracedVertex, data: bytes, timestamp: float) -> None:
        """Split output on newlines into `<elapsed> <text>` lines, joining partial lines."""
        pieces = data.split(b"\n")
        complete = data.endswith(b"\n")
        if complete:
            pieces.pop()
        for position, piece in enumerate(pieces):
            if position == 0 and traced.logs_partial and traced.logs:
                traced.logs[-1] = traced.logs[-1] + piece
            else:
                last = traced.most_recent_interval()
                elapsed = timestamp - last.start if last is not None else 0.0
                traced.logs.append(format_log_elapsed(elapsed).encode() + b" " + piece)
            if position < len(pieces) - 1 or complete:
                traced.error_tail.append(traced.logs[-1])
        traced.logs_partial = not complete

    def failed_steps(self, *, all_lines: bool) -> list[FailedStep]:
        """Failed, not canceled, vertices in start order with their output for the report.

        `all_lines` keeps every line still held (the tty printer never consumes
        them); otherwise the last 10, as the plain printer does.
        """
        steps: list[FailedStep] = []
        for traced in self.vertexes:
            error = traced.record.error
            if not error or is_canceled(error):
                continue
            if all_lines:
                raw = list(traced.logs)
            else:
                raw = list(traced.error_tail)
                if traced.logs_partial and traced.logs:
                    raw.append(traced.logs[-1])
                    raw = raw[-ERROR_LOG_LINES:]
            lines = tuple(line.decode("utf-8", "replace") for line in raw)
            steps.append(FailedStep(name=traced.name, log_lines=lines))
        return steps

    def counts(self) -> tuple[int, int]:
        """(completed, total) vertices, groups counted once and hidden ones not at all."""
        seen: set[int] = set()
        total = 0
        completed = 0
        for traced in self.by_digest.values():
            if id(traced) in seen or traced.hidden or traced.record.progress_group is not None:
                continue
            seen.add(id(traced))
            total += 1
            if traced.is_completed():
                completed += 1
        return completed, total


def _visible_change(previous: ProgressVertex, record: ProgressVertex) -> bool:
    return (
        record.digest != previous.digest
        or record.name != previous.name
        or record.started != previous.started
        or (record.completed is not None and record.completed != previous.completed)
        or record.cached != previous.cached
        or record.error != previous.error
    )


def safe_ratio(numerator: float, denominator: float) -> float:
    """Go's float division: x/0 is ±Inf, 0/0 is NaN (Python would raise)."""
    if denominator == 0:
        if numerator == 0 or math.isnan(numerator):
            return math.nan
        return math.copysign(math.inf, numerator)
    return numerator / denominator

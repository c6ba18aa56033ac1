"""The plain progress printer: BuildKit's line-oriented `#N` output, line for line.

This is the format people read in CI logs and grep for, so it follows buildkit
`util/progress/progressui/printer.go` (`textMux.printVtx`, `textMux.print`):

- a vertex is numbered when first printed; one empty line before each header
  except the first; `#N <name>` again whenever printing returns to a vertex;
- output lines as `#N <elapsed> <text>`; a trailing partial line is printed at
  once and finished later without a prefix (a `\\n` is written first if the
  printer must switch away meanwhile, and the whole line is printed again on
  return);
- statuses `#N <id> <cur> / <total> <t>s done`, an unfinished status reprinted
  only after 5 % more progress or 5 s;
- `#N CACHED`, `#N DONE <t>s`, `#N ERROR: <msg>`, `#N CANCELED`, and `#N ...`
  when switching away from an unfinished vertex;
- each flush prints finished vertices first (by completion time), then the
  active one; several running vertices share the output by time-slicing.

strata has no builder instance, so by default there is no
`#0 building with "<builder>" instance using <driver> driver` line. buildx only
adds it as a description (`progressui.WithDesc`); nothing parses it and the
vertex numbering starts at 1 either way, so leaving it out keeps the output
honest without changing any `#N` line a tool would match. Pass `description`
to print one (`#0 <description>` and an empty line) anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TextIO

from strata.progress.events import SolveStatus, is_canceled
from strata.progress.protocol import FailedStep
from strata.progress.trace import Trace, TracedVertex, merge_intervals, safe_ratio
from strata.progress.units import format_progress, format_seconds

ANTI_FLICKER = 5.0  # seconds a vertex keeps the output before sharing it
MAX_DELAY = 10.0  # a vertex hidden this long is shown next
MIN_TIME_DELTA = 5.0  # an unfinished status is reprinted after this long...
MIN_PROGRESS_DELTA = 0.05  # ...or after this much more of its total
NAME_LIMIT = 72  # PROGRESS_NO_TRUNC=0 cuts names here


@dataclass
class _LastStatus:
    current: int
    timestamp: float


@dataclass
class _SliceStats:
    block_time: float
    speed: float
    share: float
    over_limit: bool


class PlainPrinter:
    """Writes BuildKit's plain progress to `stream` (normally stderr)."""

    mode = "plain"

    def __init__(
        self, stream: TextIO, *, description: str | None = None, truncate_names: bool = False
    ) -> None:
        self._stream = stream
        self._description = description
        self._truncate = truncate_names
        self._trace = Trace(console=False)
        self._current: str | None = None
        self._last: dict[str, _LastStatus] = {}
        self._not_first = False
        self._next_index = 0

    def update(self, status: SolveStatus, now: float) -> None:
        self._trace.update(status, now)

    def refresh(self, now: float) -> None:
        self._print(now)
        self._stream.flush()

    def done(self, now: float) -> None:
        self.refresh(now)

    def failed_steps(self) -> list[FailedStep]:
        return self._trace.failed_steps(all_lines=False)

    def _write(self, text: str) -> None:
        self._stream.write(text)

    def _print_vertex(self, digest: str) -> None:
        """Print what is new about one vertex, with a header if it was not the current one."""
        trace = self._trace
        traced = trace.by_digest.get(digest)
        if traced is None:
            return
        if traced.index == 0:
            self._next_index += 1
            traced.index = self._next_index

        if digest != self._current:
            if self._current is not None:
                old = trace.by_digest[self._current]
                # End a half-printed line; a partial line that arrived but is not on
                # screen yet (offset 0) needs no newline, or the block would hold an
                # empty line before its `#N ...`.
                if old.logs_partial and old.logs_offset != 0:
                    self._write("\n")
                old.logs_offset = 0
                old.count = 0
                self._write(f"#{old.index} ...\n")
            if self._not_first:
                self._write("\n")
            else:
                if self._description:
                    self._write(f"#0 {self._description}\n\n")
                self._not_first = True
            name = traced.name
            if self._truncate and len(name.encode()) > NAME_LIMIT:
                name = name.encode()[:NAME_LIMIT].decode("utf-8", "ignore") + "..."
            self._write(f"#{traced.index} {name}\n")

        if traced.events:
            if traced.logs_partial and traced.logs_offset != 0 and digest == self._current:
                self._write("\n")  # end the half-printed line; it is printed whole below
            traced.logs_offset = 0
        for event in traced.events:
            self._write(f"#{traced.index} {event}\n")
        traced.events.clear()

        open_status = self._print_statuses(traced)

        for warning in traced.warnings[traced.warning_index :]:
            self._write(f"#{traced.index} WARN: {warning.short}\n")
            traced.warning_index += 1

        self._print_logs(traced)

        self._current = digest
        if traced.is_completed() and not open_status:
            self._current = None
            traced.count = 0
            if traced.logs_partial:
                self._write("\n")
            self._write(f"#{traced.index} {self._outcome(traced)}\n")
        trace.updates.pop(digest, None)

    def _print_statuses(self, traced: TracedVertex) -> bool:
        """Print changed statuses; True if one is still open (the vertex stays current)."""
        open_status = False
        for status_id in traced.status_order:
            if status_id not in traced.status_updates:
                continue
            status = traced.statuses[status_id]
            last = self._last.get(status_id)
            if last is not None and status.completed is None:
                progress_delta = (
                    (status.current - last.current) / status.total if status.total > 0 else 0.0
                )
                time_delta = status.timestamp - last.timestamp
                if progress_delta < MIN_PROGRESS_DELTA and time_delta < MIN_TIME_DELTA:
                    continue
            self._last[status_id] = _LastStatus(status.current, status.timestamp)
            amount = format_progress(status.current, status.total)
            text = f" {amount}" if amount else ""
            end_time = status.completed if status.completed is not None else status.timestamp
            if status.started is not None and end_time - status.started > 0.01:
                text += " " + format_seconds(end_time - status.started)
            if status.completed is not None:
                text += " done"
            else:
                open_status = True
            self._write(f"#{traced.index} {status_id}{text}\n")
        traced.status_updates.clear()
        return open_status

    def _print_logs(self, traced: TracedVertex) -> None:
        for position, line in enumerate(traced.logs):
            if position == 0 and traced.logs_offset != 0:
                # the start of this line is already on screen
                self._write(line[traced.logs_offset :].decode("utf-8", "replace"))
            else:
                self._write(f"#{traced.index} " + line.decode("utf-8", "replace"))
            if position != len(traced.logs) - 1 or not traced.logs_partial:
                self._write("\n")
        if traced.logs:
            if traced.logs_partial:
                del traced.logs[:-1]
                traced.logs_offset = len(traced.logs[0])
            else:
                traced.logs.clear()
                traced.logs_offset = 0

    @staticmethod
    def _outcome(traced: TracedVertex) -> str:
        error = traced.record.error
        if error:
            return "CANCELED" if is_canceled(error) else f"ERROR: {error}"
        if traced.record.cached:
            return "CACHED"
        runs = merge_intervals(traced.intervals.values())
        if not runs:
            return "DONE"
        # every run is closed here: the vertex is completed
        return "DONE " + format_seconds(sum(run.duration(0.0) for run in runs))

    def _print(self, now: float) -> None:
        """One flush: finished vertices first, then the active one (buildkit `textMux.print`)."""
        trace = self._trace
        completed: list[TracedVertex] = []
        rest: list[TracedVertex] = []
        for digest in list(trace.updates):
            traced = trace.by_digest.get(digest)
            if traced is None or traced.record.progress_group is not None or traced.hidden:
                continue
            if traced.digest != digest:
                continue  # a group member's digest; the group's own digest carries it
            (completed if traced.is_completed() else rest).append(traced)

        current = self._current
        completed_digests = {traced.digest for traced in completed}
        if current is not None and current in completed_digests:
            self._print_vertex(current)
        order = {id(traced): position for position, traced in enumerate(trace.vertexes)}

        def finish_time(traced: TracedVertex) -> tuple[float, int]:
            last = traced.most_recent_interval()
            stop = last.stop if last is not None and last.stop is not None else math.inf
            return (stop, order.get(id(traced), len(order)))

        for traced in sorted(completed, key=finish_time):
            if traced.digest != current:
                self._print_vertex(traced.digest)

        if not rest:
            if current is not None:
                active = trace.by_digest[current]
                if active.is_started() and not active.is_completed():
                    return
            # make any open vertex active
            for traced in trace.vertexes:
                if (
                    traced.is_started()
                    and not traced.is_completed()
                    and traced.record.progress_group is None
                    and not traced.hidden
                ):
                    self._print_vertex(traced.digest)
                    return
            return

        rest_digests = [traced.digest for traced in rest]
        if current is not None and current in rest_digests:
            self._print_vertex(current)
        candidates = sorted(
            {*rest_digests, *([current] if current is not None else [])},
            key=lambda digest: order.get(id(trace.by_digest[digest]), len(order)),
        )
        stats: dict[str, _SliceStats] = {}
        total_speed = 0.0
        fastest: str | None = None
        for digest in candidates:
            traced = trace.by_digest[digest]
            if traced.last_block_time is None:
                continue
            block_time = now - traced.last_block_time
            speed = safe_ratio(float(traced.count), block_time)
            over_limit = block_time > MAX_DELAY and digest != current
            stats[digest] = _SliceStats(block_time, speed, 0.0, over_limit)
            total_speed += speed
            if over_limit or fastest is None or stats[fastest].speed < speed:
                fastest = digest
        for item in stats.values():
            item.share = safe_ratio(item.speed, total_speed)

        if current is None or current in completed_digests:
            if fastest is not None:
                self._print_vertex(fastest)
            return
        for digest in rest_digests:
            if digest in stats and stats[digest].over_limit:
                self._print_vertex(digest)
                return
        own = stats.get(current)
        if own is None or fastest is None:
            return
        # fair split: the more of the activity `current` has, the longer it keeps the output
        if safe_ratio(1.0, 1.0 - own.share) * ANTI_FLICKER < own.block_time:
            self._print_vertex(fastest)

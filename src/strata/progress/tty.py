"""The tty progress view: a screen redrawn in place, like buildx on a terminal.

Layout after buildkit `util/progress/progressui/display.go` (`displayInfo`,
`ttyDisplay.print`, `setupTerminals`, `wrapHeight`):

    [+] Building 12.3s (7/9)
     => [internal] load build definition from Dockerfile                 0.0s
     => => transferring dockerfile: 123B                                 0.0s
     => CACHED [1/3] FROM docker.io/library/alpine:3.20@sha256:…         0.0s
     => [3/3] RUN make                                                   4.1s
     => => # cc -o app main.c

One row per vertex in start order with its run time right-aligned and a
`CACHED `, `ERROR ` or `CANCELED ` prefix; its statuses and warnings below it.
While a vertex runs and there is room, its last output lines (up to 6) show as
faint ` => => # <line>` rows; a finished vertex keeps only its own rows. When
the screen is too short, finished rows scroll off the top first. The final
redraw shows every row and ends the header with ` FINISHED` if all completed.

strata's cache-miss explanation shows as an untimed ` => => cache miss: <why>`
row under its vertex. Rendering goes through rich's `Live`; refresh pacing comes
from the bus (at most every 100 ms), not from rich's own timer.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from strata.progress.events import SolveStatus, is_canceled
from strata.progress.protocol import FailedStep
from strata.progress.trace import TERMINAL_LINES, Trace, TracedVertex, merge_intervals
from strata.progress.units import format_progress

TERM_PAD = 10  # columns the live output rows give up (buildkit display.go: termPad)
ROW_PREFIX = " => "

STYLE_DONE = "blue"
STYLE_CANCELED = "yellow"
STYLE_ERROR = "red"
STYLE_OUTPUT = "dim"


@dataclass(frozen=True)
class Row:
    """One screen line of the view and its colour (None: default)."""

    text: str
    style: str | None = None


@dataclass
class _Job:
    name: str
    spans: list[tuple[float | None, float | None]]
    completed: bool
    status: str = ""
    error: bool = False
    canceled: bool = False
    vertex: TracedVertex | None = None
    show_output: bool = False
    note: str | None = None  # an untimed row right under this one (the cache-miss reason)


class TtyPrinter:
    """Draws the live view on a rich `Console` that is a terminal."""

    mode = "tty"

    def __init__(
        self,
        console: Console,
        *,
        phase: str = "Building",
        description: str | None = None,
        output_lines: int = TERMINAL_LINES,
    ) -> None:
        self._console = console
        self._phase = phase
        self._description = description
        self._output_lines = output_lines
        self._trace = Trace(console=True)
        self._live: Live | None = None
        self._finished = False

    def update(self, status: SolveStatus, now: float) -> None:
        self._trace.update(status, now)

    def refresh(self, now: float) -> None:
        if self._finished:
            return
        live = self._ensure_live()
        live.update(self._renderable(now, final=False), refresh=True)

    def done(self, now: float) -> None:
        if self._finished:
            return
        live = self._ensure_live()
        live.update(self._renderable(now, final=True), refresh=False)
        live.stop()  # draws the final frame once more and leaves it on screen
        self._finished = True

    def failed_steps(self) -> list[FailedStep]:
        return self._trace.failed_steps(all_lines=True)

    def _ensure_live(self) -> Live:
        if self._live is None:
            self._live = Live(
                console=self._console,
                auto_refresh=False,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
                vertical_overflow="visible",
            )
            self._live.start()
        return self._live

    def _renderable(self, now: float, *, final: bool) -> Group:
        size = self._console.size
        rows = self.rows(now, width=size.width, height=size.height, final=final)
        return Group(*(Text(row.text, style=row.style or "", no_wrap=True) for row in rows))

    def rows(self, now: float, *, width: int, height: int, final: bool) -> list[Row]:
        """The screen for time `now`: header, then vertex, status and output rows."""
        completed, total = self._trace.counts()
        start = self._trace.start_time
        elapsed = now - start if start is not None else 0.0
        header = f"[+] {self._phase} {elapsed:.1f}s ({completed}/{total})"
        if final and completed > 0 and completed == total:
            header += " FINISHED"
        if self._description:
            header = header.ljust(width - len(self._description) - 2) + " " + self._description
        rows = [Row(header[:width])]
        for job in self._layout(self._jobs(), height, final):
            row = self._job_row(job, now, width)
            if row is None:
                continue
            rows.append(row)
            if job.note:
                rows.append(Row(f"{ROW_PREFIX}=> {job.note}", row.style))
            if job.show_output and job.vertex is not None and job.vertex.terminal is not None:
                terminal = job.vertex.terminal
                for line in terminal.content()[-self._output_lines :]:
                    rows.append(Row(f" => => # {line[: max(1, width - TERM_PAD)]}", STYLE_OUTPUT))
                terminal.shown_count += 1
        return rows

    def _jobs(self) -> list[_Job]:
        jobs: list[_Job] = []
        for traced in self._trace.vertexes:
            record = traced.record
            spans: list[tuple[float | None, float | None]] = [
                (run.start, run.stop) for run in merge_intervals(traced.intervals.values())
            ]
            job = _Job(
                name=traced.name.replace("\t", " "),
                spans=spans,
                completed=all(stop is not None for _, stop in spans),
                vertex=traced,
            )
            if record.error:
                if is_canceled(record.error):
                    job.canceled = True
                    job.name = "CANCELED " + job.name
                else:
                    job.error = True
                    job.name = "ERROR " + job.name
            if record.cached:
                job.name = "CACHED " + job.name
            if traced.cache_miss:
                job.note = f"cache miss: {traced.cache_miss[0]}"
            jobs.append(job)
            for status_id in traced.status_order:
                status = traced.statuses[status_id]
                jobs.append(
                    _Job(
                        name="=> " + status_id,
                        spans=[(status.started, status.completed)],
                        completed=status.completed is not None,
                        status=format_progress(status.current, status.total),
                    )
                )
            last = traced.most_recent_interval()
            for warning in traced.warnings:
                jobs.append(
                    _Job(
                        name="WARN: " + warning.short,
                        spans=[(last.start, last.stop) if last is not None else (None, None)],
                        completed=False,
                        canceled=True,
                    )
                )
        return jobs

    def _layout(self, jobs: list[_Job], height: int, final: bool) -> list[_Job]:
        """Pick which running vertices show output, then fit the rows to the screen."""
        candidates = [
            job
            for job in jobs
            if job.vertex is not None
            and job.vertex.terminal is not None
            and job.vertex.terminal.byte_count > 0
            and not job.completed
        ]
        in_use = sum(1 for job in jobs if not job.completed)

        def weight(job: _Job) -> int:
            assert job.vertex is not None and job.vertex.terminal is not None
            return job.vertex.terminal.byte_count + job.vertex.terminal.shown_count * 50

        candidates.sort(key=weight, reverse=True)
        free = height - 2 - in_use
        output_height = max(TERMINAL_LINES, min(self._output_lines, height - TERMINAL_LINES - 1))
        limit = output_height + 3
        hidden_rows = 0
        for job in candidates:
            if free <= limit:
                break
            assert job.vertex is not None and job.vertex.terminal is not None
            job.show_output = True
            hidden_rows += min(len(job.vertex.terminal.content()), self._output_lines)
            free -= limit
        if final:
            return jobs
        return _wrap_height(jobs, height - 2 - hidden_rows)

    @staticmethod
    def _job_row(job: _Job, now: float, width: int) -> Row | None:
        if not job.spans:
            return None
        seconds = 0.0
        for start, stop in job.spans:
            if start is not None:
                seconds += (stop if stop is not None else now) - start
        if seconds < 0.05:
            seconds = 0.0
        timer = f" {seconds:3.1f}s"
        # buildkit counts the timer's newline too: rows end one column short
        left = width - len(ROW_PREFIX) - (len(timer) + 1) - 1
        show_status = False
        if job.status and left + len(job.status) > 20:
            show_status = True
            left -= len(job.status) + 1
        if left < 12:
            return None
        text = ROW_PREFIX + job.name[:left]
        if show_status:
            text += " " + job.status
        text = text.ljust(width - len(timer) - 2) + " " + timer
        style: str | None = None
        if job.completed:
            style = STYLE_DONE
            if job.canceled:
                style = STYLE_CANCELED
            elif job.error:
                style = STYLE_ERROR
        return Row(text, style)


def _wrap_height(jobs: list[_Job], limit: int) -> list[_Job]:
    """Keep the last `limit` rows, bringing back running ones that would scroll off."""
    if limit < 0:
        return []
    if len(jobs) <= limit:
        return list(jobs)
    cut = len(jobs) - limit
    kept = jobs[cut:]
    invisible = [job for job in jobs[:cut] if not job.completed]
    if not invisible:
        return kept
    budget = len(invisible)
    rewrapped: list[_Job] = []
    for job in kept:
        if not job.completed or budget <= 0:
            rewrapped.append(job)
        budget -= 1
    free = len(kept) - len(rewrapped)
    return invisible[len(invisible) - free :] + rewrapped

"""The one progress channel: build threads write events, one thread feeds the printer.

How the build engine uses it::

    printer = make_printer(mode, sys.stderr)
    bus = ProgressBus(printer)
    try:
        ...                                   # from any thread:
        bus.vertex_started(digest, "[2/3] RUN make", inputs=(parent,))
        bus.cache_miss(digest, ["file go.sum changed"])
        bus.log(digest, STDOUT, b"compiling...\\n")
        bus.status(digest, "transferring context", current=1024)
        bus.status(digest, "transferring context", current=2048, done=True)
        bus.vertex_done(digest)               # or vertex_cached / vertex_error
    finally:
        summary = bus.close()                 # flushes; the printer has ended
    exit_code = report_build_end(sys.stderr, summary, error)

Rules the engine follows:
- a vertex's digest is its operation's digest; the same operation is one vertex;
- `vertex_started` before anything else for a vertex that runs; a cache hit
  that never ran may call `vertex_cached(digest, name=...)` directly;
- every started vertex ends with `vertex_done`, `vertex_cached`,
  `vertex_error` or, when stopped because another step failed,
  `vertex_canceled`; a vertex may be started again later (a new interval);
- statuses are identified per vertex by their text (`transferring context`).

Every call is stamped with the bus clock (`time.time()` unless one is given)
and queued in call order; a single consumer thread hands the events to the
printer, asks it to redraw at most every 100 ms, and once more after 150 ms
without events (buildkit `progressui.Display.UpdateFrom`). With
`tick_interval=None` there is no wall-clock ticker and `tick()` queues a
redraw instead, so a test with a fake clock gets the same output every run.
Events sent after `close()` are dropped: steps still unwinding after a failure
must not break the report.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType

from strata.progress.events import (
    CANCELED_ERROR,
    CacheMiss,
    ProgressGroup,
    ProgressVertex,
    SolveStatus,
    SourceExcerpt,
    VertexLog,
    VertexStatus,
    VertexWarning,
)
from strata.progress.protocol import Printer, ProgressSummary

TICK_INTERVAL = 0.15  # buildkit display.go: tickerTimeout
REFRESH_INTERVAL = 0.1  # buildkit display.go: displayTimeout, the redraw rate limit


@dataclass(frozen=True)
class _Tick:
    pass


@dataclass(frozen=True)
class _Close:
    pass


_Item = SolveStatus | _Tick | _Close


class ProgressBus:
    """Thread-safe front of a printer; see the module docstring for the protocol."""

    def __init__(
        self,
        printer: Printer,
        *,
        clock: Callable[[], float] = time.time,
        tick_interval: float | None = TICK_INTERVAL,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self._printer = printer
        self._clock = clock
        self._tick_interval = tick_interval
        self._refresh_interval = refresh_interval
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[_Item, float]] = queue.Queue()
        self._vertices: dict[str, ProgressVertex] = {}
        self._status_started: dict[tuple[str, str], float] = {}
        self._warnings: list[VertexWarning] = []
        self._closed = False
        self._summary: ProgressSummary | None = None
        self._failure: BaseException | None = None
        self._consumer = threading.Thread(target=self._consume, name="strata-progress", daemon=True)
        self._consumer.start()

    def __enter__(self) -> ProgressBus:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- what the engine calls -------------------------------------------------

    def vertex_started(
        self,
        digest: str,
        name: str,
        inputs: Sequence[str] = (),
        *,
        progress_group: ProgressGroup | None = None,
    ) -> None:
        """The operation `digest` starts running (again, if it ran before)."""
        with self._lock:
            now = self._clock()
            vertex = ProgressVertex(
                digest=digest,
                name=name,
                inputs=tuple(inputs),
                started=now,
                progress_group=progress_group,
            )
            self._publish_vertex(vertex, now)

    def vertex_cached(
        self, digest: str, name: str | None = None, inputs: Sequence[str] = ()
    ) -> None:
        """The result came from the cache; `name` is needed if the vertex never started."""
        with self._lock:
            now = self._clock()
            vertex = self._vertices.get(digest)
            if vertex is None or vertex.started is None or vertex.completed is not None:
                vertex = self._fresh(digest, name, inputs, vertex, now)
            self._publish_vertex(replace(vertex, completed=now, cached=True), now)

    def vertex_done(self, digest: str) -> None:
        """The operation finished by running."""
        with self._lock:
            now = self._clock()
            vertex = self._running(digest)
            self._publish_vertex(replace(vertex, completed=now), now)

    def vertex_error(self, digest: str, message: str, *, name: str | None = None) -> None:
        """The operation failed with `message` (printed as `#N ERROR: <message>`)."""
        with self._lock:
            now = self._clock()
            vertex = self._vertices.get(digest)
            if vertex is None or vertex.started is None or vertex.completed is not None:
                vertex = self._fresh(digest, name, (), vertex, now)
            self._publish_vertex(replace(vertex, completed=now, error=message), now)

    def vertex_canceled(self, digest: str) -> None:
        """The operation was stopped because the build is failing or interrupted."""
        with self._lock:
            now = self._clock()
            vertex = self._vertices.get(digest)
            if vertex is None or vertex.started is None or vertex.completed is not None:
                return  # never ran: nothing to show
            self._publish_vertex(replace(vertex, completed=now, error=CANCELED_ERROR), now)

    def log(self, digest: str, stream: int, data: bytes) -> None:
        """A chunk of process output; need not end at a line boundary."""
        if not data:
            return
        with self._lock:
            now = self._clock()
            self._put(SolveStatus(logs=(VertexLog(digest, stream, bytes(data), now),)), now)

    def status(
        self,
        digest: str,
        id: str,
        *,
        current: int = 0,
        total: int = 0,
        done: bool = False,
        name: str = "",
    ) -> None:
        """Sub-progress `id` of a vertex: amounts in bytes (0 = unknown), `done` at the end."""
        with self._lock:
            now = self._clock()
            started = self._status_started.setdefault((digest, id), now)
            item = VertexStatus(
                id=id,
                vertex=digest,
                name=name,
                total=total,
                current=current,
                timestamp=now,
                started=started,
                completed=now if done else None,
            )
            self._put(SolveStatus(statuses=(item,)), now)

    def warn(
        self,
        digest: str,
        short: str,
        *,
        level: int = 1,
        detail: Sequence[str] = (),
        url: str | None = None,
        source: SourceExcerpt | None = None,
    ) -> None:
        """A warning on a vertex (a lint finding on the Dockerfile load, say)."""
        with self._lock:
            now = self._clock()
            warning = VertexWarning(
                vertex=digest,
                short=short,
                level=level,
                detail=tuple(detail),
                url=url,
                source=source,
            )
            if not self._closed:
                self._warnings.append(warning)
            self._put(SolveStatus(warnings=(warning,)), now)

    def cache_miss(self, digest: str, reasons: Sequence[str]) -> None:
        """Why the vertex has to run, most telling reason first."""
        if not reasons:
            return
        with self._lock:
            now = self._clock()
            miss = CacheMiss(vertex=digest, reasons=tuple(reasons), timestamp=now)
            self._put(SolveStatus(cache_misses=(miss,)), now)

    def tick(self) -> None:
        """Ask for a redraw now, as the wall-clock ticker would (for fake clocks)."""
        with self._lock:
            self._put(_Tick(), self._clock())

    def close(self) -> ProgressSummary:
        """Flush everything to the printer, end it, and return what the report needs.

        Safe to call more than once. Re-raises an error the printer hit (a
        closed stderr, say) so it is not lost.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put((_Close(), self._clock()))
        self._consumer.join()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        if self._summary is None:
            self._summary = ProgressSummary(
                mode=self._printer.mode,
                failed_steps=tuple(self._printer.failed_steps()),
                warnings=tuple(_unique(self._warnings)),
            )
        return self._summary

    # -- internals --------------------------------------------------------------

    def _fresh(
        self,
        digest: str,
        name: str | None,
        inputs: Sequence[str],
        known: ProgressVertex | None,
        now: float,
    ) -> ProgressVertex:
        """A new run for a vertex that is not running; it starts and ends at `now`."""
        if name is None and known is None:
            raise ValueError(f"vertex {digest} never started; its name is needed")
        base = known or ProgressVertex(digest=digest, name=name or "", inputs=tuple(inputs))
        return replace(
            base,
            name=name if name is not None else base.name,
            started=now,
            completed=None,
            cached=False,
            error=None,
        )

    def _running(self, digest: str) -> ProgressVertex:
        vertex = self._vertices.get(digest)
        if vertex is None or vertex.started is None:
            raise ValueError(f"vertex {digest} finished without having started")
        return vertex

    def _publish_vertex(self, vertex: ProgressVertex, now: float) -> None:
        if self._closed:
            return
        self._vertices[vertex.digest] = vertex
        self._put(SolveStatus(vertexes=(vertex,)), now)

    def _put(self, item: _Item, now: float) -> None:
        if not self._closed:
            self._queue.put((item, now))

    def _consume(self) -> None:
        last_refresh: float | None = None
        deadline: float | None = None
        while True:
            timeout = None
            if self._tick_interval is not None and deadline is not None:
                timeout = max(0.0, deadline - time.monotonic())
            try:
                item, now = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._deliver(self._printer.refresh, self._clock())
                deadline = time.monotonic() + (self._tick_interval or 0.0)
                continue
            if isinstance(item, _Close):
                self._deliver(self._printer.done, now)
                return
            if isinstance(item, _Tick):
                self._deliver(self._printer.refresh, now)
                continue
            self._deliver(self._printer.update, item, now)
            # the epsilon keeps 100.0 + 0.1 from counting as less than 0.1 s later
            if last_refresh is None or now - last_refresh >= self._refresh_interval - 1e-9:
                last_refresh = now
                self._deliver(self._printer.refresh, now)
            if self._tick_interval is not None:
                deadline = time.monotonic() + self._tick_interval

    def _deliver(self, call: Callable[..., None], *args: object) -> None:
        """Call the printer unless it already failed; keep the first failure for close()."""
        if self._failure is not None:
            return
        try:
            call(*args)
        except Exception as exc:  # a broken stream must not kill the build
            self._failure = exc


def _unique(warnings: list[VertexWarning]) -> list[VertexWarning]:
    """Drop repeats that differ only in their vertex, keeping first-seen order.

    buildx dedups the same way (util/progress/printer.go `dedupWarnings`) but
    returns them in map order; we keep the order they arrived in.
    """
    seen: set[tuple[object, ...]] = set()
    out: list[VertexWarning] = []
    for warning in warnings:
        key = (warning.short, warning.level, warning.detail, warning.url, warning.source)
        if key not in seen:
            seen.add(key)
            out.append(warning)
    return out

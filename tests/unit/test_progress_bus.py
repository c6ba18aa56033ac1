"""The bus: many writer threads, one printer thread, paced redraws, a clean close."""

from __future__ import annotations

import io
import threading

import pytest

from strata.progress.bus import ProgressBus
from strata.progress.events import STDOUT, SolveStatus
from strata.progress.plain import PlainPrinter
from strata.progress.protocol import FailedStep


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class RecordingPrinter:
    """Keeps the calls the bus makes, to check pacing without a display."""

    mode = "plain"

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.refreshed = threading.Event()

    def update(self, status: SolveStatus, now: float) -> None:
        self.calls.append(("update", now))

    def refresh(self, now: float) -> None:
        self.calls.append(("refresh", now))
        self.refreshed.set()

    def done(self, now: float) -> None:
        self.calls.append(("done", now))

    def failed_steps(self) -> list[FailedStep]:
        return []


class BrokenPrinter(RecordingPrinter):
    def update(self, status: SolveStatus, now: float) -> None:
        raise BrokenPipeError("stderr closed")


def test_redraws_are_limited_to_one_per_100ms_and_ticks_force_one() -> None:
    clock = FakeClock()
    printer = RecordingPrinter()
    bus = ProgressBus(printer, clock=clock, tick_interval=None)
    bus.vertex_started("v", "[1/1] RUN make")
    for offset in (0.05, 0.1, 0.15):
        clock.now = 100.0 + offset
        bus.log("v", STDOUT, b"x\n")
    clock.now = 100.17
    bus.tick()
    clock.now = 100.2
    bus.vertex_done("v")
    bus.close()
    assert [call for call in printer.calls if call[0] != "update"] == [
        ("refresh", 100.0),
        ("refresh", 100.1),
        ("refresh", 100.17),
        ("refresh", 100.2),
        ("done", 100.2),
    ]


def test_lines_from_many_threads_all_reach_the_printer_once() -> None:
    out = io.StringIO()
    bus = ProgressBus(PlainPrinter(out))
    threads = [threading.Thread(target=_emit_steps, args=(bus, worker)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bus.close()
    text = out.getvalue()
    for worker in range(8):
        for line in range(50):
            assert text.count(f" worker {worker} line {line}\n") == 1
    assert text.count(" DONE ") == 8


def _emit_steps(bus: ProgressBus, worker: int) -> None:
    digest = f"sha256:{worker}"
    bus.vertex_started(digest, f"[w{worker} 1/1] RUN work")
    for line in range(50):
        bus.log(digest, STDOUT, f"worker {worker} line {line}\n".encode())
    bus.vertex_done(digest)


def test_wall_clock_ticker_redraws_without_new_events() -> None:
    printer = RecordingPrinter()
    bus = ProgressBus(printer, tick_interval=0.01)
    bus.vertex_started("v", "[1/1] RUN sleep 1")
    assert printer.refreshed.wait(5)
    printer.refreshed.clear()
    assert printer.refreshed.wait(5)  # a second redraw came from the ticker alone
    bus.close()
    assert sum(1 for name, _ in printer.calls if name == "update") == 1


def test_events_after_close_are_dropped_and_close_is_repeatable() -> None:
    out = io.StringIO()
    bus = ProgressBus(PlainPrinter(out), clock=FakeClock(), tick_interval=None)
    bus.vertex_started("v", "[1/1] RUN true")
    first = bus.close()
    bus.log("v", STDOUT, b"late\n")
    bus.vertex_done("v")
    assert bus.close() == first
    assert "late" not in out.getvalue()


def test_printer_failure_surfaces_at_close() -> None:
    bus = ProgressBus(BrokenPrinter(), clock=FakeClock(), tick_interval=None)
    bus.vertex_started("v", "[1/1] RUN true")
    bus.vertex_done("v")
    with pytest.raises(BrokenPipeError):
        bus.close()


def test_finishing_a_vertex_that_never_started_is_a_bug() -> None:
    bus = ProgressBus(RecordingPrinter(), clock=FakeClock(), tick_interval=None)
    with pytest.raises(ValueError, match="without having started"):
        bus.vertex_done("sha256:nope")
    with pytest.raises(ValueError, match="never started"):
        bus.vertex_cached("sha256:nope")
    bus.close()


def test_context_manager_closes_and_flushes() -> None:
    out = io.StringIO()
    with ProgressBus(PlainPrinter(out), clock=FakeClock(), tick_interval=None) as bus:
        bus.vertex_started("v", "[1/1] RUN true")
        bus.vertex_done("v")
    assert out.getvalue() == "#1 [1/1] RUN true\n#1 DONE 0.0s\n"

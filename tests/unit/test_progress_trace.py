"""The shared picture of a build the plain and tty printers draw from."""

from __future__ import annotations

from strata.progress.events import ProgressVertex, SolveStatus, VertexLog
from strata.progress.trace import Interval, TerminalTail, Trace, merge_intervals


def test_overlapping_runs_merge_and_an_open_run_swallows_later_ones() -> None:
    runs = [Interval(5.0, 6.0), Interval(0.0, 2.0), Interval(1.0, 3.0), Interval(3.0, 4.0)]
    assert merge_intervals(runs) == [Interval(0.0, 4.0), Interval(5.0, 6.0)]
    assert merge_intervals([Interval(0.0, 1.0), Interval(0.5, None), Interval(9.0, 10.0)]) == [
        Interval(0.0, None)
    ]
    assert merge_intervals([Interval(0.0, 5.0), Interval(1.0, 2.0)]) == [Interval(0.0, 5.0)]


def test_terminal_tail_keeps_last_lines_honours_carriage_return_and_drops_colours() -> None:
    tail = TerminalTail(height=3)
    tail.write(b"one\ntwo\nthree\n")
    tail.write(b"downloading 10%\rdownloading 55%")
    tail.write(b"\x1b[32m ok\x1b[0m\n\n\tlast")
    assert tail.content() == ["three", "downloading 55% ok", "        last"]


def test_output_lines_carry_time_since_the_latest_run_started() -> None:
    trace = Trace()
    trace.update(
        SolveStatus(vertexes=(ProgressVertex("v", "step", started=10.0, completed=11.0),)), 10.0
    )
    trace.update(SolveStatus(vertexes=(ProgressVertex("v", "step", started=20.0),)), 20.0)
    trace.update(SolveStatus(logs=(VertexLog("v", 1, b"a\nb", 21.5),)), 21.5)
    trace.update(SolveStatus(logs=(VertexLog("v", 1, b"c\n", 22.0),)), 22.0)
    assert trace.by_digest["v"].logs == [b"1.500 a", b"1.500 bc"]


def test_counts_skip_hidden_groups_and_count_each_vertex_once() -> None:
    trace = Trace()
    trace.update(
        SolveStatus(
            vertexes=(
                ProgressVertex("a", "a", started=1.0, completed=2.0),
                ProgressVertex("b", "b", started=1.0),
                ProgressVertex("c", "c"),
            )
        ),
        1.0,
    )
    assert trace.counts() == (1, 3)

"""The failure report printed after the progress: log blocks, warnings, excerpt, ERROR line."""

from __future__ import annotations

import io

from strata.errors import BuildError, DockerfileError, Interrupted, StoreError
from strata.progress.bus import ProgressBus
from strata.progress.events import STDOUT, SourceExcerpt
from strata.progress.plain import PlainPrinter
from strata.progress.protocol import FailedStep, ProgressSummary
from strata.progress.quiet import QuietPrinter
from strata.progress.rawjson import RawJsonPrinter
from strata.progress.report import (
    format_warning_summary,
    report_build_end,
)

DOCKERFILE = "FROM busybox\nCOPY app.sh /app/\nRUN /app/app.sh\nRUN false\n"
EXEC_FAILURE = 'process "/bin/sh -c false" did not complete successfully: exit code: 1'


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = round(self.now + seconds, 6)


def failing_build(bus: ProgressBus, clock: FakeClock, lines: int) -> None:
    bus.vertex_started("ok", "[1/3] COPY app.sh /app/")
    bus.vertex_started("bad", "[3/3] RUN false")
    bus.vertex_started("sib", "[2/3] RUN sleep 100")
    for number in range(1, lines + 1):
        clock.advance(0.1)
        bus.log("bad", STDOUT, f"line {number}\n".encode())
    bus.log("bad", STDOUT, b"no newline at the end")
    clock.advance(0.1)
    bus.vertex_done("ok")
    bus.vertex_error("bad", EXEC_FAILURE)
    bus.vertex_canceled("sib")


def test_report_shows_last_ten_lines_excerpt_and_error_line_after_plain_progress() -> None:
    clock = FakeClock()
    progress = io.StringIO()
    bus = ProgressBus(PlainPrinter(progress), clock=clock, tick_interval=None)
    failing_build(bus, clock, lines=12)
    summary = bus.close()
    error = BuildError(EXEC_FAILURE, file="Dockerfile", line=4, source=DOCKERFILE)

    report = io.StringIO()
    code = report_build_end(report, summary, error)

    assert code == 1
    assert report.getvalue().split("\n") == [
        "------",
        " > [3/3] RUN false:",
        *(f"{number / 10:.3f} line {number}" for number in range(4, 13)),
        "1.200 no newline at the end",
        "------",
        "Dockerfile:4",
        "--------------------",
        "   2 |     COPY app.sh /app/",
        "   3 |     RUN /app/app.sh",
        "   4 | >>> RUN false",
        "   5 |     ",
        "--------------------",
        f"ERROR: failed to build: failed to solve: {EXEC_FAILURE}",
        "",
    ]


def test_canceled_and_successful_steps_get_no_log_block() -> None:
    clock = FakeClock()
    bus = ProgressBus(PlainPrinter(io.StringIO()), clock=clock, tick_interval=None)
    failing_build(bus, clock, lines=1)
    summary = bus.close()
    assert summary.failed_steps == (
        FailedStep("[3/3] RUN false", ("0.100 line 1", "0.100 no newline at the end")),
    )


def test_rawjson_and_quiet_keep_no_logs_for_the_report() -> None:
    for printer in (RawJsonPrinter(io.StringIO()), QuietPrinter()):
        clock = FakeClock()
        bus = ProgressBus(printer, clock=clock, tick_interval=None)
        failing_build(bus, clock, lines=3)
        summary = bus.close()
        report = io.StringIO()
        report_build_end(report, summary, BuildError(EXEC_FAILURE))
        assert report.getvalue() == f"ERROR: failed to build: failed to solve: {EXEC_FAILURE}\n"


def test_dockerfile_error_points_at_its_lines_and_is_a_solve_error() -> None:
    error = DockerfileError(
        "dockerfile parse error on line 2: unknown instruction: COPPY",
        line=2,
        source=DOCKERFILE,
    )
    report = io.StringIO()
    code = report_build_end(report, ProgressSummary(mode="plain"), error)
    lines = report.getvalue().split("\n")
    assert code == 1
    assert lines[0] == "Dockerfile:2"
    assert lines[-2] == (
        "ERROR: failed to build: failed to solve: "
        "dockerfile parse error on line 2: unknown instruction: COPPY"
    )


def test_interrupted_build_reports_canceled_and_exits_130() -> None:
    report = io.StringIO()
    code = report_build_end(report, ProgressSummary(mode="plain"), Interrupted())
    assert code == 130
    assert (
        report.getvalue() == "ERROR: failed to build: failed to solve: Canceled: context canceled\n"
    )


def test_errors_outside_the_solver_are_only_build_errors() -> None:
    report = io.StringIO()
    code = report_build_end(report, ProgressSummary(mode="plain"), StoreError("disk full"))
    assert code == 1
    assert report.getvalue() == "ERROR: failed to build: disk full\n"


def test_successful_build_prints_warning_summary_and_exits_zero() -> None:
    clock = FakeClock()
    bus = ProgressBus(PlainPrinter(io.StringIO()), clock=clock, tick_interval=None)
    bus.vertex_started("def", "[internal] load build definition from Dockerfile")
    short = "JSONArgsRecommended: JSON arguments recommended for CMD (line 5)"
    bus.warn("def", short)
    bus.warn("other", short)  # the same warning twice is listed once
    bus.warn("def", "MaintainerDeprecated: Maintainer instruction is deprecated (line 2)")
    bus.vertex_done("def")
    summary = bus.close()

    report = io.StringIO()
    assert report_build_end(report, summary, None) == 0
    assert report.getvalue() == (
        "\n \x1b[33m2 warnings found (use --debug to expand):\n\x1b[0m"
        f" - {short}\n"
        " - MaintainerDeprecated: Maintainer instruction is deprecated (line 2)\n"
    )


def test_warning_summary_is_left_out_in_quiet_and_rawjson_modes() -> None:
    summary_warnings = ProgressSummary(mode="quiet").warnings
    assert summary_warnings == ()
    clock = FakeClock()
    bus = ProgressBus(QuietPrinter(), clock=clock, tick_interval=None)
    bus.vertex_started("def", "[internal] load build definition from Dockerfile")
    bus.warn("def", "UndefinedVar: Usage of undefined variable '$X' (line 3)")
    bus.vertex_done("def")
    report = io.StringIO()
    assert report_build_end(report, bus.close(), None) == 0
    assert report.getvalue() == ""


def test_debug_warning_summary_expands_detail_url_and_excerpt() -> None:
    clock = FakeClock()
    bus = ProgressBus(PlainPrinter(io.StringIO()), clock=clock, tick_interval=None)
    bus.vertex_started("def", "[internal] load build definition from Dockerfile")
    bus.warn(
        "def",
        "MaintainerDeprecated: Maintainer instruction is deprecated (line 2)",
        detail=["The MAINTAINER instruction is deprecated, use a label instead"],
        url="https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/",
        source=SourceExcerpt("Dockerfile", 2, 2, "FROM a\nMAINTAINER me\nRUN x\n"),
    )
    bus.vertex_done("def")
    text = format_warning_summary(bus.close().warnings, debug=True, color=False)
    assert text.split("\n") == [
        "",
        " 1 warning found:",
        " - MaintainerDeprecated: Maintainer instruction is deprecated (line 2)",
        "The MAINTAINER instruction is deprecated, use a label instead",
        "More info: https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/",
        "Dockerfile:2",
        "--------------------",
        "   1 |     FROM a",
        "   2 | >>> MAINTAINER me",
        "   3 |     RUN x",
        "   4 |     ",
        "--------------------",
        "",
        "",
    ]

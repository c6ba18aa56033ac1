"""The plain printer, fed through the bus with a fake clock, line for line.

Expected transcripts follow buildkit util/progress/progressui/printer.go: each
was worked out by hand from that algorithm (flush at most every 100 ms,
finished vertices first, time-slicing of concurrent vertices).
"""

from __future__ import annotations

import io

from strata.progress.bus import ProgressBus
from strata.progress.events import STDERR, STDOUT, ProgressGroup
from strata.progress.plain import PlainPrinter

T0 = 1000.0


class FakeClock:
    """A clock the test moves by hand; times are rounded so elapsed values print exactly."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = round(self.now + seconds, 6)

    def at(self, offset: float) -> None:
        self.now = round(T0 + offset, 6)


def plain_bus(**printer_options: object) -> tuple[ProgressBus, FakeClock, io.StringIO]:
    clock = FakeClock()
    out = io.StringIO()
    printer = PlainPrinter(out, **printer_options)  # type: ignore[arg-type]
    return ProgressBus(printer, clock=clock, tick_interval=None), clock, out


def test_multi_stage_build_prints_buildkit_plain_transcript() -> None:
    bus, clock, out = plain_bus()
    bus.vertex_started("sha256:def", "[internal] load build definition from Dockerfile")
    bus.status("sha256:def", "transferring dockerfile: 187B", done=True)
    clock.advance(0.03)
    bus.warn("sha256:def", "JSONArgsRecommended: JSON arguments recommended for CMD (line 9)")
    bus.vertex_done("sha256:def")
    clock.advance(0.2)
    bus.vertex_started("sha256:from", "[build 1/3] FROM docker.io/library/busybox:latest@sha256:ab")
    bus.status("sha256:from", "resolve docker.io/library/busybox:latest@sha256:ab", done=True)
    bus.vertex_cached("sha256:from")
    clock.advance(0.2)
    bus.vertex_started("sha256:ctx", "[internal] load build context")
    bus.status("sha256:ctx", "transferring context:", current=1024)
    clock.advance(0.05)
    bus.status("sha256:ctx", "transferring context:", current=1020, done=True)
    bus.vertex_done("sha256:ctx")
    clock.advance(0.15)
    bus.vertex_started("sha256:copy", "[build 2/3] COPY go.mod go.sum ./")
    bus.vertex_cached("sha256:copy")
    bus.vertex_started("sha256:run", "[build 3/3] RUN go build -o /out/app .")
    bus.cache_miss("sha256:run", ["file go.sum changed", "file main.go changed"])
    clock.advance(0.168)
    bus.log("sha256:run", STDERR, b"go: downloading example.com/lib v1.2.0\n")
    clock.advance(1.0)
    bus.log("sha256:run", STDOUT, b"building")
    clock.advance(0.3)
    bus.log("sha256:run", STDOUT, b"... ok\n")
    clock.advance(11.0)
    bus.log("sha256:run", STDOUT, b"linked /out/app\n")
    clock.advance(0.2)
    bus.vertex_done("sha256:run")
    clock.advance(0.2)
    bus.vertex_started("sha256:exp", "exporting to image")
    bus.status("sha256:exp", "exporting layers")
    clock.advance(0.25)
    bus.status("sha256:exp", "exporting layers", done=True)
    bus.status("sha256:exp", "writing image sha256:0123", done=True)
    bus.status("sha256:exp", "naming to docker.io/library/demo", done=True)
    bus.vertex_done("sha256:exp")
    bus.close()

    assert out.getvalue().split("\n") == [
        "#1 [internal] load build definition from Dockerfile",
        "#1 transferring dockerfile: 187B done",
        "#1 WARN: JSONArgsRecommended: JSON arguments recommended for CMD (line 9)",
        "#1 DONE 0.0s",
        "",
        "#2 [build 1/3] FROM docker.io/library/busybox:latest@sha256:ab",
        "#2 resolve docker.io/library/busybox:latest@sha256:ab done",
        "#2 CACHED",
        "",
        "#3 [internal] load build context",
        "#3 transferring context: 1.02kB 0.1s done",
        "#3 DONE 0.1s",
        "",
        "#4 [build 2/3] COPY go.mod go.sum ./",
        "#4 CACHED",
        "",
        "#5 [build 3/3] RUN go build -o /out/app .",
        "#5 cache miss: file go.sum changed",
        "#5 0.168 go: downloading example.com/lib v1.2.0",
        "#5 1.168 building... ok",
        "#5 12.47 linked /out/app",
        "#5 DONE 12.7s",
        "",
        "#6 exporting to image",
        "#6 exporting layers 0.2s done",
        "#6 writing image sha256:0123 done",
        "#6 naming to docker.io/library/demo done",
        "#6 DONE 0.2s",
        "",
    ]


def test_concurrent_vertices_take_turns_and_broken_partial_line_is_reprinted() -> None:
    bus, clock, out = plain_bus()
    bus.vertex_started("a", "[a 2/2] RUN ./build-a")
    bus.vertex_started("b", "[b 2/2] RUN ./build-b")
    events: list[tuple[float, str, bytes | None]] = []
    for k in range(14):
        events.append((0.5 + k, "a", f"a{k}\n".encode()))
        b_line = b"ial\nb11\n" if k == 11 else f"b{k}\n".encode()
        events.append((0.6 + k, "b", b_line))
    events += [(11.0, "b", b"b-part"), (14.0, "a", None), (14.2, "b", b"tail"), (14.3, "b", None)]
    for offset, digest, data in sorted(events, key=lambda event: event[0]):
        clock.at(offset)
        if data is None:
            bus.vertex_done(digest)
        else:
            bus.log(digest, STDOUT, data)
    bus.close()

    # a keeps the output until b has been hidden for more than 10 s (at 10.5);
    # b's old block time then hands it straight back at a's next line (11.5),
    # breaking b's partial line, which is printed whole when b returns.
    assert out.getvalue().split("\n") == [
        "#1 [a 2/2] RUN ./build-a",
        *(f"#1 {k}.500 a{k}" for k in range(10)),
        "#1 10.50 a10",
        "#1 ...",
        "",
        "#2 [b 2/2] RUN ./build-b",
        *(f"#2 {k}.600 b{k}" for k in range(10)),
        "#2 10.60 b10",
        "#2 11.00 b-part",
        "#2 ...",
        "",
        "#1 [a 2/2] RUN ./build-a",
        "#1 11.50 a11",
        "#1 12.50 a12",
        "#1 13.50 a13",
        "#1 DONE 14.0s",
        "",
        "#2 [b 2/2] RUN ./build-b",
        "#2 11.00 b-partial",
        "#2 11.60 b11",
        "#2 12.60 b12",
        "#2 13.60 b13",
        "#2 14.20 tail",
        "#2 DONE 14.3s",
        "",
    ]


def test_failing_step_prints_error_and_its_sibling_prints_canceled() -> None:
    bus, clock, out = plain_bus()
    bus.vertex_started("run", "[2/3] RUN ./configure && make")
    bus.vertex_started("dl", "[other 2/2] RUN curl -O https://example.com/big")
    clock.advance(0.2)
    bus.log("run", STDOUT, b"checking for cc... no\n")
    clock.advance(0.2)
    bus.vertex_error(
        "run",
        'process "/bin/sh -c ./configure && make" did not complete successfully: exit code: 1',
    )
    bus.vertex_canceled("dl")
    summary = bus.close()

    assert out.getvalue().split("\n") == [
        "#1 [2/3] RUN ./configure && make",
        "#1 0.200 checking for cc... no",
        '#1 ERROR: process "/bin/sh -c ./configure && make" did not complete successfully:'
        " exit code: 1",
        "",
        "#2 [other 2/2] RUN curl -O https://example.com/big",
        "#2 CANCELED",
        "",
    ]
    assert [step.name for step in summary.failed_steps] == ["[2/3] RUN ./configure && make"]


def test_finished_vertices_print_first_in_completion_order() -> None:
    bus, clock, out = plain_bus()
    bus.vertex_started("x", "step x")
    clock.advance(0.01)
    bus.vertex_started("y", "step y")
    bus.vertex_started("z", "step z")
    clock.advance(0.02)
    bus.vertex_done("z")
    clock.advance(0.02)
    bus.vertex_done("y")
    clock.advance(0.2)
    bus.log("x", STDOUT, b"still going\n")
    bus.close()

    assert out.getvalue().split("\n") == [
        "#1 step x",
        "#1 ...",
        "",
        "#2 step z",
        "#2 DONE 0.0s",
        "",
        "#3 step y",
        "#3 DONE 0.0s",
        "",
        "#1 step x",
        "#1 0.250 still going",
        "",
    ]


def test_unfinished_status_reprints_only_after_five_percent_or_five_seconds() -> None:
    bus, clock, out = plain_bus()
    bus.vertex_started("pull", "[1/2] FROM docker.io/library/debian:12@sha256:ab")
    layer = "sha256:1111"
    for offset, current in [(0.0, 0), (0.2, 1_000_000), (0.4, 1_500_000), (6.0, 1_600_000)]:
        clock.at(offset)
        bus.status("pull", layer, current=current, total=29_000_000)
    clock.at(7.0)
    bus.status("pull", layer, current=29_000_000, total=29_000_000, done=True)
    bus.vertex_done("pull")
    bus.close()

    # 0B is replaced before the next flush; 1.5MB is under 5 % past 1MB and under
    # 5 s later: skipped; 1.6MB comes 5.8 s after the last printed one.
    assert out.getvalue().split("\n") == [
        "#1 [1/2] FROM docker.io/library/debian:12@sha256:ab",
        "#1 sha256:1111 1.00MB / 29.00MB 0.2s",
        "#1 sha256:1111 1.60MB / 29.00MB 6.0s",
        "#1 sha256:1111 29.00MB / 29.00MB 7.0s done",
        "#1 DONE 7.0s",
        "",
    ]


def test_done_time_sums_merged_runs_of_a_vertex_that_ran_twice() -> None:
    bus, clock, out = plain_bus()
    bus.vertex_started("v", "[internal] load metadata for docker.io/library/alpine:3.20")
    clock.advance(0.5)
    bus.vertex_done("v")
    clock.advance(2.0)
    bus.vertex_started("v", "[internal] load metadata for docker.io/library/alpine:3.20")
    clock.advance(0.3)
    bus.vertex_done("v")
    bus.close()

    assert out.getvalue().split("\n")[-2] == "#1 DONE 0.8s"


def test_warning_waits_for_its_vertex_block_to_be_printed() -> None:
    bus, clock, out = plain_bus()
    bus.vertex_started("def", "[internal] load build definition from Dockerfile")
    clock.advance(0.01)
    bus.vertex_done("def")
    clock.advance(0.2)
    bus.vertex_started("run", "[1/1] RUN true")
    clock.advance(0.2)
    bus.warn("def", "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)")
    clock.advance(0.2)
    bus.vertex_done("run")
    bus.close()

    assert "WARN" not in out.getvalue()


def test_description_line_is_printed_only_when_asked_for() -> None:
    bus, _clock, out = plain_bus(description='building with "strata" instance using native driver')
    bus.vertex_started("v", "[1/1] RUN true")
    bus.vertex_done("v")
    bus.close()
    assert out.getvalue().split("\n")[:3] == [
        '#0 building with "strata" instance using native driver',
        "",
        "#1 [1/1] RUN true",
    ]

    bus, _clock, out = plain_bus()
    bus.vertex_started("v", "[1/1] RUN true")
    bus.vertex_done("v")
    bus.close()
    assert out.getvalue().startswith("#1 [1/1] RUN true\n")


def test_names_are_cut_at_72_bytes_only_when_truncation_is_requested() -> None:
    long_name = "[1/1] RUN " + "x" * 100
    bus, _clock, out = plain_bus(truncate_names=True)
    bus.vertex_started("v", long_name)
    bus.vertex_done("v")
    bus.close()
    assert out.getvalue().split("\n")[0] == "#1 " + long_name[:72] + "..."

    bus, _clock, out = plain_bus()
    bus.vertex_started("v", long_name)
    bus.vertex_done("v")
    bus.close()
    assert out.getvalue().split("\n")[0] == "#1 " + long_name


def test_vertices_that_never_start_are_never_numbered() -> None:
    bus, clock, out = plain_bus()
    bus.vertex_started("first", "[1/2] COPY a /a")
    bus.vertex_canceled("never-started")
    clock.advance(0.2)
    bus.vertex_done("first")
    bus.vertex_cached("hit", name="[2/2] COPY b /b")
    bus.close()
    assert [line for line in out.getvalue().split("\n") if line.startswith("#")] == [
        "#1 [1/2] COPY a /a",
        "#1 DONE 0.2s",
        "#2 [2/2] COPY b /b",
        "#2 CACHED",
    ]


def test_progress_group_members_print_as_one_vertex_under_the_group_name() -> None:
    group = ProgressGroup(id="link-1", name="[2/3] COPY --link src/ /app/")
    weak = ProgressGroup(id="link-1", name="[2/3] COPY --link src/ /app/", weak=True)
    bus, clock, out = plain_bus()
    bus.vertex_started("merge", "merging", progress_group=weak)
    clock.advance(0.2)
    bus.vertex_done("merge")
    bus.vertex_started("copy", "copy src/ /app/", progress_group=group)
    clock.advance(0.3)
    bus.vertex_done("copy")
    bus.close()

    # the weak member alone keeps the group hidden; once shown, it spans both runs
    assert out.getvalue().split("\n") == [
        "#1 [2/3] COPY --link src/ /app/",
        "#1 DONE 0.5s",
        "",
    ]


def test_cache_miss_during_a_half_printed_line_starts_on_its_own_line() -> None:
    bus, clock, out = plain_bus()
    bus.vertex_started("v", "[1/1] RUN ./build")
    clock.advance(0.2)
    bus.log("v", STDOUT, b"step 1")
    clock.advance(0.2)
    bus.cache_miss("v", ["build arg VERSION changed"])
    clock.advance(0.2)
    bus.log("v", STDOUT, b" done\n")
    bus.vertex_done("v")
    bus.close()
    assert out.getvalue().split("\n") == [
        "#1 [1/1] RUN ./build",
        "#1 0.200 step 1",
        "#1 cache miss: build arg VERSION changed",
        "#1 0.200 step 1 done",
        "#1 DONE 0.6s",
        "",
    ]


def test_switching_away_before_a_pending_partial_line_prints_no_empty_line() -> None:
    # a's header is on screen; before the next flush b finishes and a writes a partial
    # line. b prints first (finished vertices first): a's block ends with `#1 ...` at
    # once, since nothing of the partial line was printed yet.
    bus, clock, out = plain_bus()
    bus.vertex_started("a", "[a 1/1] RUN printf part")
    clock.at(0.05)
    bus.vertex_started("b", "[b 1/1] RUN true")
    clock.at(0.06)
    bus.vertex_done("b")
    clock.at(0.07)
    bus.log("a", STDOUT, b"part")
    clock.at(0.15)
    bus.tick()
    clock.at(0.4)
    bus.vertex_done("a")
    bus.close()

    assert out.getvalue().split("\n") == [
        "#1 [a 1/1] RUN printf part",
        "#1 ...",
        "",
        "#2 [b 1/1] RUN true",
        "#2 DONE 0.0s",
        "",
        "#1 [a 1/1] RUN printf part",
        "#1 0.070 part",
        "#1 DONE 0.4s",
        "",
    ]

"""The tty view, drawn on a rich Console that records to a string (rows, not colours)."""

from __future__ import annotations

import io

from rich.console import Console

from strata.progress.bus import ProgressBus
from strata.progress.events import STDOUT
from strata.progress.tty import TtyPrinter


class FakeClock:
    def __init__(self) -> None:
        self.now = 3000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = round(self.now + seconds, 6)


def terminal(width: int = 80, height: int = 30) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=width, height=height, record=True)


def last_frame(console: Console) -> list[str]:
    """The rows of the last redraw: everything after the last `[+] ` header."""
    frames = console.export_text(clear=False).split("[+] ")
    return ("[+] " + frames[-1]).rstrip("\n").split("\n")


def row(name: str, seconds: str, width: int = 80) -> str:
    timer = f" {seconds}s"
    return (" => " + name).ljust(width - len(timer) - 2) + " " + timer


def test_final_view_shows_every_vertex_with_prefix_duration_and_statuses() -> None:
    console = terminal()
    clock = FakeClock()
    bus = ProgressBus(TtyPrinter(console), clock=clock, tick_interval=None)
    bus.vertex_started("def", "[internal] load build definition from Dockerfile")
    bus.status("def", "transferring dockerfile:", current=187, done=True)
    bus.warn("def", "FromAsCasing: 'as' and 'FROM' casing differ (line 1)")
    clock.advance(0.03)
    bus.vertex_done("def")
    bus.vertex_cached("from", name="[1/3] FROM docker.io/library/busybox:latest@sha256:ab")
    bus.vertex_started("run", "[2/3] RUN\tmake")
    bus.vertex_started("other", "[3/3] RUN sleep 60")
    bus.cache_miss("run", ["file Makefile changed", "file main.c changed"])
    clock.advance(1.25)
    bus.log("run", STDOUT, b"make: *** [all] Error 2\n")
    bus.vertex_error("run", 'process "/bin/sh -c make" did not complete successfully: exit code: 2')
    bus.vertex_canceled("other")
    bus.close()

    assert last_frame(console) == [
        "[+] Building 1.3s (4/4) FINISHED",
        row("[internal] load build definition from Dockerfile", "0.0"),
        row("=> transferring dockerfile: 187B", "0.0"),
        row("WARN: FromAsCasing: 'as' and 'FROM' casing differ (line 1)", "0.0"),
        row("CACHED [1/3] FROM docker.io/library/busybox:latest@sha256:ab", "0.0"),
        row("ERROR [2/3] RUN make", "1.2"),
        " => => cache miss: file Makefile changed",
        row("CANCELED [3/3] RUN sleep 60", "1.2"),
    ]


def test_running_vertex_shows_its_last_six_output_lines_until_it_finishes() -> None:
    console = terminal()
    clock = FakeClock()
    printer = TtyPrinter(console)
    bus = ProgressBus(printer, clock=clock, tick_interval=None)
    bus.vertex_started("run", "[1/1] RUN ./test.sh")
    for number in range(8):
        clock.advance(0.5)
        bus.log("run", STDOUT, f"test {number} ok\n".encode())
    bus.log("run", STDOUT, b"progress 10%\rprogress 90%")
    clock.advance(0.5)
    bus.tick()
    clock.advance(0.1)
    bus.vertex_done("run")
    bus.close()

    frames = console.export_text(clear=False).split("[+] ")
    running = ("[+] " + frames[-3]).rstrip("\n").split("\n")
    assert running == [
        "[+] Building 4.5s (0/1)",
        row("[1/1] RUN ./test.sh", "4.5"),
        " => => # test 3 ok",
        " => => # test 4 ok",
        " => => # test 5 ok",
        " => => # test 6 ok",
        " => => # test 7 ok",
        " => => # progress 90%",
    ]
    assert last_frame(console) == [
        "[+] Building 4.6s (1/1) FINISHED",
        row("[1/1] RUN ./test.sh", "4.6"),
    ]


def test_short_screen_scrolls_finished_rows_off_but_keeps_running_ones() -> None:
    clock = FakeClock()
    printer = TtyPrinter(terminal(height=6))
    bus = ProgressBus(printer, clock=clock, tick_interval=None)
    bus.vertex_started("slow", "[a 1/1] RUN sleep 30")
    for number in range(6):
        bus.vertex_cached(f"c{number}", name=f"[b {number + 1}/6] COPY f{number} /")
    clock.advance(2.0)
    bus.close()

    rows = printer.rows(clock.now, width=80, height=6, final=False)
    assert [item.text for item in rows] == [
        "[+] Building 2.0s (6/7)",
        row("[a 1/1] RUN sleep 30", "2.0"),
        row("CACHED [b 4/6] COPY f3 /", "0.0"),
        row("CACHED [b 5/6] COPY f4 /", "0.0"),
        row("CACHED [b 6/6] COPY f5 /", "0.0"),
    ]


def test_narrow_screen_cuts_long_names_to_fit_the_timer() -> None:
    clock = FakeClock()
    printer = TtyPrinter(terminal(width=40))
    bus = ProgressBus(printer, clock=clock, tick_interval=None)
    bus.vertex_started("v", "[1/1] RUN echo a-very-long-command-line-that-does-not-fit")
    bus.close()
    rows = printer.rows(clock.now, width=40, height=20, final=True)
    assert rows[1].text == " => [1/1] RUN echo a-very-long-co  0.0s"
    assert len(rows[1].text) == 39

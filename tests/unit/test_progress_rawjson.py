"""rawjson: one JSON object per update with BuildKit's field names, plus cacheMisses."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from strata.gotext import format_rfc3339_nano as format_timestamp
from strata.progress.bus import ProgressBus
from strata.progress.events import STDERR, ProgressGroup
from strata.progress.rawjson import RawJsonPrinter

START = 1_787_400_000.25  # 2026-08-22T12:00:00.25Z


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def rawjson_lines(drive: Any) -> list[dict[str, Any]]:
    clock = FakeClock()
    out = io.StringIO()
    bus = ProgressBus(RawJsonPrinter(out), clock=clock, tick_interval=None)
    drive(bus, clock)
    bus.close()
    text = out.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_each_event_is_one_json_line_with_buildkit_field_names() -> None:
    def drive(bus: ProgressBus, clock: FakeClock) -> None:
        bus.vertex_started("sha256:run", "[2/2] RUN make", inputs=["sha256:from"])
        bus.cache_miss("sha256:run", ["file Makefile changed", "file main.c changed"])
        clock.now += 0.5
        bus.log("sha256:run", STDERR, b"cc main.c\n")
        bus.status("sha256:run", "transferring context:", current=1020, total=2040)
        bus.warn("sha256:run", "UndefinedVar: Usage of undefined variable '$X' (line 3)")
        clock.now += 0.5
        bus.vertex_error("sha256:run", "exit code: 2")

    lines = rawjson_lines(drive)
    assert lines == [
        {
            "vertexes": [
                {
                    "digest": "sha256:run",
                    "inputs": ["sha256:from"],
                    "name": "[2/2] RUN make",
                    "started": "2026-08-22T12:00:00.25Z",
                }
            ]
        },
        {
            "cacheMisses": [
                {
                    "vertex": "sha256:run",
                    "reasons": ["file Makefile changed", "file main.c changed"],
                    "timestamp": "2026-08-22T12:00:00.25Z",
                }
            ]
        },
        {
            "logs": [
                {
                    "vertex": "sha256:run",
                    "stream": 2,
                    "data": base64.b64encode(b"cc main.c\n").decode(),
                    "timestamp": "2026-08-22T12:00:00.75Z",
                }
            ]
        },
        {
            "statuses": [
                {
                    "id": "transferring context:",
                    "vertex": "sha256:run",
                    "total": 2040,
                    "current": 1020,
                    "timestamp": "2026-08-22T12:00:00.75Z",
                    "started": "2026-08-22T12:00:00.75Z",
                }
            ]
        },
        {
            "warnings": [
                {
                    "vertex": "sha256:run",
                    "level": 1,
                    "short": base64.b64encode(
                        b"UndefinedVar: Usage of undefined variable '$X' (line 3)"
                    ).decode(),
                }
            ]
        },
        {
            "vertexes": [
                {
                    "digest": "sha256:run",
                    "inputs": ["sha256:from"],
                    "name": "[2/2] RUN make",
                    "started": "2026-08-22T12:00:00.25Z",
                    "completed": "2026-08-22T12:00:01.25Z",
                    "error": "exit code: 2",
                }
            ]
        },
    ]


def test_cached_flag_and_progress_group_are_present_only_when_set() -> None:
    group = ProgressGroup(id="copy-link-1", name="[2/3] COPY --link a /a")

    def drive(bus: ProgressBus, clock: FakeClock) -> None:
        bus.vertex_started("sha256:part", "copy a", progress_group=group)
        bus.vertex_cached("sha256:part")

    started, cached = (line["vertexes"][0] for line in rawjson_lines(drive))
    assert "cached" not in started
    assert started["progressGroup"] == {"id": "copy-link-1", "name": "[2/3] COPY --link a /a"}
    assert cached["cached"] is True
    assert cached["completed"] == "2026-08-22T12:00:00.25Z"


def test_html_characters_are_escaped_as_go_does() -> None:
    def drive(bus: ProgressBus, clock: FakeClock) -> None:
        bus.vertex_started("sha256:x", "[1/1] RUN a && b > c")

    out = io.StringIO()
    bus = ProgressBus(RawJsonPrinter(out), clock=FakeClock(), tick_interval=None)
    drive(bus, FakeClock())
    bus.close()
    assert "a \\u0026\\u0026 b \\u003e c" in out.getvalue()
    assert json.loads(out.getvalue())["vertexes"][0]["name"] == "[1/1] RUN a && b > c"


def test_timestamps_are_rfc3339_utc_with_trailing_zeros_trimmed() -> None:
    assert format_timestamp(0.0) == "1970-01-01T00:00:00Z"
    assert format_timestamp(1.5) == "1970-01-01T00:00:01.5Z"
    assert format_timestamp(1.000001) == "1970-01-01T00:00:01.000001Z"
    assert format_timestamp(START + 0.123456) == "2026-08-22T12:00:00.373456Z"

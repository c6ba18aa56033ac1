"""`NullBus`: the engine's bus when nobody watches a build."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path
from typing import Any

import pytest

from strata.progress.bus import ProgressBus
from strata.progress.events import STDOUT
from strata.progress.null import NullBus
from strata.progress.report import SILENT_MODES


def test_null_bus_overrides_every_public_method_of_the_bus() -> None:
    public = {
        name
        for name, member in inspect.getmembers(ProgressBus, inspect.isfunction)
        if not name.startswith("_") or name in ("__enter__", "__exit__")
    }
    inherited = {name for name in public if name not in vars(NullBus)}
    # __enter__/__exit__ may stay inherited: they only return self and call close().
    assert inherited <= {"__enter__", "__exit__"}


def test_null_bus_drops_events_without_a_thread_or_protocol_checks() -> None:
    before = {thread.ident for thread in threading.enumerate()}
    with NullBus() as bus:
        # A real bus refuses ending a vertex that never started; the null one drops it.
        bus.vertex_done("sha256:never-started")
        bus.vertex_started("sha256:a", "[1/1] RUN true", ["sha256:b"])
        bus.status("sha256:a", "resolve", current=1, total=2, done=True)
        bus.log("sha256:a", STDOUT, b"out\n")
        bus.cache_miss("sha256:a", ["file changed"])
        bus.warn("sha256:a", "a warning", detail=["why"])
        bus.vertex_cached("sha256:a")
        bus.vertex_error("sha256:a", "failed")
        bus.vertex_canceled("sha256:a")
        bus.tick()
    after = {thread.ident for thread in threading.enumerate()}
    assert after == before
    summary = bus.close()
    assert summary.mode in SILENT_MODES
    assert summary.failed_steps == () and summary.warnings == ()


def test_real_bus_refuses_what_the_null_bus_drops() -> None:
    from strata.progress.quiet import QuietPrinter

    bus = ProgressBus(QuietPrinter(), tick_interval=None)
    try:
        with pytest.raises(ValueError):
            bus.vertex_done("sha256:never-started")
    finally:
        bus.close()


def test_build_without_a_bus_gives_the_engine_a_null_bus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from strata import builder

    seen: list[Any] = []

    class FakeBuild:
        def __init__(self, request: object, root: object, bus: object, *rest: object) -> None:
            seen.append(bus)

        def run(self) -> str:
            return "built"

    monkeypatch.setattr(builder, "_Build", FakeBuild)
    monkeypatch.setattr(builder, "read_gc_budget", lambda root, budget: None)
    monkeypatch.setattr(builder, "_collect_garbage", lambda root, budget: None)
    request: Any = type("Request", (), {"gc_budget": None})()
    assert builder.build(request, root=tmp_path, bus=None) == "built"  # type: ignore[arg-type]
    assert len(seen) == 1 and isinstance(seen[0], NullBus)

"""The scheduler drives any op kind through its runner: keys, hits, forced runs and
progress come from `Solver` itself, the work from the runner the registry names."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import strata.solver.solve as solve_module
from strata.plan.ops import FileOp, MkdirAction, Vertex
from strata.progress.null import NullBus
from strata.solver.records import CacheRecords
from strata.solver.results import SnapshotResult
from strata.solver.runner import CacheMap, OperationRunner, OpRunner, Outcome, Step
from strata.solver.solve import SolveContext, Solver
from strata.store.root import StateRoot


class RecordingBus(NullBus):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def vertex_started(self, digest: str, name: str, *args: Any, **kwargs: Any) -> None:
        self.events.append(("started", name))

    def vertex_done(self, digest: str) -> None:
        self.events.append(("done", digest))

    def vertex_cached(self, digest: str, name: str | None = None, *args: Any) -> None:
        self.events.append(("cached", name or ""))


class CountingRunner(OperationRunner):
    """Any op kind: keyed as an operation, "run" by naming a new snapshot."""

    def __init__(self) -> None:
        none: Any = None
        super().__init__(none, none)
        self.ran: list[str] = []

    def run(self, step: Step, cache: CacheMap) -> Outcome:
        self.ran.append(step.vertex.name)
        return Outcome(SnapshotResult(f"snap-{len(self.ran)}"))


class Snapshots:
    def exists(self, name: str) -> bool:
        return name.startswith("snap-")


class Executor:
    def cancel(self) -> None:
        pass


def _solver(root: StateRoot, bus: NullBus) -> Solver:
    none: Any = None
    return Solver(
        root=root,
        snapshotter=Snapshots(),  # type: ignore[arg-type]
        executor=Executor(),  # type: ignore[arg-type]
        records=CacheRecords(root),
        images=none,
        views=none,
        checksums=none,
        context=None,
        bus=bus,
        settings=SolveContext(max_workers=1),
    )


def _graph(no_cache: bool = False) -> Vertex:
    first = Vertex(FileOp((MkdirAction("/a"),), base=None), name="[1/2] WORKDIR /a")
    return Vertex(
        FileOp((MkdirAction("/b"),), base=0), (first,), name="[2/2] WORKDIR /b", no_cache=no_cache
    )


def test_a_runner_runs_on_a_miss_and_its_result_is_a_hit_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CountingRunner()
    registry: Mapping[type, OpRunner] = {FileOp: runner}
    monkeypatch.setattr(solve_module, "op_runners", lambda services: registry)
    root = StateRoot.open(tmp_path / "root")
    try:
        bus = RecordingBus()
        first = _solver(root, bus).solve(_graph())
        assert runner.ran == ["[1/2] WORKDIR /a", "[2/2] WORKDIR /b"]
        assert [kind for kind, _ in bus.events] == ["started", "done", "started", "done"]
        assert not first.cached and first.key == first.dependent_key

        bus = RecordingBus()
        again = _solver(root, bus).solve(_graph())
        assert len(runner.ran) == 2  # nothing ran again
        assert bus.events == [("cached", "[1/2] WORKDIR /a"), ("cached", "[2/2] WORKDIR /b")]
        assert again.cached and again.key == first.key
        assert again.result == first.result

        forced = _solver(root, RecordingBus()).solve(_graph(no_cache=True))
        assert runner.ran[2:] == ["[2/2] WORKDIR /b"]
        assert forced.key == first.key and forced.dependent_key != forced.key
    finally:
        root.close()

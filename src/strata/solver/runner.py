"""What the scheduler asks of each op kind: an `OpRunner` (BuildKit's `solver.Op`).

BuildKit's scheduler knows an op only through `CacheMap` and `Exec` (solver/types.go
`Op`), and `solver/llbsolver/solver.go` `resolver()` picks the implementation by kind
once; each kind is a file of `solver/llbsolver/ops/`. Here likewise: `Solver` takes
a vertex's runner from the registry (`strata.solver.runners`) and calls

1. `cache_map(step)`: the key the result is stored under, its components (what a miss
   explanation compares), and how the scheduler treats the key (`CachePolicy`). A
   source may do its real work here, as BuildKit's do: a base image is resolved, a URL
   fetched, because what came is what the key covers;
2. unless the key hits, `run(step, cache)`: the result (`Outcome`).

The scheduler does everything else the same way for every kind: progress, counting,
cache records, remote-cache hits, miss explanations, cancellation and error locations.
A runner talks back only through its `Step`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from strata.plan.ops import Vertex
from strata.solver.keys import InputKey, cache_key_for
from strata.solver.results import Result
from strata.solver.views import BuildViews
from strata.worker.snapshots.snapshotter import Snapshotter


class CachePolicy(enum.Enum):
    """How the scheduler treats a vertex's key."""

    # An operation (RUN, COPY, ...): a stored result (here or in an imported cache) is
    # the result unless the vertex is forced; a run is recorded under the key, its miss
    # explained and remembered for the next build's explanation.
    RECORDED = "recorded"
    # A fetched source: the key covers what was fetched, so a stored result under it
    # is the same content, forced or not; a run is recorded under the key.
    CONTENT = "content"
    # A source that keeps its own cache (a base image's chain of snapshots, the build
    # context): the runner always runs, and its `Outcome` says whether it was cached.
    RUNNER = "runner"


@dataclass(frozen=True)
class CacheMap:
    """A vertex's key, as `OpRunner.cache_map` computes it."""

    key: str
    components: dict[str, Any]
    policy: CachePolicy
    # What the runner found while computing the key (a fetched tree), for its `run`.
    found: object = None


@dataclass(frozen=True)
class Outcome:
    """What a run gave: the result, and whether it was there already (a base image
    whose layers were all unpacked). `unpack`, when set, makes the result's snapshot
    exist here: the result is lazy and unpacked only when something needs its files."""

    result: Result
    cached: bool = False
    unpack: Callable[[], None] | None = None


class Step(Protocol):
    """One vertex being solved, as its runner sees it."""

    @property
    def vertex(self) -> Vertex: ...

    @property
    def results(self) -> Sequence[Result]:
        """The solved inputs' results, in input order (unpacked by the time `run` runs)."""
        ...

    @property
    def users(self) -> Sequence[Vertex]:
        """The vertices of this solve that read this one."""
        ...

    def input_keys(self) -> Sequence[InputKey]:
        """What each input contributes to the key: the key it builds on, or the content
        checksums of the paths read from it (`strata.solver.checksums`)."""
        ...

    def started(self) -> None:
        """Show the vertex as running (once; later calls do nothing)."""
        ...

    def status(self, id: str, *, current: int = 0, total: int = 0, done: bool = False) -> None:
        """Sub-progress of the vertex (`ProgressBus.status`)."""
        ...

    def log(self, stream: str, line: bytes) -> None:
        """A line of the vertex's process output ("stdout" or "stderr")."""
        ...


class OpRunner(Protocol):
    """One op kind's part of a solve; see the module docstring."""

    def cache_map(self, step: Step) -> CacheMap: ...

    def run(self, step: Step, cache: CacheMap) -> Outcome: ...


class OperationRunner:
    """The base of the runners of operations (RUN, COPY, COPY --link): keyed over their
    op and inputs (`keys.cache_key_for`), run on new snapshots; subclasses write `run`."""

    def __init__(self, snapshotter: Snapshotter, views: BuildViews) -> None:
        self.snapshotter = snapshotter
        self.views = views

    def cache_map(self, step: Step) -> CacheMap:
        key, components = cache_key_for(step.vertex, step.input_keys())
        components["name"] = step.vertex.name
        return CacheMap(key, components, CachePolicy.RECORDED)

"""The registry of op runners: which `OpRunner` solves which op kind.

This is the one place that maps op types to code (BuildKit's `solver/llbsolver/solver.go`
`resolver()`); the scheduler only looks a vertex's op type up here. A new op kind adds
its runner module and one line below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from strata.plan.ops import (
    ContextSource,
    ExecOp,
    FileOp,
    GitSource,
    HttpSource,
    ImageSource,
    MergeOp,
    Op,
)
from strata.solver.checksums import ChecksumCache
from strata.solver.contextsource import ContextSourceRunner
from strata.solver.copies import CopyManifests
from strata.solver.execop import ExecEnvironment, ExecRunner
from strata.solver.fetchedsource import FetchedSourceRunner
from strata.solver.fileop import FileRunner
from strata.solver.imagesource import BaseLayers, ImageSourceRunner
from strata.solver.mergeop import MergeRunner
from strata.solver.records import CacheRecords
from strata.solver.remote import RemoteCache
from strata.solver.results import ContextResult
from strata.solver.runner import OpRunner
from strata.solver.views import BuildViews
from strata.store.images import ImageStore
from strata.store.root import StateRoot
from strata.worker.executor import Executor
from strata.worker.snapshots.snapshotter import Snapshotter


@dataclass(frozen=True)
class RunnerServices:
    """What the runners of one solve work with."""

    root: StateRoot
    snapshotter: Snapshotter
    executor: Executor
    records: CacheRecords
    images: ImageStore
    views: BuildViews
    checksums: ChecksumCache
    context: ContextResult | None
    exec_env: ExecEnvironment
    keep_failed: bool
    base_layers: BaseLayers | None
    remote: RemoteCache | None


def op_runners(services: RunnerServices) -> Mapping[type[Op], OpRunner]:
    """A runner for every op kind, by the op's type."""
    s = services
    fetched = FetchedSourceRunner(s.snapshotter, s.views)
    return {
        ImageSource: ImageSourceRunner(
            root=s.root,
            snapshotter=s.snapshotter,
            records=s.records,
            images=s.images,
            base_layers=s.base_layers,
            lazy=s.remote is not None,
        ),
        ContextSource: ContextSourceRunner(s.context, s.checksums),
        HttpSource: fetched,
        GitSource: fetched,
        ExecOp: ExecRunner(
            root=s.root,
            snapshotter=s.snapshotter,
            executor=s.executor,
            views=s.views,
            env=s.exec_env,
            keep_failed=s.keep_failed,
            remote=s.remote,
        ),
        FileOp: FileRunner(s.snapshotter, s.views, CopyManifests(s.root)),
        MergeOp: MergeRunner(s.snapshotter, s.views),
    }

"""Running a MergeOp (COPY --link); `MergeRunner` is its runner.

A MergeOp lays the linked copy's files onto its base as a layer of their own: the
linked FileOp ran on scratch, so its tree holds exactly the copied files, and they
replace what the base has at their paths as an image layer would (a directory over a
symlink included) rather than being written through it.
"""

from __future__ import annotations

from collections.abc import Sequence

from strata.solver.fileop import commit_new, new_snapshot
from strata.solver.results import Result, SnapshotResult
from strata.solver.runner import CacheMap, OperationRunner, Outcome, Step
from strata.solver.views import BuildViews
from strata.worker import fileops
from strata.worker.snapshots.snapshotter import Snapshotter


def run_merge_op(inputs: Sequence[Result], snapshotter: Snapshotter, views: BuildViews) -> str:
    """inputs[0]'s tree with inputs[1]'s files copied on top, as a snapshot of its own."""
    base, linked = inputs[0], inputs[1]
    if not isinstance(base, SnapshotResult) or not isinstance(linked, SnapshotResult):
        raise TypeError("a MergeOp reads snapshots")
    with new_snapshot(snapshotter, views, base.name) as (key, rootfs):
        if linked.name is not None:
            fileops.lay_tree(views.snapshot_tree(linked), rootfs)
    return commit_new(snapshotter, key)


class MergeRunner(OperationRunner):
    """Runs a `MergeOp` for the solver."""

    def run(self, step: Step, cache: CacheMap) -> Outcome:
        return Outcome(SnapshotResult(run_merge_op(step.results, self.snapshotter, self.views)))

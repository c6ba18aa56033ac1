"""Running a FileOp (COPY, ADD, WORKDIR, heredoc files); `FileRunner` is its runner.

A FileOp prepares a snapshot on its base (scratch when `base` is None), mounts it, applies
its actions in order with `strata.worker.fileops`, and commits. `--chown` names are
resolved in the destination's own /etc/passwd and /etc/group, as BuildKit's
`solver/llbsolver/ops/user_linux.go` does, after earlier actions of the op ran.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from strata.patterns import PatternMatcher
from strata.plan.ops import (
    Chown,
    CopyAction,
    FileAction,
    FileOp,
    MkdirAction,
    MkfileAction,
    RmAction,
)
from strata.solver.results import ContextResult, Result, SnapshotResult, parent_snapshot
from strata.solver.runner import CacheMap, OperationRunner, Outcome, Step
from strata.solver.views import BuildViews
from strata.worker import fileops
from strata.worker.chmod import parse_chmod
from strata.worker.snapshots.mount import mount_all, unmount
from strata.worker.snapshots.snapshotter import Snapshotter


@contextlib.contextmanager
def new_snapshot(
    snapshotter: Snapshotter, views: BuildViews, parent: str | None
) -> Iterator[tuple[str, Path]]:
    """An active snapshot on `parent`, mounted; yields (key, mount point). The caller
    commits it inside the block; on error it is removed."""
    key = f"active-{uuid.uuid4().hex}"
    mounts = snapshotter.prepare(key, parent)
    target = views.new_dir("rootfs")
    try:
        mount_all(mounts, target)
        try:
            yield key, target
        finally:
            unmount(target)
    except BaseException:
        with contextlib.suppress(Exception):
            snapshotter.remove(key)
        raise


def commit_new(snapshotter: Snapshotter, key: str) -> str:
    name = f"result-{uuid.uuid4().hex}"
    snapshotter.commit(name, key)
    return name


def chown_spec(chown: Chown | None) -> str | None:
    if chown is None:
        return None
    return f"{chown.user}:{chown.group}" if chown.group else chown.user


def copy_options(
    action: CopyAction, source: Result, rootfs: Path, *, include: PatternMatcher | None = None
) -> fileops.CopyOptions:
    """The worker's copy options for one COPY/ADD action."""
    spec = chown_spec(action.chown)
    return fileops.CopyOptions(
        follow_symlinks=action.follow_symlinks,
        allow_wildcard=action.allow_wildcard,
        allow_empty_wildcard=action.allow_empty_wildcard,
        create_dest_path=action.create_dest_path,
        chown=fileops.resolve_chown(spec, rootfs) if spec is not None else None,
        owner_reset=action.owner_reset or isinstance(source, ContextResult),
        chmod=parse_chmod(action.chmod) if action.chmod else None,
        include=include,
        exclude=PatternMatcher(list(action.exclude)) if action.exclude else None,
        ignore=source.ignore if isinstance(source, ContextResult) else None,
        unpack=action.unpack,
    )


def apply_copy(
    action: CopyAction, inputs: Sequence[Result], views: BuildViews, rootfs: Path
) -> None:
    source = (
        inputs[action.source_input] if action.source_input is not None else SnapshotResult(None)
    )
    tree = views.tree(source)
    if not action.parents:
        options = copy_options(action, source, rootfs)
        fileops.copy(tree, list(action.sources), rootfs, action.dest, options=options)
        return
    dest = action.dest if action.dest.endswith("/") else action.dest + "/"
    for written in action.sources:
        split = fileops.parents_source(written)
        options = copy_options(action, source, rootfs, include=PatternMatcher([split.pattern]))
        if split.required is not None:
            options = _with_required(options, split.required)
        fileops.copy(tree, [split.source], rootfs, dest, options=options)


def _with_required(options: fileops.CopyOptions, required: str) -> fileops.CopyOptions:
    from dataclasses import replace

    return replace(options, required_paths=(required,))


def apply_action(
    action: FileAction, inputs: Sequence[Result], views: BuildViews, rootfs: Path
) -> None:
    if isinstance(action, CopyAction):
        apply_copy(action, inputs, views, rootfs)
        return
    spec = chown_spec(action.chown) if not isinstance(action, RmAction) else None
    uid, gid = fileops.resolve_chown(spec, rootfs) if spec is not None else (0, 0)
    if isinstance(action, MkdirAction):
        mtime_ns = action.mtime * 1_000_000_000 if action.mtime is not None else None
        fileops.mkdir(
            rootfs,
            action.path,
            action.mode,
            uid,
            gid,
            make_parents=action.make_parents,
            mtime_ns=mtime_ns,
        )
    elif isinstance(action, MkfileAction):
        fileops.mkfile(rootfs, action.path, action.data.encode(), action.mode, uid, gid)
    else:
        fileops.rm(rootfs, action.path, allow_not_found=action.allow_not_found)


def run_file_op(
    op: FileOp, inputs: Sequence[Result], snapshotter: Snapshotter, views: BuildViews
) -> str:
    """Apply the op's actions on a new snapshot; returns the committed snapshot name."""
    parent = parent_snapshot(inputs, op.base, "a FileOp base")
    with new_snapshot(snapshotter, views, parent) as (key, rootfs):
        for action in op.actions:
            apply_action(action, inputs, views, rootfs)
    return commit_new(snapshotter, key)


class FileRunner(OperationRunner):
    """Runs a `FileOp` for the solver."""

    def run(self, step: Step, cache: CacheMap) -> Outcome:
        op = step.vertex.op
        assert isinstance(op, FileOp)
        return Outcome(SnapshotResult(run_file_op(op, step.results, self.snapshotter, self.views)))

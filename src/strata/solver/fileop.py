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

from strata.errors import StoreError
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
from strata.solver.copies import CopyManifests, lineage_of
from strata.solver.results import ContextResult, Result, SnapshotResult, parent_snapshot
from strata.solver.runner import CacheMap, OperationRunner, Outcome, Step
from strata.solver.views import BuildViews
from strata.worker import fileops
from strata.worker.chmod import parse_chmod
from strata.worker.reuse import CopyReuse, Stamp
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
    action: CopyAction,
    inputs: Sequence[Result],
    views: BuildViews,
    rootfs: Path,
    reuse: CopyReuse | None = None,
) -> None:
    source = (
        inputs[action.source_input] if action.source_input is not None else SnapshotResult(None)
    )
    tree = views.tree(source)
    from_context = reuse is not None and isinstance(source, ContextResult) and tree == reuse.context
    if not action.parents:
        options = copy_options(action, source, rootfs)
        fileops.copy(
            tree,
            list(action.sources),
            rootfs,
            action.dest,
            options=options,
            reuse=reuse,
            reuse_sources=from_context,
        )
        return
    dest = action.dest if action.dest.endswith("/") else action.dest + "/"
    for written in action.sources:
        split = fileops.parents_source(written)
        options = copy_options(action, source, rootfs, include=PatternMatcher([split.pattern]))
        if split.required is not None:
            options = _with_required(options, split.required)
        fileops.copy(
            tree,
            [split.source],
            rootfs,
            dest,
            options=options,
            reuse=reuse,
            reuse_sources=from_context,
        )


def _with_required(options: fileops.CopyOptions, required: str) -> fileops.CopyOptions:
    from dataclasses import replace

    return replace(options, required_paths=(required,))


def apply_action(
    action: FileAction,
    inputs: Sequence[Result],
    views: BuildViews,
    rootfs: Path,
    reuse: CopyReuse | None = None,
) -> None:
    if isinstance(action, CopyAction):
        apply_copy(action, inputs, views, rootfs, reuse)
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
    op: FileOp,
    inputs: Sequence[Result],
    snapshotter: Snapshotter,
    views: BuildViews,
    copies: CopyManifests | None = None,
) -> str:
    """Apply the op's actions on a new snapshot; returns the committed snapshot name.

    With `copies`, an op that copies from the build context is incremental
    (`strata.worker.reuse`): it starts from the latest earlier result of the same copy
    on the same parent, and files its own manifest once committed."""
    parent = parent_snapshot(inputs, op.base, "a FileOp base")
    # Only ops made of copies: another action (mkdir, mkfile, rm) would look at pending
    # files through the mount without knowing of them.
    only_copies = all(isinstance(action, CopyAction) for action in op.actions)
    context = _copied_context(op, inputs) if copies is not None and only_copies else None
    if copies is None or context is None:
        with new_snapshot(snapshotter, views, parent) as (key, rootfs):
            for action in op.actions:
                apply_action(action, inputs, views, rootfs)
        return commit_new(snapshotter, key)
    lineage = lineage_of(snapshotter.name, op, parent, context)
    previous_dir, previous = _previous_copy(copies, snapshotter, lineage)
    with new_snapshot(snapshotter, views, parent) as (key, rootfs):
        reuse = CopyReuse(rootfs, snapshotter.upper_dir(key), context, previous_dir, previous)
        for action in op.actions:
            apply_action(action, inputs, views, rootfs, reuse)
    try:
        # Unmounted: the links go straight into the new snapshot's own directory.
        reuse.finish()
        name = commit_new(snapshotter, key)
    except BaseException:
        with contextlib.suppress(Exception):
            snapshotter.remove(key)
        raise
    manifest = reuse.manifest()
    if manifest is not None:
        copies.remember(name, lineage, manifest)
    return name


def _copied_context(op: FileOp, inputs: Sequence[Result]) -> Path | None:
    """The build context directory some copy action of `op` reads, if any."""
    for action in op.actions:
        if isinstance(action, CopyAction) and action.source_input is not None:
            source = inputs[action.source_input]
            if isinstance(source, ContextResult):
                return source.directory
    return None


def _previous_copy(
    copies: CopyManifests, snapshotter: Snapshotter, lineage: str
) -> tuple[Path | None, dict[str, Stamp]]:
    """The own-files directory and manifest of the latest committed result of
    `lineage`, or (None, {}) when there is none."""
    for snapshot in copies.latest(lineage):
        if not snapshotter.exists(snapshot):
            continue
        files = copies.files_of(snapshot)
        if files is None:
            continue
        try:
            return snapshotter.tree_dir(snapshot), files
        except StoreError:
            continue
    return None, {}


class FileRunner(OperationRunner):
    """Runs a `FileOp` for the solver; a copy from the build context starts from the
    previous result of the same copy (`copies`, see `run_file_op`)."""

    def __init__(
        self, snapshotter: Snapshotter, views: BuildViews, copies: CopyManifests | None = None
    ) -> None:
        super().__init__(snapshotter, views)
        self.copies = copies

    def run(self, step: Step, cache: CacheMap) -> Outcome:
        op = step.vertex.op
        assert isinstance(op, FileOp)
        name = run_file_op(op, step.results, self.snapshotter, self.views, self.copies)
        return Outcome(SnapshotResult(name))

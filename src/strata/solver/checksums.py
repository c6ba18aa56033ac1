"""Content checksums of what an op reads from an input, computed once per build.

An op reads selected paths of some inputs: COPY sources (with their wildcard, symlink,
`--parents` and `--exclude` options) and bind or cache-mount sources. `requests_for`
lists those reads as `ChecksumRequest`s; `ChecksumCache` answers them:

- from the build context, with the persistent `DigestCache` (an unchanged file costs an
  `lstat`), owners hashed as 0 and `.dockerignore`d paths absent;
- from a committed snapshot, once ever: the snapshot cannot change, so the checksum is
  remembered in the solver's tables;
- from scratch, over an empty tree (a missing literal path is then `not found`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from strata.patterns import PatternMatcher
from strata.plan.ops import CopyAction, ExecOp, FileOp, MountType, Vertex, content_selectors
from strata.solver.records import CacheRecords
from strata.solver.results import ContextResult, Result, SnapshotResult
from strata.solver.views import BuildViews
from strata.worker.contenthash import DigestCache, checksum
from strata.worker.context import ScanStats
from strata.worker.fileops import parents_source


@dataclass(frozen=True)
class ChecksumRequest:
    """One path an op reads from an input, with how it is read."""

    path: str
    wildcard: bool = False
    follow_top_symlink: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    def selector(self) -> str:
        """A stable text form (for the persistent table and the key components)."""
        return json.dumps(
            [
                self.path,
                self.wildcard,
                self.follow_top_symlink,
                self.include,
                self.exclude,
                self.required,
            ]
        )


def _copy_requests(action: CopyAction) -> list[ChecksumRequest]:
    requests: list[ChecksumRequest] = []
    for source in action.sources:
        if action.parents:
            split = parents_source(source)
            requests.append(
                ChecksumRequest(
                    path=split.source,
                    follow_top_symlink=action.follow_symlinks,
                    include=(split.pattern,),
                    exclude=action.exclude,
                    required=(split.required,) if split.required is not None else (),
                )
            )
        else:
            requests.append(
                ChecksumRequest(
                    path=source,
                    wildcard=action.allow_wildcard,
                    follow_top_symlink=action.follow_symlinks,
                    exclude=action.exclude,
                )
            )
    return requests


def keyed_by_content(vertex: Vertex) -> set[int]:
    """Inputs whose key contribution is the content they are read for, not their key.

    An input that is also the op's root (or FileOp base) is keyed by its own key."""
    selected = set(content_selectors(vertex))
    op = vertex.op
    if isinstance(op, ExecOp) and op.mounts and op.mounts[0].input is not None:
        selected.discard(op.mounts[0].input)
    if isinstance(op, FileOp) and op.base is not None:
        selected.discard(op.base)
    return selected


def requests_for(vertex: Vertex, index: int) -> list[ChecksumRequest]:
    """What `vertex` reads from its input `index`, in op order."""
    op = vertex.op
    out: list[ChecksumRequest] = []
    if isinstance(op, ExecOp):
        for mount in op.mounts[1:]:
            if mount.input == index and mount.type in (MountType.BIND, MountType.CACHE):
                out.append(ChecksumRequest(path=mount.selector))
    elif isinstance(op, FileOp):
        for action in op.actions:
            if isinstance(action, CopyAction) and action.source_input == index:
                out.extend(_copy_requests(action))
    return out


def _matcher(patterns: tuple[str, ...]) -> PatternMatcher | None:
    return PatternMatcher(list(patterns)) if patterns else None


class ChecksumCache:
    """Answers checksum requests for one build (thread-safe, memoised)."""

    def __init__(self, views: BuildViews, records: CacheRecords, digest_cache: DigestCache) -> None:
        self.views = views
        self.records = records
        self.digest_cache = digest_cache
        self.context_stats = ScanStats()
        self._lock = threading.Lock()
        self._memo: dict[tuple[object, ChecksumRequest], str] = {}

    def checksum(self, result: Result, request: ChecksumRequest) -> str:
        identity: object = result.directory if isinstance(result, ContextResult) else result
        memo_key = (identity, request)
        with self._lock:
            found = self._memo.get(memo_key)
        if found is not None:
            return found
        value = self._compute(result, request)
        with self._lock:
            self._memo[memo_key] = value
        return value

    def _compute(self, result: Result, request: ChecksumRequest) -> str:
        if isinstance(result, ContextResult):
            return self._hash(result, request, owner_reset=True)
        assert isinstance(result, SnapshotResult)
        if result.name is None:
            return self._hash(result, request, owner_reset=False)
        selector = request.selector()
        known = self.records.checksum_of(result.name, selector)
        if known is not None:
            return known
        value = self._hash(result, request, owner_reset=False)
        self.records.remember_checksum(result.name, selector, value)
        return value

    def _hash(self, result: Result, request: ChecksumRequest, *, owner_reset: bool) -> str:
        context = isinstance(result, ContextResult)
        return checksum(
            self.views.tree(result),
            request.path,
            follow_top_symlink=request.follow_top_symlink,
            wildcard=request.wildcard,
            include=_matcher(request.include),
            exclude=_matcher(request.exclude),
            ignore=result.ignore if isinstance(result, ContextResult) else None,
            required_paths=request.required,
            owner_reset=owner_reset,
            cache=self.digest_cache if context else None,
            stats=self.context_stats if context else None,
        )

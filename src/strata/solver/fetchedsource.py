"""ADD's URL and git sources: `FetchedSourceRunner`, and fetching them.

A URL or git source is fetched on every build (BuildKit asks the server each time too);
its key covers what was fetched (file digest, name and Last-Modified, or commit), so an
unchanged download is a cache hit (printed CACHED) and keeps the steps reading it cached.
"""

from __future__ import annotations

from pathlib import Path

from strata.fsutil import copy_tree
from strata.plan.ops import GitSource, HttpSource, sha256_json
from strata.solver.fileop import commit_new, new_snapshot
from strata.solver.keys import cache_key_for
from strata.solver.results import SnapshotResult
from strata.solver.runner import CacheMap, CachePolicy, Outcome, Step
from strata.solver.views import BuildViews
from strata.worker.archive import fetch_git, fetch_url
from strata.worker.snapshots.snapshotter import Snapshotter


def fetch_source(op: HttpSource | GitSource, dest: Path) -> tuple[str, Path]:
    """Fetch below the empty directory `dest`; returns what the content is keyed by and
    the directory holding the fetched tree."""
    if isinstance(op, HttpSource):
        fetched = fetch_url(
            op.url, dest, checksum=op.checksum or None, filename=op.filename or None
        )
        # The file's mtime is its Last-Modified, so that is part of the key too (BuildKit
        # source/http/source.go formatCacheKey: name, content digest, Last-Modified).
        modified = fetched.last_modified.isoformat() if fetched.last_modified else ""
        return f"{fetched.digest} {fetched.filename} {modified}".rstrip(), dest
    tree = dest / "tree"
    got = fetch_git(
        op.remote,
        tree,
        ref=op.ref,
        subdir=op.subdir,
        keep_git_dir=op.keep_git_dir,
        checksum=op.checksum,
    )
    return f"git {got.commit}", tree


class FetchedSourceRunner:
    """Solves an `HttpSource` or a `GitSource`: fetched for its key, stored on a miss."""

    def __init__(self, snapshotter: Snapshotter, views: BuildViews) -> None:
        self.snapshotter = snapshotter
        self.views = views

    def cache_map(self, step: Step) -> CacheMap:
        op = step.vertex.op
        assert isinstance(op, HttpSource | GitSource)
        step.started()
        fetched_key, tree = fetch_source(op, self.views.new_dir("fetch"))
        key, components = cache_key_for(step.vertex, [])
        components["fetched"] = fetched_key
        key = sha256_json({"op": key, "fetched": fetched_key})
        return CacheMap(key, components, CachePolicy.CONTENT, found=tree)

    def run(self, step: Step, cache: CacheMap) -> Outcome:
        tree = cache.found
        assert isinstance(tree, Path)
        with new_snapshot(self.snapshotter, self.views, None) as (key, rootfs):
            copy_tree(tree, rootfs)
        return Outcome(SnapshotResult(commit_new(self.snapshotter, key)))

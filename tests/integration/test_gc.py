"""Automatic GC after builds: a budget, least recently used first, never what is in use.

Records are made through the real snapshotter, cache-record table and cache-mount store,
with known sizes, and used one after another so their order is known.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from strata.errors import UsageError
from strata.gc.prune import (
    DEFAULT_GC_CAP,
    GC_BUDGET_ENV,
    auto_gc,
    build_lease,
    default_gc_budget,
    gc_budget,
)
from strata.gc.usage import UsageRecord, disk_usage
from strata.solver.records import CacheRecords
from strata.store.cachemounts import CacheMounts
from strata.store.root import StateRoot
from strata.worker.snapshots.snapshotter import Snapshotter

MB = 1_000_000


def make_result(
    snap: Snapshotter,
    records: CacheRecords,
    name: str,
    size: int,
    parent: str | None = None,
) -> str:
    """A committed snapshot holding `size` random bytes, recorded under a cache key."""
    key = f"active-{name}"
    snap.prepare(key, parent)
    (snap.upper_dir(key) / "payload").write_bytes(os.urandom(size))
    snap.commit(name, key)
    records.put(f"key-{name}", name, kind="ExecOp", description=f"RUN {name}", components={})
    return name


def use(records: CacheRecords, *names: str) -> None:
    """Mark results used, in this order (a short pause keeps the times distinct)."""
    for name in names:
        time.sleep(0.01)
        records.touch(f"key-{name}")


def by_description(records: list[UsageRecord]) -> dict[str, UsageRecord]:
    return {r.description: r for r in records}


def test_gc_removes_least_recently_used_first_until_under_budget(
    state_root: StateRoot, overlay_snapshotter: Snapshotter
) -> None:
    records = CacheRecords(state_root)
    for name in ("a", "b", "c", "d"):
        make_result(overlay_snapshotter, records, name, MB)
    use(records, "c", "a", "d", "b")  # oldest use first: c, a, d, b
    before = disk_usage(state_root)
    assert sum(r.size for r in before) > 4 * MB

    report = auto_gc(state_root, 2_500_000, blob_grace=0)

    assert report is not None
    assert [r.description for r in report.removed] == ["RUN c", "RUN a"]
    after = disk_usage(state_root)
    assert sorted(by_description(after)) == ["RUN b", "RUN d"]
    assert sum(r.size for r in after) < 2_500_000
    assert report.reclaimed >= 2 * MB


def test_gc_under_budget_removes_nothing(
    state_root: StateRoot, overlay_snapshotter: Snapshotter
) -> None:
    records = CacheRecords(state_root)
    make_result(overlay_snapshotter, records, "a", MB)
    report = auto_gc(state_root, 10 * MB)
    assert report is not None and report.removed == []
    assert [r.description for r in disk_usage(state_root)] == ["RUN a"]


def test_gc_removes_children_before_the_parent_they_need(
    state_root: StateRoot, overlay_snapshotter: Snapshotter
) -> None:
    records = CacheRecords(state_root)
    make_result(overlay_snapshotter, records, "parent", MB)
    make_result(overlay_snapshotter, records, "child", MB, parent="parent")
    make_result(overlay_snapshotter, records, "other", MB)
    # The parent's own record is the oldest, but its child needs it.
    use(records, "parent", "child", "other")
    report = auto_gc(state_root, 1_500_000, blob_grace=0)
    assert report is not None
    assert [r.description for r in report.removed] == ["RUN child", "RUN parent"]
    assert not overlay_snapshotter.exists("parent")
    assert overlay_snapshotter.exists("other")


def test_gc_never_touches_an_active_snapshot_of_a_live_process_or_its_parent(
    state_root: StateRoot, overlay_snapshotter: Snapshotter
) -> None:
    records = CacheRecords(state_root)
    make_result(overlay_snapshotter, records, "base", MB)
    make_result(overlay_snapshotter, records, "idle", MB)
    overlay_snapshotter.prepare("active-running-step", "base")  # owned by this process
    try:
        use(records, "base", "idle")
        report = auto_gc(state_root, 0, blob_grace=0)
        assert report is not None
        assert [r.description for r in report.removed] == ["RUN idle"]
        assert overlay_snapshotter.exists("base")
        assert overlay_snapshotter.exists("active-running-step")
        listed = by_description(disk_usage(state_root))
        assert listed["RUN base"].in_use and not listed["RUN base"].reclaimable
    finally:
        overlay_snapshotter.remove("active-running-step")


def test_gc_never_removes_a_cache_mount_a_step_holds(state_root: StateRoot) -> None:
    caches = CacheMounts(state_root)
    with caches.acquire("//held") as held:
        (held / "f").write_bytes(os.urandom(MB))
        with caches.acquire("//idle") as idle:
            (idle / "f").write_bytes(os.urandom(MB))
        report = auto_gc(state_root, 0, blob_grace=0)
        assert report is not None
        assert [r.type for r in report.removed] == ["exec.cachemount"]
        assert (held / "f").stat().st_size == MB
    assert caches.ids() == ["//held"]


def test_gc_is_skipped_while_a_build_holds_its_lease(
    state_root: StateRoot, overlay_snapshotter: Snapshotter
) -> None:
    records = CacheRecords(state_root)
    make_result(overlay_snapshotter, records, "a", MB)
    started = threading.Event()
    finish = threading.Event()

    def build() -> None:
        other = StateRoot.open(state_root.path)
        try:
            with build_lease(other):
                started.set()
                finish.wait(30)
        finally:
            other.close()

    worker = threading.Thread(target=build)
    worker.start()
    try:
        assert started.wait(30)
        assert auto_gc(state_root, 0, blob_grace=0) is None
        assert overlay_snapshotter.exists("a")
    finally:
        finish.set()
        worker.join()
    report = auto_gc(state_root, 0, blob_grace=0)
    assert report is not None and [r.description for r in report.removed] == ["RUN a"]


def test_gc_takes_image_shared_layers_only_when_the_rest_was_not_enough(
    state_root: StateRoot, overlay_snapshotter: Snapshotter, tmp_path: Path
) -> None:
    from strata.export.tarball_import import import_tarball
    from strata.store.images import ImageStore
    from strata.worker.unpack import unpack_image

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "blob").write_bytes(os.urandom(MB))
    tarball = tmp_path / "layer.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(tarball), "."], check=True)
    images = ImageStore(state_root)
    with open(tarball, "rb") as fh:
        manifest = import_tarball(images, fh, source="test")
    images.put("base:1", manifest)
    top = unpack_image(state_root, overlay_snapshotter, images.image(manifest))
    assert top is not None
    records = CacheRecords(state_root)
    make_result(overlay_snapshotter, records, "step", MB)

    # Private records go first, even when the shared layer is older.
    report = auto_gc(state_root, 1_500_000, blob_grace=0)
    assert report is not None and [r.description for r in report.removed] == ["RUN step"]
    assert overlay_snapshotter.exists(top)

    report = auto_gc(state_root, 500_000, blob_grace=0)
    assert report is not None and [r.shared for r in report.removed] == [True]
    assert not overlay_snapshotter.exists(top)
    assert images.get("base:1") == manifest  # the image itself stays in the store


# -- the budget ----------------------------------------------------------------------------------


def test_budget_comes_from_the_flag_then_the_environment_then_the_default(
    state_root: StateRoot,
) -> None:
    assert gc_budget(state_root, "512mb", {GC_BUDGET_ENV: "1g"}) == 512 * 1024 * 1024
    assert gc_budget(state_root, None, {GC_BUDGET_ENV: "1g"}) == 1 << 30
    assert gc_budget(state_root, None, {}) == default_gc_budget(state_root)
    assert gc_budget(state_root, "off", {}) is None
    assert gc_budget(state_root, None, {GC_BUDGET_ENV: "off"}) is None


def test_invalid_budget_names_where_it_came_from(state_root: StateRoot) -> None:
    with pytest.raises(UsageError) as caught:
        gc_budget(state_root, None, {GC_BUDGET_ENV: "lots"})
    assert caught.value.option == GC_BUDGET_ENV
    assert "invalid" in caught.value.message


def test_default_budget_is_a_tenth_of_the_file_system_at_most_10gb(state_root: StateRoot) -> None:
    vfs = os.statvfs(state_root.path)
    tenth = vfs.f_blocks * vfs.f_frsize // 10
    budget = default_gc_budget(state_root)
    assert budget <= DEFAULT_GC_CAP
    assert budget == DEFAULT_GC_CAP or tenth <= budget * 1.08 + 10**9

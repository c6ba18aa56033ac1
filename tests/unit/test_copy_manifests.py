"""Manifests of context copies (`solver/copies.py`): what an incremental COPY starts from."""

from __future__ import annotations

import os
from pathlib import Path

from strata.plan.ops import CopyAction, FileOp
from strata.solver.copies import CopyManifests, lineage_of
from strata.solver.records import CacheRecords
from strata.store.root import StateRoot
from strata.worker.reuse import CopyReuse, Stamp

OP = FileOp(actions=(CopyAction(source_input=1, sources=("/",), dest="/app"),), base=0)
OTHER_OP = FileOp(actions=(CopyAction(source_input=1, sources=("/",), dest="/srv"),), base=0)


def test_a_manifest_survives_reopening_and_keeps_odd_names(tmp_path: Path) -> None:
    files = {
        "app/a.txt": Stamp("a.txt", 1, 2, 3, 4, 5),
        "app/caf\udce9": Stamp("caf\udce9", 1, 9, 0, 10**18, 10**18 + 1),
    }
    root = StateRoot.open(tmp_path / "root")
    CopyManifests(root).remember("result-1", "lineage-1", files)
    root.close()
    again = StateRoot.open(tmp_path / "root")
    try:
        assert CopyManifests(again).files_of("result-1") == files
        assert CopyManifests(again).latest("lineage-1") == ["result-1"]
    finally:
        again.close()


def test_only_the_latest_manifest_of_a_lineage_is_kept(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "root")
    try:
        manifests = CopyManifests(root)
        manifests.remember("result-1", "lineage-1", {})
        manifests.remember("result-2", "lineage-1", {})
        manifests.remember("result-3", "lineage-2", {})
        assert manifests.latest("lineage-1") == ["result-2"]
        assert manifests.files_of("result-1") is None
        assert manifests.latest("lineage-2") == ["result-3"]
    finally:
        root.close()


def test_forgetting_a_snapshot_with_its_records_drops_its_manifest(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "root")
    try:
        CopyManifests(root).remember("result-1", "lineage-1", {})
        with root.transaction() as db:
            CacheRecords.forget_snapshots_in(db, iter(["result-1"]))
        assert CopyManifests(root).latest("lineage-1") == []
    finally:
        root.close()


def test_the_lineage_names_op_parent_context_and_snapshotter() -> None:
    base = lineage_of("overlay", OP, "chain-1", Path("/ctx"))
    assert base == lineage_of("overlay", OP, "chain-1", Path("/ctx"))
    assert base != lineage_of("native", OP, "chain-1", Path("/ctx"))
    assert base != lineage_of("overlay", OTHER_OP, "chain-1", Path("/ctx"))
    assert base != lineage_of("overlay", OP, "chain-2", Path("/ctx"))
    assert base != lineage_of("overlay", OP, "chain-1", Path("/other"))


def test_a_file_changed_within_the_racy_window_is_not_recorded(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    old, fresh = context / "old.txt", context / "fresh.txt"
    old.write_text("old\n")
    fresh.write_text("fresh\n")
    os.utime(old, (1, 1))
    rootfs = tmp_path / "rootfs"
    reuse = CopyReuse(rootfs, rootfs, context)
    # ctime cannot be set back: pretend the copy started two seconds later.
    reuse.started_ns += 2_000_000_000
    reuse.wrote(rootfs / "app/old.txt", str(old), os.lstat(old))
    reuse.started_ns -= 2_000_000_000
    reuse.wrote(rootfs / "app/fresh.txt", str(fresh), os.lstat(fresh))
    assert set(reuse.files) == {"app/old.txt"}
    assert reuse.files["app/old.txt"].source == "old.txt"

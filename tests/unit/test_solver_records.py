"""Cache records persist in the state root and can be replaced after a forced run."""

from __future__ import annotations

from pathlib import Path

from strata.solver.records import CacheRecords, LayerRow
from strata.store.root import StateRoot


def test_records_survive_reopening_the_root(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "root")
    CacheRecords(root).put(
        "sha256:k", "result-1", kind="ExecOp", description="[1/2] RUN make", components={"op": "x"}
    )
    root.close()
    again = StateRoot.open(tmp_path / "root")
    try:
        record = CacheRecords(again).get("sha256:k")
    finally:
        again.close()
    assert record is not None
    assert record.snapshot == "result-1"
    assert record.components == {"op": "x"}
    assert record.description == "[1/2] RUN make"


def test_a_forced_run_replaces_the_record(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "root")
    try:
        records = CacheRecords(root)
        records.put("sha256:k", "old", kind="ExecOp", description="", components={})
        records.put("sha256:k", "new", kind="ExecOp", description="", components={})
        record = records.get("sha256:k")
        assert record is not None and record.snapshot == "new"
        assert len(records.all()) == 1
        assert records.get("sha256:missing") is None
    finally:
        root.close()


def test_snapshot_checksums_and_layers_are_remembered(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "root")
    try:
        records = CacheRecords(root)
        assert records.checksum_of("snap", "sel") is None
        records.remember_checksum("snap", "sel", "sha256:c")
        assert records.checksum_of("snap", "sel") == "sha256:c"
        row = LayerRow("sha256:d", "sha256:b", "application/vnd.oci.image.layer.v1.tar+gzip", 3, 9)
        records.remember_layer("snap", "gzip", row)
        assert records.layer_of("snap", "gzip") == row
        assert records.layer_of("snap", "zstd") is None
    finally:
        root.close()


def test_an_existing_blob_is_reused_whatever_its_compression(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "root")
    try:
        records = CacheRecords(root)
        plain = LayerRow("sha256:d", "sha256:p", "application/vnd.oci.image.layer.v1.tar", 9, 9)
        records.remember_layer("base", "none", plain)
        assert records.reusable_layer_of("base", "gzip") == plain
        gzipped = LayerRow(
            "sha256:d", "sha256:g", "application/vnd.oci.image.layer.v1.tar+gzip", 3, 9
        )
        records.remember_layer("base", "gzip", gzipped)
        assert records.reusable_layer_of("base", "gzip") == gzipped
        assert records.reusable_layer_of("other", "gzip") is None
    finally:
        root.close()


def test_stored_result_tells_a_missing_record_from_one_without_a_snapshot(
    tmp_path: Path,
) -> None:
    root = StateRoot.open(tmp_path / "root")
    try:
        records = CacheRecords(root)
        records.put("sha256:empty", None, kind="FileOp", description="", components={"a": 1})
        records.put("sha256:full", "snap-1", kind="ExecOp", description="", components={})
        assert records.stored_result("sha256:empty") == (None,)
        assert records.stored_result("sha256:full") == ("snap-1",)
        assert records.stored_result("sha256:missing") is None
    finally:
        root.close()


def test_a_hit_marks_the_record_and_counts_the_step_in_one_transaction(tmp_path: Path) -> None:
    from strata.solver.explain import previous_step, write_step
    from strata.solver.records import touch_record

    root = StateRoot.open(tmp_path / "root")
    try:
        records = CacheRecords(root)
        records.put("sha256:k", "snap", kind="ExecOp", description="", components={})
        with root.transaction() as db:
            touch_record(db, "sha256:k", 4_000_000_000.0)
            write_step(db, "step-1", "sha256:k", {"op": "x"}, 4_000_000_000.0)
        record = records.get("sha256:k")
        assert record is not None and record.last_used == 4_000_000_000.0
        assert previous_step(root, "step-1") == ("sha256:k", {"op": "x"})
        uses = root.connect().execute(
            "SELECT uses, last_used FROM solver_key_uses WHERE key = 'sha256:k'"
        )
        assert uses.fetchone() == (1, 4_000_000_000.0)
    finally:
        root.close()

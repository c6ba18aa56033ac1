"""Image config history and times at export: stable across cached rebuilds, clamped by
SOURCE_DATE_EPOCH."""

from __future__ import annotations

from strata.export.image_store import build_history, image_config
from strata.gotext import format_rfc3339_nano as rfc3339
from strata.plan.result import HistoryEntry
from strata.solver.layers import ChainLayer
from strata.solver.records import LayerRow
from strata.worker.snapshots.snapshotter import SnapshotInfo

BASE = HistoryEntry("/bin/sh -c #(nop) ADD file", empty_layer=False, created="2024-01-01T00:00:00Z")


def layer(created: float, n: int) -> ChainLayer:
    info = SnapshotInfo(id=n, key=f"s{n}", parent=None, kind="committed", created=created, size=0)
    row = LayerRow(f"sha256:{n:064d}", f"sha256:{n + 100:064d}", "application/x", 1, 1)
    return ChainLayer(info, row)


def test_rfc3339_keeps_sub_seconds_without_trailing_zeros() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1.5) == "1970-01-01T00:00:01.5Z"
    assert rfc3339(1700000000.123456) == "2023-11-14T22:13:20.123456Z"


def test_new_layers_take_their_snapshot_times_and_empty_entries_the_previous_one() -> None:
    history = [
        BASE,
        HistoryEntry("ENV A=1", empty_layer=True, comment="buildkit.dockerfile.v0"),
        HistoryEntry("RUN a # buildkit", empty_layer=False, comment="buildkit.dockerfile.v0"),
        HistoryEntry('CMD ["x"]', empty_layer=True, comment="buildkit.dockerfile.v0"),
        HistoryEntry("RUN b # buildkit", empty_layer=False, comment="buildkit.dockerfile.v0"),
    ]
    layers = [layer(100.0, 1), layer(200.0, 2), layer(300.0, 3)]
    out = build_history(history, layers, source_date_epoch=None, fallback_time=None)
    assert [e["created"] for e in out] == [
        "2024-01-01T00:00:00Z",
        rfc3339(200.0),  # leading empty entry: the first new layer's time
        rfc3339(200.0),
        rfc3339(200.0),
        rfc3339(300.0),
    ]
    assert out[1]["empty_layer"] is True
    assert "empty_layer" not in out[2]


def test_source_date_epoch_clamps_new_entries_only() -> None:
    history = [BASE, HistoryEntry("RUN a # buildkit", empty_layer=False)]
    out = build_history(
        history, [layer(100.0, 1), layer(5000.0, 2)], source_date_epoch=1000, fallback_time=None
    )
    assert out[0]["created"] == "2024-01-01T00:00:00Z"
    assert out[1]["created"] == rfc3339(1000.0)


def test_config_gets_diff_ids_history_and_the_last_time_as_created() -> None:
    history = [BASE, HistoryEntry("COPY x / # buildkit", empty_layer=False)]
    layers = [layer(100.0, 1), layer(250.0, 2)]
    config = image_config({"architecture": "amd64", "os": "linux", "config": {}}, history, layers)
    assert config["rootfs"] == {
        "type": "layers",
        "diff_ids": [item.layer.diff_id for item in layers],
    }
    assert config["created"] == rfc3339(250.0)
    assert config["history"][1]["created_by"] == "COPY x / # buildkit"
    again = image_config({"architecture": "amd64", "os": "linux", "config": {}}, history, layers)
    assert again == config


def test_config_without_any_time_has_created_null_as_buildkit_writes_it() -> None:
    # FROM scratch + ENV: no layer, no base, no SOURCE_DATE_EPOCH (BuildKit
    # exporter/containerimage/writer.go patchImageConfig marshals a nil time).
    history = [HistoryEntry("ENV A=1", empty_layer=True, comment="buildkit.dockerfile.v0")]
    config = image_config({"architecture": "amd64", "os": "linux", "config": {}}, history, [])
    assert "created" in config and config["created"] is None
    assert "created" not in config["history"][0]
    assert config["rootfs"] == {"type": "layers", "diff_ids": []}

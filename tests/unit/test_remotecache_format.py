"""The cache config and manifest in BuildKit's format: shapes, order, round trips."""

from __future__ import annotations

import json

import pytest

from strata.errors import StoreError
from strata.image.oci import MEDIA_OCI_LAYER_GZIP
from strata.remotecache.config import (
    CACHE_CONFIG_MEDIA_TYPE,
    CacheEntry,
    CacheLayer,
    decode_config,
    encode_config,
)
from strata.remotecache.exporter import prepare_cache
from strata.remotecache.manifest import read_cache_document
from strata.remotecache.spec import CacheSpec


def _digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def _layer(n: int) -> CacheLayer:
    return CacheLayer(
        _digest(100 + n),
        MEDIA_OCI_LAYER_GZIP,
        10 + n,
        _digest(200 + n),
        "2026-01-01T00:00:00.000000Z",
    )


BASE, MID, TOP, SIDE = _layer(1), _layer(2), _layer(3), _layer(4)
ENTRIES = [
    CacheEntry(
        _digest(3),
        (BASE, MID, TOP),
        kind="ExecOp",
        description="[2/2] RUN b",
        components={"args": ["b"]},
        checksums=(("sel", _digest(9)),),
    ),
    CacheEntry(_digest(1), (BASE, MID), kind="ExecOp", description="[1/2] RUN a"),
    CacheEntry(_digest(2), (BASE, SIDE), kind="FileOp", description="[build 1/1] COPY x"),
    CacheEntry(_digest(4), (), kind="FileOp", description="[s 1/1] COPY y"),
]


def _descriptors(layers: list[CacheLayer]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {layer.digest: layer.descriptor() for layer in layers}


def test_config_is_sorted_and_the_same_records_give_the_same_bytes() -> None:
    first, layers = encode_config(ENTRIES)
    again, _ = encode_config(list(reversed(ENTRIES)))
    assert first == again
    document = json.loads(first)
    assert [r["digest"] for r in document["records"]] == sorted(e.key for e in ENTRIES)
    assert [layer.digest for layer in layers] == sorted(
        {BASE.digest, MID.digest, TOP.digest, SIDE.digest}
    )
    # Go omitempty: a parent of 0 is absent; the root layer's parent is -1.
    by_blob = {item["blob"]: item for item in document["layers"]}
    assert by_blob[BASE.digest]["parent"] == -1
    assert "parent" not in by_blob[MID.digest]  # BASE sorts first: index 0


def test_config_round_trip_keeps_chains_components_and_checksums() -> None:
    data, layers = encode_config(ENTRIES)
    decoded = {e.key: e for e in decode_config(data, _descriptors(layers))}
    assert set(decoded) == {e.key for e in ENTRIES}
    top = decoded[_digest(3)]
    assert [layer.digest for layer in top.layers] == [BASE.digest, MID.digest, TOP.digest]
    assert [layer.diff_id for layer in top.layers] == [BASE.diff_id, MID.diff_id, TOP.diff_id]
    assert top.components == {"args": ["b"]}
    assert top.checksums == (("sel", _digest(9)),)
    assert decoded[_digest(4)].layers == ()


def test_records_without_strata_field_or_with_missing_blobs_are_skipped() -> None:
    data, layers = encode_config(ENTRIES)
    document = json.loads(data)
    document["records"].append({"digest": _digest(77), "layers": [{"layer": 0}]})
    missing = {k: v for k, v in _descriptors(layers).items() if k != SIDE.digest}
    decoded = decode_config(json.dumps(document).encode(), missing)
    assert {e.key for e in decoded} == {_digest(1), _digest(3), _digest(4)}
    with pytest.raises(StoreError):
        decode_config(b"[1, 2]", {})


@pytest.mark.parametrize(
    ("attrs", "media_type"),
    [
        ((), "application/vnd.oci.image.manifest.v1+json"),
        ((("image-manifest", "false"),), "application/vnd.oci.image.index.v1+json"),
        (
            (("oci-mediatypes", "false"),),
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ),
    ],
)
def test_manifest_forms_read_back(attrs: tuple[tuple[str, str], ...], media_type: str) -> None:
    prepared = prepare_cache(ENTRIES, CacheSpec("local", (("dest", "/x"), *attrs)))
    assert prepared.document.media_type == media_type
    found = read_cache_document(prepared.document.body)
    assert found.config is not None
    assert found.config["mediaType"] == CACHE_CONFIG_MEDIA_TYPE
    assert found.config["digest"] == prepared.config_descriptor["digest"]
    assert {d["digest"] for d in found.blobs} == {d["digest"] for d in prepared.layers}
    for desc in found.blobs:
        assert desc["annotations"]["containerd.io/uncompressed"].startswith("sha256:")
        assert "buildkit/createdat" in desc["annotations"]
    if ("oci-mediatypes", "false") in attrs:
        assert {d["mediaType"] for d in found.blobs} == {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        }


def test_an_image_manifest_is_no_cache_config() -> None:
    body = json.dumps(
        {
            "schemaVersion": 2,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(5),
                "size": 3,
            },
            "layers": [],
        }
    ).encode()
    found = read_cache_document(body)
    assert found.config is None and found.image_config is not None

"""Registry misbehaviour seen through `strata build` (the fault-injecting fake registry):
what the client absorbs (429 then success, HEAD 405 without a digest header, a blob
stream cut in the middle) ends in a built image; what it must refuse (a body whose digest
is wrong, a registry answering 503, a schema 1 manifest) is one error line, exit 1, and
nothing of it in the content store."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.integration.pull_support import (
    build,
    error_line,
    layer_tar_gz,
    project,
    write_strata_config,
)
from tests.unit.fake_registry import FakeRegistry

pytestmark = pytest.mark.timeout(300)


def serve(registry: FakeRegistry) -> tuple[str, str]:
    """`faulty/base:1`, a one-layer image; (its reference, its layer digest)."""
    # 1 MiB that gzip cannot shrink, so a cut after 100 kB is in the middle.
    layer, diff_id = layer_tar_gz({"payload.bin": random.Random(7).randbytes(1 << 20)})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    layer_digest = registry.put_blob(layer)
    registry.put_json_manifest(
        "faulty/base",
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": registry.put_blob(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        },
        tags=["1"],
    )
    return f"{registry.host}/faulty/base:1", layer_digest


def test_faults_the_client_absorbs_end_in_a_built_image(tmp_path: Path) -> None:
    with FakeRegistry() as registry:
        ref, layer = serve(registry)
        context = project(tmp_path / "ctx", f"FROM {ref}\nCOPY f /f\n", {"f": "x"})
        f = registry.faults
        f.statuses, f.retry_after = [429], "0"
        f.head_405 = f.no_digest_header = True
        # Blob GETs are cut after 100 kB: the config's (smaller, served whole) uses up
        # the first cut, the layer's stream is the second.
        f.cut_after, f.cuts = 100_000, 2
        done = build(tmp_path / "root", context)
        ranged = [r.headers.get("range") for r in registry.log("GET", layer)]

    assert done.returncode == 0, done.stderr.decode()
    assert ranged == [None, "bytes=100000-"], ranged


@pytest.mark.parametrize("fault", ["wrong-digest", "503", "schema1"])
def test_faults_the_client_refuses_are_one_line_and_store_nothing(
    tmp_path: Path, fault: str
) -> None:
    root = tmp_path / "root"
    with FakeRegistry() as registry:
        ref, layer = serve(registry)
        context = project(tmp_path / "ctx", f"FROM {ref}\nCOPY f /f\n", {"f": "x"})
        if fault == "wrong-digest":
            good = registry._blobs[layer]
            registry.faults.wrong_body[layer] = bytes(reversed(good))
        elif fault == "503":
            registry.faults.statuses = [503] * 50
        else:
            schema1 = {"schemaVersion": 1, "name": "faulty/base", "tag": "1", "fsLayers": []}
            registry.put_manifest(
                "faulty/base",
                json.dumps(schema1).encode(),
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
                tags=["1"],
            )
        done = build(root, context)

    line = error_line(done)
    assert registry.host in line, line
    expected = {
        "wrong-digest": f"blob digest mismatch: expected {layer}",
        "503": "unexpected status 503",
        "schema1": "support Docker Image manifest version 2, schema 1 has been removed",
    }[fault]
    assert expected in line, line
    blob_files = {p.name for p in (root / "blobs" / "sha256").glob("*")}
    assert layer.split(":")[1] not in blob_files
    assert not list((root / "ingest").glob(f"{layer.split(':')[1]}*"))


@pytest.mark.parametrize("limit", [1, 2])
def test_max_registry_concurrency_bounds_parallel_layer_downloads(
    tmp_path: Path, limit: int
) -> None:
    config = write_strata_config(
        tmp_path / "strata.toml", f"[system]\nmax-registry-concurrency = {limit}\n"
    )
    with FakeRegistry() as registry:
        layers = [layer_tar_gz({f"l{n}": random.Random(n).randbytes(256 << 10)}) for n in range(4)]
        config_blob = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
            }
        ).encode()
        registry.put_json_manifest(
            "faulty/layers",
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": registry.put_blob(config_blob),
                    "size": len(config_blob),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": registry.put_blob(data),
                        "size": len(data),
                    }
                    for data, _ in layers
                ],
            },
            tags=["1"],
        )
        registry.faults.chunk_delay = 0.01  # each layer streams for about 0.2 s
        context = project(
            tmp_path / "ctx", f"FROM {registry.host}/faulty/layers:1\nCOPY f /f\n", {"f": "x"}
        )
        done = build(tmp_path / "root", context, config=config)
        most = registry.max_in_flight

    assert done.returncode == 0, done.stderr.decode()
    assert 1 <= most <= limit

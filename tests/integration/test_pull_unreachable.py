"""Registries that are not there: `strata build --pull` with the registry stopped is one
error line naming it (no falling back to the stored image: `--pull` always asks), and a
registry that accepts connections but never answers ends in a timeout message after the
configured `[system] registry-timeout`, not a hang."""

from __future__ import annotations

import json
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


def serve_small_image(registry: FakeRegistry) -> str:
    layer, diff_id = layer_tar_gz({"small.txt": b"small\n"})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    registry.put_json_manifest(
        "down/base",
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
                    "digest": registry.put_blob(layer),
                    "size": len(layer),
                }
            ],
        },
        tags=["1"],
    )
    return f"{registry.host}/down/base:1"


def test_build_pull_with_the_registry_down_fails_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with FakeRegistry() as registry:
        ref = serve_small_image(registry)
        context = project(tmp_path / "ctx", f"FROM {ref}\nCOPY f /f\n", {"f": "x"})
        first = build(root, context)
    host = ref.split("/")[0]

    forced = build(root, context, "--pull", timeout=120)
    fallback = build(root, context, timeout=120)

    assert first.returncode == 0, first.stderr.decode()
    line = error_line(forced)
    assert f"cannot reach {host}" in line, line
    assert fallback.returncode == 0, fallback.stderr.decode()
    assert "using the image stored locally" in fallback.stderr.decode()


def test_a_registry_that_never_answers_times_out(tmp_path: Path) -> None:
    config = write_strata_config(tmp_path / "strata.toml", "[system]\nregistry-timeout = 1\n")
    with FakeRegistry() as registry:
        ref = serve_small_image(registry)
        context = project(tmp_path / "ctx", f"FROM {ref}\nCOPY f /f\n", {"f": "x"})
        registry.faults.hang = True
        # Without the client's timeout this runs past 60 s: the server gives up on each
        # request only after 30 s, and the client tries 5 times (TimeoutExpired fails it).
        stalled = build(tmp_path / "root", context, config=config, timeout=60)
        asked = len(registry.log(contains="/v2/down/base/manifests/1"))

    line = error_line(stalled)
    assert registry.host in line, line
    assert f"{registry.host}: timeout: no answer within 1s" in line, line
    assert line.count(registry.host) == 2, line  # the reference, and the registry once
    assert asked >= 1

"""A multi-platform OCI index on a real registry (linux/amd64, linux/arm64 and BuildKit's
`unknown/unknown` attestation manifest): FROM picks the host's platform, `FROM
--platform` another one (a COPY-only build needs no emulation), and a platform the index
lacks is one error listing the platforms it has, the attestation not among them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strata.plan.platforms import native_platform
from tests.integration.pull_support import (
    build,
    error_line,
    project,
    push_blob,
    push_image,
    push_manifest,
    run_strata,
)
from tests.integration.registry_servers import RegistryServer, registry_available, registry_server

_missing = registry_available()
pytestmark = [
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
    pytest.mark.timeout(300),
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def seed_index(reg: RegistryServer) -> dict[str, dict[str, object]]:
    """`multi/base:1`: an index of amd64, arm64 and an attestation for the amd64 one."""
    amd64 = push_image(reg.url, "multi/base", "amd64", {"arch.txt": b"amd64\n"})
    arm64 = push_image(
        reg.url, "multi/base", "arm64", {"arch.txt": b"arm64\n"}, architecture="arm64"
    )
    statement = push_blob(reg.url, "multi/base", b'{"_type":"https://in-toto.io/Statement/v0.1"}')
    config = push_blob(
        reg.url,
        "multi/base",
        json.dumps(
            {"architecture": "unknown", "os": "unknown", "config": {}, "rootfs": {"type": "layers"}}
        ).encode(),
    )
    attestation = push_manifest(
        reg.url,
        "multi/base",
        "attestation",
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [
                {
                    "mediaType": "application/vnd.in-toto+json",
                    "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"},
                    **statement,
                }
            ],
        },
    )
    index = push_manifest(
        reg.url,
        "multi/base",
        "1",
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {**amd64, "platform": {"architecture": "amd64", "os": "linux"}},
                {**arm64, "platform": {"architecture": "arm64", "os": "linux"}},
                {
                    **attestation,
                    "platform": {"architecture": "unknown", "os": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.digest": str(amd64["digest"]),
                        "vnd.docker.reference.type": "attestation-manifest",
                    },
                },
            ],
        },
    )
    return {"amd64": amd64, "arm64": arm64, "attestation": attestation, "index": index}


def image_config(root: Path, name: str) -> dict[str, object]:
    done = run_strata(root, "inspect", name)
    assert done.returncode == 0, done.stderr.decode()
    shown = json.loads(done.stdout)
    assert isinstance(shown, list) and len(shown) == 1
    return dict(shown[0])


def test_from_an_index_picks_the_host_platform_or_the_one_asked_for(tmp_path: Path) -> None:
    host = native_platform()
    if host.architecture not in ("amd64", "arm64") or host.os != "linux":
        pytest.skip(f"the index holds linux/amd64 and linux/arm64, not {host}")
    other = "arm64" if host.architecture == "amd64" else "amd64"
    root = tmp_path / "root"
    with registry_server(tmp_path) as reg:
        seeded = seed_index(reg)
        ref = f"{reg.host}/multi/base:1"
        native = build(
            root,
            project(tmp_path / "native", f"FROM {ref}\nCOPY f /f\n", {"f": "x"}),
            "-t",
            "native",
        )
        chosen = build(
            root,
            project(
                tmp_path / "other", f"FROM --platform=linux/{other} {ref}\nCOPY f /f\n", {"f": "x"}
            ),
            "-t",
            "other",
        )
        missing = build(
            root, project(tmp_path / "missing", f"FROM --platform=linux/s390x {ref}\nCOPY f /f\n")
        )
        fetched = {
            name: reg.count("GET", rf"/v2/multi/base/manifests/{seeded[name]['digest']}")
            for name in ("amd64", "arm64", "attestation")
        }

    assert native.returncode == 0, native.stderr.decode()
    assert chosen.returncode == 0, chosen.stderr.decode()
    assert image_config(root, "native")["Architecture"] == host.architecture
    assert image_config(root, "other")["Architecture"] == other
    assert fetched["amd64"] >= 1 and fetched["arm64"] >= 1
    assert fetched["attestation"] == 0

    line = error_line(missing)
    assert reg.host in line, line
    assert "linux/s390x" in line, line
    assert "linux/amd64" in line and "linux/arm64" in line, line
    assert "unknown" not in line, line


def test_strata_pull_with_a_platform_stores_that_manifest(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with registry_server(tmp_path) as reg:
        seeded = seed_index(reg)
        ref = f"{reg.host}/multi/base:1"
        pulled = run_strata(root, "pull", "--platform", "linux/arm64", ref)
        missing = run_strata(root, "pull", "--platform", "windows/amd64", ref)
        arm64_layers = reg.count("GET", r"/v2/multi/base/blobs/", status=200)

    out = pulled.stdout.decode()
    assert pulled.returncode == 0, pulled.stderr.decode()
    assert f"Digest: {seeded['index']['digest']}" in out.splitlines()
    assert out.splitlines()[-1] == ref
    assert image_config(root, ref)["Architecture"] == "arm64"
    assert arm64_layers == 2  # the arm64 config and layer; nothing of amd64 or the attestation
    line = error_line(missing)
    assert "windows/amd64" in line and "linux/arm64" in line and "unknown" not in line, line

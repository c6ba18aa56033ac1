"""The registry client's transport and manifest half, against the in-process fake registry."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strata.errors import RegistryError
from strata.image.oci import (
    MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER_GZIP,
    MEDIA_OCI_MANIFEST,
)
from strata.plan.ops import Platform
from strata.registry.client import RegistryClient
from strata.registry.manifests import MAX_MANIFEST_SIZE, SCHEMA1_REFUSED
from strata.store.content import ContentStore
from strata.store.reference import parse_reference
from strata.store.root import StateRoot
from tests.unit.fake_registry import (
    FakeAuthorizer,
    FakeConfig,
    FakeEndpoint,
    FakeRegistry,
    digest_of,
    make_tls_files,
)

REPO = "library/app"


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as reg:
        yield reg


def make_client(
    config: FakeConfig | None = None,
    authorizer: FakeAuthorizer | None = None,
    timeout: float = 5.0,
) -> RegistryClient:
    auth = authorizer or FakeAuthorizer()
    client = RegistryClient(config or FakeConfig(), None, timeout=timeout, authorizer=auth)
    auth.fetch = client.http_fetch
    return client


def put_image(
    reg: FakeRegistry, repo: str = REPO, tags: tuple[str, ...] = ("1",), tag_note: str = ""
) -> tuple[dict[str, Any], bytes, bytes]:
    """A one-layer OCI image; returns (manifest descriptor, config bytes, layer bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "note": tag_note}).encode()
    layer = b"layer bytes " + tag_note.encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {
            "mediaType": MEDIA_OCI_CONFIG,
            "digest": reg.put_blob(config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": MEDIA_OCI_LAYER_GZIP, "digest": reg.put_blob(layer), "size": len(layer)}
        ],
    }
    return reg.put_json_manifest(repo, manifest, tags), config, layer


def ref_for(reg: FakeRegistry, tail: str = f"{REPO}:1") -> Any:
    return parse_reference(f"{reg.host}/{tail}")


# -- resolve --------------------------------------------------------------------------------


def test_resolve_uses_head_with_buildkits_accept_list(registry: FakeRegistry) -> None:
    desc, _, _ = put_image(registry)
    with make_client() as client:
        got = client.resolve(ref_for(registry))
    assert got == desc
    assert [r.method for r in registry.log(contains="/manifests/")] == ["HEAD"]
    accept = registry.log("HEAD")[0].headers["accept"]
    assert accept.split(", ") == [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        MEDIA_OCI_MANIFEST,
        MEDIA_OCI_INDEX,
        "*/*",
    ]


def test_resolve_falls_back_to_get_without_digest_header(registry: FakeRegistry) -> None:
    desc, _, _ = put_image(registry)
    registry.faults.no_digest_header = True
    with make_client() as client:
        got = client.resolve(ref_for(registry))
    assert got == desc
    assert [r.method for r in registry.log(contains="/manifests/")] == ["HEAD", "GET"]


def test_resolve_retries_a_405_head_as_get(registry: FakeRegistry) -> None:
    desc, _, _ = put_image(registry)
    registry.faults.head_405 = True
    with make_client() as client:
        assert client.resolve(ref_for(registry)) == desc
    assert [r.method for r in registry.log(contains="/manifests/")] == ["HEAD", "GET"]


def test_media_type_is_sniffed_when_content_type_is_missing(registry: FakeRegistry) -> None:
    docker = {
        "schemaVersion": 2,
        "config": {"mediaType": "x", "digest": digest_of(b"c"), "size": 1},
        "layers": [],
    }
    registry.put_json_manifest(REPO, docker, ["docker"])
    index = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": []}
    registry.put_json_manifest(REPO, index, ["index"])
    registry.faults.no_content_type = True
    with make_client() as client:
        assert (
            client.resolve(ref_for(registry, f"{REPO}:docker"))["mediaType"]
            == MEDIA_DOCKER_MANIFEST
        )
        assert client.resolve(ref_for(registry, f"{REPO}:index"))["mediaType"] == MEDIA_OCI_INDEX


def test_content_type_parameters_are_stripped(registry: FakeRegistry) -> None:
    put_image(registry)
    registry.faults.content_type = MEDIA_OCI_MANIFEST + "; charset=utf-8"
    with make_client() as client:
        assert client.resolve(ref_for(registry))["mediaType"] == MEDIA_OCI_MANIFEST


@pytest.mark.parametrize(
    ("content_type", "signed"),
    [
        ("application/vnd.docker.distribution.manifest.v1+prettyjws", True),
        ("application/vnd.docker.distribution.manifest.v1+json", False),
        ("text/plain", False),
        (None, True),
    ],
)
def test_schema1_is_refused_with_buildkits_message(
    registry: FakeRegistry, content_type: str | None, signed: bool
) -> None:
    body: dict[str, Any] = {"schemaVersion": 1, "name": REPO, "tag": "old", "fsLayers": []}
    if signed:
        body["signatures"] = [{"header": {}}]
    registry.put_manifest(REPO, json.dumps(body).encode(), content_type or "", ["old"])
    registry.faults.no_content_type = content_type is None
    with make_client() as client, pytest.raises(RegistryError) as caught:
        client.resolve(ref_for(registry, f"{REPO}:old"))
    assert caught.value.message == SCHEMA1_REFUSED
    assert "schema 1 has been removed" in SCHEMA1_REFUSED


def test_fetched_manifest_is_verified_against_its_digest(registry: FakeRegistry) -> None:
    desc, _, _ = put_image(registry)
    registry.faults.wrong_body[desc["digest"]] = b'{"schemaVersion":2,"layers":[]}' + b" " * 10
    with make_client() as client, pytest.raises(RegistryError, match=r"mismatch|bytes, expected"):
        client.fetch_manifest(ref_for(registry), desc)


def test_resolve_by_digest_checks_the_body_against_the_digest(registry: FakeRegistry) -> None:
    desc, _, _ = put_image(registry)
    registry.faults.no_content_type = True  # so the resolve must GET the body
    registry.faults.wrong_body[desc["digest"]] = b'{"schemaVersion":2,"manifests":[]}'
    with make_client() as client, pytest.raises(RegistryError, match="digest mismatch"):
        client.resolve(ref_for(registry, f"{REPO}@{desc['digest']}"))


def test_manifest_over_the_size_cap_is_refused(registry: FakeRegistry) -> None:
    padding = "x" * (MAX_MANIFEST_SIZE + 1)
    big = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": [], "pad": padding}
    registry.put_json_manifest(REPO, big, ["big"])
    registry.faults.no_digest_header = True
    with make_client() as client, pytest.raises(RegistryError, match="manifest too large"):
        client.resolve(ref_for(registry, f"{REPO}:big"))


def test_unknown_tag_is_not_found(registry: FakeRegistry) -> None:
    ref = ref_for(registry, f"{REPO}:missing")
    with make_client() as client, pytest.raises(RegistryError) as caught:
        client.resolve(ref)
    assert caught.value.message == f"{ref}: not found"
    assert caught.value.registry == registry.host


def test_connections_are_reused(registry: FakeRegistry) -> None:
    desc, _, _ = put_image(registry)
    registry.faults.auth = "basic"
    registry.faults.no_digest_header = True  # HEAD, then GET with a body
    with make_client(authorizer=FakeAuthorizer("user", "secret")) as client:
        for _ in range(3):
            assert client.resolve(ref_for(registry)) == desc
        client.fetch_manifest(ref_for(registry), desc)
    assert len(registry.requests) == 8  # a 401, then HEAD + GET three times, one GET
    assert len({r.client_port for r in registry.requests}) == 1


# -- auth -----------------------------------------------------------------------------------


def test_basic_challenge_is_answered_with_credentials(registry: FakeRegistry) -> None:
    desc, _, _ = put_image(registry)
    registry.faults.auth = "basic"
    with make_client(authorizer=FakeAuthorizer("user", "secret")) as client:
        assert client.resolve(ref_for(registry)) == desc
    heads = registry.log("HEAD")
    assert "authorization" not in heads[0].headers
    assert heads[-1].headers["authorization"].startswith("Basic ")


def test_wrong_credentials_end_in_pull_access_denied(registry: FakeRegistry) -> None:
    put_image(registry)
    registry.faults.auth = "basic"
    ref = ref_for(registry)
    with (
        make_client(authorizer=FakeAuthorizer("user", "wrong")) as client,
        pytest.raises(RegistryError) as caught,
    ):
        client.resolve(ref)
    message = caught.value.message
    assert message.startswith(
        f"{ref}: pull access denied, repository does not exist or may require authorization"
    )
    assert registry.host in message
    assert "wrong" not in message and "Basic" not in message


def test_bearer_challenge_fetches_a_token_through_the_client(registry: FakeRegistry) -> None:
    desc, config, _ = put_image(registry)
    registry.faults.auth = "bearer"
    with make_client() as client:
        image = client.resolve_image(ref_for(registry), Platform("linux", "amd64"))
    assert image.manifest_digest == desc["digest"]
    assert image.config == config
    token_requests = registry.log("GET", "/token")
    assert len(token_requests) == 1
    assert token_requests[0].query["scope"] == [f"repository:{REPO}:pull"]


# -- retries --------------------------------------------------------------------------------


def test_429_is_retried_after_retry_after(registry: FakeRegistry) -> None:
    desc, _, _ = put_image(registry)
    registry.faults.statuses = [429, 429]
    registry.faults.retry_after = "0"
    with make_client() as client:
        assert client.resolve(ref_for(registry)) == desc
    assert len(registry.log("HEAD")) == 3


def test_a_long_retry_after_is_reported_not_slept_through(registry: FakeRegistry) -> None:
    put_image(registry)
    registry.faults.statuses = [429]
    registry.faults.retry_after = "3600"
    with make_client() as client, pytest.raises(RegistryError, match="unexpected status 429"):
        client.resolve(ref_for(registry))
    assert len(registry.log("HEAD")) == 1


def test_503_once_is_retried_on_the_last_host(registry: FakeRegistry) -> None:
    desc, _, _ = put_image(registry)
    registry.faults.statuses = [503]
    with make_client() as client:
        assert client.resolve(ref_for(registry)) == desc
    assert len(registry.log("HEAD")) == 2


def test_the_same_5xx_twice_is_not_retried_again(registry: FakeRegistry) -> None:
    put_image(registry)
    registry.faults.statuses = [503] * 10
    with make_client() as client, pytest.raises(RegistryError, match="unexpected status 503"):
        client.resolve(ref_for(registry))
    assert len(registry.log("HEAD")) == 2


def test_a_registry_that_never_answers_is_a_timeout_error(registry: FakeRegistry) -> None:
    put_image(registry)
    registry.faults.hang = True
    with make_client(timeout=0.2) as client, pytest.raises(RegistryError) as caught:
        client.resolve(ref_for(registry))
    assert ": timeout" in caught.value.message
    assert caught.value.registry == registry.host
    assert len(registry.log("HEAD")) == 5


# -- endpoints ------------------------------------------------------------------------------


def test_mirror_is_asked_first_with_ns(registry: FakeRegistry) -> None:
    with FakeRegistry() as mirror:
        desc, _, _ = put_image(mirror)
        config = FakeConfig(
            {
                "docker.io": [
                    FakeEndpoint("http", mirror.host, mirror=True),
                    FakeEndpoint("http", registry.host),
                ]
            }
        )
        with make_client(config) as client:
            assert client.resolve(parse_reference(f"{REPO}:1")) == desc
        assert mirror.log("HEAD")[0].query == {"ns": ["docker.io"]}
    assert registry.requests == []


@pytest.mark.parametrize("status", [404, 403, 503])
def test_a_failing_mirror_hands_over_to_the_origin(registry: FakeRegistry, status: int) -> None:
    desc, _, _ = put_image(registry)
    with FakeRegistry() as mirror:
        mirror.faults.statuses = [status] * 10
        config = FakeConfig(
            {
                "docker.io": [
                    FakeEndpoint("http", mirror.host, mirror=True),
                    FakeEndpoint("http", registry.host),
                ]
            }
        )
        with make_client(config) as client:
            assert client.resolve(parse_reference(f"{REPO}:1")) == desc
        assert len(mirror.log("HEAD")) == 1  # 5xx is retried only on the last host
    assert registry.log("HEAD")[0].query == {}


def test_an_unreachable_mirror_hands_over_to_the_origin(registry: FakeRegistry) -> None:
    desc, _, _ = put_image(registry)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    config = FakeConfig(
        {
            "docker.io": [
                FakeEndpoint("http", dead, mirror=True),
                FakeEndpoint("http", registry.host),
            ]
        }
    )
    with make_client(config) as client:
        assert client.resolve(parse_reference(f"{REPO}:1")) == desc


def test_unreachable_origin_names_the_host(registry: FakeRegistry) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    with make_client() as client, pytest.raises(RegistryError) as caught:
        client.resolve(parse_reference(f"{dead}/{REPO}:1"))
    assert caught.value.message.startswith(f"{dead}: cannot reach {dead}")


def test_https_falls_back_to_http_when_allowed(registry: FakeRegistry) -> None:
    desc, _, _ = put_image(registry)
    config = FakeConfig(
        {
            registry.host: [
                FakeEndpoint("https", registry.host, verify_tls=False, http_fallback=True)
            ]
        }
    )
    with make_client(config) as client:
        assert client.resolve(ref_for(registry)) == desc
        assert client.resolve(ref_for(registry)) == desc
    # the first TLS handshake failed; afterwards the host is remembered as plain HTTP
    assert len(registry.log("HEAD")) == 2


def test_https_without_fallback_is_a_tls_error(registry: FakeRegistry) -> None:
    put_image(registry)
    config = FakeConfig({registry.host: [FakeEndpoint("https", registry.host, verify_tls=False)]})
    with make_client(config) as client, pytest.raises(RegistryError, match="TLS error"):
        client.resolve(ref_for(registry))


def test_tls_registry_needs_its_ca(tmp_path: Path) -> None:
    ca, cert, key = make_tls_files(tmp_path)
    with FakeRegistry(tls=(cert, key)) as registry:
        desc, _, _ = put_image(registry)
        ref = ref_for(registry)
        plain = FakeConfig({registry.host: [FakeEndpoint("https", registry.host)]})
        with make_client(plain) as client, pytest.raises(RegistryError, match="TLS error"):
            client.resolve(ref)
        trusted = FakeConfig(
            {registry.host: [FakeEndpoint("https", registry.host, ca_files=(ca,))]}
        )
        with make_client(trusted) as client:
            assert client.resolve(ref) == desc
        unverified = FakeConfig(
            {registry.host: [FakeEndpoint("https", registry.host, verify_tls=False)]}
        )
        with make_client(unverified) as client:
            assert client.resolve(ref) == desc


def test_proxy_from_the_environment_is_used(
    registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    desc, _, _ = put_image(registry)
    # The fake registry stands in for the proxy: it gets the absolute URL and serves it.
    monkeypatch.setenv("HTTP_PROXY", f"http://{registry.host}")
    monkeypatch.setenv("http_proxy", f"http://{registry.host}")
    config = FakeConfig({"registry.invalid": [FakeEndpoint("http", "registry.invalid")]})
    with make_client(config) as client:
        assert client.resolve(parse_reference(f"registry.invalid/{REPO}:1")) == desc
    assert registry.log("HEAD")[0].path == f"/v2/{REPO}/manifests/1"
    monkeypatch.setenv("NO_PROXY", "registry.invalid")
    monkeypatch.setenv("no_proxy", "registry.invalid")
    with make_client(config) as client, pytest.raises(RegistryError, match="cannot reach"):
        client.resolve(parse_reference(f"registry.invalid/{REPO}:1"))


# -- images ---------------------------------------------------------------------------------


def platform_index(
    reg: FakeRegistry, entries: list[tuple[dict[str, Any], dict[str, Any] | None]]
) -> dict[str, Any]:
    manifests = []
    for desc, platform in entries:
        entry = dict(desc)
        if platform is not None:
            entry["platform"] = platform
        manifests.append(entry)
    index = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": manifests}
    return reg.put_json_manifest(REPO, index, ["multi"])


def test_resolve_image_picks_the_platform_from_an_index(registry: FakeRegistry) -> None:
    amd, _, _ = put_image(registry, tags=(), tag_note="amd64")
    arm, arm_config, arm_layer = put_image(registry, tags=(), tag_note="arm64")
    attestation, _, _ = put_image(registry, tags=(), tag_note="att")
    attestation = {
        **attestation,
        "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
    }
    index = platform_index(
        registry,
        [
            (amd, {"os": "linux", "architecture": "amd64"}),
            (attestation, {"os": "unknown", "architecture": "unknown"}),
            (arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        ],
    )
    with make_client() as client:
        image = client.resolve_image(ref_for(registry, f"{REPO}:multi"), Platform("linux", "arm64"))
    assert image.digest == index["digest"]
    assert image.manifest_digest == arm["digest"]
    assert image.config == arm_config
    assert [layer["digest"] for layer in image.layers] == [digest_of(arm_layer)]
    assert image.media_type == MEDIA_OCI_MANIFEST
    assert image.source == f"{registry.host}/{REPO}"


def test_no_matching_platform_lists_what_the_index_offers(registry: FakeRegistry) -> None:
    amd, _, _ = put_image(registry, tags=(), tag_note="amd64")
    platform_index(registry, [(amd, {"os": "linux", "architecture": "amd64"})])
    with make_client() as client, pytest.raises(RegistryError) as caught:
        client.resolve_image(ref_for(registry, f"{REPO}:multi"), Platform("linux", "s390x"))
    assert "no match for platform linux/s390x" in caught.value.message
    assert "available: linux/amd64" in caught.value.message


def test_nested_indexes_are_followed(registry: FakeRegistry) -> None:
    arm, _, _ = put_image(registry, tags=(), tag_note="arm")
    inner = registry.put_json_manifest(
        REPO,
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_INDEX,
            "manifests": [
                {**arm, "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}}
            ],
        },
    )
    platform_index(registry, [(inner, None)])
    with make_client() as client:
        image = client.resolve_image(
            ref_for(registry, f"{REPO}:multi"), Platform("linux", "arm", "v7")
        )
    assert image.manifest_digest == arm["digest"]


def test_a_manifest_got_by_the_resolve_is_not_fetched_again(registry: FakeRegistry) -> None:
    desc, config, _ = put_image(registry)
    registry.faults.head_405 = True
    with make_client() as client:
        image = client.resolve_image(ref_for(registry), Platform("linux", "amd64"))
    assert image.manifest_digest == desc["digest"]
    assert image.config == config
    assert [r.method for r in registry.log(contains="/manifests/")] == ["HEAD", "GET"]


def test_config_with_wrong_bytes_is_refused(registry: FakeRegistry) -> None:
    _, config, _ = put_image(registry)
    registry.faults.wrong_body[digest_of(config)] = config.replace(b"amd64", b"arm64")
    with make_client() as client, pytest.raises(RegistryError, match="blob digest mismatch"):
        client.resolve_image(ref_for(registry), Platform("linux", "amd64"))


# -- against Debian's docker-registry (distribution 2.8), an independent server ----------------


@pytest.fixture
def real_registry(tmp_path: Path) -> Iterator[str]:
    """`docker-registry serve` on 127.0.0.1, port 0; yields its host:port."""
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        pytest.skip("needs docker-registry and skopeo (scripts/install-deps.sh)")
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'storage'}\n"
        "http:\n  addr: 127.0.0.1:0\n"
    )
    log_path = tmp_path / "registry.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and server.poll() is None:
            found = re.search(
                r"listening on (127\.0\.0\.1:\d+)", log_path.read_text("utf-8", "replace")
            )
            if found:
                yield found[1]
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"docker-registry did not start: {log_path.read_text('utf-8', 'replace')}")
    finally:
        server.terminate()
        server.wait(10)


def test_pull_from_docker_registry_pushed_by_skopeo(real_registry: str, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    blobs_dir = layout / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True)

    def put(data: bytes, media_type: str) -> dict[str, Any]:
        digest = digest_of(data)
        (blobs_dir / digest.removeprefix("sha256:")).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    layer_data = gzip.compress(os.urandom(200_000))
    layer = put(layer_data, MEDIA_OCI_LAYER_GZIP)
    config = put(
        json.dumps(
            {"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode(),
        MEDIA_OCI_CONFIG,
    )
    manifest = put(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MEDIA_OCI_MANIFEST,
                "config": config,
                "layers": [layer],
            }
        ).encode(),
        MEDIA_OCI_MANIFEST,
    )
    index = {
        "schemaVersion": 2,
        "manifests": [{**manifest, "platform": {"os": "linux", "architecture": "arm64"}}],
    }
    index_desc = put(json.dumps(index).encode(), MEDIA_OCI_INDEX)
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {**index_desc, "annotations": {"org.opencontainers.image.ref.name": "t"}}
                ],
            }
        )
    )
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    remote = f"docker://{real_registry}/lib/app:1"
    skopeo = ["skopeo", "copy", "--quiet", "--all", "--preserve-digests", f"oci:{layout}:t"]
    subprocess.run([*skopeo, "--dest-tls-verify=false", remote], check=True, capture_output=True)
    # what the registry holds, as another client reads it
    raw_index = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", remote],
        check=True,
        capture_output=True,
    ).stdout

    ref = parse_reference(f"{real_registry}/lib/app:1")
    root = StateRoot.open(tmp_path / "root")
    try:
        content = ContentStore(root)
        # a partial left behind: the real registry must answer the ranged GET with 206
        ingest = root.path / "ingest"
        ingest.mkdir()
        (ingest / (layer["digest"].removeprefix("sha256:") + ".part")).write_bytes(
            layer_data[:1000]
        )
        with make_client() as client:
            image = client.resolve_image(ref, Platform("linux", "arm64", "v8"))
            client.fetch_blobs(ref, image.layers, content)
        assert image.digest == digest_of(raw_index) == index_desc["digest"]
        assert image.manifest_digest == manifest["digest"]
        with content.open(layer["digest"]) as fh:
            assert fh.read() == layer_data
    finally:
        root.close()

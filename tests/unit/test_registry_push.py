"""Pushing through the registry client, against the in-process fake registry: HEAD skips,
cross-repository mounts (201, and 202 falling back to an upload), monolithic and chunked
uploads (OCI-Chunk-Min-Length, 416 recovery), relative and absolute Locations,
manifests after their blobs, and the denial message."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.errors import RegistryError
from strata.image.oci import MEDIA_OCI_CONFIG, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST, Descriptor
from strata.registry.client import RegistryClient
from strata.registry.push import BlobEvent, ImagePusher
from strata.registry.sources import BlobSources, mount_candidates
from strata.store.content import ContentStore
from strata.store.reference import parse_reference
from strata.store.root import StateRoot
from tests.unit.fake_registry import FakeAuthorizer, FakeConfig, FakeRegistry, digest_of


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as reg:
        yield reg


@pytest.fixture
def root(tmp_path: Path) -> Iterator[StateRoot]:
    opened = StateRoot.open(tmp_path / "root")
    try:
        yield opened
    finally:
        opened.close()


def make_client(authorizer: FakeAuthorizer | None = None) -> RegistryClient:
    auth = authorizer or FakeAuthorizer()
    client = RegistryClient(FakeConfig(), None, timeout=5.0, authorizer=auth)
    auth.fetch = client.http_fetch
    return client


def store_image(root: StateRoot, layers: list[bytes]) -> tuple[Descriptor, list[str]]:
    """An image in the content store; returns (manifest descriptor, layer digests)."""
    content = ContentStore(root)
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    config_digest = content.ingest_bytes(config)
    layer_descs = []
    for data in layers:
        digest = content.ingest_bytes(data)
        layer_descs.append({"mediaType": MEDIA_OCI_LAYER_GZIP, "digest": digest, "size": len(data)})
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": layer_descs,
        }
    ).encode()
    manifest_digest = content.ingest_bytes(manifest)
    desc: Descriptor = {"mediaType": MEDIA_OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
    return desc, [d["digest"] for d in layer_descs]


def push(
    root: StateRoot, registry: FakeRegistry, top: Descriptor, name: str
) -> tuple[object, list[BlobEvent]]:
    events: list[BlobEvent] = []
    with make_client() as client:
        result = ImagePusher(root, client).push(
            top, parse_reference(f"{registry.host}/{name}"), events.append
        )
    return result, events


def test_a_push_uploads_blobs_then_the_manifest_under_its_tag(
    root: StateRoot, registry: FakeRegistry
) -> None:
    top, layers = store_image(root, [b"layer-one" * 100, b"layer-two"])

    result, events = push(root, registry, top, "team/app:1")

    puts = [r for r in registry.requests if r.method == "PUT"]
    assert [p.path for p in puts][-1] == "/v2/team/app/manifests/1"
    assert all("/blobs/uploads/" in p.path for p in puts[:-1])
    assert len(puts) == 4  # two layers and the config, then the manifest
    assert registry._manifests[("team/app", "1")][0] == ContentStore(root).read_bytes(top["digest"])
    assert {e.digest for e in events if e.state == "pushed"} >= set(layers)
    assert [b.how for b in result.blobs] == ["pushed"] * 3  # type: ignore[attr-defined]


def test_blobs_the_registry_has_are_not_uploaded(root: StateRoot, registry: FakeRegistry) -> None:
    top, layers = store_image(root, [b"already-there", b"new"])
    registry.put_blob(b"already-there", repo="team/app")

    result, _ = push(root, registry, top, "team/app:1")

    hows = {b.digest: b.how for b in result.blobs}  # type: ignore[attr-defined]
    assert hows[layers[0]] == "exists"
    assert hows[layers[1]] == "pushed"
    assert registry.upload_bytes == len(b"new") + len(json.dumps({"architecture": "amd64", "os": "linux"}))


def test_a_blob_from_another_repository_of_the_registry_is_mounted(
    root: StateRoot, registry: FakeRegistry
) -> None:
    top, layers = store_image(root, [b"base-layer" * 1000])
    registry.put_blob(b"base-layer" * 1000, repo="library/base")
    BlobSources(root).remember(f"{registry.host}/library/base", layers)

    result, events = push(root, registry, top, "team/app:1")

    mounts = [r for r in registry.requests if r.method == "POST" and "mount" in r.query]
    assert mounts and mounts[0].query["from"] == ["library/base"]
    assert mounts[0].query["mount"] == [layers[0]]
    blob = next(b for b in result.blobs if b.digest == layers[0])  # type: ignore[attr-defined]
    assert (blob.how, blob.mounted_from) == ("mounted", "library/base")
    assert not [r for r in registry.requests if r.method == "PATCH"]
    assert any(e.state == "mounted" and e.mounted_from == "library/base" for e in events)
    # Once pushed, the blob is known to be in the target repository too.
    assert f"{registry.host}/team/app" in BlobSources(root).sources_of(layers[0])


def test_a_mount_answered_202_goes_on_as_an_upload_in_that_session(
    root: StateRoot, registry: FakeRegistry
) -> None:
    top, layers = store_image(root, [b"base-layer"])
    BlobSources(root).remember(f"{registry.host}/library/base", layers)
    registry.faults.refuse_mounts = True

    result, _ = push(root, registry, top, "team/app:1")

    posts = [r for r in registry.requests if r.method == "POST"]
    # One POST for the layer (the mount that became an upload), one for the config.
    assert len(posts) == 2
    blob = next(b for b in result.blobs if b.digest == layers[0])  # type: ignore[attr-defined]
    assert blob.how == "pushed"
    assert layers[0] in registry.repo_blobs["team/app"]


def test_a_registry_asking_for_chunks_gets_patches_and_a_416_is_recovered(
    root: StateRoot, registry: FakeRegistry
) -> None:
    data = os.urandom(20 << 20)
    top, layers = store_image(root, [data])
    registry.faults.chunk_min = 9 << 20
    registry.faults.patch_416_from = 9 << 20

    push(root, registry, top, "team/app:1")

    patches = [r for r in registry.requests if r.method == "PATCH"]
    ranges = [p.headers["content-range"] for p in patches]
    # 9 MiB chunks: the second is refused once (416), its GET tells where to go on.
    assert f"0-{(9 << 20) - 1}" in ranges
    assert ranges.count(f"{9 << 20}-{(18 << 20) - 1}") == 2
    assert [r for r in registry.requests if r.method == "GET" and "/uploads/" in r.path]
    assert registry._blobs[layers[0]] == data
    assert layers[0] in registry.repo_blobs["team/app"]


@pytest.mark.parametrize("absolute", [False, True])
def test_relative_and_absolute_locations_are_followed(
    root: StateRoot, registry: FakeRegistry, absolute: bool
) -> None:
    top, layers = store_image(root, [b"x" * 10])
    registry.faults.absolute_location = absolute

    push(root, registry, top, "team/app:1")

    put = next(r for r in registry.requests if r.method == "PUT" and "/uploads/" in r.path)
    assert put.query["_state"] and put.query["digest"]
    assert layers[0] in registry.repo_blobs["team/app"]


def test_a_refused_push_says_push_access_denied(root: StateRoot, registry: FakeRegistry) -> None:
    top, _ = store_image(root, [b"x"])
    registry.faults.auth = "basic"

    with pytest.raises(RegistryError) as caught:
        push(root, registry, top, "team/app:1")

    message = caught.value.message
    assert message.startswith(f"failed to push {registry.host}/team/app:1: ")
    assert "push access denied, repository does not exist or may require authorization" in message
    assert not registry._manifests


def test_a_blob_missing_locally_is_fetched_before_an_upload_elsewhere(
    root: StateRoot, registry: FakeRegistry
) -> None:
    top, layers = store_image(root, [b"lazy-layer"])
    content = ContentStore(root)
    content.delete(layers[0])
    BlobSources(root).remember("other.example/library/base", layers)
    asked: list[str] = []

    def fetch(source: str, descs: object) -> None:
        asked.append(source)
        content.ingest_bytes(b"lazy-layer")

    with make_client() as client:
        ImagePusher(root, client, fetch_missing=fetch).push(
            top, parse_reference(f"{registry.host}/team/app:1")
        )

    assert asked == ["other.example/library/base"]
    assert layers[0] in registry.repo_blobs["team/app"]


def test_mount_candidates_prefer_the_longest_shared_path() -> None:
    sources = ["r.io/a/x", "r.io/team/base", "other.io/team/base", "r.io/team/app"]
    assert mount_candidates(sources, "r.io", "team/app") == ["team/base", "a/x"]


def test_the_uploaded_bytes_are_the_blob_and_digests_check(
    root: StateRoot, registry: FakeRegistry
) -> None:
    data = os.urandom(3 << 20)
    top, layers = store_image(root, [data])

    push(root, registry, top, "team/app")

    assert registry._blobs[layers[0]] == data
    assert digest_of(data) == layers[0]
    assert ("team/app", "latest") in registry._manifests


def test_a_registry_failing_with_5xx_is_one_error_after_retries(
    root: StateRoot, registry: FakeRegistry
) -> None:
    top, _ = store_image(root, [b"x"])
    registry.faults.statuses = [500, 503, 507, 507, 507, 507, 507, 507, 507, 507] * 2
    registry.faults.status_path = "/blobs/uploads/"

    with pytest.raises(RegistryError) as caught:
        push(root, registry, top, "team/app:1")

    message = caught.value.message
    assert "\n" not in message
    assert "unexpected status 507" in message
    assert not registry._manifests


def test_push_by_digest_puts_the_manifest_under_its_digest(
    root: StateRoot, registry: FakeRegistry
) -> None:
    top, _ = store_image(root, [b"x"])

    with make_client() as client:
        ImagePusher(root, client).push(
            top, parse_reference(f"{registry.host}/team/app:1"), by_digest=True
        )

    assert ("team/app", top["digest"]) in registry._manifests
    assert ("team/app", "1") not in registry._manifests


def test_uploads_run_in_parallel_up_to_the_registry_limit(
    root: StateRoot, registry: FakeRegistry
) -> None:
    top, _ = store_image(root, [f"layer-{n}".encode() for n in range(6)])
    registry.faults.blob_delay = 0.2  # HEADs take a while: they overlap
    auth = FakeAuthorizer()
    client = RegistryClient(FakeConfig(max_concurrency=2), None, timeout=5.0, authorizer=auth)
    auth.fetch = client.http_fetch

    with client:
        ImagePusher(root, client, max_concurrency=4).push(
            top, parse_reference(f"{registry.host}/team/app:1")
        )

    # Never more than the registry's limit at once (how many overlap below it depends on
    # the machine's load, so only the bound is asserted).
    assert 1 <= registry.max_in_flight <= 2

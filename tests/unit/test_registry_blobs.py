"""Blob downloads: verified, resumable across streams and processes, parallel, bounded."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strata.errors import RegistryError
from strata.image.oci import MEDIA_OCI_LAYER_GZIP, Descriptor
from strata.registry.client import RegistryClient
from strata.store.content import ContentStore
from strata.store.reference import Reference, parse_reference
from strata.store.root import StateRoot
from tests.unit.fake_registry import FakeAuthorizer, FakeConfig, FakeRegistry, digest_of

REPO = "library/app"
SIZE = 300_000


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as reg:
        yield reg


@pytest.fixture
def root(tmp_path: Path) -> Iterator[StateRoot]:
    r = StateRoot.open(tmp_path / "root")
    yield r
    r.close()


def make_client(max_concurrency: int = 4, timeout: float = 5.0) -> RegistryClient:
    auth = FakeAuthorizer()
    client = RegistryClient(
        FakeConfig(max_concurrency=max_concurrency), None, timeout=timeout, authorizer=auth
    )
    auth.fetch = client.http_fetch
    return client


def put(reg: FakeRegistry, data: bytes) -> Descriptor:
    return {"mediaType": MEDIA_OCI_LAYER_GZIP, "digest": reg.put_blob(data), "size": len(data)}


def ref_for(reg: FakeRegistry) -> Reference:
    return parse_reference(f"{reg.host}/{REPO}:1")


def partial_path(root: StateRoot, digest: str) -> Path:
    return root.path / "ingest" / (digest.removeprefix("sha256:") + ".part")


def stored(content: ContentStore, digest: str) -> bytes:
    with content.open(digest) as fh:
        return fh.read()


def test_blob_is_stored_verified_and_reported(registry: FakeRegistry, root: StateRoot) -> None:
    data = os.urandom(SIZE)
    desc = put(registry, data)
    content = ContentStore(root)
    seen: list[tuple[int, int]] = []
    with make_client() as client:
        client.fetch_blob(ref_for(registry), desc, content, lambda d, t: seen.append((d, t)))
    assert stored(content, desc["digest"]) == data
    assert seen[-1] == (SIZE, SIZE)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert not partial_path(root, desc["digest"]).exists()
    assert registry.bytes_served[desc["digest"]] == SIZE


def test_present_blob_is_not_fetched_again(registry: FakeRegistry, root: StateRoot) -> None:
    data = os.urandom(1000)
    desc = put(registry, data)
    content = ContentStore(root)
    content.ingest_bytes(data)
    with make_client() as client:
        client.fetch_blob(ref_for(registry), desc, content)
    assert registry.requests == []


def test_a_cut_stream_resumes_with_range(registry: FakeRegistry, root: StateRoot) -> None:
    data = os.urandom(SIZE)
    desc = put(registry, data)
    registry.faults.cut_after = 100_000
    registry.faults.cuts = 2
    content = ContentStore(root)
    with make_client() as client:
        client.fetch_blob(ref_for(registry), desc, content)
    assert stored(content, desc["digest"]) == data
    ranges = [r.headers.get("range") for r in registry.log("GET", "/blobs/")]
    assert ranges == [None, "bytes=100000-", "bytes=200000-"]
    assert registry.bytes_served[desc["digest"]] == SIZE  # nothing sent twice


def test_a_server_ignoring_range_is_followed_from_zero(
    registry: FakeRegistry, root: StateRoot
) -> None:
    data = os.urandom(SIZE)
    desc = put(registry, data)
    registry.faults.cut_after = 50_000
    registry.faults.ignore_range = True
    content = ContentStore(root)
    with make_client() as client:
        client.fetch_blob(ref_for(registry), desc, content)
    assert stored(content, desc["digest"]) == data
    assert registry.bytes_served[desc["digest"]] == 50_000 + SIZE


def test_a_stream_that_keeps_dying_without_progress_fails(
    registry: FakeRegistry, root: StateRoot
) -> None:
    data = os.urandom(SIZE)
    desc = put(registry, data)
    registry.faults.cut_after = 0
    registry.faults.cuts = 100
    content = ContentStore(root)
    with make_client() as client, pytest.raises(RegistryError, match="download failed at byte 0"):
        client.fetch_blob(ref_for(registry), desc, content)
    assert len(registry.log("GET", "/blobs/")) == 4  # the first open and 3 reopenings
    assert not content.has(desc["digest"])


def test_wrong_digest_body_stores_nothing(registry: FakeRegistry, root: StateRoot) -> None:
    data = os.urandom(SIZE)
    desc = put(registry, data)
    registry.faults.wrong_body[desc["digest"]] = os.urandom(SIZE)
    content = ContentStore(root)
    with make_client() as client, pytest.raises(RegistryError, match="blob digest mismatch"):
        client.fetch_blob(ref_for(registry), desc, content)
    assert not content.has(desc["digest"])
    assert list(root.blobs_dir.iterdir()) == []
    assert not partial_path(root, desc["digest"]).exists()


def test_longer_body_than_the_descriptor_stores_nothing(
    registry: FakeRegistry, root: StateRoot
) -> None:
    data = os.urandom(1000)
    desc = put(registry, data)
    registry.faults.wrong_body[desc["digest"]] = data + b"more"
    content = ContentStore(root)
    with make_client() as client, pytest.raises(RegistryError, match="larger than"):
        client.fetch_blob(ref_for(registry), desc, content)
    assert list(root.blobs_dir.iterdir()) == []


def test_partial_left_by_a_dead_process_is_resumed(registry: FakeRegistry, tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    desc = put(registry, data)
    # A first process got 120 000 bytes and was killed: its partial file stays behind.
    first = StateRoot.open(tmp_path / "root")
    ContentStore(first)  # makes the schema
    path = partial_path(first, desc["digest"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[:120_000])
    first.close()

    second = StateRoot.open(tmp_path / "root")
    try:
        content = ContentStore(second)
        with make_client() as client:
            client.fetch_blob(ref_for(registry), desc, content)
        assert stored(content, desc["digest"]) == data
    finally:
        second.close()
    assert [r.headers.get("range") for r in registry.log("GET", "/blobs/")] == ["bytes=120000-"]
    assert registry.bytes_served[desc["digest"]] == SIZE - 120_000


KILLED_PULL = """
import sys
from strata.image.oci import MEDIA_OCI_LAYER_GZIP
from strata.registry.client import RegistryClient
from strata.store.content import ContentStore
from strata.store.reference import parse_reference
from strata.store.root import StateRoot
from tests.unit.fake_registry import FakeAuthorizer, FakeConfig

ref, root, digest, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
desc = {"mediaType": MEDIA_OCI_LAYER_GZIP, "digest": digest, "size": size}
with RegistryClient(FakeConfig(), None, authorizer=FakeAuthorizer()) as client:
    client.fetch_blob(parse_reference(ref), desc, ContentStore(StateRoot.open(root)))
"""


def test_a_pull_killed_with_sigkill_is_resumed_by_the_next_process(
    registry: FakeRegistry, tmp_path: Path
) -> None:
    data = os.urandom(SIZE)
    desc = put(registry, data)
    registry.faults.chunk_delay = 0.05
    state = tmp_path / "root"
    partial = state / "ingest" / (desc["digest"].removeprefix("sha256:") + ".part")
    repo_root = Path(__file__).resolve().parents[2]
    args = [str(ref_for(registry)), str(state), desc["digest"], str(SIZE)]
    child = subprocess.Popen([sys.executable, "-c", KILLED_PULL, *args], cwd=repo_root)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and child.poll() is None:
            if partial.exists() and partial.stat().st_size >= 50_000:
                break
            time.sleep(0.01)
        assert child.poll() is None, "the child finished or died before it could be killed"
    finally:
        child.kill()
        child.wait()
    registry.faults.chunk_delay = 0.0
    kept = partial.stat().st_size
    assert 0 < kept < SIZE

    root = StateRoot.open(state)
    try:
        content = ContentStore(root)
        with make_client() as client:
            client.fetch_blob(ref_for(registry), desc, content)
        assert stored(content, desc["digest"]) == data
    finally:
        root.close()
    last = registry.log("GET", "/blobs/")[-1]
    assert last.headers.get("range") == f"bytes={kept}-"


def test_a_corrupt_partial_is_discarded_and_fetched_again(
    registry: FakeRegistry, root: StateRoot
) -> None:
    data = os.urandom(SIZE)
    desc = put(registry, data)
    content = ContentStore(root)
    path = partial_path(root, desc["digest"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(100_000))  # not the blob's first bytes
    with make_client() as client:
        client.fetch_blob(ref_for(registry), desc, content)
    assert stored(content, desc["digest"]) == data
    assert registry.bytes_served[desc["digest"]] == (SIZE - 100_000) + SIZE


def test_a_partial_in_use_is_not_taken_over(registry: FakeRegistry, root: StateRoot) -> None:
    data = os.urandom(SIZE)
    desc = put(registry, data)
    content = ContentStore(root)
    errors: list[BaseException] = []
    holding = threading.Event()
    release = threading.Event()

    def other_writer() -> None:
        # Another download of the same blob holds its partial file (flock) and has
        # written part of it; it stops without committing.
        with content.partial(desc["digest"]) as part:
            part.append(data[:10_000])
            holding.set()
            release.wait(10)

    def fetch() -> None:
        try:
            with make_client() as client:
                client.fetch_blob(ref_for(registry), desc, content)
        except BaseException as exc:
            errors.append(exc)

    holder = threading.Thread(target=other_writer)
    holder.start()
    assert holding.wait(10)
    fetcher = threading.Thread(target=fetch)
    fetcher.start()
    fetcher.join(0.5)
    assert fetcher.is_alive()  # waiting for the lock ...
    assert registry.log("GET", "/blobs/") == []  # ... without touching the blob
    release.set()
    holder.join()
    fetcher.join(10)
    assert errors == []
    assert stored(content, desc["digest"]) == data
    assert [r.headers.get("range") for r in registry.log("GET", "/blobs/")] == ["bytes=10000-"]


def test_fetch_blobs_stores_all_within_the_concurrency_limit(
    registry: FakeRegistry, root: StateRoot
) -> None:
    blobs = [os.urandom(20_000 + i) for i in range(6)]
    descs = [put(registry, b) for b in blobs]
    registry.faults.blob_delay = 0.1
    content = ContentStore(root)
    progress: list[tuple[int, int]] = []
    lock = threading.Lock()

    def report(done: int, total: int) -> None:
        with lock:
            progress.append((done, total))

    with make_client(max_concurrency=2) as client:
        client.fetch_blobs(ref_for(registry), [*descs, descs[0]], content, report)
    for desc, data in zip(descs, blobs, strict=True):
        assert stored(content, desc["digest"]) == data
    total = sum(len(b) for b in blobs)
    assert max(progress) == (total, total)
    assert registry.max_in_flight <= 2
    assert len(registry.log("GET", "/blobs/")) == 6  # the duplicate fetched once


def test_fetch_blobs_raises_the_first_failure(registry: FakeRegistry, root: StateRoot) -> None:
    good = put(registry, os.urandom(1000))
    missing: dict[str, Any] = {**good, "digest": digest_of(b"nowhere"), "size": 7}
    content = ContentStore(root)
    with make_client() as client, pytest.raises(RegistryError, match="not found"):
        client.fetch_blobs(ref_for(registry), [good, missing], content)  # type: ignore[list-item]


def test_one_failure_stops_the_other_downloads(registry: FakeRegistry, root: StateRoot) -> None:
    slow = put(registry, os.urandom(SIZE))
    missing: dict[str, Any] = {**slow, "digest": digest_of(b"nowhere"), "size": 7}
    registry.faults.chunk_delay = 0.05  # the slow blob takes ~1 s in 16 KiB pieces
    content = ContentStore(root)
    with make_client() as client, pytest.raises(RegistryError, match="not found"):
        client.fetch_blobs(ref_for(registry), [slow, missing], content)  # type: ignore[list-item]
    assert not content.has(slow["digest"])
    assert registry.bytes_served.get(slow["digest"], 0) < SIZE
    assert partial_path(root, slow["digest"]).exists()  # kept for a later resume


def test_redirected_blob_is_fetched_without_the_registry_credentials(
    registry: FakeRegistry, root: StateRoot
) -> None:
    data = os.urandom(SIZE)
    with FakeRegistry() as cdn:
        desc = put(registry, data)
        cdn.put_blob(data)
        registry.faults.auth = "basic"
        registry.faults.redirect_blobs = f"http://{cdn.host}"
        cdn.faults.cut_after = 100_000  # and a resume goes through the redirect again
        content = ContentStore(root)
        auth = FakeAuthorizer("user", "secret")
        with RegistryClient(FakeConfig(), None, authorizer=auth) as client:
            client.fetch_blob(ref_for(registry), desc, content)
        assert stored(content, desc["digest"]) == data
        got = cdn.log("GET", "/cdn/")
        assert [r.headers.get("range") for r in got] == [None, "bytes=100000-"]
        assert all("authorization" not in r.headers for r in got)
    assert registry.log("GET", "/blobs/")[-1].headers["authorization"].startswith("Basic ")


def test_fetch_blob_with_a_lease_holds_the_blob(registry: FakeRegistry, root: StateRoot) -> None:
    desc = put(registry, os.urandom(1000))
    content = ContentStore(root)
    with content.lease() as lease, make_client() as client:
        client.fetch_blob(ref_for(registry), desc, content, hold=lease)
        assert content.ref_count(desc["digest"]) == 1
    assert content.ref_count(desc["digest"]) == 0


def test_stale_partials_are_removed_unless_in_use(root: StateRoot) -> None:
    content = ContentStore(root)
    old, busy = digest_of(b"old"), digest_of(b"busy")
    with content.partial(old) as part:
        part.append(b"ol")
    fresh = digest_of(b"fresh")
    with content.partial(fresh) as part:
        part.append(b"fr")
    for digest in (old, busy):
        path = partial_path(root, digest)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (1, 1))
    with open(partial_path(root, busy), "rb") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        removed = content.remove_stale_partials(older_than=3600)
    assert removed == [partial_path(root, old)]
    assert partial_path(root, busy).exists()
    assert partial_path(root, fresh).exists()

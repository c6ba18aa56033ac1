"""Blobs are verified as they stream out, and a re-ingested blob replaces a corrupt file."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.errors import StoreError
from strata.gc.check import check
from strata.image.compress import open_decompressed
from strata.store.content import ContentStore
from strata.store.root import StateRoot


@pytest.fixture
def root(tmp_path: Path) -> Iterator[StateRoot]:
    r = StateRoot.open(tmp_path / "root")
    yield r
    r.close()


def corrupt(store: ContentStore, digest: str) -> None:
    path = store.path(digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def test_a_good_blob_streams_out_unchanged(root: StateRoot) -> None:
    store = ContentStore(root)
    digest = store.ingest_bytes(b"x" * 5000)
    with store.open_verified(digest, image="app:1") as fh:
        assert fh.read(100) == b"x" * 100
        assert fh.read() == b"x" * 4900


def test_a_corrupt_blob_fails_at_the_end_naming_blob_image_and_repair(root: StateRoot) -> None:
    store = ContentStore(root)
    digest = store.ingest_bytes(b"layer bytes " * 1000)
    corrupt(store, digest)
    with pytest.raises(StoreError) as info, store.open_verified(digest, image="app:1") as fh:
        while fh.read(4096):
            pass
    message = info.value.message
    assert digest in message and "app:1" in message and "strata check --repair" in message
    assert "\n" not in message


def test_a_consumer_that_stops_early_is_still_checked_on_leaving(root: StateRoot) -> None:
    store = ContentStore(root)
    data = b"abc" * 1000
    digest = store.ingest_bytes(data)
    corrupt(store, digest)
    with pytest.raises(StoreError, match="is corrupt"), store.open_verified(digest) as fh:
        fh.read(len(data))  # exactly the size: the reader never sees the end


def test_a_decompressor_error_on_corrupt_bytes_becomes_the_named_error(root: StateRoot) -> None:
    store = ContentStore(root)
    digest = store.ingest_bytes(gzip.compress(hashlib.sha256(b"x").digest() * 4000, mtime=0))
    corrupt(store, digest)
    with (
        pytest.raises(StoreError, match=f"blob {digest} is corrupt"),
        store.open_verified(digest) as raw,
    ):
        stream, _ = open_decompressed(raw)  # type: ignore[arg-type]
        while stream.read(1 << 16):
            pass


def test_ingesting_a_blob_again_replaces_a_corrupt_file(root: StateRoot) -> None:
    store = ContentStore(root)
    data = b"the true content " * 100
    digest = store.ingest_bytes(data)
    corrupt(store, digest)
    with store.writer(digest) as w:
        w.copy_from(io.BytesIO(data))
    assert not w.created
    assert store.path(digest).read_bytes() == data


def test_check_reports_and_repairs_a_corrupt_blob_but_keeps_its_holders(
    root: StateRoot,
) -> None:
    store = ContentStore(root)
    data = b"held " * 100
    digest = store.ingest_bytes(data)
    store.add_refs("image:sha256:" + "0" * 64, [digest])
    corrupt(store, digest)
    report = check(root)
    assert [(p.kind, p.subject, p.repaired) for p in report.problems] == [
        ("corrupt-blob", digest, False)
    ]
    assert store.has(digest)
    repaired = check(root, repair=True)
    assert repaired.ok and not store.has(digest)
    assert store.ref_count(digest) == 1  # the image holds it again once it comes back
    store.ingest_bytes(data)
    assert check(root).problems == ()


def test_chunks_yield_the_blob_and_check_it_at_the_end(root: StateRoot) -> None:
    store = ContentStore(root)
    data = b"upload body " * 500
    digest = store.ingest_bytes(data)
    with store.open_verified(digest) as blob:
        assert b"".join(blob.chunks(1000)) == data
    corrupt(store, digest)
    with pytest.raises(StoreError, match="is corrupt"), store.open_verified(digest) as blob:
        for _ in blob.chunks(1000):
            pass

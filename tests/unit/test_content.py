from __future__ import annotations

import gzip
import hashlib
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.errors import StoreError
from strata.store.content import ContentStore
from strata.store.root import StateRoot


@pytest.fixture
def root(tmp_path: Path) -> Iterator[StateRoot]:
    r = StateRoot.open(tmp_path / "root")
    yield r
    r.close()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_written_blob_lands_under_its_digest(root: StateRoot) -> None:
    store = ContentStore(root)
    with store.writer() as w:
        w.write(b"hello ")
        w.write(b"world")
    assert w.digest == digest_of(b"hello world")
    assert w.size == 11
    assert (root.blobs_dir / w.digest.removeprefix("sha256:")).read_bytes() == b"hello world"
    assert store.has(w.digest)
    assert store.info(w.digest).size == 11
    with store.open(w.digest) as fh:
        assert fh.read() == b"hello world"


def test_expected_digest_mismatch_stores_nothing(root: StateRoot) -> None:
    store = ContentStore(root)
    wrong = digest_of(b"other")
    with pytest.raises(StoreError, match="digest mismatch"), store.writer(wrong) as w:
        w.write(b"content")
    assert not store.has(digest_of(b"content"))
    assert not store.has(wrong)
    assert [p.name for p in root.owner_dir().iterdir()] == ["owner.lock"]


def test_failure_inside_the_writer_leaves_no_blob_and_no_tmp_file(root: StateRoot) -> None:
    store = ContentStore(root)
    with pytest.raises(RuntimeError), store.writer() as w:
        w.write(b"partial")
        raise RuntimeError("source failed")
    assert list(root.blobs_dir.iterdir()) == []
    assert [p.name for p in root.owner_dir().iterdir()] == ["owner.lock"]


def test_concurrent_writers_of_the_same_blob_both_succeed(root: StateRoot) -> None:
    store = ContentStore(root)
    data = b"x" * (3 << 20)
    barrier = threading.Barrier(4)
    results: list[str] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with store.writer(digest_of(data)) as w:
                barrier.wait()
                w.write(data)
            results.append(w.digest)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [digest_of(data)] * 4
    assert store.read_bytes(digest_of(data)) == data


def test_ingest_bytes_returns_digest_and_marks_new_blobs(root: StateRoot) -> None:
    store = ContentStore(root)
    assert store.ingest_bytes(b"abc") == digest_of(b"abc")
    with store.writer() as again:
        again.write(b"abc")
    assert again.created is False


def test_missing_blob_is_a_store_error_naming_it(root: StateRoot) -> None:
    store = ContentStore(root)
    missing = digest_of(b"nope")
    with pytest.raises(StoreError, match=missing):
        store.open(missing)


def test_malformed_digest_is_refused(root: StateRoot) -> None:
    with pytest.raises(StoreError, match="invalid digest"):
        ContentStore(root).path("sha256:../../etc/passwd")


def test_corrupt_blob_is_detected_when_read_whole(root: StateRoot) -> None:
    store = ContentStore(root)
    digest = store.ingest_bytes(b"{}")
    path = store.path(digest)
    path.chmod(0o644)
    path.write_bytes(b"[]")
    with pytest.raises(StoreError, match="corrupt"):
        store.read_bytes(digest)


def test_unreferenced_blobs_are_deleted_and_held_ones_kept(root: StateRoot) -> None:
    store = ContentStore(root)
    a = store.ingest_bytes(b"a")
    b = store.ingest_bytes(b"b")
    store.add_refs("image:1", [a, b])
    store.add_refs("cache:x", [b])
    assert store.ref_count(b) == 2
    held = store.remove_refs("image:1")
    assert sorted(held) == sorted([a, b])
    assert store.delete_unreferenced(held) == [a]
    assert not store.has(a)
    assert store.has(b)


def test_refs_to_missing_blobs_are_refused(root: StateRoot) -> None:
    with pytest.raises(StoreError, match="not found"):
        ContentStore(root).add_refs("image:1", [digest_of(b"never written")])


def test_layer_for_diff_remembers_compressed_blobs(root: StateRoot) -> None:
    store = ContentStore(root)
    tar = bytes(1024)
    blob = gzip.compress(tar, mtime=0)
    digest = store.ingest_bytes(blob)
    assert store.layer_for_diff(digest_of(tar), "gzip") is None
    store.record_layer(
        digest=digest,
        diff_id=digest_of(tar),
        compression="gzip",
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        uncompressed_size=len(tar),
    )
    assert store.layer_for_diff(digest_of(tar), "gzip") == digest
    assert store.layer_for_diff(digest_of(tar), "zstd") is None
    store.delete(digest)
    assert store.layer_for_diff(digest_of(tar), "gzip") is None


def test_describe_layer_computes_diff_id_and_size_of_a_compressed_blob(root: StateRoot) -> None:
    store = ContentStore(root)
    tar = b"t" * 5000 + bytes(1024)
    w = store.ingest_stream(io.BytesIO(gzip.compress(tar)))
    record = store.describe_layer(w.digest)
    assert record.diff_id == digest_of(tar)
    assert record.uncompressed_size == len(tar)
    assert record.compression == "gzip"
    assert store.layer_record(w.digest) == record

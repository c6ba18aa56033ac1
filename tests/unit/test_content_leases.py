"""Leases and the orphan sweep: blobs in flight survive concurrent deletes; leftovers go."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.gc.prune import sweep_orphan_blobs
from strata.solver.records import CacheRecords, LayerRow
from strata.store.content import ORPHAN_GRACE_SECONDS, ContentStore
from strata.store.root import StateRoot

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> Iterator[StateRoot]:
    r = StateRoot.open(tmp_path / "root")
    yield r
    r.close()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def age(store: ContentStore, digest: str, seconds: float) -> None:
    """Make a blob look `seconds` old to the sweep."""
    then = time.time() - seconds
    os.utime(store.path(digest), (then, then))


def test_leased_blob_outlives_the_release_of_the_image_that_held_it(root: StateRoot) -> None:
    store = ContentStore(root)
    shared = store.ingest_bytes(b"base layer")
    store.add_refs("image:old", [shared])
    with store.lease() as lease:
        # A load finds the layer already stored: it writes nothing, but holds it.
        with store.writer(hold=lease) as w:
            w.write(b"base layer")
        assert not w.created
        # `rmi old` meanwhile releases the only image that held it.
        assert store.delete_unreferenced(store.remove_refs("image:old")) == []
        assert store.has(shared)
        store.add_refs("image:new", [shared])  # the load's image can still take it
    assert store.ref_count(shared) == 1  # the lease left no reference behind


def test_lease_references_are_dropped_when_the_block_fails(root: StateRoot) -> None:
    store = ContentStore(root)
    with pytest.raises(RuntimeError), store.lease() as lease:
        digest = store.ingest_bytes(b"half a load", hold=lease)
        assert store.ref_count(digest) == 1
        raise RuntimeError("archive ended early")
    assert store.ref_count(digest) == 0


def test_sweep_deletes_old_unreferenced_blobs_only(root: StateRoot) -> None:
    store = ContentStore(root)
    orphan = store.ingest_bytes(b"left by a crash")
    young = store.ingest_bytes(b"written a moment ago")
    held = store.ingest_bytes(b"an image's layer")
    store.add_refs("image:x", [held])
    for digest in (orphan, held):
        age(store, digest, ORPHAN_GRACE_SECONDS + 60)
    assert store.sweep_orphans() == [orphan]
    assert not store.has(orphan)
    assert store.has(young) and store.has(held)
    assert root.connect().execute(
        "SELECT COUNT(*) FROM content_blobs WHERE digest = ?", (orphan,)
    ).fetchone() == (0,)


def test_sweep_keeps_layers_the_build_cache_remembers(root: StateRoot) -> None:
    store = ContentStore(root)
    cached = store.ingest_bytes(b"a cached step's layer")
    age(store, cached, ORPHAN_GRACE_SECONDS + 60)
    CacheRecords(root).remember_layer(
        "s1", "gzip", LayerRow("sha256:" + "0" * 64, cached, "application/x", 1, 1)
    )
    assert store.sweep_orphans(holders=[CacheRecords(root)]) == []
    assert store.has(cached)
    # The collector's sweep passes the build cache as a holder itself.
    assert sweep_orphan_blobs(root) == []
    assert store.has(cached)


def test_writing_an_existing_blob_again_makes_it_young_for_the_sweep(root: StateRoot) -> None:
    store = ContentStore(root)
    digest = store.ingest_bytes(b"stored long ago, wanted again")
    age(store, digest, ORPHAN_GRACE_SECONDS + 60)
    store.ingest_bytes(b"stored long ago, wanted again")  # a writer without a lease
    assert store.sweep_orphans() == []
    assert store.has(digest)


def test_sweep_drops_the_leases_of_dead_processes_and_keeps_live_ones(
    root: StateRoot, tmp_path: Path
) -> None:
    script = (
        "import os\n"
        "from strata.store.content import ContentStore\n"
        "from strata.store.root import StateRoot\n"
        f"store = ContentStore(StateRoot.open({str(root.path)!r}))\n"
        "with store.lease() as lease:\n"
        "    store.ingest_bytes(b'loaded, then killed', hold=lease)\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    store = ContentStore(root)
    dead = digest_of(b"loaded, then killed")
    assert store.ref_count(dead) == 1  # the dead process's lease is still recorded
    with store.lease() as lease:
        live = store.ingest_bytes(b"being loaded right now", hold=lease)
        for digest in (dead, live):
            age(store, digest, ORPHAN_GRACE_SECONDS + 60)
        assert store.sweep_orphans() == [dead]
        assert store.has(live) and store.ref_count(live) == 1
    assert not store.has(dead)


def test_sweep_with_nothing_to_do_leaves_the_store_alone(root: StateRoot) -> None:
    store = ContentStore(root)
    assert store.sweep_orphans() == []
    assert list(root.blobs_dir.iterdir()) == []

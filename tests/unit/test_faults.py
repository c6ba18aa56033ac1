"""Faults of the machine as one-line StoreErrors: a full disk under the content store
and under SQLite, a damaged database, with nothing half-committed."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.errors import StoreError
from strata.faults import database_fault, fault_error, human_bytes
from strata.store.content import ContentStore
from strata.store.root import StateRoot


@pytest.fixture
def root(tmp_path: Path) -> Iterator[StateRoot]:
    r = StateRoot.open(tmp_path / "root")
    yield r
    r.close()


def test_a_full_metadata_db_rolls_back_and_names_the_file(root: StateRoot) -> None:
    content = ContentStore(root)
    content.ingest_bytes(b"before")
    db = root.connect()
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
    with pytest.raises(StoreError) as info, root.transaction() as tx:
        tx.executemany(
            "INSERT INTO content_blobs(digest, size, created, last_used) VALUES (?, 1, 0, 0)",
            [(f"sha256:{i:064x}",) for i in range(20000)],
        )
    assert "no space left on device writing the metadata database" in info.value.message
    assert str(root.db_path) in info.value.message
    assert db.execute("SELECT COUNT(*) FROM content_blobs").fetchone()[0] == 1
    db.execute("PRAGMA max_page_count = 1073741823")
    content.ingest_bytes(b"after")  # the connection goes on working


def test_a_blob_write_on_a_full_disk_names_the_store_and_leaves_no_tmp_file(
    root: StateRoot,
) -> None:
    content = ContentStore(root)

    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StoreError) as info, content.writer() as w:
        w.write(b"x" * 2048)
        real = w._fh
        w._fh = Full()  # type: ignore[assignment]
        try:
            w.write(b"more")
        finally:
            w._fh = real
    assert "no space left on device writing a blob into the content store" in info.value.message
    assert "2.0 KiB" in info.value.message
    assert [p.name for p in root.owner_dir().iterdir() if p.name.startswith("ingest-")] == []


def test_damaged_and_full_sqlite_errors_are_recognised_and_others_are_not() -> None:
    damaged = database_fault(sqlite3.DatabaseError("file is not a database"), "/r/metadata.db")
    assert damaged is not None and "metadata database /r/metadata.db is damaged" in damaged.message
    malformed = sqlite3.DatabaseError("database disk image is malformed")
    assert "move it away" in (database_fault(malformed, None) or StoreError()).message
    assert database_fault(sqlite3.IntegrityError("UNIQUE constraint failed"), None) is None
    assert database_fault(ValueError("database or disk is full"), None) is None


def test_the_backstop_words_a_full_disk_with_the_file_or_quota() -> None:
    full = fault_error(OSError(errno.ENOSPC, "No space left on device", "/out/x.tar"))
    assert full is not None and full.message.startswith(
        "no space left on device writing /out/x.tar"
    )
    quota = fault_error(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert quota is not None and quota.message.startswith("disk quota exceeded")
    assert fault_error(OSError(errno.EACCES, "Permission denied")) is None
    assert human_bytes(100) == "100 B" and human_bytes(3 << 20) == "3.0 MiB"

"""The content store: blobs (layers, configs, manifests) named by their sha256 digest.

A blob is streamed into this process's tmp space, hashed on the way, checked against
the digest the caller expected, fsynced and renamed into `blobs/sha256/<hex>`. The
rename is atomic, so a blob file is always complete; a process killed mid-write
leaves only tmp files, which the next `StateRoot.open` reaps. Two writers of the same
content both succeed: the second finds the blob present (or renames identical bytes
over it) and drops its copy.

Metadata (SQLite, tables `content_*`, owned by `ContentStore`; see `store/schema.py`):

- `content_blobs`: size, creation and last-use times, for du/prune;
- `content_refs`: who holds a blob (`image:<manifest digest>`, a lease, or any owner
  string the cache uses), so removing an image deletes exactly the blobs nobody else
  holds;
- `content_layers`: layer facts that are expensive to recompute: the diff_id and
  uncompressed size of a compressed blob, and so "which blob is diff_id X compressed
  with Y", letting an unchanged layer be exported without compressing it again.

Blobs in flight (an archive being loaded, a tarball being imported) are held by a
*lease*: a reference owned by `lease:<owner dir>/<id>`, taken in the same transaction
that finds the blob present or renames it into place, and dropped when the work is
done. So a concurrent `rmi` that releases the last image holding a shared layer cannot
delete it between "already there" and "referenced by the new image". A process that
dies leaves its lease behind; `sweep_orphans` drops leases of dead processes and
deletes blobs that nothing holds once they are older than a grace period (which covers
writers that hold no lease, such as a build between writing a layer and recording it).

Downloads that may be resumed by a later process (a registry blob cut by Ctrl-C or
SIGKILL) are not written in the owner's tmp space, which dies with it, but in
`ingest/<hex>.part` under the state root: `partial(digest)` locks that file (flock) for
as long as one writer appends to it, so a live download is never taken over, and
`commit_partial` puts it in place like any other blob once the caller has checked its
digest. A partial file is only a hint: whoever continues it hashes what is there and
the final digest check throws away anything a dead process left wrong.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from strata.errors import StoreError
from strata.image.compress import open_decompressed, read_decompressed
from strata.image.oci import Compression, check_digest, is_digest, layer_media_type
from strata.store.root import StateRoot

COPY_CHUNK = 1 << 20
LEASE_PREFIX = "lease:"
ORPHAN_GRACE_SECONDS = 3600.0
"""Unreferenced blobs younger than this survive `sweep_orphans`: a writer without a
lease may have stored a blob it has not recorded yet (the same grace as prune's)."""


class LayerHolder(Protocol):
    """A table outside the content store that keeps blobs alive (the solver's
    remembered layers, `CacheRecords`)."""

    def layer_digests(self) -> set[str]: ...
    def holds_layer_in(self, db: sqlite3.Connection, digest: str) -> bool: ...


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int


@dataclass(frozen=True)
class LayerRecord:
    """What is known about a layer blob without reading it."""

    digest: str
    diff_id: str
    compression: Compression
    media_type: str
    uncompressed_size: int


class BlobWriter:
    """Receives a blob's bytes; after the `with` block, `digest` and `size` are set."""

    def __init__(self, fh: BinaryIO, tmp_path: Path) -> None:
        self._fh = fh
        self._hash = hashlib.sha256()
        self.tmp_path = tmp_path
        self.size = 0
        self.digest = ""
        # True when this writer put the blob in place (it was not there before).
        self.created = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        self._fh.write(data)
        self.size += len(data)
        return len(data)

    def copy_from(self, source: BinaryIO) -> None:
        while chunk := source.read(COPY_CHUNK):
            self.write(chunk)

    def _seal(self) -> str:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        return "sha256:" + self._hash.hexdigest()


class PartialBlob:
    """A resumable download's file, locked by this writer (see `ContentStore.partial`).

    `fh` is open for reading and appending; `size` is how many bytes it holds.
    """

    def __init__(self, path: Path, fh: BinaryIO) -> None:
        self.path = path
        self.fh = fh

    @property
    def size(self) -> int:
        return os.fstat(self.fh.fileno()).st_size

    def append(self, data: bytes | bytearray | memoryview) -> None:
        self.fh.seek(0, os.SEEK_END)
        self.fh.write(data)

    def reset(self) -> None:
        """Forget what is there (a server that ignored Range, bytes that hash wrong)."""
        self.fh.seek(0)
        self.fh.truncate(0)

    def discard(self) -> None:
        """Drop the file (bytes that hashed wrong): nothing of it is worth resuming."""
        self.reset()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def prefix_hash(self) -> hashlib._Hash:
        """sha256 of the bytes already there, so a resumed download can go on hashing."""
        h = hashlib.sha256()
        self.fh.flush()
        self.fh.seek(0)
        while chunk := self.fh.read(COPY_CHUNK):
            h.update(chunk)
        self.fh.seek(0, os.SEEK_END)
        return h


class ContentStore:
    """Blobs of one state root. Cheap to create; share the `StateRoot`."""

    def __init__(self, root: StateRoot) -> None:
        self.root = root

    # -- writing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self) -> Iterator[str]:
        """An owner name that holds blobs while work is in flight; released at the end.

        Pass it as `hold=` to the writers; once the blobs are referenced by something
        lasting (an image), the lease can go. Leaves no reference behind on success or
        failure; after a crash, `sweep_orphans` drops it.
        """
        owner = f"{LEASE_PREFIX}{self.root.owner_dir().name}/{uuid.uuid4().hex[:12]}"
        try:
            yield owner
        finally:
            self.remove_refs(owner)

    @contextlib.contextmanager
    def writer(
        self, expected: str | None = None, *, hold: str | None = None
    ) -> Iterator[BlobWriter]:
        """Stream a blob in; it lands in the store only if the block finishes cleanly.

        With `expected`, a blob whose bytes hash to anything else is refused
        (StoreError) and nothing is stored. With `hold`, the blob is referenced by that
        owner (a `lease()`) in the same transaction that puts it in place or finds it
        there, so no concurrent delete can come in between.
        """
        if expected is not None:
            check_digest(expected)
        tmp_path = self.root.owner_dir() / f"ingest-{uuid.uuid4().hex}"
        fh = open(tmp_path, "xb")  # noqa: SIM115 - closed by _seal or below
        blob = BlobWriter(fh, tmp_path)
        try:
            yield blob
            digest = blob._seal()
            if expected is not None and digest != expected:
                raise StoreError(f"digest mismatch: expected {expected}, got {digest}")
            blob.digest = digest
            blob.created = self._place(tmp_path, digest, blob.size, hold)
        except BaseException:
            fh.close()
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
            raise

    def ingest_bytes(
        self, data: bytes, expected: str | None = None, *, hold: str | None = None
    ) -> str:
        """Store `data`; returns its digest."""
        with self.writer(expected, hold=hold) as w:
            w.write(data)
        return w.digest

    def ingest_stream(
        self, source: BinaryIO, expected: str | None = None, *, hold: str | None = None
    ) -> BlobWriter:
        """Store everything `source` yields; returns the finished writer (digest, size)."""
        with self.writer(expected, hold=hold) as w:
            w.copy_from(source)
        return w

    def _place(self, tmp_path: Path, digest: str, size: int, hold: str | None) -> bool:
        """Move a sealed tmp file into place (or drop it if the blob is there); record
        the blob and `hold`'s reference. One transaction, so deletes cannot interleave.
        Returns True when this call put the blob in place."""
        final = self.path(digest)
        now = time.time()
        with self.root.transaction() as db:
            if final.exists():
                tmp_path.unlink()
                # Fresh again for grace-based sweeps: someone wants this blob now.
                with contextlib.suppress(OSError):
                    os.utime(final)
                created = False
            else:
                os.chmod(tmp_path, 0o444)
                os.rename(tmp_path, final)
                _fsync_dir(final.parent)
                created = True
            db.execute(
                "INSERT INTO content_blobs(digest, size, created, last_used) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(digest) DO UPDATE SET last_used = excluded.last_used",
                (digest, size, now, now),
            )
            if hold is not None:
                db.execute(
                    "INSERT OR IGNORE INTO content_refs(digest, owner) VALUES (?, ?)",
                    (digest, hold),
                )
        return created

    # -- resumable downloads ------------------------------------------------------------

    @property
    def ingest_dir(self) -> Path:
        """Where partial downloads live across processes (`ingest/<hex>.part`)."""
        return self.root.path / "ingest"

    @contextlib.contextmanager
    def partial(self, digest: str) -> Iterator[PartialBlob]:
        """The partial file of `digest`, made if absent, locked for this block.

        A writer in another process (or thread) holding it makes this wait: the same
        blob is never downloaded twice at once, and the caller should check `has()`
        again once it gets the lock. The file stays after the block unless committed,
        so the next attempt resumes from it.
        """
        check_digest(digest)
        self.ingest_dir.mkdir(exist_ok=True)
        path = self.ingest_dir / (digest.removeprefix("sha256:") + ".part")
        while True:
            fh = cast(BinaryIO, open(path, "a+b"))  # noqa: SIM115 - closed below
            try:
                fcntl.flock(fh, fcntl.LOCK_EX)
                # The holder we waited for may have committed (renamed) the file: our
                # descriptor then points at the stored blob, which must not be touched.
                try:
                    same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    fh.close()
                    continue
                yield PartialBlob(path, fh)
                return
            finally:
                fh.close()

    def remove_stale_partials(self, older_than: float = ORPHAN_GRACE_SECONDS * 24) -> list[Path]:
        """Delete partial downloads nobody holds that were last written more than
        `older_than` seconds ago (pulls given up on); return what was deleted. One a
        live writer holds (flock) is never touched."""
        removed: list[Path] = []
        cutoff = time.time() - older_than
        try:
            entries = list(self.ingest_dir.iterdir())
        except FileNotFoundError:
            return removed
        for path in entries:
            if path.suffix != ".part" or not _older_than(path, cutoff):
                continue
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                if os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino:
                    path.unlink()
                    removed.append(path)
        return removed

    def commit_partial(self, partial: PartialBlob, digest: str, *, hold: str | None = None) -> bool:
        """Put a complete partial file in place as blob `digest`.

        The caller has hashed the bytes and found `digest`; this only syncs and moves
        them (one transaction, as `writer`). Returns True when this call placed the blob.
        """
        check_digest(digest)
        partial.fh.flush()
        os.fsync(partial.fh.fileno())
        return self._place(partial.path, digest, partial.size, hold)

    # -- reading ------------------------------------------------------------------------

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root.blobs_dir / digest.removeprefix("sha256:")

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise StoreError(f"blob {digest} not found in the content store") from None

    def read_bytes(self, digest: str, *, limit: int = 64 << 20) -> bytes:
        """A small blob (manifest, config) whole, its digest checked."""
        with self.open(digest) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise StoreError(f"blob {digest} is larger than {limit} bytes")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"blob {digest} is corrupt: its content has another digest")
        return data

    def info(self, digest: str) -> BlobInfo:
        try:
            return BlobInfo(digest, self.path(digest).stat().st_size)
        except FileNotFoundError:
            raise StoreError(f"blob {digest} not found in the content store") from None

    def touch(self, digests: Iterable[str]) -> None:
        """Mark blobs used now (prune keeps recently used content longer)."""
        now = time.time()
        with self.root.transaction() as db:
            db.executemany(
                "UPDATE content_blobs SET last_used = ? WHERE digest = ?",
                [(now, d) for d in digests],
            )

    # -- references and deletion -----------------------------------------------------------

    def add_refs(self, owner: str, digests: Iterable[str]) -> None:
        """Record that `owner` holds these blobs; each must be present (checked now)."""
        with self.root.transaction() as db:
            self.add_refs_in(db, owner, digests)

    def add_refs_in(self, db: sqlite3.Connection, owner: str, digests: Iterable[str]) -> None:
        """`add_refs` inside the caller's transaction.

        The presence check runs inside the transaction, so a blob deleted by a
        concurrent `delete_unreferenced` is noticed instead of referenced while missing.
        """
        wanted = sorted(set(digests))
        for digest in wanted:
            if not self.has(digest):
                raise StoreError(f"blob {digest} not found in the content store")
        db.executemany(
            "INSERT OR IGNORE INTO content_refs(digest, owner) VALUES (?, ?)",
            [(d, owner) for d in wanted],
        )

    def remove_refs(self, owner: str) -> list[str]:
        """Drop everything `owner` holds; return the blobs it held."""
        with self.root.transaction() as db:
            return self.remove_refs_in(db, owner)

    def remove_refs_in(self, db: sqlite3.Connection, owner: str) -> list[str]:
        rows = db.execute("SELECT digest FROM content_refs WHERE owner = ?", (owner,))
        held = [str(r[0]) for r in rows]
        db.execute("DELETE FROM content_refs WHERE owner = ?", (owner,))
        return held

    def referenced_digests(self) -> set[str]:
        """Every blob some owner (an image, a lease) holds."""
        rows = self.root.connect().execute("SELECT DISTINCT digest FROM content_refs")
        return {str(r[0]) for r in rows}

    def ref_count(self, digest: str) -> int:
        row = self.root.connect().execute(
            "SELECT COUNT(*) FROM content_refs WHERE digest = ?", (digest,)
        )
        return int(row.fetchone()[0])

    def delete_unreferenced(self, digests: Iterable[str]) -> list[str]:
        """Delete those of `digests` that no owner holds; return the ones deleted."""
        with self.root.transaction() as db:
            return self.delete_unreferenced_in(db, digests)

    def delete_unreferenced_in(self, db: sqlite3.Connection, digests: Iterable[str]) -> list[str]:
        deleted: list[str] = []
        for digest in dict.fromkeys(digests):
            held = db.execute(
                "SELECT 1 FROM content_refs WHERE digest = ? LIMIT 1", (digest,)
            ).fetchone()
            if held is None and self._delete_locked(db, digest):
                deleted.append(digest)
        return deleted

    def delete(self, digest: str) -> bool:
        """Delete a blob whatever holds it (True if it was there)."""
        with self.root.transaction() as db:
            db.execute("DELETE FROM content_refs WHERE digest = ?", (digest,))
            return self._delete_locked(db, digest)

    def _delete_locked(self, db: sqlite3.Connection, digest: str) -> bool:
        db.execute("DELETE FROM content_blobs WHERE digest = ?", (digest,))
        db.execute("DELETE FROM content_layers WHERE digest = ?", (digest,))
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            return False
        return True

    def sweep_orphans(
        self, grace: float = ORPHAN_GRACE_SECONDS, holders: Sequence[LayerHolder] = ()
    ) -> list[str]:
        """Drop leases of dead processes, then delete blobs nothing holds that are older
        than `grace` seconds; return the digests deleted. `holders` are the other tables
        that hold blobs without references here (the solver's remembered layers: the
        collector passes them, `strata.gc.prune.sweep_orphan_blobs`).

        Cheap (one directory listing and two queries) and safe beside live writers: a
        blob is deleted only inside a write transaction that re-checks, for that blob,
        its references, the holders and its age, while every leased writer takes its
        reference inside such a transaction too.
        """
        with self.root.transaction() as db:
            leases = [
                str(r[0])
                for r in db.execute(
                    "SELECT DISTINCT owner FROM content_refs WHERE owner LIKE ?",
                    (LEASE_PREFIX + "%",),
                )
            ]
            for owner in leases:
                process = owner.removeprefix(LEASE_PREFIX).partition("/")[0]
                if not self.root.owner_alive(process):
                    db.execute("DELETE FROM content_refs WHERE owner = ?", (owner,))
        held = self.referenced_digests()
        for holder in holders:
            held |= holder.layer_digests()
        cutoff = time.time() - grace
        candidates = [
            f"sha256:{name}"
            for name in os.listdir(self.root.blobs_dir)
            if is_digest(f"sha256:{name}")
            and f"sha256:{name}" not in held
            and _older_than(self.root.blobs_dir / name, cutoff)
        ]
        if not candidates:
            return []  # the usual case: no write transaction taken
        deleted: list[str] = []
        with self.root.transaction() as db:
            for digest in candidates:
                if any(holder.holds_layer_in(db, digest) for holder in holders):
                    continue
                if _older_than(self.path(digest), cutoff):  # not rewritten meanwhile
                    deleted += self.delete_unreferenced_in(db, [digest])
        return deleted

    # -- layer facts ----------------------------------------------------------------------

    def record_layer(
        self,
        *,
        digest: str,
        diff_id: str,
        compression: Compression,
        media_type: str,
        uncompressed_size: int,
    ) -> None:
        """Remember what `digest` holds, so later exports skip compressing it again."""
        check_digest(digest)
        check_digest(diff_id)
        with self.root.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO content_layers"
                "(digest, diff_id, compression, media_type, uncompressed_size)"
                " VALUES (?, ?, ?, ?, ?)",
                (digest, diff_id, compression, media_type, uncompressed_size),
            )

    def layer_for_diff(self, diff_id: str, compression: Compression) -> str | None:
        """The stored blob holding `diff_id` compressed with `compression`, if any."""
        rows = self.root.connect().execute(
            "SELECT digest FROM content_layers WHERE diff_id = ? AND compression = ?",
            (diff_id, compression),
        )
        for (digest,) in rows.fetchall():
            if self.has(digest):
                return str(digest)
        return None

    def describe_layer(self, digest: str, media_type: str | None = None) -> LayerRecord:
        """The layer facts of a stored blob, computed by reading it once if not known.

        Used for layers that arrive from archives: their diff_id must be checked against
        the image config, and a docker-archive export needs the uncompressed size.
        """
        known = self.layer_record(digest)
        if known is not None:
            return known
        tar_hash = hashlib.sha256()
        size = 0
        with self.open(digest) as raw:
            stream, kind = open_decompressed(raw)
            if kind != "none":  # a plain tar is its own diff_id: no need to read it
                while chunk := read_decompressed(stream, COPY_CHUNK):
                    tar_hash.update(chunk)
                    size += len(chunk)
            else:
                size = self.info(digest).size
        compression: Compression = "none" if kind == "none" else kind  # type: ignore[assignment]
        record = LayerRecord(
            digest=digest,
            diff_id=digest if kind == "none" else "sha256:" + tar_hash.hexdigest(),
            compression=compression,
            media_type=media_type or layer_media_type(compression),
            uncompressed_size=size,
        )
        self.record_layer(
            digest=digest,
            diff_id=record.diff_id,
            compression=record.compression,
            media_type=record.media_type,
            uncompressed_size=size,
        )
        return record

    def layer_record(self, digest: str) -> LayerRecord | None:
        row = (
            self.root.connect()
            .execute(
                "SELECT digest, diff_id, compression, media_type, uncompressed_size"
                " FROM content_layers WHERE digest = ?",
                (digest,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return LayerRecord(row[0], row[1], row[2], row[3], int(row[4]))


def _older_than(path: Path, cutoff: float) -> bool:
    try:
        return os.stat(path).st_mtime <= cutoff
    except FileNotFoundError:
        return False


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

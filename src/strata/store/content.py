"""The content store: blobs (layers, configs, manifests) named by their sha256 digest.

A blob is streamed into this process's tmp space, hashed on the way, checked against
the digest the caller expected, fsynced and renamed into `blobs/sha256/<hex>`. The
rename is atomic, so a blob file is always complete; a process killed mid-write
leaves only tmp files, which the next `StateRoot.open` reaps. Two writers of the same
content both succeed: the second renames its identical bytes over the first's. So
importing, loading or pulling a blob whose stored file is corrupt (its bytes no longer
match its name) replaces that file with the good bytes.

Reading for an export, a save or a push goes through `open_verified`, which hashes
while the bytes stream out and fails at the end, naming the blob, the image and the
repair command, if they are not the blob's (no second pass over the file).

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
from strata.faults import human_bytes, is_out_of_space, space_error
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


REPAIR_HINT = "run `strata check --repair`, then load, import or pull the image again"


def corrupt_blob_error(digest: str, actual: str, image: str | None) -> StoreError:
    """The one line a blob that fails its digest check gives: which blob, of which image,
    what it hashes to, and how to repair it."""
    of_image = f" of image {image}" if image else ""
    return StoreError(
        f"blob {digest}{of_image} is corrupt (its content hashes to {actual}); {REPAIR_HINT}"
    )


class VerifiedBlob:
    """A stored blob's file, hashed as it is read (see `ContentStore.open_verified`).

    `read` returns the file's bytes; the read that finds the end checks the digest.
    `verify()` reads what is left and checks; leaving the `with` block calls it, so a
    consumer that stops at a known size (a tar entry) is still checked. An exception
    raised inside the block is replaced by the corruption error when the bytes turn
    out to be wrong, since it was most likely caused by them."""

    def __init__(self, fh: BinaryIO, digest: str, *, image: str | None = None) -> None:
        self._fh = fh
        self._hash = hashlib.sha256()
        self.digest = digest
        self.image = image
        self.size = 0
        self._checked = False
        self._failed = False

    def read(self, size: int | None = -1) -> bytes:
        data = self._fh.read(-1 if size is None else size)
        if data:
            self._hash.update(data)
            self.size += len(data)
        elif size != 0:
            self._check()
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    @property
    def stored_size(self) -> int:
        """The size of the file as stored (what a descriptor or tar header announces)."""
        return os.fstat(self._fh.fileno()).st_size

    def chunks(self, size: int = COPY_CHUNK) -> Iterator[bytes]:
        """The bytes in chunks (an HTTP upload body); the last step checks the digest."""
        while chunk := self.read(size):
            yield chunk

    def verify(self) -> None:
        """Read the rest (normally nothing) and check the digest of all the bytes."""
        while self.read(COPY_CHUNK):
            pass
        self._check()

    def _check(self) -> None:
        if self._checked:
            return
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self.digest:
            self._failed = True
            raise corrupt_blob_error(self.digest, actual, self.image)
        self._checked = True

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> VerifiedBlob:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        try:
            if exc is None:
                self.verify()
            elif isinstance(exc, StoreError | ValueError | EOFError) and not self._failed:
                # What bad bytes make a consumer raise (a decompressor's error, a tar
                # entry of the wrong size): the corruption error, if that is what it
                # was, replaces (and chains) it. Not for OSError: a full or closed
                # output is no reason to read the rest of a large blob.
                self.verify()
        finally:
            self.close()


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
        except BaseException as exc:
            with contextlib.suppress(OSError):
                fh.close()  # flushing the buffer may fail again on a full disk
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
            if is_out_of_space(exc):
                what = expected or "a blob"
                raise space_error(
                    exc,
                    f"{what} into the content store of {self.root.path} (after {human_bytes(blob.size)})",
                ) from exc
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
            # The new bytes were hashed on the way in, so they are the blob's true
            # content; the file already there may not be (a flipped bit, a truncated
            # write by another tool). Renaming over it costs no read and leaves a
            # correct blob either way; a reader holding the old file keeps its inode.
            created = not final.exists()
            os.chmod(tmp_path, 0o444)
            os.rename(tmp_path, final)
            _fsync_dir(final.parent)
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

    def open_verified(self, digest: str, *, image: str | None = None) -> VerifiedBlob:
        """Blob `digest` for streaming out (export, save, push), hashed as it is read.

        Use it as a context manager: reading to the end, or leaving the block cleanly,
        checks the bytes against `digest` (reading whatever the consumer left) and
        raises a StoreError naming the blob, `image` and `strata check --repair` if
        they differ; an error inside the block from bytes that fail that check (a
        decompressor choking on them) becomes the same StoreError."""
        try:
            fh = open(self.path(digest), "rb")  # noqa: SIM115 - VerifiedBlob closes it
        except FileNotFoundError:
            of_image = f" of image {image}" if image else ""
            raise StoreError(
                f"blob {digest}{of_image} is missing from the content store; {REPAIR_HINT}"
            ) from None
        return VerifiedBlob(fh, digest, image=image)

    def read_bytes(self, digest: str, *, limit: int = 64 << 20, image: str | None = None) -> bytes:
        """A small blob (manifest, config) whole, its digest checked."""
        with self.open(digest) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise StoreError(f"blob {digest} is larger than {limit} bytes")
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise corrupt_blob_error(digest, actual, image)
        return data

    def hash_blob(self, digest: str) -> BlobInfo:
        """The digest and size the stored file of `digest` really has (one read)."""
        h = hashlib.sha256()
        size = 0
        with self.open(digest) as fh:
            while chunk := fh.read(COPY_CHUNK):
                h.update(chunk)
                size += len(chunk)
        return BlobInfo("sha256:" + h.hexdigest(), size)

    def stored_digests(self) -> list[str]:
        """Every blob file in the store, by digest (names that are not digests skipped)."""
        return sorted(
            f"sha256:{name}"
            for name in os.listdir(self.root.blobs_dir)
            if is_digest(f"sha256:{name}")
        )

    def recorded_sizes(self) -> dict[str, int]:
        """digest -> size, as recorded when each blob was stored (for `strata check`)."""
        rows = self.root.connect().execute("SELECT digest, size FROM content_blobs")
        return {str(d): int(s) for d, s in rows.fetchall()}

    def drop_bad(self, digest: str) -> bool:
        """Delete a blob's file and records but keep who holds it, so that the image it
        belongs to still holds it once a load, import or pull brings the good bytes
        back (`strata check --repair`). True if the file was there."""
        with self.root.transaction() as db:
            return self._delete_locked(db, digest)

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
                try:
                    while chunk := read_decompressed(stream, COPY_CHUNK):
                        tar_hash.update(chunk)
                        size += len(chunk)
                except StoreError:
                    # Most likely bytes that are not the blob's: say so, by name.
                    actual = self.hash_blob(digest).digest
                    if actual != digest:
                        raise corrupt_blob_error(digest, actual, None) from None
                    raise
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

"""Downloading one blob into the content store: verified, resumable, never half-visible.

The bytes go to the blob's partial file (`ContentStore.partial`, locked while we write),
hashed as they arrive; only when the size is reached and the sha256 is the digest's is
the file moved into the store. So:

- a stream that dies (reset, unexpected EOF, read timeout) is reopened at the offset
  reached with `Range: bytes=<offset>-`, as containerd's `httpReadSeeker` does
  (`ctd:core/remotes/docker/httpreadseeker.go` L28-90): up to 3 reopenings in a row
  that bring no new byte, then the download fails (the partial file stays);
- a later process (after Ctrl-C or SIGKILL) finds the partial file and asks only for
  the rest; a server that answers a ranged request with the whole blob (200) is
  followed from byte 0;
- a partial left by someone else is only trusted as far as the final digest check: a
  resumed download that hashes wrong is retried once from byte 0, a fresh one fails
  and its bytes are dropped.

HTTP is not this module's business: the caller passes `open_blob(offset)`, which
returns a `BlobStream` or raises (a RegistryError for a refusal, after its retries).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from strata.errors import RegistryError
from strata.image.oci import Descriptor
from strata.store.content import ContentStore

MAX_STALLED_REOPENS = 3

Progress = Callable[[int, int], None]


class StreamBroken(Exception):
    """A blob stream ended early (reset, unexpected EOF, read timeout): worth reopening."""


@dataclass
class BlobStream:
    """An open blob response: `chunks` starts at byte `start` of the blob (0 when the
    server ignored a Range request). Iterating may raise `StreamBroken`."""

    start: int
    chunks: Iterator[bytes]
    close: Callable[[], None]


OpenBlob = Callable[[int], BlobStream]


def download_blob(
    desc: Descriptor,
    content: ContentStore,
    open_blob: OpenBlob,
    *,
    what: str,
    registry: str,
    progress: Progress | None = None,
    hold: str | None = None,
) -> None:
    """Make blob `desc` present in `content`, fetching what is missing.

    `what` names the blob's source for messages (`docker.io/library/alpine`). With
    `hold`, the blob is referenced by that owner once present (see `ContentStore.lease`).
    """
    digest, size = desc["digest"], desc["size"]
    report = progress or (lambda done, total: None)
    if _present(content, digest, hold):
        report(size, size)
        return
    with content.partial(digest) as part:
        if _present(content, digest, hold):  # another writer finished while we waited
            report(size, size)
            return
        offset = part.size
        if offset > size:
            part.reset()
            offset = 0
        inherited = offset > 0
        hasher = part.prefix_hash() if offset else hashlib.sha256()
        stalls = 0
        while True:
            while offset < size:
                stream = open_blob(offset)
                try:
                    if stream.start != offset:
                        if stream.start != 0:
                            raise RegistryError(
                                f"{what}: blob {digest}: asked for bytes from {offset}, "
                                f"got bytes from {stream.start}",
                                registry=registry,
                            )
                        part.reset()
                        offset, hasher = 0, hashlib.sha256()
                    report(offset, size)
                    before = offset
                    try:
                        for chunk in stream.chunks:
                            if offset + len(chunk) > size:
                                part.discard()
                                raise RegistryError(
                                    f"{what}: blob {digest} is larger than its {size} bytes",
                                    registry=registry,
                                )
                            part.append(chunk)
                            hasher.update(chunk)
                            offset += len(chunk)
                            report(offset, size)
                        if offset < size:
                            raise StreamBroken(f"stream ended at byte {offset} of {size}")
                    except StreamBroken as exc:
                        stalls = 0 if offset > before else stalls + 1
                        if stalls > MAX_STALLED_REOPENS:
                            raise RegistryError(
                                f"{what}: blob {digest}: download failed at byte {offset} "
                                f"of {size}: {exc}",
                                registry=registry,
                            ) from None
                finally:
                    stream.close()
            actual = "sha256:" + hasher.hexdigest()
            if actual == digest:
                break
            if not inherited:
                part.discard()
                raise RegistryError(
                    f"{what}: blob digest mismatch: expected {digest}, got {actual}",
                    registry=registry,
                )
            # The bytes a previous attempt left were wrong: start over once.
            part.reset()
            inherited, offset, hasher = False, 0, hashlib.sha256()
        content.commit_partial(part, digest, hold=hold)


def _present(content: ContentStore, digest: str, hold: str | None) -> bool:
    if not content.has(digest):
        return False
    if hold is not None:
        content.add_refs(hold, [digest])
    return True

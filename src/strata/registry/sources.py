"""Which registry repositories are known to hold which blobs: the memory behind
cross-repository mounts.

BuildKit labels a lazily pulled layer with `containerd.io/distribution.source.<host>=
<repo>` and, when pushing to the same host, asks the registry to mount the blob from
that repository instead of uploading it (`bk:cache/remote.go` L160-190,
`ctd:core/remotes/docker/handler.go` `selectRepositoryMountCandidate`). strata keeps the
same fact in the table `blob_sources`: a pull records the repository its manifest,
config and layers came from, and a push records the repository it put them in, so the
next push of those blobs to another repository on that registry mounts them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from strata.store.root import StateRoot

__all__ = ["BlobSources", "mount_candidates"]


class BlobSources:
    """The table `blob_sources` (digest, source = `<domain>/<path>`)."""

    def __init__(self, root: StateRoot) -> None:
        self.root = root

    def remember(self, source: str, digests: Iterable[str]) -> None:
        """Note that repository `source` (`127.0.0.1:5000/library/busybox`) holds `digests`."""
        now = time.time()
        rows = [(digest, source, now) for digest in dict.fromkeys(digests)]
        if not rows or not source:
            return
        with self.root.transaction() as db:
            db.executemany(
                "INSERT INTO blob_sources(digest, source, seen) VALUES (?, ?, ?)"
                " ON CONFLICT(digest, source) DO UPDATE SET seen = excluded.seen",
                rows,
            )

    def sources_of(self, digest: str) -> list[str]:
        """Every repository known to hold `digest`, most recently seen first."""
        rows = (
            self.root.connect()
            .execute(
                "SELECT source FROM blob_sources WHERE digest = ? ORDER BY seen DESC, source",
                (digest,),
            )
            .fetchall()
        )
        return [str(row[0]) for row in rows]

    def forget(self, source: str, digests: Iterable[str]) -> None:
        """The registry said it no longer has these blobs there."""
        with self.root.transaction() as db:
            db.executemany(
                "DELETE FROM blob_sources WHERE digest = ? AND source = ?",
                [(digest, source) for digest in digests],
            )


def mount_candidates(sources: Iterable[str], domain: str, path: str) -> list[str]:
    """The repository paths on `domain` (other than `path`) a blob may be mounted from,
    the one sharing the longest leading path with `path` first, as containerd picks
    (`selectRepositoryMountCandidate`)."""
    prefix = domain + "/"
    found = [s.removeprefix(prefix) for s in sources if s.startswith(prefix)]
    found = [p for p in dict.fromkeys(found) if p and p != path]
    target = path.split("/")

    def shared(candidate: str) -> int:
        count = 0
        for mine, theirs in zip(target, candidate.split("/"), strict=False):
            if mine != theirs:
                break
            count += 1
        return count

    return sorted(found, key=lambda p: -shared(p))

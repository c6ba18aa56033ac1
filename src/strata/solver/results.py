"""What solving a vertex yields: a reference to a file tree the next steps can read.

Most results are committed snapshots (`SnapshotResult`); `None` as the snapshot name is
the empty tree (scratch, or an image without layers). The build context is not copied
into a snapshot: its result points at the directory itself plus the `.dockerignore`
matcher, and readers (COPY, content hashing, bind mounts) apply the matcher, as
BuildKit's client filters what it sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from strata.worker.context import PathMatcher


@dataclass(frozen=True)
class SnapshotResult:
    """A committed snapshot (`name`), or the empty tree when `name` is None."""

    name: str | None


@dataclass(frozen=True)
class ContextResult:
    """The build context: a host directory whose ignored paths do not exist for the build."""

    directory: Path
    ignore: PathMatcher | None = None


Result = SnapshotResult | ContextResult

EMPTY = SnapshotResult(None)


def parent_snapshot(inputs: Sequence[Result], index: int | None, role: str) -> str | None:
    """The snapshot a new one starts from: `inputs[index]`'s, none for no input. `role`
    names the input in the error when it is not a snapshot (an engine bug, not the user's)."""
    if index is None:
        return None
    base = inputs[index]
    if not isinstance(base, SnapshotResult):
        raise TypeError(f"{role} must be a snapshot")
    return base.name

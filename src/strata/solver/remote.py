"""The solver's seam to a remote build cache (`strata.remotecache`): results found elsewhere.

A remote cache (imported with `--cache-from`) is asked for a key only when this state
root has no result for it. A hit is *lazy*, as BuildKit's remote-cache results are
(`worker/base/worker.go` `FromRemote`): the step prints CACHED and its dependents build
their keys on it, but its layers are downloaded and unpacked only when something needs
its files (a step that runs on it, a checksum the cache did not carry, an export).

The solver also lists every step it solved (`CacheResult`), so that `--cache-to` can
export them: a result made or unpacked here by its snapshot, a lazy hit by the remote
result it still is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class RemoteHit(Protocol):
    """A result held by a remote cache."""

    @property
    def snapshot(self) -> str | None:
        """The committed snapshot the result is (or becomes, once unpacked) here: the
        chain ID of its layers; None for the empty tree."""
        ...

    def checksum(self, selector: str) -> str | None:
        """The content checksum of a path in the result, when the cache carries it
        (a `ChecksumRequest.selector()`), so a reader keyed by content need not unpack it."""
        ...

    def materialize(self) -> None:
        """Fetch the result's layers and unpack them into `snapshot` (idempotent)."""
        ...


@dataclass(frozen=True)
class RemoteStep:
    """What a remote cache remembers of one Dockerfile step, to explain a miss."""

    components: dict[str, Any]
    source: str  # where the cache came from, as the user named it


class RemoteCache(Protocol):
    """The imported caches of one build, as the solver asks them."""

    def lookup(self, key: str) -> RemoteHit | None:
        """The result stored under `key`, if some imported cache has one."""
        ...

    def previous_step(self, vertex_name: str) -> RemoteStep | None:
        """The imported record of the step named like `vertex_name` (same stage and
        position), for a miss explained against the cache it came from."""
        ...

    def seed_cache_mount(self, cache_id: str, base_key: str) -> None:
        """Before a RUN runs: restore cache mount `cache_id` (with base `base_key`, as
        `store.cachemounts.base_key_for` names it) from an imported cache that holds it,
        unless this state root has that cache already. Never fails the build."""
        ...


@dataclass(frozen=True)
class CacheResult:
    """One solved step as `--cache-to` exports it."""

    key: str
    kind: str
    description: str
    components: dict[str, Any]
    snapshot: str | None
    # Set when the result is a remote hit never unpacked here: its layers are there.
    remote: RemoteHit | None = None

"""The build's own (non-op) vertices: loading the definition and context, exporting,
importing and exporting caches. Named as BuildKit names them (`[internal] load ...`,
`exporting to image`), keyed by a digest of their name or key."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

from strata.errors import StrataError
from strata.progress.bus import ProgressBus


def internal_digest(label: str) -> str:
    """The vertex digest of an internal vertex: stable for one label."""
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


@contextlib.contextmanager
def internal_vertex(bus: ProgressBus, name: str, key: str | None = None) -> Iterator[str]:
    """A vertex for the `with` block: started, then done, or in error with the user's
    error's message, or canceled when anything else (Ctrl-C) ends the block."""
    digest = internal_digest(key or name)
    bus.vertex_started(digest, name)
    try:
        yield digest
    except StrataError as exc:
        bus.vertex_error(digest, exc.message)
        raise
    except BaseException:
        bus.vertex_canceled(digest)
        raise
    bus.vertex_done(digest)

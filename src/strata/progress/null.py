"""`NullBus`: a `ProgressBus` that shows nothing, for builds nobody watches.

The engine always has a bus to talk to, so no call site asks "is anyone listening?";
a caller of the public API that passes no bus gets this one. It starts no thread and
keeps no state, so one instance may serve any number of builds at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from strata.progress.bus import ProgressBus
from strata.progress.events import ProgressGroup, SourceExcerpt
from strata.progress.protocol import ProgressSummary


class NullBus(ProgressBus):
    """Takes every event `ProgressBus` takes and drops it (a unit test checks that each
    public method of `ProgressBus` is overridden here)."""

    def __init__(self) -> None:
        # No printer and no consumer thread: nothing is ever delivered.
        pass

    def vertex_started(
        self,
        digest: str,
        name: str,
        inputs: Sequence[str] = (),
        *,
        progress_group: ProgressGroup | None = None,
    ) -> None:
        pass

    def vertex_cached(
        self, digest: str, name: str | None = None, inputs: Sequence[str] = ()
    ) -> None:
        pass

    def vertex_done(self, digest: str) -> None:
        pass

    def vertex_error(self, digest: str, message: str, *, name: str | None = None) -> None:
        pass

    def vertex_canceled(self, digest: str) -> None:
        pass

    def log(self, digest: str, stream: int, data: bytes) -> None:
        pass

    def status(
        self,
        digest: str,
        id: str,
        *,
        current: int = 0,
        total: int = 0,
        done: bool = False,
        name: str = "",
    ) -> None:
        pass

    def warn(
        self,
        digest: str,
        short: str,
        *,
        level: int = 1,
        detail: Sequence[str] = (),
        url: str | None = None,
        source: SourceExcerpt | None = None,
    ) -> None:
        pass

    def cache_miss(self, digest: str, reasons: Sequence[str]) -> None:
        pass

    def tick(self) -> None:
        pass

    def close(self) -> ProgressSummary:
        return ProgressSummary(mode="none")

"""The quiet printer: no progress at all.

With `--progress=quiet` the CLI prints only the image ID, to stdout, once the
build succeeds; with `none` not even that. Neither shows the failure report's
log block (BuildKit's discard display keeps no logs), but the Dockerfile
excerpt and the `ERROR:` line still reach stderr.
"""

from __future__ import annotations

from strata.progress.events import SolveStatus
from strata.progress.protocol import FailedStep


class QuietPrinter:
    """Accepts every event and shows nothing."""

    def __init__(self, mode: str = "quiet") -> None:
        self._mode = mode

    @property
    def mode(self) -> str:
        return self._mode

    def update(self, status: SolveStatus, now: float) -> None:
        return None

    def refresh(self, now: float) -> None:
        return None

    def done(self, now: float) -> None:
        return None

    def failed_steps(self) -> list[FailedStep]:
        return []

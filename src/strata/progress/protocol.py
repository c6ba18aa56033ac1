"""What every printer provides, and what is left for the failure report once it ends.

A printer is fed by `ProgressBus` from one thread only, so printers need no
locks. `now` is passed in rather than read from a clock so that what a printer
shows is a function of its inputs: tests drive it with a fake clock and get the
same bytes every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from strata.progress.events import SolveStatus, VertexWarning


@dataclass(frozen=True)
class FailedStep:
    """A vertex that failed (not canceled), with the output lines the report shows.

    Each line is `<elapsed> <text>`, as the plain printer printed it minus `#N `.
    """

    name: str
    log_lines: tuple[str, ...]


@dataclass(frozen=True)
class ProgressSummary:
    """What the failure report needs after the progress display has closed."""

    mode: str
    failed_steps: tuple[FailedStep, ...] = ()
    warnings: tuple[VertexWarning, ...] = ()


class Printer(Protocol):
    """A progress display. `mode` is its `--progress` name (`plain`, `tty`, ...)."""

    @property
    def mode(self) -> str: ...

    def update(self, status: SolveStatus, now: float) -> None:
        """Take in a batch of events; may print at once (rawjson) or wait for refresh."""

    def refresh(self, now: float) -> None:
        """Show what changed; the bus calls this at most every 100 ms and on ticks."""

    def done(self, now: float) -> None:
        """The build ended: print everything still pending and the final view."""

    def failed_steps(self) -> list[FailedStep]:
        """Failed vertices in start order with their retained output; [] if not kept."""

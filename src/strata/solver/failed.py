"""A failed RUN kept as it was, for `strata build --on-error=shell`.

Normally a RUN whose process exits non-zero has its active snapshot removed at once.
With a debug shell wanted, the solver keeps the snapshot and raises `StepProcessError`
carrying a `FailedContainer`: the root file system's mounts, the process's environment,
working directory and user, and the step's runtime mounts (cache, bind, tmpfs,
secrets, ssh). `open_shell` starts an interactive shell in a new container on exactly
that state; `discard` removes the snapshot. Whoever catches the error owns the
container and must call `discard` (the build does, after the shell or without one).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from strata.errors import StepProcessError
from strata.modes import NetworkMode, SecurityMode
from strata.worker.executor import Executor, ProcessSpec
from strata.worker.mounts import RuntimeMount
from strata.worker.snapshots.mount import MountSpec
from strata.worker.snapshots.snapshotter import Snapshotter

DEFAULT_DEBUG_SHELL = "/bin/sh"


def shell_of(args: Sequence[str]) -> str:
    """The shell a shell-form RUN went through (its SHELL's first word: the argv ends
    with `-c <command>`), else /bin/sh. The op keeps no other trace of SHELL."""
    if len(args) >= 3 and args[-2] == "-c" and args[0].startswith("/"):
        return args[0]
    return DEFAULT_DEBUG_SHELL


@dataclass
class FailedContainer:
    """The container of a failed RUN: its kept active snapshot and how it ran."""

    snapshotter: Snapshotter
    snapshot_key: str
    rootfs: Sequence[MountSpec]
    process: ProcessSpec
    mounts: Sequence[RuntimeMount]
    network: NetworkMode
    security: SecurityMode
    step_name: str = ""
    _discarded: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def shell(self) -> str:
        return shell_of(self.process.args)

    def open_shell(self, executor: Executor, stdin: int) -> int:
        """Run an interactive shell on the failed step's file system, with its
        environment, working directory, user and mounts, on the terminal `stdin` (which
        the shell's output goes to as well); returns the shell's exit status."""
        process = replace(self.process, args=(self.shell,))
        return executor.run(
            process,
            self.rootfs,
            self.mounts,
            network=self.network,
            security=self.security,
            stdin=stdin,
            tty=True,
            forward_signals=True,
        )

    def discard(self) -> None:
        """Remove the kept snapshot (once; later calls do nothing)."""
        with self._lock:
            if self._discarded:
                return
            self._discarded = True
        with contextlib.suppress(Exception):
            self.snapshotter.remove(self.snapshot_key)


def discard_kept(error: BaseException | None) -> None:
    """Remove the container an error kept, if it kept one (an error nobody debugs)."""
    if isinstance(error, StepProcessError):
        error.container.discard()

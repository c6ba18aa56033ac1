"""Ctrl-C while the `strata` command is still starting (its imports take ~0.1 s).

Python raises KeyboardInterrupt wherever the main thread is, so a Ctrl-C during the
imports stops one halfway with a traceback, before `strata.cli.main.main` can catch
anything. `guard_command_start` is the first thing `import strata` runs: only in the
`strata` command itself (never in a program or a test importing the package) it makes
SIGINT exit 130 with the same one line `main` prints, until `main` puts Python's own
handler back. A Ctrl-C before the interpreter has installed any handler still kills the
process by the signal, which a shell reports as 130 too.
"""

from __future__ import annotations

import os
import signal
import sys

COMMAND = "strata"


def guard_command_start() -> None:
    if sys.argv and os.path.basename(sys.argv[0]) == COMMAND:
        signal.signal(signal.SIGINT, _interrupted_while_starting)


def _interrupted_while_starting(signum: int, frame: object) -> None:
    # `os._exit`: raising here would leave a module imported halfway, and there is
    # nothing to flush or clean yet.
    try:
        os.write(2, b"ERROR: interrupted\n")
    finally:
        os._exit(130)

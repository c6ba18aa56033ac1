"""A helper process that undoes a strata process's containers when it dies.

runc is started with a parent-death signal (SIGKILL, as BuildKit's runc executor sets
`PdeathSignal`), so a SIGKILLed strata takes its `runc run` processes along. That is
not enough: the container's init is not runc's child in a way the kernel ties to it
(`runc run` is its subreaper; the init never gets a death signal of its own), so the
step's processes would run on, reparented to the host's init, holding their mounts,
until the next strata command reaps the dead process's tmp space.

So the executor starts this watchdog once per owner dir (`StateRoot.owner_dir`), in
its own session so that no terminal signal reaches it. It waits for a shared lock on
the owner's `owner.lock`, which the strata process holds exclusively for as long as it
lives: the kernel drops that lock however the process ends, SIGKILL included, and
`StateRoot.close` drops it on a clean exit after removing the dir itself. Once it has
the lock the watchdog does what `StateRoot.open` would do later: kill the containers
recorded in the owner's runtime state dir (SIGKILL to a pid namespace's init ends every
process in it), undo the mounts below the owner's tmp dir and remove it; after a clean
exit there is nothing left to do.

Run as `python -m strata.worker.watchdog <owner_dir>`.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
from pathlib import Path

from strata.store.root import reap_directory

MARKER = "watchdog"
"""Made (O_EXCL) in the owner dir by whoever starts its watchdog, so there is one."""


def watch(owner_dir: Path) -> None:
    """Wait until the owner of `owner_dir` has gone, then reap what it left."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    try:
        fd = os.open(owner_dir / "owner.lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return  # already closed and removed
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # returns once the owner's exclusive lock is gone
        reap_directory(owner_dir)
    finally:
        os.close(fd)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m strata.worker.watchdog OWNER_DIR", file=sys.stderr)
        return 2
    watch(Path(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

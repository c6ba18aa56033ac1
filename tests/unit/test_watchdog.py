"""The watchdog reaps an owner dir once its owner's lock is gone, and not before."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import sys
from pathlib import Path


def test_watchdog_removes_the_owner_dir_only_after_the_owner_lets_go(tmp_path: Path) -> None:
    owner = tmp_path / "1234-abcdef01"
    owner.mkdir()
    (owner / "leftover").write_text("a dead process's file")
    lock = open(owner / "owner.lock", "a+b")  # noqa: SIM115 - released below, as at death
    fcntl.flock(lock, fcntl.LOCK_EX)
    watchdog = subprocess.Popen([sys.executable, "-m", "strata.worker.watchdog", str(owner)])
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            watchdog.wait(timeout=1.0)
        assert watchdog.returncode is None and (owner / "leftover").exists()
        lock.close()  # what the kernel does when the owner dies
        assert watchdog.wait(timeout=60) == 0
        assert not owner.exists()
    finally:
        lock.close()
        if watchdog.poll() is None:
            watchdog.kill()
            watchdog.wait()

"""A SIGKILLed strata takes its step's container along: runc is started with a
parent-death signal, slirp4netns ends when its exit pipe closes, and a watchdog kills
the container and undoes its mounts, so no process of the step outlives strata and the
next build on the root works."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.integration.conftest import process_pid, wait_for
from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    STRATA,
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

STEP = "sleep 1317"  # an unusual duration, so the process found is this test's


def processes_using(path: Path) -> list[str]:
    """Command lines of processes naming `path` (runc, slirp4netns of the root's tmp)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline and "strata.worker.watchdog" not in cmdline:
            found.append(cmdline)
    return found


def test_sigkilled_build_leaves_no_container_process(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN {STEP}\n")
    build = subprocess.Popen(
        [str(STRATA), "--root", str(build_root), "build", "--progress=plain", str(project)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    step_pid: int | None = None
    try:
        wait_for(lambda: process_pid(STEP) is not None, "the step to start")
        step_pid = process_pid(STEP)
        assert any("slirp4netns" in c for c in processes_using(build_root)) or (
            shutil.which("slirp4netns") is None
        )
        build.send_signal(signal.SIGKILL)
        build.wait()
        wait_for(lambda: process_pid(STEP) is None, "the step's process to end")
        wait_for(lambda: not processes_using(build_root), "runc and slirp4netns to end")
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
        if step_pid is not None and process_pid(STEP) == step_pid:
            os.kill(step_pid, signal.SIGKILL)  # a failed run must not leave it behind
    # Nothing was left for the next command to clean up: the watchdog unmounted the
    # step's root and removed the dead process's tmp space.
    wait_for(lambda: not any((build_root / "tmp").iterdir()), "the killed build's tmp space to go")
    again = write_project(tmp_path / "q", f"FROM {BUSYBOX_IMAGE}\nRUN echo next-build-ran\n")
    run = strata(build_root, "build", "--progress=plain", str(again))
    assert run.returncode == 0, run.stderr.decode()
    assert "next-build-ran" in run.stderr.decode()

"""Stopping a build: SIGINT/SIGTERM kill the step's container, undo every mount, and
leave a state root the next build uses as it is."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from strata.store.root import mounts_under
from tests.integration.guide_fixtures import (
    STRATA,
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"build ended early: {path.read_text()}")
        if text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path.read_text()}")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_cancels_the_running_step_and_cleans_up(
    build_root: Path, tmp_path: Path, signum: int, code: int
) -> None:
    project = write_project(
        tmp_path / "p",
        "FROM busybox:strata-test\nRUN echo started && sleep 300\nRUN echo after\n",
    )
    log_path = tmp_path / "log.txt"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(STRATA), "--root", str(build_root), "build", "--progress=plain", str(project)],
            stderr=log,
            stdout=subprocess.DEVNULL,
        )
        try:
            _wait_for(log_path, "started", proc)
            proc.send_signal(signum)
            assert proc.wait(timeout=60) == code
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log_path.read_text()
    assert "ERROR: failed to build: failed to solve: Canceled: context canceled" in text
    assert mounts_under(build_root) == []
    runc_dirs = list((build_root / "tmp").glob("*/runc"))
    assert all(not any(d.iterdir()) for d in runc_dirs if d.is_dir())
    # The interrupted step was not recorded: it runs again, and the build completes.
    project.joinpath("Dockerfile").write_text("FROM busybox:strata-test\nRUN echo again\n")
    again = strata(build_root, "build", "--progress=plain", str(project))
    assert again.returncode == 0, again.stderr.decode()

"""Nothing left behind, nothing done twice: a SIGKILLed `save -o` leaves a temporary
file the next save reaps, and identical steps of concurrent builds run once."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    STRATA,
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]


def test_a_killed_saves_temporary_file_is_reaped_by_the_next_save(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "big", f"FROM {BUSYBOX_IMAGE}\nRUN head -c 60000000 /dev/urandom > /big\n"
    )
    strata(build_root, "build", "-t", "big:1", str(project), check=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dest = out_dir / "big.tar"
    proc = subprocess.Popen(
        [str(STRATA), "--root", str(build_root), "save", "-o", str(dest), "big:1"],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not list(out_dir.glob(".big.tar.*.tmp")) and time.monotonic() < deadline:
        assert proc.poll() is None, "save ended before it could be killed"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = list(out_dir.glob(".big.tar.*.tmp"))
    assert len(left) == 1 and not dest.exists()

    other = out_dir / "base.tar"
    strata(build_root, "save", "-o", str(other), BUSYBOX_IMAGE, check=True)
    assert sorted(p.name for p in out_dir.iterdir()) == ["base.tar"]


def test_a_live_saves_temporary_file_is_left_alone(build_root: Path, tmp_path: Path) -> None:
    import fcntl

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    live = out_dir / ".other.tar.strata-1.tmp"
    with open(live, "wb") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # as a save still writing holds it
        strata(build_root, "save", "-o", str(out_dir / "base.tar"), BUSYBOX_IMAGE, check=True)
        assert live.exists()


def test_identical_steps_of_concurrent_builds_run_once(build_root: Path, tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "app",
        f"FROM {BUSYBOX_IMAGE}\n"
        "RUN --mount=type=cache,target=/c,sharing=shared sleep 1 && echo x >> /c/count"
        " && echo done > /done\n",
    )
    outs = [tmp_path / f"out{i}" for i in range(4)]
    procs = [
        subprocess.Popen(
            [str(STRATA), "--root", str(build_root), "build", "-o", str(out), str(project)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for out in outs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    for out in outs:
        assert (out / "done").read_text() == "done\n"
    counts = list((build_root / "cachemounts").glob("*/data/count"))
    assert len(counts) == 1
    assert counts[0].read_text() == "x\n"

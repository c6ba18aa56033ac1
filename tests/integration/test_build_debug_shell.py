"""`strata build --on-error=shell`: a failed RUN's container opened as an interactive
shell on a real pseudo-terminal, then the build fails with the step's error and leaves
nothing mounted or running; without a terminal, a warning and a normal failure."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    STRATA,
    build_root,
    busybox_tarball,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

FAILING = (
    f"FROM {BUSYBOX_IMAGE}\n"
    "ENV GREETING=hello\n"
    "WORKDIR /work\n"
    "USER app\n"
    "RUN --mount=type=cache,target=/cache,uid=1000 "
    "echo marker > /tmp/x; echo cached > /cache/c; exit 7\n"
)
STEP = (
    "[stage-0 3/3] RUN --mount=type=cache,target=/cache,uid=1000 "
    "echo marker > /tmp/x; echo cached > /cache/c; exit 7"
)
ERROR = (
    "ERROR: failed to build: failed to solve: process "
    '"/bin/sh -c echo marker > /tmp/x; echo cached > /cache/c; exit 7" '
    "did not complete successfully: exit code: 7"
)
PATIENCE = 120.0  # a guard against hanging forever, not a timing assertion


class TerminalSession:
    """strata running with stdin, stdout and stderr on a new pseudo-terminal."""

    def __init__(self, args: Sequence[str]) -> None:
        env = dict(os.environ, PROGRESS_NO_TRUNC="1", TERM="dumb")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes strata
            os.execve(args[0], list(args), env)
        self.seen = b""

    def read_until(self, token: bytes) -> bool:
        """Read the terminal until `token` shows up (True) or the output ends (False)."""
        deadline = time.monotonic() + PATIENCE
        while token not in self.seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # EIO: every process on the terminal has gone
                return token in self.seen
            if not data:
                break
            self.seen += data
        return token in self.seen

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def finish(self) -> int:
        """Read to the end and reap strata; its exit code."""
        self.read_until(b"\0never printed\0")
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        except ProcessLookupError:
            pass

    @property
    def text(self) -> str:
        return self.seen.decode(errors="replace").replace("\r\n", "\n")


def strata_build(root: Path, project: Path, *flags: str) -> list[str]:
    return [str(STRATA), "--root", str(root), "build", "--progress=plain", *flags, str(project)]


def mounts_below(path: Path) -> list[str]:
    """Mount points at or below `path`, as findmnt lists them."""
    listing = subprocess.run(
        ["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True, check=True
    )
    return [m for m in listing.stdout.splitlines() if m.startswith(str(path))]


def test_failed_run_opens_a_shell_in_its_container_then_fails_with_the_steps_error(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", FAILING)
    session = TerminalSession(strata_build(build_root, project, "--on-error=shell"))
    try:
        assert session.read_until(b"exit to end the build"), session.text
        notice = f"Starting debug shell (/bin/sh) in {STEP}; exit to end the build"
        assert notice in session.text, repr(session.text[-400:])
        # Echoed input shows the unexpanded words; only the shell's answers match.
        session.type(
            b'cat /tmp/x; echo "pwd=$PWD"; echo "greeting=$GREETING"; echo "uid=$(id -u)"; '
            b"cat /cache/c; exit 3\n"
        )
        code = session.finish()
    finally:
        session.kill()
    shell_output = session.text.split("exit to end the build", 1)[1]
    for answer in ("marker", "pwd=/work", "greeting=hello", "uid=1000", "cached"):
        assert f"\n{answer}\n" in shell_output, session.text
    assert code == 1
    assert session.text.rstrip("\n").splitlines()[-1] == ERROR
    assert f" > {STEP}:" in shell_output  # the failure report comes after the shell
    assert mounts_below(build_root) == []
    assert mounts_below(tmp_path) == []


def test_default_on_error_fails_without_a_shell_even_on_a_terminal(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", FAILING)
    session = TerminalSession(strata_build(build_root, project))
    try:
        code = session.finish()
    finally:
        session.kill()
    assert code == 1
    assert "debug shell" not in session.text
    assert session.text.rstrip("\n").splitlines()[-1] == ERROR


def test_shell_without_a_terminal_warns_and_fails_normally(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", FAILING)
    run = subprocess.run(
        strata_build(build_root, project, "--on-error=shell"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=dict(os.environ, PROGRESS_NO_TRUNC="1"),
        timeout=600,
    )
    log = run.stderr.decode()
    assert run.returncode == 1
    assert (
        "WARNING: --on-error=shell needs a terminal on stdin: not starting a debug shell\n" in log
    )
    assert "Starting debug shell" not in log
    assert log.splitlines()[-1] == ERROR
    assert mounts_below(build_root) == []


def test_a_successful_build_with_on_error_shell_opens_nothing(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN echo fine\n")
    run = subprocess.run(
        strata_build(build_root, project, "--on-error=shell"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr.decode()
    assert "debug shell" not in run.stderr.decode()

"""Ctrl-C while the `strata` command imports: exit 130 with one line, no traceback; a
program that merely imports strata keeps Python's own KeyboardInterrupt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BODY = """\
import os, signal, time
import strata  # the guard is installed here, for the `strata` command only
os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C came while the rest still imports
time.sleep(5)
"""


def run_as(tmp_path: Path, name: str) -> subprocess.CompletedProcess[bytes]:
    script = tmp_path / name
    script.write_text(BODY)
    return subprocess.run([sys.executable, str(script)], capture_output=True, timeout=60)


def test_ctrl_c_while_the_command_starts_exits_130_quietly(tmp_path: Path) -> None:
    done = run_as(tmp_path, "strata")
    assert done.returncode == 130
    assert done.stderr == b"ERROR: interrupted\n"


def test_a_program_importing_strata_keeps_keyboard_interrupt(tmp_path: Path) -> None:
    done = run_as(tmp_path, "program.py")
    assert done.returncode != 130
    assert b"KeyboardInterrupt" in done.stderr

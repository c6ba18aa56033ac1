"""Shared pieces of the build integration tests: the Python base image and CLI runs.

The Python base image (Debian packages + busybox, `strata.devtools.pyimage`) is made
once into the repository's `.cache/strata-example` and imported into each test's state
root; where apt cannot download (no network, no apt), the tests that need it skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from strata.devtools.pyimage import IMAGE_NAME, ImageBuildError, ensure_python_image
from strata.store.root import StateRoot

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "strata-example"
GUIDE = REPO / "examples" / "guide"
STRATA = Path(sys.executable).parent / "strata"


def python_image(root_path: Path) -> str:
    """Import the example Python image into the state root at `root_path` (skip if it
    cannot be made here)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("the Python base image needs apt-get and dpkg-deb")
    CACHE.mkdir(parents=True, exist_ok=True)
    root = StateRoot.open(root_path)
    try:
        ensure_python_image(root, CACHE)
    except ImageBuildError as exc:
        pytest.skip(f"cannot make the Python base image here: {exc}")
    finally:
        root.close()
    return IMAGE_NAME


def strata(
    root: Path, *args: str, stdin: bytes | None = None, check: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed `strata` command on state root `root`."""
    env = dict(os.environ, PROGRESS_NO_TRUNC="1")
    proc = subprocess.run(
        [str(STRATA), "--root", str(root), *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"strata {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.decode()}"
        )
    return proc


def lines_matching(log: str, word: str) -> list[str]:
    """`awk '/word/'` over a log."""
    return [line for line in log.splitlines() if word in line]

"""Shared pieces of the build integration tests: the Python base image and CLI runs.

The Python base image (Debian packages + busybox, `strata.devtools.pyimage`) is made
once into the repository's `.cache/strata-example` and imported into each test's state
root; where apt cannot download (no network, no apt), the tests that need it skip.
"""

from __future__ import annotations

import os
import re
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


BUSYBOX_IMAGE = "busybox:strata-test"


@pytest.fixture(scope="session")
def busybox_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox rootfs as a tarball, made once per session."""
    from tests.rootfs import make_busybox_rootfs

    base = tmp_path_factory.mktemp("busybox-image")
    rootfs = make_busybox_rootfs(base / "rootfs")
    tarball = base / "rootfs.tar"
    subprocess.run(
        ["tar", "--numeric-owner", "--sort=name", "-C", str(rootfs), "-cf", str(tarball), "."],
        check=True,
    )
    return tarball


@pytest.fixture
def build_root(tmp_path: Path, busybox_tarball: Path) -> Path:
    """A fresh state root holding the busybox base image as `busybox:strata-test`."""
    from strata.export.tarball_import import import_tarball
    from strata.store.images import ImageStore

    path = tmp_path / "root"
    root = StateRoot.open(path)
    try:
        images = ImageStore(root)
        with open(busybox_tarball, "rb") as fh:
            manifest = import_tarball(images, fh, source="busybox", changes=['CMD ["sh"]'])
        images.put(BUSYBOX_IMAGE, manifest)
    finally:
        root.close()
    return path


def write_project(directory: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    """A build context with a Dockerfile and some files."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


def step_lines(log: str, step: str) -> list[str]:
    """The lines of the plain-progress block(s) whose header contains `step`."""
    out: list[str] = []
    current: str | None = None
    for line in log.splitlines():
        match = re.match(r"#(\d+) (.*)$", line)
        if match and step in match.group(2) and not match.group(2)[:1].isdigit():
            current = match.group(1)
        if current is not None and line.startswith(f"#{current} "):
            out.append(line)
    return out


def was_cached(log: str, step: str) -> bool:
    return any(line.endswith(" CACHED") for line in step_lines(log, step))

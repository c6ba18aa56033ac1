"""A user's mistake ends in one `ERROR:` line and exit 1, never a traceback: missing
privileges, a state root owned by someone else, output paths of the wrong type or on a
read-only file system (refused before the build starts), writing an archive to a
terminal, a remote context."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import strata
from tests.integration.guide_fixtures import strata as run_strata
from tests.integration.guide_fixtures import write_project

SRC = Path(strata.__file__).parents[1]
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")


def _one_error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ERROR: ")
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "p", "FROM scratch\nCOPY a.txt /\n", {"a.txt": "a"})


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a read-only tmpfs (root ignores permission bits, not `ro`)."""
    path = tmp_path / "ro"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# -- privileges -----------------------------------------------------------------------------


def _as_nobody(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """strata as uid 65534, through the system Python (the venv's may live where that
    user cannot read) with strata's source and the venv's packages on the path."""
    site = next(Path(sys.prefix, "lib").glob("python*/site-packages"))
    if not SYSTEM_PYTHON.exists() or shutil.which("runuser") is None:
        pytest.skip(f"needs runuser and {SYSTEM_PYTHON} to run strata as another user")
    for path in (SRC, site):
        if not all(os.stat(p).st_mode & 0o005 == 0o005 for p in (path, *path.parents)):
            pytest.skip(f"{path} is not readable by other users")
    code = "import sys; from strata.cli.main import main; sys.argv[0] = 'strata'; main()"
    return subprocess.run(
        [
            "runuser",
            "-u",
            "nobody",
            "--",
            "env",
            f"HOME={cwd}",
            f"PYTHONPATH={SRC}:{site}",
            str(SYSTEM_PYTHON),
            "-c",
            code,
            *args,
        ],
        capture_output=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user may enter and write (pytest's own tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="strata-test-"))
    try:
        path.chmod(0o777)
        for parent in path.parents:
            if not parent.stat().st_mode & 0o001:
                pytest.skip(f"{parent} cannot be entered by other users")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_a_build_without_root_says_it_needs_root(shared_dir: Path) -> None:
    project = write_project(shared_dir / "p", "FROM scratch\n")
    done = _as_nobody("--root", str(shared_dir / "root"), "build", str(project), cwd=shared_dir)
    line = _one_error_line(done)
    assert "strata build needs root" in line and "uid 65534" in line


def test_run_without_root_says_it_needs_root(shared_dir: Path) -> None:
    done = _as_nobody("--root", str(shared_dir / "root"), "run", "--rm", "x", cwd=shared_dir)
    assert "strata run needs root" in _one_error_line(done)


def test_a_root_owned_state_root_names_its_owner(shared_dir: Path, tmp_path: Path) -> None:
    root = shared_dir / "rootowned"
    run_strata(root, "images", check=True)  # made by root, 0700
    done = _as_nobody("--root", str(root), "images", cwd=shared_dir)
    line = _one_error_line(done)
    assert f"cannot use state root {root}" in line and "belongs to uid 0" in line


# -- output paths, checked before the build --------------------------------------------------


@pytest.mark.parametrize(
    ("make", "args", "words"),
    [
        (lambda d: (d / "f").write_text("x"), ["-o", "type=local,dest={d}/f"], "not a directory"),
        (lambda d: (d / "t").mkdir(), ["-o", "type=tar,dest={d}/t"], "is a directory"),
        (lambda d: (d / "f").write_text("x"), ["--iidfile", "{d}/f/iid"], "is not a directory"),
        (lambda d: (d / "m").mkdir(), ["--metadata-file", "{d}/m"], "is a directory"),
    ],
)
def test_wrong_type_destinations_are_refused_before_building(
    tmp_path: Path, project: Path, make: object, args: list[str], words: str
) -> None:
    make(tmp_path)  # type: ignore[operator]
    argv = [a.format(d=tmp_path) for a in args]
    done = run_strata(tmp_path / "root", "build", *argv, str(project))
    line = _one_error_line(done)  # one line: no progress, the build never started
    assert words in line and argv[0] in line


@pytest.mark.parametrize("option", ["--iidfile", "--metadata-file", "-o"])
def test_destinations_on_a_read_only_file_system_are_refused_before_building(
    tmp_path: Path, project: Path, read_only_dir: Path, option: str
) -> None:
    value = f"type=tar,dest={read_only_dir}/out.tar" if option == "-o" else f"{read_only_dir}/x"
    done = run_strata(tmp_path / "root", "build", option, value, str(project))
    assert "read-only file system" in _one_error_line(done)


def test_save_to_a_read_only_path_reports_the_write_not_the_cleanup(
    tmp_path: Path, project: Path, read_only_dir: Path
) -> None:
    root = tmp_path / "root"
    run_strata(root, "build", "-t", "demo", str(project), check=True)
    done = run_strata(root, "save", "demo", "-o", str(read_only_dir / "demo.tar"))
    line = _one_error_line(done)
    assert line.startswith(f"ERROR: cannot write {read_only_dir / 'demo.tar'}: ")
    assert "Read-only file system" in line


def _on_a_terminal(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """strata with a pseudo-terminal as stdout (stderr captured)."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [str(Path(sys.prefix, "bin", "strata")), "--root", str(root), *args],
            stdout=terminal,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    return subprocess.CompletedProcess(proc.args, proc.returncode, b"", proc.stderr)


def test_archives_to_a_terminal_are_refused(tmp_path: Path, project: Path) -> None:
    root = tmp_path / "root"
    line = _one_error_line(_on_a_terminal(root, "build", "-o", "-", str(project)))
    assert line == ("ERROR: dest file is required for tar exporter. refusing to write to console")
    run_strata(root, "build", "-t", "demo", str(project), check=True)
    line = _one_error_line(_on_a_terminal(root, "save", "demo"))
    assert "cowardly refusing to save to a terminal" in line


@pytest.mark.parametrize(
    "context",
    [
        "https://127.0.0.1:9/nosuch/repo.git#main:sub",
        "http://127.0.0.1:9/context.tar.gz",
        "git@127.0.0.1:nosuch/repo.git",
    ],
)
def test_a_remote_context_is_one_clear_error(tmp_path: Path, context: str) -> None:
    line = _one_error_line(run_strata(tmp_path / "root", "build", context))
    assert context in line and "remote build contexts" in line

"""Docker's build guide, "Mounts" section, run with strata on examples/guide.

The guide's commands are run as written, by the shell, from inside a copy of the
project, with the state root in `STRATA_ROOT` (as `make demo` runs them): a cache mount
keeps pip's downloads across builds, so after one package's version changes only that
package is downloaded again; `strata prune -af` clears the cache mount too, so the next
build downloads everything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import GUIDE, STRATA, python_image, strata

# BuildKit's plain printer writes a step's output as `#<n> <seconds, 3 decimals> <text>`
# (progressui/printer.go); pip indents its `Downloading` lines by two spaces.
DOWNLOAD_LINE = re.compile(
    r"#(?P<step>\d+) \d+\.\d{3}   Downloading "
    r"http://127\.0\.0\.1:8000/packages/(?P<wheel>[a-z]+-[0-9.]+)-py3-none-any\.whl "
    r"\([0-9.]+ kB\)"
)
DOWNLOADED = re.compile(r"Downloading http://127\.0\.0\.1:8000/packages/([a-z]+)-")
PIN_GREETINGS = (
    'strata run -v "$PWD:$PWD" -w "$PWD" python:3.11 '
    "python3 index/pin.py greetings==1.1"
)


def downloaded(log: str) -> list[str]:
    return sorted(m.group(1) for m in DOWNLOADED.finditer(log))


def sh(command: str, project: Path, root: Path) -> subprocess.CompletedProcess[str]:
    """`command` typed at a shell in `project`, with `STRATA_ROOT=root` exported and the
    installed `strata` on PATH."""
    path = os.pathsep.join([str(STRATA.parent), os.environ.get("PATH", "/usr/bin:/bin")])
    env = dict(os.environ, STRATA_ROOT=str(root), PATH=path)
    env.pop("PROGRESS_NO_TRUNC", None)
    return subprocess.run(
        ["sh", "-c", command], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )


def ok(command: str, project: Path, root: Path) -> str:
    """The standard output of `command`, which must succeed."""
    done = sh(command, project, root)
    assert done.returncode == 0, f"$ {command}\n{done.stdout}{done.stderr}{_logs(project)}"
    return done.stdout


def _logs(project: Path) -> str:
    return "".join(log.read_text() for log in sorted(project.glob("log*.txt")))


def awk_downloads(log: str, project: Path, root: Path) -> list[str]:
    """`awk '/Downloading/' <log>`: the wheels named, each line checked for BuildKit's
    `#N <elapsed> <text>` shape and all from one step."""
    lines = ok(f"awk '/Downloading/' {log}", project, root).splitlines()
    matches = [DOWNLOAD_LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    assert len({m.group("step") for m in matches if m}) <= 1, lines
    return sorted(m.group("wheel") for m in matches if m)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "guide"
    shutil.copytree(GUIDE, target)
    return target


@pytest.fixture
def guide_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    python_image(root)
    return root


def test_guide_commands_download_only_the_changed_package_until_the_cache_is_pruned(
    project: Path, guide_root: Path
) -> None:
    ok("strata prune -af", project, guide_root)
    ok("strata build --target=client --progress=plain . 2> log1.txt", project, guide_root)
    assert awk_downloads("log1.txt", project, guide_root) == [
        "banner-1.0",
        "greetings-1.0",
        "palette-1.0",
    ]

    assert ok(PIN_GREETINGS, project, guide_root) == "changed greetings==1.0 => greetings==1.1\n"
    assert (project / "requirements.txt").read_text() == (
        "greetings==1.1\npalette==1.0\nbanner==1.0\n"
    )

    ok("strata build --target=client --progress=plain . 2> log2.txt", project, guide_root)
    assert awk_downloads("log2.txt", project, guide_root) == ["greetings-1.1"]
    log2 = (project / "log2.txt").read_text()
    assert "File was already downloaded /wheels/palette-1.0-py3-none-any.whl" in log2
    base_run = re.search(r"^#(\d+) \[base 3/3\] RUN ", log2, re.MULTILINE)
    assert base_run is not None, log2
    misses = ok("grep 'cache miss' log2.txt", project, guide_root).splitlines()
    assert f"#{base_run.group(1)} cache miss: file requirements.txt changed" in misses

    ok("strata prune -af", project, guide_root)
    ok("strata build --target=client --progress=plain . 2> log3.txt", project, guide_root)
    assert awk_downloads("log3.txt", project, guide_root) == [
        "banner-1.0",
        "greetings-1.1",
        "palette-1.0",
    ]

    ok("strata build -q --target=client -o type=local,dest=out .", project, guide_root)
    ran = ok(
        'strata run -v "$PWD:$PWD" -w "$PWD" python:3.11 '
        "python3 out/bin/client.pyz http://127.0.0.1:9/",
        project,
        guide_root,
    )
    assert "Hello again, client! (no server at http://127.0.0.1:9/)" in ran.splitlines()


def test_pin_refuses_a_version_the_index_does_not_serve(project: Path) -> None:
    before = (project / "requirements.txt").read_text()
    refused = subprocess.run(
        ["python3", "index/pin.py", "greetings==9.9"], cwd=project, capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert refused.stderr == "greetings==9.9: not in the index (versions: 1.0, 1.1)\n"
    assert (project / "requirements.txt").read_text() == before
    added = subprocess.run(
        ["python3", "index/pin.py", "wordcount==1.0"], cwd=project, capture_output=True, text=True
    )
    assert added.stdout == "added wordcount==1.0\n"
    assert (project / "requirements.txt").read_text() == before + "wordcount==1.0\n"


def test_unchanged_rebuild_is_fully_cached_with_the_same_image_id(
    project: Path, guide_root: Path
) -> None:
    ids = []
    for _ in range(2):
        run = strata(guide_root, "build", "--target=client", "-q", str(project))
        assert run.returncode == 0, run.stderr.decode()
        ids.append(run.stdout.decode().strip())
    again = strata(guide_root, "build", "--target=client", "--progress=plain", str(project))
    log = again.stderr.decode()
    assert again.returncode == 0, log
    assert ids[0] == ids[1]
    assert ids[0].startswith("sha256:")
    assert re.search(r"\[base 3/3\] RUN .*\n#\d+ CACHED", log)
    assert re.search(r"\[client 1/1\] COPY .*\n#\d+ CACHED", log)
    assert downloaded(log) == []


def test_server_target_builds_its_own_stage(project: Path, guide_root: Path) -> None:
    run = strata(
        guide_root,
        "build",
        "--target=server",
        "--progress=plain",
        "--build-arg",
        "APP_VERSION=1.2.3",
        "-t",
        "guide-server:test",
        str(project),
    )
    log = run.stderr.decode()
    assert run.returncode == 0, log
    assert "[build-server 1/1] RUN" in log
    assert "[build-client" not in log
    assert "naming to docker.io/library/guide-server:test done" in log
    out = project.parent / "server-files"
    exported = strata(guide_root, "build", "--target=server", "-q", "-o", str(out), str(project))
    assert exported.returncode == 0, exported.stderr.decode()
    assert (out / "bin" / "VERSION").read_text() == "0.0.0+unknown\n"
    assert (out / "bin" / "server.pyz").stat().st_size > 0

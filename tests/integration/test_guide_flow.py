"""Docker's build guide, "Mounts" section, run with strata on examples/guide.

A cache mount keeps pip's downloads across builds: after adding one dependency only
that package is downloaded again, while the bind-mounted requirements file keeps every
other step cached. Pruning the build cache makes the next build download everything.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import GUIDE, lines_matching, python_image, strata

DOWNLOADED = re.compile(r"Downloading http://127\.0\.0\.1:8000/packages/([a-z]+)-")


def downloaded(log: str) -> list[str]:
    return sorted(m.group(1) for m in DOWNLOADED.finditer(log))


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


def test_cache_mount_downloads_only_the_added_dependency(project: Path, guide_root: Path) -> None:
    first = strata(guide_root, "build", "--target=client", "--progress=plain", str(project))
    log1 = first.stderr.decode()
    assert first.returncode == 0, log1
    assert downloaded(log1) == ["banner", "greetings", "palette"]
    assert all(line.startswith("#") for line in lines_matching(log1, "Downloading"))

    requirements = project / "requirements.txt"
    requirements.write_text(requirements.read_text() + "wordcount==1.0\n")
    second = strata(guide_root, "build", "--target=client", "--progress=plain", str(project))
    log2 = second.stderr.decode()
    assert second.returncode == 0, log2
    assert downloaded(log2) == ["wordcount"]
    assert re.search(r"Using cached .*palette-1\.0", log2)
    assert re.search(r"#\d+ cache miss: file requirements\.txt changed\n", log2)


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


def test_prune_makes_the_next_build_download_everything_again(
    project: Path, guide_root: Path
) -> None:
    first = strata(guide_root, "build", "--target=client", "--progress=plain", str(project))
    assert first.returncode == 0, first.stderr.decode()
    pruned = strata(guide_root, "prune", "-af")
    assert pruned.returncode == 0, pruned.stderr.decode()
    again = strata(guide_root, "build", "--target=client", "--progress=plain", str(project))
    log = again.stderr.decode()
    assert again.returncode == 0, log
    assert downloaded(log) == ["banner", "greetings", "palette"]

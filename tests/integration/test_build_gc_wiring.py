"""Automatic GC runs after every build, with the budget `--gc-budget` (or
$STRATA_GC_BUDGET) gives: real builds through the CLI, records read back with `du`'s
listing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from strata.store.root import StateRoot
from strata.store.usage import disk_usage
from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    STRATA,
    build_root,
    busybox_tarball,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

BIG_STEP = "[2/2] RUN head -c 4000000 /dev/urandom > /big"
SMALL_STEP = "[2/2] RUN echo small > /small"


def build(root: Path, project: Path, *flags: str, env: dict[str, str] | None = None) -> None:
    run = subprocess.run(
        [str(STRATA), "--root", str(root), "build", "--progress=plain", *flags, str(project)],
        capture_output=True,
        env=dict(os.environ, **(env or {})),
        timeout=600,
    )
    assert run.returncode == 0, run.stderr.decode()


def descriptions(root_path: Path) -> set[str]:
    root = StateRoot.open(root_path)
    try:
        return {record.description for record in disk_usage(root)}
    finally:
        root.close()


def two_projects(tmp_path: Path) -> tuple[Path, Path]:
    """A project whose step leaves a 4 MB layer, and one with a tiny layer."""
    big = write_project(
        tmp_path / "big", f"FROM {BUSYBOX_IMAGE}\nRUN head -c 4000000 /dev/urandom > /big\n"
    )
    small = write_project(tmp_path / "small", f"FROM {BUSYBOX_IMAGE}\nRUN echo small > /small\n")
    return big, small


def test_small_budget_removes_the_older_unused_step_after_the_next_build(
    build_root: Path, tmp_path: Path
) -> None:
    big, small = two_projects(tmp_path)
    build(build_root, big, "--gc-budget", "off")
    assert BIG_STEP in descriptions(build_root)
    # busybox (~2 MB) + the 4 MB step + the small step exceed 4 MB; dropping the least
    # recently used step is enough.
    build(build_root, small, "--gc-budget", "4MB")
    left = descriptions(build_root)
    assert BIG_STEP not in left
    assert SMALL_STEP in left
    assert any(d.startswith("pulled from ") for d in left)


def test_budget_from_the_environment_applies_when_no_flag_is_given(
    build_root: Path, tmp_path: Path
) -> None:
    big, small = two_projects(tmp_path)
    build(build_root, big, "--gc-budget", "off")
    build(build_root, small, env={"STRATA_GC_BUDGET": "4MB"})
    assert BIG_STEP not in descriptions(build_root)


def test_off_keeps_every_record_even_with_a_small_budget_in_the_environment(
    build_root: Path, tmp_path: Path
) -> None:
    big, small = two_projects(tmp_path)
    build(build_root, big, "--gc-budget", "off")
    build(build_root, small, "--gc-budget", "off", env={"STRATA_GC_BUDGET": "1MB"})
    left = descriptions(build_root)
    assert {BIG_STEP, SMALL_STEP} <= left


def test_bad_budget_is_a_usage_error_before_anything_is_built(
    build_root: Path, tmp_path: Path
) -> None:
    _, small = two_projects(tmp_path)
    run = subprocess.run(
        [str(STRATA), "--root", str(build_root), "build", "--gc-budget", "lots", str(small)],
        capture_output=True,
        timeout=600,
    )
    assert run.returncode == 1
    assert run.stderr.decode() == "ERROR: invalid GC budget 'lots': invalid size: 'lots'\n"
    assert SMALL_STEP not in descriptions(build_root)


# -- cache mounts described for du ---------------------------------------------------------------


def du_descriptions(root: Path) -> list[str]:
    run = subprocess.run(
        [str(STRATA), "--root", str(root), "du", "-v"], capture_output=True, timeout=600
    )
    assert run.returncode == 0, run.stderr.decode()
    return [
        line.removeprefix("Description:").strip()
        for line in run.stdout.decode().splitlines()
        if line.startswith("Description:")
    ]


def test_du_describes_cache_mounts_by_the_run_that_created_them(
    build_root: Path, tmp_path: Path
) -> None:
    # The frontend's cache id is "<namespace>/<id>" (convert_runmount.go), so an id equal
    # to the target after the slash prints no `with id` and a default id does.
    first = write_project(
        tmp_path / "first",
        f"FROM {BUSYBOX_IMAGE}\n"
        "RUN --mount=type=cache,target=/root/.cache echo one > /one\n"
        "RUN --mount=type=cache,id=pip,target=/pip true\n"
        "WORKDIR /w\n"
        "RUN --mount=type=cache,target=rel echo rel\n",
    )
    build(build_root, first)
    shown = [d for d in du_descriptions(build_root) if d.startswith("cached mount")]
    assert sorted(shown) == [
        "cached mount /pip from exec /bin/sh -c true",
        'cached mount /root/.cache from exec /bin/sh -c echo one > /one with id "//root/.cache"',
        'cached mount /w/rel from exec /bin/sh -c echo rel with id "/rel"',
    ]
    # A later RUN using the same cache does not rename it.
    second = write_project(
        tmp_path / "second",
        f"FROM {BUSYBOX_IMAGE}\nRUN --mount=type=cache,id=pip,target=/elsewhere echo two\n",
    )
    build(build_root, second)
    assert "cached mount /pip from exec /bin/sh -c true" in du_descriptions(build_root)

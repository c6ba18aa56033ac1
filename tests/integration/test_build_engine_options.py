"""`strata build` honours the engine choices: the global `--snapshotter` (and
$STRATA_SNAPSHOTTER) decides how a RUN's root is stacked, `--oci-runtime` which runtime
starts it. Seen from inside the step: the file system type of its `/`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from strata.store.root import StateRoot
from strata.worker.snapshots.factory import overlay_supported
from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    build_root,
    busybox_tarball,
    step_lines,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

# Prints `rootfs=<type>` for the container's root mount (mountinfo's field after "-");
# the marker is joined at run time so the step's echoed command never matches it.
ROOT_FS_TYPE = (
    'awk \'$5 == "/" { for (i = 6; i <= NF; i++) if ($i == "-") '
    'print "rootfs" "=" $(i + 1) }\' /proc/self/mountinfo'
)
STEP = "[2/2] RUN"


def root_fs_type(log: str) -> str:
    """The `rootfs=<type>` the step printed."""
    found = [line.split("rootfs=", 1)[1] for line in step_lines(log, STEP) if "rootfs=" in line]
    assert len(found) == 1, log
    return found[0].strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", f"FROM {BUSYBOX_IMAGE}\nRUN {ROOT_FS_TYPE}\n")


@pytest.fixture
def overlay_here(build_root: Path) -> None:
    root = StateRoot.open(build_root)
    try:
        if not overlay_supported(root):
            pytest.skip("overlayfs cannot be mounted here")
    finally:
        root.close()


def test_global_snapshotter_option_decides_how_build_steps_are_stacked(
    build_root: Path, project: Path, overlay_here: None
) -> None:
    native = strata(
        build_root, "--snapshotter", "native", "build", "--progress=plain", str(project)
    )
    assert native.returncode == 0, native.stderr.decode()
    assert root_fs_type(native.stderr.decode()) != "overlay"

    overlay = strata(
        build_root,
        "--snapshotter",
        "overlay",
        "build",
        "--no-cache",
        "--progress=plain",
        str(project),
    )
    assert overlay.returncode == 0, overlay.stderr.decode()
    assert root_fs_type(overlay.stderr.decode()) == "overlay"


def test_snapshotter_from_the_environment_reaches_the_build(
    build_root: Path, project: Path, overlay_here: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRATA_SNAPSHOTTER", "native")
    run = strata(build_root, "build", "--progress=plain", str(project))
    assert run.returncode == 0, run.stderr.decode()
    assert root_fs_type(run.stderr.decode()) != "overlay"


def test_oci_runtime_crun_runs_build_steps_or_says_why_it_cannot(
    build_root: Path, project: Path
) -> None:
    if shutil.which("crun") is None:
        pytest.skip("crun not installed")
    run = strata(build_root, "build", "--progress=plain", "--oci-runtime", "crun", str(project))
    log = run.stderr.decode()
    if run.returncode == 0:
        assert root_fs_type(log) != ""
        return
    # Hosts with cgroup v1 and v2 mounted side by side (this CI's): crun refuses them.
    assert run.returncode == 1, log
    (error,) = [line for line in log.splitlines() if line.startswith("ERROR: ")]
    assert "crun cannot start containers on this host" in error
    assert "cgroups in hybrid mode not supported" in error


def test_oci_runtime_runc_is_the_runtime_asked_for(build_root: Path, project: Path) -> None:
    run = strata(build_root, "build", "--progress=plain", "--oci-runtime", "runc", str(project))
    assert run.returncode == 0, run.stderr.decode()
    assert root_fs_type(run.stderr.decode()) != ""

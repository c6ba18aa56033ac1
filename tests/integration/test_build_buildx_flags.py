"""The buildx build flags that change RUN's container reach it: `--add-host` in
/etc/hosts, `--shm-size` on /dev/shm, `--ulimit` as the process's rlimits; and they are
part of the step's cache key, as in BuildKit's exec op."""

from __future__ import annotations

import contextlib
from pathlib import Path

from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    build_root,
    busybox_tarball,
    step_lines,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

STEP = "[2/2] RUN"
# Marker words joined at run time, so the echoed command never matches them.
SCRIPT = (
    'grep db /etc/hosts | sed "s/^/ho""sts: /"; '
    'echo "no""file: $(ulimit -n)"; '
    'df -k /dev/shm | awk \'NR == 2 { print "s""hm: " $2 }\''
)


def _values(log: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in step_lines(log, STEP):
        for key in ("hosts", "nofile", "shm"):
            marker = f"{key}: "
            if marker in line:
                found[key] = line.split(marker, 1)[1].strip()
    return found


def test_add_host_shm_size_and_ulimit_reach_the_run_container(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN {SCRIPT}\n")
    done = strata(
        build_root,
        "build",
        "--progress=plain",
        "--add-host",
        "db:10.1.2.3",
        "--shm-size",
        "32m",
        "--ulimit",
        "nofile=512:1024",
        str(project),
    )
    log = done.stderr.decode()
    assert done.returncode == 0, log
    values = _values(log)
    assert values["hosts"].split() == ["10.1.2.3", "db"]
    assert values["nofile"] == "512"
    assert values["shm"] == str(32 * 1024)

    # Another host: another key, so the step runs again (BuildKit keys ExtraHosts).
    again = strata(
        build_root, "build", "--progress=plain", "--add-host", "db=10.9.9.9", str(project)
    )
    log = again.stderr.decode()
    assert again.returncode == 0, log
    assert _values(log)["hosts"].split() == ["10.9.9.9", "db"]


def test_legacy_memory_flag_limits_the_run_container(build_root: Path, tmp_path: Path) -> None:
    """`-m` is buildx's `--resource memory=`: the RUN's cgroup gets the limit (read from
    the v1 or v2 file, whichever the host has)."""
    read_limit = (
        'echo "li""mit: $(cat /sys/fs/cgroup/memory.max 2>/dev/null'
        ' || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"'
    )
    project = write_project(tmp_path / "m", f"FROM {BUSYBOX_IMAGE}\nRUN {read_limit}\n")
    done = strata(build_root, "build", "--progress=plain", "-m", "64m", str(project))
    log = done.stderr.decode()
    assert done.returncode == 0, log
    limits = [line.split("limit: ", 1)[1] for line in step_lines(log, STEP) if "limit: " in line]
    assert limits == [str(64 << 20)], log


def test_cgroup_parent_places_run_below_that_cgroup(build_root: Path, tmp_path: Path) -> None:
    show = 'm=cgr; grep -c /strata-test-parent/strata- /proc/self/cgroup | sed "s/^/${m}oups=/"'
    project = write_project(tmp_path / "c", f"FROM {BUSYBOX_IMAGE}\nRUN {show}\n")
    try:
        done = strata(
            build_root,
            "build",
            "--progress=plain",
            "--cgroup-parent",
            "strata-test-parent",
            str(project),
        )
        log = done.stderr.decode()
        assert done.returncode == 0, log
        counts = [
            line.split("cgroups=", 1)[1] for line in step_lines(log, STEP) if "cgroups=" in line
        ]
        assert counts and int(counts[0]) > 0, log
    finally:
        # The parent stays behind, as BuildKit's does; remove the empty directories.
        for parent in Path("/sys/fs/cgroup").glob("**/strata-test-parent"):
            with contextlib.suppress(OSError):
                parent.rmdir()


def test_debug_expands_lint_warnings_in_the_summary(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "d", f"FROM {BUSYBOX_IMAGE}\nCMD echo hi\n")
    plain = strata(build_root, "build", "--progress=plain", str(project)).stderr.decode()
    assert "(use --debug to expand)" in plain
    debug = strata(build_root, "build", "--progress=plain", "-D", str(project)).stderr.decode()
    assert "(use --debug to expand)" not in debug
    assert "1 warning found" in debug

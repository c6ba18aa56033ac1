"""A RUN's primary group is among its supplementary groups, as BuildKit does since
v0.12 (`executor/oci/user.go`, CVE-2023-25173): seen in /proc/self/status `Groups:`."""

from __future__ import annotations

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

SHOW = 'awk \'/^Groups:/ { $1 = "gro" "ups="; print }\' /proc/self/status'


def _groups(log: str, step: str) -> list[str]:
    found = [
        line.split("groups=", 1)[1].split() for line in step_lines(log, step) if "groups=" in line
    ]
    assert len(found) == 1, log
    return found[0]


def test_primary_group_is_a_supplementary_group_of_run(build_root: Path, tmp_path: Path) -> None:
    dockerfile = f"FROM {BUSYBOX_IMAGE}\nRUN {SHOW}\nUSER 1234:5678\nRUN {SHOW}\n"
    project = write_project(tmp_path / "p", dockerfile)
    done = strata(build_root, "build", "--progress=plain", str(project))
    log = done.stderr.decode()
    assert done.returncode == 0, log
    assert _groups(log, "[2/3] RUN") == ["0"]
    assert _groups(log, "[3/3] RUN") == ["5678"]

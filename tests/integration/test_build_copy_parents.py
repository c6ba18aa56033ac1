"""`COPY --parents` through a real build: the `/./` pivot is read from the source as
written, as BuildKit cuts it (dockerfile2llb/convert_copy.go), so a relative source's
leading `./` is not a pivot while a source that starts with `/./` pivots at the root."""

from __future__ import annotations

from pathlib import Path

from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]


def built_files(root: Path, project: Path, out: Path, under: str) -> list[str]:
    run = strata(root, "build", "--progress=plain", "-o", str(out), str(project))
    assert run.returncode == 0, run.stderr.decode()
    base = out / under
    return sorted(str(p.relative_to(base)) for p in base.rglob("*"))


def test_relative_source_pivots_at_its_own_dot_segment(build_root: Path, tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "project",
        "FROM scratch\nCOPY --parents ./a/./b/*.txt /p/\n",
        files={"a/b/c.txt": "c\n"},
    )
    assert built_files(build_root, project, tmp_path / "out", "p") == ["b", "b/c.txt"]


def test_source_starting_with_dot_pivot_keeps_the_whole_path(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "project",
        "FROM scratch\nCOPY --parents /./a/./b /p/\n",
        files={"a/b/c.txt": "c\n"},
    )
    assert built_files(build_root, project, tmp_path / "out", "p") == [
        "a",
        "a/b",
        "a/b/c.txt",
    ]


def test_pivot_changes_what_a_stage_copy_keeps(build_root: Path, tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "project",
        f"FROM {BUSYBOX_IMAGE} AS src\nRUN mkdir -p /a/b && echo c > /a/b/c.txt\n"
        "FROM scratch\nCOPY --from=src --parents ./a/./b/c.txt /p/\n"
        "COPY --from=src --parents /./a/./b/c.txt /q/\n",
    )
    out = tmp_path / "out"
    assert built_files(build_root, project, out, "p") == ["b", "b/c.txt"]
    assert sorted(str(p.relative_to(out / "q")) for p in (out / "q").rglob("*")) == [
        "a",
        "a/b",
        "a/b/c.txt",
    ]

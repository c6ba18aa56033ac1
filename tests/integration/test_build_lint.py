"""Lint options through a real build: BuildKit reads `# check=` before it parses the
Dockerfile, and under `error=true` it reports the findings before failing with them."""

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

JSON_ARGS_WARNING = (
    "JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior "
    "related to OS signals (line 3)"
)


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("ERROR: ")]


def test_bad_check_directive_wins_over_a_parse_error(build_root: Path, tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p", f"# check=error=maybe\nFROM {BUSYBOX_IMAGE}\nRUN <<EOF\necho hi\n"
    )
    run = strata(build_root, "build", "--progress=plain", str(project))
    log = run.stderr.decode()
    assert run.returncode == 1, log
    (error,) = error_lines(log)
    assert 'failed to parse check option "error=maybe"' in error
    assert "heredoc" not in log
    assert "Dockerfile:1" in log.splitlines()


def test_bad_check_build_arg_wins_over_a_parse_error(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN <<EOF\necho hi\n")
    run = strata(
        build_root,
        "build",
        "--progress=plain",
        "--build-arg",
        "BUILDKIT_DOCKERFILE_CHECK=error=maybe",
        str(project),
    )
    log = run.stderr.decode()
    assert run.returncode == 1, log
    (error,) = error_lines(log)
    assert "failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK" in error
    assert "heredoc" not in log


def test_lint_violation_reports_the_findings_before_failing(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", f"# check=error=true\nFROM {BUSYBOX_IMAGE}\nCMD echo\n")
    run = strata(build_root, "build", "--progress=plain", str(project))
    log = run.stderr.decode()
    assert run.returncode == 1, log
    lines = log.splitlines()
    (error,) = error_lines(log)
    assert error.endswith("lint violation found for rules: JSONArgsRecommended")
    # The summary's header is wrapped in ANSI yellow, so its reset code opens this line.
    (summary,) = [i for i, line in enumerate(lines) if line.endswith(f" - {JSON_ARGS_WARNING}")]
    assert summary < lines.index(error)
    assert f"#1 WARN: {JSON_ARGS_WARNING}" in lines

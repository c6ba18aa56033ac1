"""Cache-miss explanations through real builds: the `#N cache miss: <reason>` lines.

Each test builds a project, changes one input, builds again and reads the plain progress
of the step that re-ran.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.guide_fixtures import (
    build_root,
    busybox_tarball,
    step_lines,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

DOCKERFILE = """\
FROM busybox:strata-test
ARG VERSION=1
ENV MODE=debug
COPY a.txt /a.txt
RUN cat /a.txt > /copy
RUN echo "$VERSION $MODE" > /version
"""


def build(root: Path, project: Path, *args: str) -> str:
    run = strata(root, "build", "--progress=plain", *args, str(project))
    log = run.stderr.decode()
    assert run.returncode == 0, log
    return log


def miss_reason(log: str, step: str) -> str | None:
    """The reason printed for `step`, or None when it printed none."""
    for line in step_lines(log, step):
        _, _, text = line.partition(" ")
        if text.startswith("cache miss: "):
            return text.removeprefix("cache miss: ")
    return None


def test_first_build_explains_nothing(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", DOCKERFILE, {"a.txt": "a\n"})
    log = build(build_root, project)
    assert "cache miss:" not in log, log


def test_changed_file_then_the_step_on_top_of_it(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", DOCKERFILE, {"a.txt": "a\n"})
    build(build_root, project)
    (project / "a.txt").write_text("b\n")
    log = build(build_root, project)
    assert miss_reason(log, "COPY a.txt") == "file a.txt changed", log
    assert miss_reason(log, "RUN cat /a.txt") == "parent step re-ran", log


def test_build_arg_env_and_instruction_changes(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", DOCKERFILE, {"a.txt": "a\n"})
    build(build_root, project)

    log = build(build_root, project, "--build-arg", "VERSION=2")
    assert miss_reason(log, "> /version") == "build-arg VERSION changed", log
    assert miss_reason(log, "COPY a.txt") is None  # cached: nothing to explain

    (project / "Dockerfile").write_text(DOCKERFILE.replace("MODE=debug", "MODE=release"))
    log = build(build_root, project, "--build-arg", "VERSION=2")
    assert miss_reason(log, "> /version") == "env MODE changed", log

    (project / "Dockerfile").write_text(
        DOCKERFILE.replace("MODE=debug", "MODE=release").replace("> /version", ">> /version")
    )
    log = build(build_root, project, "--build-arg", "VERSION=2")
    assert miss_reason(log, "> /version") == "instruction changed", log


def test_no_cache_and_pruned_results_are_named(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", DOCKERFILE, {"a.txt": "a\n"})
    build(build_root, project)
    log = build(build_root, project, "--no-cache")
    assert miss_reason(log, "COPY a.txt") == "--no-cache", log

    strata(build_root, "prune", "-f", check=True)
    log = build(build_root, project)
    assert miss_reason(log, "COPY a.txt") == "previous result was pruned", log


def test_new_base_image_is_named(build_root: Path, tmp_path: Path, busybox_tarball: Path) -> None:
    project = write_project(tmp_path / "p", DOCKERFILE, {"a.txt": "a\n"})
    build(build_root, project)
    # The same tag now names an image with one more file.
    extra = tmp_path / "extra"
    (extra / "etc").mkdir(parents=True)
    (extra / "etc" / "motd").write_text("new base\n")
    tarball = tmp_path / "base2.tar"
    subprocess.run(["cp", str(busybox_tarball), str(tarball)], check=True)
    subprocess.run(["tar", "-C", str(extra), "-rf", str(tarball), "./etc/motd"], check=True)
    strata(
        build_root, "import", str(tarball), "busybox:strata-test", "--change", 'CMD ["sh"]'
    ).check_returncode()
    log = build(build_root, project)
    assert miss_reason(log, "COPY a.txt") == "base image changed", log

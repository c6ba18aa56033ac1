"""Independent work runs at the same time; identical work runs once.

Concurrency is observed without timing: two steps meet in a shared cache mount, each
creating its own marker and waiting for the other's. If they were run one after the
other, the first would wait in vain and give up (exit 1) after its guard expires, and
the build would fail; finishing at all proves they overlapped. BuildKit runs
independent vertices concurrently and merges identical ones (`solver/jobs.go`,
docs/buildkit-semantics.md §8).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.guide_fixtures import BUSYBOX_IMAGE, build_root, busybox_tarball
from tests.integration.test_compat_files import BASE, Project, project

__all__ = ["build_root", "busybox_tarball", "project"]

STRATA = Path(sys.executable).parent / "strata"

# Waits up to 60 s: long enough for a loaded CI machine to start the other container.
GUARD_TENTHS = 600


def meet(mine: str, theirs: str, cache_id: str = "rendezvous") -> str:
    """A RUN that leaves marker `mine` and waits for `theirs` in a shared cache mount."""
    return (
        f"RUN --mount=type=cache,id={cache_id},target=/meet,sharing=shared"
        f" touch /meet/{mine} && i=0 && while [ ! -e /meet/{theirs} ]; do"
        f" i=$((i+1)); [ $i -le {GUARD_TENTHS} ] || exit 1; sleep 0.1; done"
        f" && echo {mine} > /{mine}\n"
    )


def test_independent_stages_run_at_the_same_time(project: Project) -> None:
    dockerfile = (
        BASE.replace("\n", " AS left\n")
        + meet("left", "right")
        + BASE.replace("\n", " AS right\n")
        + meet("right", "left")
        + BASE
        + "COPY --from=left /left /left\n"
        + "COPY --from=right /right /right\n"
    )
    built = project.build(dockerfile)
    assert (built.out / "left").read_text() == "left\n"
    assert (built.out / "right").read_text() == "right\n"


def test_identical_steps_in_two_stages_run_once(project: Project) -> None:
    counted = "RUN --mount=type=cache,id=counter,target=/count echo ran >> /count/log\n"
    dockerfile = (
        BASE.replace("\n", " AS one\n")
        + counted
        + "RUN echo one > /one\n"
        + BASE.replace("\n", " AS two\n")
        + counted
        + "RUN echo two > /two\n"
        + BASE
        + "COPY --from=one /one /one\n"
        + "COPY --from=two /two /two\n"
        + "RUN --mount=type=cache,id=counter,target=/count cat /count/log > /runs\n"
    )
    built = project.build(dockerfile)
    assert (built.out / "runs").read_text() == "ran\n"
    names = built.result.stats.ran
    assert sum("echo ran >> /count/log" in n for n in names) == 1, names
    assert sum(n.startswith("[one 1/3] FROM") or n.startswith("[two 1/3] FROM") for n in names) <= 1


def test_two_builds_on_one_state_root_run_at_the_same_time(
    build_root: Path, tmp_path: Path
) -> None:
    procs = []
    for mine, theirs in (("first", "second"), ("second", "first")):
        context = tmp_path / f"ctx-{mine}"
        context.mkdir()
        (context / "Dockerfile").write_text(
            f"FROM {BUSYBOX_IMAGE}\n" + meet(mine, theirs, cache_id="across-builds")
        )
        out = tmp_path / f"out-{mine}"
        command = [str(STRATA), "--root", str(build_root), "build", "-q", "-o", str(out)]
        procs.append(
            subprocess.Popen(
                [*command, str(context)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    assert (tmp_path / "out-first" / "first").read_text() == "first\n"
    assert (tmp_path / "out-second" / "second").read_text() == "second\n"

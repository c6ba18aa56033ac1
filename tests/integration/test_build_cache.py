"""Build cache behaviour with real runc and overlay snapshots: hits, content keys, forcing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.guide_fixtures import (
    build_root,
    busybox_tarball,
    strata,
    was_cached,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

MULTI_STAGE = """\
FROM busybox:strata-test AS build
ARG NOISE=1
RUN echo "$NOISE" > /noise && mkdir -p /out && echo built > /out/app
FROM busybox:strata-test AS final
COPY app.txt /srv/
COPY --from=build /out/app /srv/app
RUN cat /srv/app /srv/app.txt > /srv/both
"""


def build(root: Path, project: Path, *args: str) -> str:
    run = strata(root, "build", "--progress=plain", *args, str(project))
    log = run.stderr.decode()
    assert run.returncode == 0, log
    return log


def test_unchanged_rebuild_hits_every_step_and_keeps_the_image_id(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", MULTI_STAGE, {"app.txt": "hello\n"})
    first = strata(build_root, "build", "-q", "-t", "multi:1", str(project))
    assert first.returncode == 0, first.stderr.decode()
    log = build(build_root, project, "--iidfile", str(tmp_path / "iid"))
    for step in ("[build 2/2] RUN", "[final 2/4] COPY app.txt", "[final 4/4] RUN"):
        assert was_cached(log, step), log
    assert (tmp_path / "iid").read_text() == first.stdout.decode().strip()


def test_rerun_stage_with_identical_output_keeps_the_copy_cached(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", MULTI_STAGE, {"app.txt": "hello\n"})
    build(build_root, project, "--build-arg", "NOISE=1")
    log = build(build_root, project, "--build-arg", "NOISE=2")
    assert not was_cached(log, "[build 2/2] RUN"), log
    assert was_cached(log, "COPY --from=build /out/app /srv/app"), log
    assert was_cached(log, "[final 4/4] RUN"), log


def test_changed_context_file_reruns_only_the_steps_that_read_it(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "p", MULTI_STAGE, {"app.txt": "hello\n", "unrelated.txt": "x\n"}
    )
    build(build_root, project)
    (project / "unrelated.txt").write_text("changed\n")
    log = build(build_root, project)
    assert was_cached(log, "COPY app.txt"), log
    (project / "app.txt").write_text("bye\n")
    log = build(build_root, project)
    assert was_cached(log, "[build 2/2] RUN"), log
    assert not was_cached(log, "COPY app.txt"), log
    assert not was_cached(log, "[final 4/4] RUN"), log


def test_no_cache_reruns_run_and_copy_steps(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", MULTI_STAGE, {"app.txt": "hello\n"})
    build(build_root, project)
    log = build(build_root, project, "--no-cache")
    for step in ("[build 2/2] RUN", "COPY app.txt", "[final 4/4] RUN"):
        assert not was_cached(log, step), log


def test_no_cache_filter_forces_only_the_named_stage(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", MULTI_STAGE, {"app.txt": "hello\n"})
    build(build_root, project)
    log = build(build_root, project, "--no-cache-filter", "build")
    assert not was_cached(log, "[build 2/2] RUN"), log
    # The forced stage yields the same /out/app, so the content-keyed copy still hits.
    assert was_cached(log, "COPY app.txt"), log
    assert was_cached(log, "COPY --from=build /out/app /srv/app"), log


def test_cache_records_keep_the_key_components(build_root: Path, tmp_path: Path) -> None:
    from strata.solver.records import CacheRecords
    from strata.store.root import StateRoot

    project = write_project(tmp_path / "p", MULTI_STAGE, {"app.txt": "hello\n"})
    build(build_root, project)
    root = StateRoot.open(build_root)
    try:
        records = CacheRecords(root).all()
    finally:
        root.close()
    copy = next(r for r in records if r.description.endswith("COPY app.txt /srv/"))
    labels = [i["label"] for i in copy.components["inputs"]]
    assert "file app.txt" in labels
    assert copy.snapshot is not None
    run = next(r for r in records if r.description.startswith("[build 2/2] RUN"))
    assert "NOISE=1" in run.components["env"]
    json.dumps(run.components)

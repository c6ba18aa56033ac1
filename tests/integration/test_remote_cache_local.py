"""`--cache-to type=local` / `--cache-from type=local`: a cache in an OCI layout directory.

A build exports its cache; a fresh state root, elsewhere, building a clone of the
project in another directory imports it: a fresh CI runner sharing a laptop's cache.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from strata.store.root import StateRoot
from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    busybox_tarball,
    step_lines,
    strata,
    was_cached,
    write_project,
)

__all__ = ["busybox_tarball"]

DOCKERFILE = f"""\
FROM {BUSYBOX_IMAGE} AS build
COPY src.txt /src.txt
RUN echo RAN-BUILD-$((40+2)) && mkdir -p /out && cat /src.txt > /out/app
FROM {BUSYBOX_IMAGE}
COPY top.txt /top.txt
COPY --from=build /out/app /app
RUN echo RAN-FINAL-$((40+2)) && cat /app /top.txt > /both
"""
FILES = {"src.txt": "source\n", "top.txt": "top\n"}
STEPS = (
    "[build 2/3] COPY src.txt",
    "[build 3/3] RUN",
    "[stage-1 2/4] COPY top.txt",
    "[stage-1 3/4] COPY --from=build",
    "[stage-1 4/4] RUN",
)


def fresh_root(path: Path, tarball: Path) -> Path:
    """A new state root at `path` holding only the busybox base image."""
    from strata.export.tarball_import import import_tarball
    from strata.store.images import ImageStore

    root = StateRoot.open(path)
    try:
        images = ImageStore(root)
        with open(tarball, "rb") as fh:
            manifest = import_tarball(images, fh, source="busybox", changes=['CMD ["sh"]'])
        images.put(BUSYBOX_IMAGE, manifest)
    finally:
        root.close()
    return path


def clone(project: Path, where: Path) -> Path:
    shutil.copytree(project, where)
    return where


def build(root: Path, project: Path, *args: str) -> str:
    run = strata(root, "build", "--progress=plain", *args, str(project))
    log = run.stderr.decode()
    assert run.returncode == 0, log
    return log


@pytest.fixture
def exported(busybox_tarball: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(project, cache dir) after a build on its own root exported with mode=max."""
    project = write_project(tmp_path / "laptop" / "project", DOCKERFILE, FILES)
    root = fresh_root(tmp_path / "laptop" / "root", busybox_tarball)
    cache = tmp_path / "cache-max"
    log = build(root, project, "--cache-to", f"type=local,dest={cache},mode=max")
    assert "RAN-BUILD-42" in log and "RAN-FINAL-42" in log, log
    assert "exporting cache to client directory" in log, log
    assert "writing cache image manifest sha256:" in log, log
    return project, cache


def test_max_cache_on_a_fresh_root_elsewhere_runs_nothing(
    exported: tuple[Path, Path], busybox_tarball: Path, tmp_path: Path
) -> None:
    project, cache = exported
    runner = fresh_root(tmp_path / "ci" / "state", busybox_tarball)
    other = clone(project, tmp_path / "ci" / "checkout" / "app")
    log = build(runner, other, "--cache-from", f"type=local,src={cache}")
    assert f"importing cache manifest from {cache}" in log, log
    for step in STEPS:
        assert was_cached(log, step), (step, log)
    assert "RAN-BUILD-42" not in log and "RAN-FINAL-42" not in log, log
    # The image holds the files the steps made, unpacked from the cache's layers.
    out = tmp_path / "out"
    build(runner, other, "--cache-from", f"type=local,src={cache}", "-o", f"type=local,dest={out}")
    assert (out / "both").read_text() == "source\ntop\n"


def test_min_cache_reruns_the_intermediate_stage(
    exported: tuple[Path, Path], busybox_tarball: Path, tmp_path: Path
) -> None:
    project, _ = exported
    laptop = tmp_path / "laptop" / "root"
    cache = tmp_path / "cache-min"
    build(laptop, project, "--cache-to", f"type=local,dest={cache}")  # mode=min by default
    runner = fresh_root(tmp_path / "ci2", busybox_tarball)
    log = build(runner, clone(project, tmp_path / "w2"), "--cache-from", f"type=local,src={cache}")
    assert not was_cached(log, "[build 3/3] RUN"), log
    assert "RAN-BUILD-42" in log, log
    # The same files come out of the re-run stage, so the final stage still hits.
    for step in ("[stage-1 3/4] COPY --from=build", "[stage-1 4/4] RUN"):
        assert was_cached(log, step), (step, log)
    assert "RAN-FINAL-42" not in log, log


def test_changed_file_misses_with_a_reason_against_the_imported_cache(
    exported: tuple[Path, Path], busybox_tarball: Path, tmp_path: Path
) -> None:
    project, cache = exported
    runner = fresh_root(tmp_path / "ci3", busybox_tarball)
    other = clone(project, tmp_path / "w3")
    (other / "top.txt").write_text("changed\n")
    log = build(runner, other, "--cache-from", f"type=local,src={cache}")
    lines = step_lines(log, "[stage-1 2/4] COPY top.txt")
    assert any(
        f"cache miss: file top.txt changed (cache from {cache})" in line for line in lines
    ), log
    assert was_cached(log, "[build 3/3] RUN"), log


def test_missing_or_broken_cache_source_only_warns(busybox_tarball: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", DOCKERFILE, FILES)
    root = fresh_root(tmp_path / "root", busybox_tarball)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "index.json").write_text("{not json")
    log = build(
        root,
        project,
        "--cache-from",
        f"type=local,src={tmp_path / 'missing'}",
        "--cache-from",
        f"type=local,src={broken}",
    )
    assert "failed to import cache from" in log and str(tmp_path / "missing") in log, log
    assert str(broken) in log, log
    assert "RAN-FINAL-42" in log, log


def test_same_cache_exports_the_same_digest_and_skopeo_copies_it(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    project, cache = exported
    index = json.loads((cache / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    manifest = json.loads((cache / "blobs" / "sha256" / entry["digest"][7:]).read_bytes())
    assert manifest["config"]["mediaType"] == "application/vnd.buildkit.cacheconfig.v0"
    for layer in manifest["layers"]:
        assert layer["annotations"]["containerd.io/uncompressed"].startswith("sha256:")
        assert "buildkit/createdat" in layer["annotations"]
    config = json.loads(
        (cache / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_bytes()
    )
    assert {"layers", "records"} <= set(config)
    assert all(record["digest"].startswith("sha256:") for record in config["records"])
    # Exporting the same cache again gives the same manifest.
    build(tmp_path / "laptop" / "root", project, "--cache-to", f"type=local,dest={cache},mode=max")
    again = json.loads((cache / "index.json").read_text())["manifests"]
    assert [e["digest"] for e in again] == [entry["digest"]]
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    copy = subprocess.run(
        ["skopeo", "copy", f"oci:{cache}:latest", f"oci:{tmp_path / 'copied'}:latest"],
        capture_output=True,
    )
    assert copy.returncode == 0, copy.stderr.decode()
    copied = json.loads((tmp_path / "copied" / "index.json").read_text())["manifests"]
    assert copied[0]["digest"] == entry["digest"]


def test_export_failure_fails_the_build_unless_ignore_error(
    busybox_tarball: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", DOCKERFILE, FILES)
    root = fresh_root(tmp_path / "root", busybox_tarball)
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    run = strata(
        root, "build", "--progress=plain", "--cache-to", f"type=local,dest={blocked}", str(project)
    )
    assert run.returncode != 0
    assert f"failed to export cache to {blocked}: Not a directory" in run.stderr.decode()
    log = build(root, project, "--cache-to", f"type=local,dest={blocked},ignore-error=true")
    assert f"failed to export cache to {blocked}" in log, log


def test_tags_share_one_layout_and_import_picks_by_tag(
    exported: tuple[Path, Path], busybox_tarball: Path, tmp_path: Path
) -> None:
    project, cache = exported
    laptop = tmp_path / "laptop" / "root"
    other = clone(project, tmp_path / "other")
    (other / "top.txt").write_text("other top\n")
    build(laptop, other, "--cache-to", f"type=local,dest={cache},tag=v2,mode=max")
    index = json.loads((cache / "index.json").read_text())
    tags = {
        e["annotations"]["org.opencontainers.image.ref.name"]: e["digest"]
        for e in index["manifests"]
    }
    assert set(tags) == {"latest", "v2"} and tags["latest"] != tags["v2"]
    runner = fresh_root(tmp_path / "ci", busybox_tarball)
    log = build(
        runner, clone(other, tmp_path / "w"), "--cache-from", f"type=local,src={cache},tag=v2"
    )
    assert was_cached(log, "[stage-1 4/4] RUN"), log
    runner2 = fresh_root(tmp_path / "ci2", busybox_tarball)
    log = build(
        runner2,
        clone(other, tmp_path / "w2"),
        "--cache-from",
        f"type=local,src={cache},digest={tags['latest']}",
    )
    assert not was_cached(log, "[stage-1 4/4] RUN"), log  # latest has the old top.txt
    assert was_cached(log, "[build 3/3] RUN"), log


def test_a_runner_reexporting_what_it_imported_writes_the_same_cache(
    exported: tuple[Path, Path], busybox_tarball: Path, tmp_path: Path
) -> None:
    project, cache = exported
    runner = fresh_root(tmp_path / "ci", busybox_tarball)
    again = tmp_path / "re-exported"
    build(
        runner,
        clone(project, tmp_path / "w"),
        "--cache-from",
        f"type=local,src={cache}",
        "--cache-to",
        f"type=local,dest={again},mode=max",
    )
    first = json.loads((cache / "index.json").read_text())["manifests"][0]["digest"]
    second = json.loads((again / "index.json").read_text())["manifests"][0]["digest"]
    assert first == second

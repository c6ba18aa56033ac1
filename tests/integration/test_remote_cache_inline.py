"""Inline cache: records in the image config, read back by `--cache-from <image>`."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from strata.store.images import ImageStore
from strata.store.root import StateRoot
from tests.integration.guide_fixtures import busybox_tarball, strata, was_cached, write_project
from tests.integration.test_remote_cache_local import (
    DOCKERFILE,
    FILES,
    build,
    clone,
    fresh_root,
)

__all__ = ["busybox_tarball"]


def inline_records(root_path: Path, name: str) -> list[dict[str, object]] | None:
    root = StateRoot.open(root_path)
    try:
        config = ImageStore(root).load_image(name).config
    finally:
        root.close()
    value = config.get("moby.buildkit.cache.v0")
    return None if value is None else json.loads(base64.b64decode(value))


def test_inline_cache_in_the_config_and_read_from_a_loaded_image(
    busybox_tarball: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "a" / "project", DOCKERFILE, FILES)
    laptop = fresh_root(tmp_path / "a" / "root", busybox_tarball)
    build(laptop, project, "--cache-to", "type=inline", "-t", "app:inline")
    records = inline_records(laptop, "app:inline")
    assert records, "no inline cache in the image config"
    assert [r["digest"] for r in records] == sorted(str(r["digest"]) for r in records)
    for record in records:
        [chain] = record["chains"]  # type: ignore[index]
        assert chain["layers"] == list(range(len(chain["layers"])))
    # The intermediate stage is not in an inline cache (mode=min only).
    names = {r["strata"]["name"] for r in records}  # type: ignore[index]
    assert not any(name.startswith("[build ") for name in names), names

    archive = tmp_path / "app.tar"
    strata(laptop, "save", "-o", str(archive), "app:inline", check=True)
    runner = fresh_root(tmp_path / "ci" / "root", busybox_tarball)
    strata(runner, "load", "-i", str(archive), check=True)
    log = build(runner, clone(project, tmp_path / "ci" / "w"), "--cache-from", "app:inline")
    assert "importing cache manifest from app:inline" in log, log
    for step in ("[stage-1 2/4] COPY top.txt", "[stage-1 4/4] RUN"):
        assert was_cached(log, step), (step, log)
    assert "RAN-FINAL-42" not in log, log
    assert "RAN-BUILD-42" in log, log  # min: the build stage runs again


def test_buildkit_inline_cache_build_arg_writes_the_records(
    busybox_tarball: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", DOCKERFILE, FILES)
    root = fresh_root(tmp_path / "root", busybox_tarball)
    build(root, project, "-t", "plain:1")
    assert inline_records(root, "plain:1") is None
    build(root, project, "--build-arg", "BUILDKIT_INLINE_CACHE=1", "-t", "inline:1")
    assert inline_records(root, "inline:1")

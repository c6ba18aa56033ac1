"""`--cache-from type=registry`: a cache (or an image with inline cache) in a real registry.

The caches are seeded with skopeo (`skopeo copy oci:DIR docker://...`), an independent
client, so these tests hold whether or not strata can push.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import busybox_tarball, strata, was_cached, write_project
from tests.integration.registry_servers import (
    registry_available,
    registry_server,
    skopeo_available,
)
from tests.integration.test_remote_cache_local import (
    DOCKERFILE,
    FILES,
    STEPS,
    build,
    clone,
    fresh_root,
)

__all__ = ["busybox_tarball"]

pytestmark = pytest.mark.skipif(
    bool(registry_available() or skopeo_available()),
    reason=registry_available() or skopeo_available() or "",
)


def skopeo_copy(source: str, dest: str) -> None:
    run = subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", source, dest], capture_output=True
    )
    assert run.returncode == 0, run.stderr.decode()


def _layer_of_step(cache: Path, step: str) -> str:
    """The top layer blob of the cache record of `step` (from the layout's config)."""
    index = json.loads((cache / "index.json").read_text())
    manifest = json.loads(
        (cache / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text()
    )
    config = json.loads((cache / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
    for record in config["records"]:
        if record["strata"]["name"].startswith(step):
            return str(config["layers"][record["layers"][0]["layer"]]["blob"])
    raise AssertionError(f"no record for {step}")


def test_max_cache_from_a_registry_on_a_fresh_root(busybox_tarball: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "laptop" / "project", DOCKERFILE, FILES)
    laptop = fresh_root(tmp_path / "laptop" / "root", busybox_tarball)
    cache = tmp_path / "cache"
    build(laptop, project, "--cache-to", f"type=local,dest={cache},mode=max")
    build_layer = _layer_of_step(cache, "[build 3/3] RUN")
    with registry_server(tmp_path) as registry:
        ref = f"{registry.host}/team/app:buildcache"
        skopeo_copy(f"oci:{cache}:latest", f"docker://{ref}")
        runner = fresh_root(tmp_path / "ci" / "root", busybox_tarball)
        log = build(runner, clone(project, tmp_path / "ci" / "w"), "--cache-from", ref)
        assert f"importing cache manifest from {ref}" in log, log
        for step in STEPS:
            assert was_cached(log, step), (step, log)
        assert "RAN-BUILD-42" not in log and "RAN-FINAL-42" not in log, log
        # Lazy: the intermediate stage's layer was never needed (its checksums came
        # with the cache), so it was never downloaded; the image's layers were.
        fetched = {e.path.rsplit("/", 1)[-1] for e in registry.requests() if e.method == "GET"}
        assert build_layer not in fetched, registry.requests()
        assert any(name.startswith("sha256:") for name in fetched - {build_layer})


def test_inline_cache_image_from_a_registry(busybox_tarball: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "laptop" / "project", DOCKERFILE, FILES)
    laptop = fresh_root(tmp_path / "laptop" / "root", busybox_tarball)
    build(laptop, project, "--cache-to", "type=inline", "-t", "app:inline")
    archive = tmp_path / "app.tar"
    strata(laptop, "save", "--format", "oci", "-o", str(archive), "app:inline", check=True)
    with registry_server(tmp_path) as registry:
        ref = f"{registry.host}/team/app:inline"
        skopeo_copy(f"oci-archive:{archive}", f"docker://{ref}")
        runner = fresh_root(tmp_path / "ci" / "root", busybox_tarball)
        log = build(
            runner,
            clone(project, tmp_path / "ci" / "w"),
            "--cache-from",
            f"type=registry,ref={ref}",
        )
        for step in ("[stage-1 2/4] COPY top.txt", "[stage-1 4/4] RUN"):
            assert was_cached(log, step), (step, log)
        assert "RAN-FINAL-42" not in log, log


def test_unreachable_registry_cache_only_warns(busybox_tarball: Path, tmp_path: Path) -> None:
    with registry_server(tmp_path) as registry:
        ref = f"{registry.host}/nothing/here:cache"
        root = fresh_root(tmp_path / "root", busybox_tarball)
        log = build(root, write_project(tmp_path / "p", DOCKERFILE, FILES), "--cache-from", ref)
    assert f"failed to import cache from {ref}" in log, log
    assert "RAN-FINAL-42" in log, log


def test_base_image_from_a_registry_is_unpacked_only_for_the_output(
    busybox_tarball: Path, tmp_path: Path
) -> None:
    seed = fresh_root(tmp_path / "seed", busybox_tarball)
    archive = tmp_path / "busybox.tar"
    strata(seed, "save", "--format", "oci", "-o", str(archive), "busybox:strata-test", check=True)
    with registry_server(tmp_path) as registry:
        base = f"{registry.host}/base/busybox:1"
        skopeo_copy(f"oci-archive:{archive}", f"docker://{base}")
        dockerfile = DOCKERFILE.replace("busybox:strata-test", base)
        project = write_project(tmp_path / "laptop" / "project", dockerfile, FILES)
        cache = tmp_path / "cache"
        build(
            tmp_path / "laptop" / "root", project, "--cache-to", f"type=local,dest={cache},mode=max"
        )
        # A runner with nothing at all: the base comes from the registry, lazily.
        runner = tmp_path / "ci" / "empty-root"
        out = tmp_path / "out"
        log = build(
            runner,
            clone(project, tmp_path / "ci" / "w"),
            "--cache-from",
            f"type=local,src={cache}",
            "-o",
            f"type=local,dest={out}",
        )
        for step in STEPS:
            assert was_cached(log, step), (step, log)
        assert "RAN-BUILD-42" not in log and "RAN-FINAL-42" not in log, log
        assert (out / "both").read_text() == "source\ntop\n"
        assert (out / "bin" / "busybox").exists()


def test_registry_insecure_reads_a_cache_over_tls_without_the_ca(
    busybox_tarball: Path, tmp_path: Path
) -> None:
    from tests.integration.registry_servers import make_tls

    project = write_project(tmp_path / "laptop" / "project", DOCKERFILE, FILES)
    cache = tmp_path / "cache"
    build(
        fresh_root(tmp_path / "laptop" / "root", busybox_tarball),
        project,
        "--cache-to",
        f"type=local,dest={cache}",
    )
    with registry_server(tmp_path, tls=make_tls(tmp_path / "tls")) as registry:
        ref = f"{registry.host}/team/app:cache"
        skopeo_copy(f"oci:{cache}:latest", f"docker://{ref}")
        runner = fresh_root(tmp_path / "ci" / "root", busybox_tarball)
        checkout = clone(project, tmp_path / "ci" / "w")
        # Without the CA, the certificate is refused: a warning, and the build runs it all.
        log = build(runner, checkout, "--cache-from", f"type=registry,ref={ref}")
        assert f"failed to import cache from {ref}" in log, log
        assert "RAN-FINAL-42" in log, log
        runner2 = fresh_root(tmp_path / "ci2" / "root", busybox_tarball)
        log = build(
            runner2, checkout, "--cache-from", f"type=registry,ref={ref},registry.insecure=true"
        )
        assert was_cached(log, "[stage-1 4/4] RUN"), log
        assert "RAN-FINAL-42" not in log, log


def test_cache_to_a_registry_then_from_it_on_a_fresh_root(
    busybox_tarball: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "laptop" / "project", DOCKERFILE, FILES)
    laptop = fresh_root(tmp_path / "laptop" / "root", busybox_tarball)
    with registry_server(tmp_path) as registry:
        ref = f"{registry.host}/team/app:buildcache"
        build(laptop, project, "--cache-to", f"type=registry,ref={ref},mode=max")
        raw = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True,
        )
        assert raw.returncode == 0, raw.stderr.decode()
        manifest = json.loads(raw.stdout)
        assert manifest["config"]["mediaType"] == "application/vnd.buildkit.cacheconfig.v0"
        runner = fresh_root(tmp_path / "ci" / "root", busybox_tarball)
        log = build(runner, clone(project, tmp_path / "ci" / "w"), "--cache-from", ref)
    for step in STEPS:
        assert was_cached(log, step), (step, log)
    assert "RAN-BUILD-42" not in log and "RAN-FINAL-42" not in log, log

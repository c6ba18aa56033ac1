"""Builds and `strata pull` against a real registry (Debian's docker-registry on
127.0.0.1): base images resolve through it, layers download only when a step needs
them, docker.io names go through a configured mirror, and failures are one line."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.devtools.localregistry import LocalRegistry, LocalRegistryError, seed_image
from tests.integration.guide_fixtures import busybox_tarball  # noqa: F401 - fixture
from tests.integration.image_fixtures import strata

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, busybox_tarball: Path) -> Iterator[LocalRegistry]:  # noqa: F811
    """A registry serving the busybox image as `library/busybox:1` and `app/base:1`."""
    base = tmp_path_factory.mktemp("registry")
    seed_root = base / "seed-root"
    archive = base / "busybox.oci.tar"
    with open(busybox_tarball, "rb") as fh:
        made = strata(seed_root, "import", "-c", 'CMD ["sh"]', "-", "busybox:1", stdin=fh.read())
    assert made.returncode == 0, made.stderr
    saved = strata(seed_root, "save", "--format", "oci", "-o", str(archive), "busybox:1")
    assert saved.returncode == 0, saved.stderr
    try:
        server = LocalRegistry(base / "registry").start()
    except LocalRegistryError as exc:
        pytest.skip(str(exc))
    try:
        seed_image(server, archive, "library/busybox:1")
        seed_image(server, archive, "app/base:1")
        yield server
    finally:
        server.stop()


def blob_gets(registry: LocalRegistry, repository: str) -> int:
    """GETs of blobs of `repository` the registry has logged so far."""
    pattern = re.compile(rf'"GET /v2/{re.escape(repository)}/blobs/sha256:[0-9a-f]+ ')
    return len(pattern.findall(registry.log()))


def build(root: Path, context: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    extra = ["--config", str(config)] if config is not None else []
    return strata(root, *extra, "build", "--progress=plain", *args, str(context))


def project(tmp_path: Path, dockerfile: str) -> Path:
    context = tmp_path / "context"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile)
    return context


def test_a_build_pulls_its_base_once_and_a_cached_rebuild_downloads_nothing(
    tmp_path: Path, registry: LocalRegistry
) -> None:
    ref = f"{registry.address}/app/base:1"
    context = project(tmp_path, f"FROM {ref}\nRUN echo built > /made\n")
    root = tmp_path / "root"
    before = blob_gets(registry, "app/base")

    first = build(root, context, "-t", "made")
    after_first = blob_gets(registry, "app/base")
    second = build(root, context, "-t", "made")

    log = first.stderr.decode()
    assert first.returncode == 0, log
    assert f"[internal] load metadata for {ref}" in log
    assert re.search(r"sha256:[0-9a-f]{64} [0-9.]+[kMG]?B / [0-9.]+[kMG]?B .*done", log), log
    assert after_first - before >= 1
    assert second.returncode == 0, second.stderr.decode()
    assert "CACHED" in second.stderr.decode()
    assert blob_gets(registry, "app/base") == after_first
    ran = strata(root, "run", "--rm", "made", "cat", "/made")
    assert ran.stdout == b"built\n"


def test_a_docker_io_name_goes_through_the_configured_mirror(
    tmp_path: Path, registry: LocalRegistry
) -> None:
    config = tmp_path / "strata.toml"
    config.write_text(f'[registry."docker.io"]\n  mirrors = ["{registry.address}"]\n')
    context = project(tmp_path, "FROM busybox:1\nRUN test -x /bin/sh\n")

    done = build(tmp_path / "root", context, config=config)

    log = done.stderr.decode()
    assert done.returncode == 0, log
    assert "[internal] load metadata for docker.io/library/busybox:1" in log
    assert "ns=docker.io" in registry.log()


def test_strata_pull_stores_every_layer_and_says_when_it_is_up_to_date(
    tmp_path: Path, registry: LocalRegistry
) -> None:
    root = tmp_path / "root"
    ref = f"{registry.address}/app/base:1"

    first = strata(root, "pull", ref)
    second = strata(root, "pull", ref)
    listed = strata(root, "images")

    out = first.stdout.decode()
    assert first.returncode == 0, first.stderr.decode()
    assert out.splitlines()[0] == "1: Pulling from app/base"
    assert "Pull complete" in out
    assert re.search(r"^Digest: sha256:[0-9a-f]{64}$", out, re.M)
    assert f"Status: Downloaded newer image for {ref}" in out
    assert out.splitlines()[-1] == ref
    assert "Status: Image is up to date for" in second.stdout.decode()
    assert re.search(rf"^{re.escape(registry.address)}/app/base +1 ", listed.stdout.decode(), re.M)


def test_an_unknown_tag_is_one_line_naming_the_image(tmp_path: Path, registry: LocalRegistry) -> None:
    ref = f"{registry.address}/app/base:nope"
    context = project(tmp_path, f"FROM {ref}\n")

    done = build(tmp_path / "root", context)

    err = done.stderr.decode()
    assert done.returncode == 1
    assert "Traceback" not in err
    assert f"failed to resolve source metadata for {ref}" in err
    assert "not found" in err


def test_an_unreachable_registry_falls_back_to_the_pulled_image_with_a_warning(
    tmp_path: Path, busybox_tarball: Path  # noqa: F811
) -> None:
    base = tmp_path / "own"
    archive = base / "busybox.oci.tar"
    seed_root = base / "seed-root"
    with open(busybox_tarball, "rb") as fh:
        assert strata(seed_root, "import", "-", "busybox:1", stdin=fh.read()).returncode == 0
    assert strata(seed_root, "save", "--format", "oci", "-o", str(archive), "busybox:1").returncode == 0
    root = tmp_path / "root"
    with LocalRegistry(base / "registry") as server:
        seed_image(server, archive, "app/offline:1")
        ref = f"{server.address}/app/offline:1"
        assert strata(root, "pull", ref).returncode == 0
    context = project(tmp_path, f"FROM {ref}\nRUN true\n")

    offline = build(root, context)
    unknown = build(root, project(tmp_path, f"FROM {server.address}/app/never:1\n"))

    assert offline.returncode == 0, offline.stderr.decode()
    assert "using the image stored locally" in offline.stderr.decode()
    assert unknown.returncode == 1
    assert "Traceback" not in unknown.stderr.decode()
    assert server.address in unknown.stderr.decode()

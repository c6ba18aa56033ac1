"""BuildKit reads what strata writes: Docker's engine (Debian's docker.io, BuildKit 0.8,
on a private socket) builds with `--cache-from` an image strata pushed with inline cache
records, and with a strata cache manifest in the registry, without an error.

The keys differ between the two builders, so BuildKit finds no hits; what this pins is
that the documents are well formed for it (BuildKit fails a build whose cache import
it cannot parse only when asked to; it logs and goes on otherwise, so the test also
checks its log for an import error)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import busybox_tarball  # noqa: F401 - fixture
from tests.integration.image_fixtures import strata
from tests.integration.registry_servers import (
    registry_available,
    registry_server,
    skopeo_available,
)
from tests.integration.test_push import docker_engine  # noqa: F401 - fixture

_missing = registry_available() or skopeo_available()
pytestmark = [
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
    pytest.mark.timeout(600),
]

DEBIAN_DOCKER = Path("/usr/bin/docker")  # the 20.10 client: BuildKit without buildx


@pytest.mark.skipif(not DEBIAN_DOCKER.exists(), reason="needs Debian's docker.io client")
def test_buildkit_builds_with_strata_caches_as_cache_sources(
    tmp_path: Path,
    busybox_tarball: Path,  # noqa: F811
    docker_engine: dict[str, str],  # noqa: F811
) -> None:
    root = tmp_path / "root"
    context = tmp_path / "ctx"
    context.mkdir()
    with registry_server(tmp_path) as registry:
        base = f"{registry.host}/library/base:1"
        assert strata(root, "import", str(busybox_tarball), base).returncode == 0
        assert strata(root, "push", base).returncode == 0
        (context / "Dockerfile").write_text(f"FROM {base}\nRUN echo strata > /made\n")
        inline = f"{registry.host}/team/app:inline"
        cache = f"{registry.host}/team/app:cache"
        built = strata(
            root,
            "build",
            "-q",
            "--push",
            "-t",
            inline,
            "--cache-to",
            "type=inline",
            "--cache-to",
            f"type=registry,ref={cache},mode=max",
            str(context),
        )
        assert built.returncode == 0, built.stderr.decode()

        env = dict(docker_engine, DOCKER_BUILDKIT="1")
        done = subprocess.run(
            [
                str(DEBIAN_DOCKER),
                "build",
                "--progress=plain",
                "--network=host",
                "--cache-from",
                inline,
                "--cache-from",
                cache,
                "-t",
                "from-buildkit",
                str(context),
            ],
            capture_output=True,
            env=env,
            timeout=300,
        )

    log = done.stderr.decode(errors="replace")
    assert done.returncode == 0, log
    assert "importing cache manifest from" in log, log
    assert "failed to parse" not in log.lower(), log

"""Registry images named outside FROM: `COPY --from=<image>` and `RUN --mount=from=<image>`
resolve through the registry (`load metadata` vertices) and fetch their layers from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.guide_fixtures import (  # noqa: F401 - fixtures
    BUSYBOX_IMAGE,
    build_root,
    busybox_tarball,
)
from tests.integration.pull_support import build, project, push_image, run_strata
from tests.integration.registry_servers import (
    registry_available,
    registry_server,
    seed_image,
    skopeo_available,
)

_missing = registry_available() or skopeo_available()
pytestmark = [
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
    pytest.mark.timeout(300),
]


def test_copy_from_and_run_mount_from_pull_their_images(
    tmp_path: Path,
    build_root: Path,  # noqa: F811
) -> None:
    with registry_server(tmp_path) as reg:
        files = seed_image(reg, "app/files", "1", tmp_path, files={"data.txt": b"copied\n"})
        mounted = seed_image(reg, "app/mounted", "1", tmp_path, files={"m.txt": b"mounted\n"})
        context = project(
            tmp_path / "ctx",
            f"FROM {BUSYBOX_IMAGE}\n"
            f"COPY --from={files.reference} /data.txt /copied.txt\n"
            f"RUN --mount=from={mounted.reference},target=/mnt cat /mnt/m.txt > /from-mount.txt\n",
        )
        done = build(build_root, context, "-t", "made")
        layer_gets = {
            name: reg.count("GET", rf"/v2/{name}/blobs/{image.layer_digests[0]}", status=200)
            for name, image in (("app/files", files), ("app/mounted", mounted))
        }

    log = done.stderr.decode()
    assert done.returncode == 0, log
    assert f"[internal] load metadata for {files.reference}" in log
    assert f"[internal] load metadata for {mounted.reference}" in log
    assert layer_gets == {"app/files": 1, "app/mounted": 1}
    copied = run_strata(build_root, "run", "--rm", "made", "cat", "/copied.txt", "/from-mount.txt")
    assert copied.returncode == 0, copied.stderr.decode()
    assert copied.stdout == b"copied\nmounted\n"


def test_an_onbuild_trigger_naming_a_registry_image_pulls_it(tmp_path: Path) -> None:
    with registry_server(tmp_path) as reg:
        files = seed_image(reg, "app/files", "1", tmp_path, files={"data.txt": b"copied\n"})
        push_image(
            reg.url,
            "app/onbuild",
            "1",
            {"base.txt": b"base\n"},
            run_config={"OnBuild": [f"COPY --from={files.reference} /data.txt /onbuild.txt"]},
        )
        context = project(tmp_path / "ctx", f"FROM {reg.host}/app/onbuild:1\n")
        out = tmp_path / "out"
        done = build(tmp_path / "root", context, "-o", f"type=local,dest={out}")

    log = done.stderr.decode()
    assert done.returncode == 0, log
    assert f"[internal] load metadata for {files.reference}" in log
    assert (out / "base.txt").read_text() == "base\n"
    assert (out / "onbuild.txt").read_text() == "copied\n"

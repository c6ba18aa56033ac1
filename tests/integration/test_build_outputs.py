"""`strata build` inputs and outputs: stdin forms, exports read by skopeo and umoci,
secrets, failures and entitlements, with real runc and overlay snapshots."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import (
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

APP = """\
FROM busybox:strata-test AS base
WORKDIR /app
COPY hello.txt .
RUN echo "built with $GREETING" > /app/built.txt
ARG GREETING=hi
RUN echo "$GREETING" > /app/greeting.txt
LABEL org.example.stage=base
CMD ["cat", "/app/greeting.txt"]
"""


def _tar_members(data: bytes) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            handle = archive.extractfile(member) if member.isfile() else None
            out[member.name.lstrip("./")] = handle.read() if handle is not None else None
    return out


def test_image_config_has_layers_history_and_labels(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", APP, {"hello.txt": "hello\n"})
    meta = tmp_path / "meta.json"
    run = strata(
        build_root,
        "build",
        "-t",
        "app:1",
        "-t",
        "app:latest",
        "--label",
        "extra=yes",
        "--build-arg",
        "GREETING=bonjour",
        "--metadata-file",
        str(meta),
        "--progress=plain",
        str(project),
    )
    log = run.stderr.decode()
    assert run.returncode == 0, log
    assert "naming to docker.io/library/app:1 done" in log
    assert "naming to docker.io/library/app:latest done" in log
    metadata = json.loads(meta.read_text())
    assert metadata["image.name"] == "docker.io/library/app:1,docker.io/library/app:latest"
    inspect = strata(build_root, "inspect", "app:1", check=True)
    info = json.loads(inspect.stdout)[0]
    assert info["Id"] == metadata["containerimage.config.digest"]
    config = info["Config"]
    assert config["Labels"] == {"org.example.stage": "base", "extra": "yes"}
    assert config["WorkingDir"] == "/app"
    assert config["Cmd"] == ["cat", "/app/greeting.txt"]
    # base layer + WORKDIR + COPY + 2 RUN
    assert len(info["RootFS"]["Layers"]) == 5


def test_local_and_tar_outputs_hold_the_files_and_args(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", APP, {"hello.txt": "hello\n"})
    out = tmp_path / "out"
    run = strata(
        build_root, "build", "--build-arg", "GREETING=bonjour", "-o", str(out), str(project)
    )
    assert run.returncode == 0, run.stderr.decode()
    assert (out / "app" / "hello.txt").read_text() == "hello\n"
    assert (out / "app" / "greeting.txt").read_text() == "bonjour\n"
    # GREETING is declared after the first RUN, so that RUN does not see it.
    assert (out / "app" / "built.txt").read_text() == "built with \n"
    streamed = strata(build_root, "build", "-o", "-", str(project))
    assert streamed.returncode == 0, streamed.stderr.decode()
    members = _tar_members(streamed.stdout)
    assert members["app/greeting.txt"] == b"hi\n"


def test_oci_and_docker_archives_are_read_by_skopeo_and_umoci(
    build_root: Path, tmp_path: Path
) -> None:
    for tool in ("skopeo", "umoci"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    project = write_project(tmp_path / "p", APP, {"hello.txt": "hello\n"})
    oci = tmp_path / "image-oci.tar"
    docker = tmp_path / "image-docker.tar"
    run = strata(
        build_root,
        "build",
        "-t",
        "exported:v1",
        "-o",
        f"type=oci,dest={oci}",
        "-o",
        f"type=docker,dest={docker}",
        str(project),
    )
    assert run.returncode == 0, run.stderr.decode()
    for transport in (f"oci-archive:{oci}", f"docker-archive:{docker}"):
        inspected = subprocess.run(
            ["skopeo", "inspect", "--config", transport], capture_output=True, text=True
        )
        assert inspected.returncode == 0, inspected.stderr
        assert json.loads(inspected.stdout)["config"]["WorkingDir"] == "/app"
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(oci) as archive:
        archive.extractall(layout, filter="tar")
    bundle = tmp_path / "bundle"
    unpacked = subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:v1", str(bundle)], capture_output=True, text=True
    )
    assert unpacked.returncode == 0, unpacked.stderr
    assert (bundle / "rootfs" / "app" / "greeting.txt").read_text() == "hi\n"


def test_secret_is_readable_in_run_but_absent_from_the_layers(
    build_root: Path, tmp_path: Path
) -> None:
    dockerfile = """\
FROM busybox:strata-test
RUN --mount=type=secret,id=token cat /run/secrets/token | wc -c > /token-length
RUN --mount=type=secret,id=token,env=TOKEN printf %s "$TOKEN" | wc -c > /env-length
"""
    project = write_project(tmp_path / "p", dockerfile)
    secret = tmp_path / "token.txt"
    secret.write_text("s3cr3t-value")
    archive = tmp_path / "image.tar"
    run = strata(
        build_root,
        "build",
        "--secret",
        f"id=token,src={secret}",
        "-o",
        f"type=docker,dest={archive}",
        str(project),
    )
    assert run.returncode == 0, run.stderr.decode()
    raw = archive.read_bytes()
    assert b"s3cr3t-value" not in raw
    layers: dict[str, bytes | None] = {}
    with tarfile.open(archive) as outer:
        for member in outer:
            if member.name.endswith("layer.tar"):
                handle = outer.extractfile(member)
                assert handle is not None
                layers.update(_tar_members(handle.read()))
    assert layers["token-length"] == b"12\n"
    assert layers["env-length"] == b"12\n"
    assert not any(name.startswith("run/secrets/") for name in layers)


def test_dockerfile_from_stdin(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", "FROM scratch\n", {"data.txt": "from context\n"})
    dockerfile = b"FROM busybox:strata-test\nCOPY data.txt /\nRUN cat /data.txt > /copied\n"
    out = tmp_path / "out"
    run = strata(build_root, "build", "-f", "-", "-o", str(out), str(project), stdin=dockerfile)
    assert run.returncode == 0, run.stderr.decode()
    assert (out / "copied").read_text() == "from context\n"


def test_context_tar_and_lone_dockerfile_on_stdin(build_root: Path, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, text in {
            "Dockerfile": "FROM busybox:strata-test\nCOPY note.txt /\n",
            "note.txt": "in the tar\n",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    out = tmp_path / "out"
    run = strata(build_root, "build", "-o", str(out), "-", stdin=buffer.getvalue())
    assert run.returncode == 0, run.stderr.decode()
    assert (out / "note.txt").read_text() == "in the tar\n"
    alone = b"FROM busybox:strata-test\nRUN echo alone > /alone\n"
    out2 = tmp_path / "out2"
    run = strata(build_root, "build", "-o", str(out2), "-", stdin=alone)
    assert run.returncode == 0, run.stderr.decode()
    assert (out2 / "alone").read_text() == "alone\n"


def test_failing_step_prints_logs_excerpt_and_error(build_root: Path, tmp_path: Path) -> None:
    dockerfile = "FROM busybox:strata-test\nRUN echo first\nRUN echo about to fail && exit 3\n"
    project = write_project(tmp_path / "p", dockerfile)
    run = strata(build_root, "build", "--progress=plain", str(project))
    log = run.stderr.decode()
    assert run.returncode == 1
    message = (
        'process "/bin/sh -c echo about to fail && exit 3" did not complete successfully: '
        "exit code: 3"
    )
    assert re.search(r"#\d+ ERROR: " + re.escape(message), log)
    assert " > [3/3] RUN echo about to fail && exit 3:" in log
    assert re.search(r"\n\d+\.\d+ about to fail\n------\n", log)
    assert "   3 | >>> RUN echo about to fail && exit 3\n" in log
    assert log.rstrip().endswith(f"ERROR: failed to build: failed to solve: {message}")


def test_missing_copy_source_is_a_cache_key_error(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", "FROM busybox:strata-test\nCOPY nothere.txt /\n")
    run = strata(build_root, "build", "--progress=plain", str(project))
    log = run.stderr.decode()
    assert run.returncode == 1
    assert re.search(r'failed to calculate checksum of ref .*: "/nothere.txt": not found', log)
    assert ">>> COPY nothere.txt /" in log


def test_host_network_needs_the_entitlement(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", "FROM busybox:strata-test\nRUN --network=host true\n")
    refused = strata(build_root, "build", str(project))
    assert refused.returncode == 1
    assert "network.host is not allowed" in refused.stderr.decode()
    allowed = strata(build_root, "build", "--allow", "network.host", str(project))
    assert allowed.returncode == 0, allowed.stderr.decode()


def test_other_platforms_are_refused_and_pull_asks_the_registry(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", "FROM busybox:strata-test\n")
    other = strata(build_root, "build", "--platform", "linux/s390x", str(project))
    assert other.returncode == 1
    assert "platform linux/s390x is not supported" in other.stderr.decode()
    # --pull asks docker.io even for an image stored here, and does not fall back to it
    # when the registry cannot be reached (none can from the test machine).
    pulled = strata(build_root, "build", "--pull", str(project))
    assert pulled.returncode == 1
    assert "registry-1.docker.io" in pulled.stderr.decode()
    assert "Traceback" not in pulled.stderr.decode()

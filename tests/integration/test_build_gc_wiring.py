"""Automatic GC runs after every build, with the budget `--gc-budget` (or
$STRATA_GC_BUDGET) gives: real builds through the CLI, records read back with `du`'s
listing."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from strata.gc.usage import disk_usage
from strata.store.root import StateRoot
from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    STRATA,
    build_root,
    busybox_tarball,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

BIG_STEP = "[2/2] RUN head -c 4000000 /dev/urandom > /big"
SMALL_STEP = "[2/2] RUN echo small > /small"


def build(root: Path, project: Path, *flags: str, env: dict[str, str] | None = None) -> None:
    run = subprocess.run(
        [str(STRATA), "--root", str(root), "build", "--progress=plain", *flags, str(project)],
        capture_output=True,
        env=dict(os.environ, **(env or {})),
        timeout=600,
    )
    assert run.returncode == 0, run.stderr.decode()


def descriptions(root_path: Path) -> set[str]:
    root = StateRoot.open(root_path)
    try:
        return {record.description for record in disk_usage(root)}
    finally:
        root.close()


def two_projects(tmp_path: Path) -> tuple[Path, Path]:
    """A project whose step leaves a 4 MB layer, and one with a tiny layer."""
    big = write_project(
        tmp_path / "big", f"FROM {BUSYBOX_IMAGE}\nRUN head -c 4000000 /dev/urandom > /big\n"
    )
    small = write_project(tmp_path / "small", f"FROM {BUSYBOX_IMAGE}\nRUN echo small > /small\n")
    return big, small


def test_small_budget_removes_the_older_unused_step_after_the_next_build(
    build_root: Path, tmp_path: Path
) -> None:
    big, small = two_projects(tmp_path)
    build(build_root, big, "--gc-budget", "off")
    assert BIG_STEP in descriptions(build_root)
    # busybox (~2 MB) + the 4 MB step + the small step exceed 4 MB; dropping the least
    # recently used step is enough.
    build(build_root, small, "--gc-budget", "4MB")
    left = descriptions(build_root)
    assert BIG_STEP not in left
    assert SMALL_STEP in left
    assert any(d.startswith("pulled from ") for d in left)


def test_budget_from_the_environment_applies_when_no_flag_is_given(
    build_root: Path, tmp_path: Path
) -> None:
    big, small = two_projects(tmp_path)
    build(build_root, big, "--gc-budget", "off")
    build(build_root, small, env={"STRATA_GC_BUDGET": "4MB"})
    assert BIG_STEP not in descriptions(build_root)


def test_off_keeps_every_record_even_with_a_small_budget_in_the_environment(
    build_root: Path, tmp_path: Path
) -> None:
    big, small = two_projects(tmp_path)
    build(build_root, big, "--gc-budget", "off")
    build(build_root, small, "--gc-budget", "off", env={"STRATA_GC_BUDGET": "1MB"})
    left = descriptions(build_root)
    assert {BIG_STEP, SMALL_STEP} <= left


def test_bad_budget_is_a_usage_error_before_anything_is_built(
    build_root: Path, tmp_path: Path
) -> None:
    _, small = two_projects(tmp_path)
    run = subprocess.run(
        [str(STRATA), "--root", str(build_root), "build", "--gc-budget", "lots", str(small)],
        capture_output=True,
        timeout=600,
    )
    assert run.returncode == 1
    assert run.stderr.decode() == "ERROR: invalid GC budget 'lots': invalid size: 'lots'\n"
    assert SMALL_STEP not in descriptions(build_root)


# -- cache mounts described for du ---------------------------------------------------------------


def du_descriptions(root: Path) -> list[str]:
    run = subprocess.run(
        [str(STRATA), "--root", str(root), "du", "-v"], capture_output=True, timeout=600
    )
    assert run.returncode == 0, run.stderr.decode()
    return [
        line.removeprefix("Description:").strip()
        for line in run.stdout.decode().splitlines()
        if line.startswith("Description:")
    ]


def test_du_describes_cache_mounts_by_the_run_that_created_them(
    build_root: Path, tmp_path: Path
) -> None:
    # The frontend's cache id is "<namespace>/<id>" (convert_runmount.go), so an id equal
    # to the target after the slash prints no `with id` and a default id does.
    first = write_project(
        tmp_path / "first",
        f"FROM {BUSYBOX_IMAGE}\n"
        "RUN --mount=type=cache,target=/root/.cache echo one > /one\n"
        "RUN --mount=type=cache,id=pip,target=/pip true\n"
        "WORKDIR /w\n"
        "RUN --mount=type=cache,target=rel echo rel\n",
    )
    build(build_root, first)
    shown = [d for d in du_descriptions(build_root) if d.startswith("cached mount")]
    assert sorted(shown) == [
        "cached mount /pip from exec /bin/sh -c true",
        'cached mount /root/.cache from exec /bin/sh -c echo one > /one with id "//root/.cache"',
        'cached mount /w/rel from exec /bin/sh -c echo rel with id "/rel"',
    ]
    # A later RUN using the same cache does not rename it.
    second = write_project(
        tmp_path / "second",
        f"FROM {BUSYBOX_IMAGE}\nRUN --mount=type=cache,id=pip,target=/elsewhere echo two\n",
    )
    build(build_root, second)
    assert "cached mount /pip from exec /bin/sh -c true" in du_descriptions(build_root)


# -- exports that are not the image store ---------------------------------------------------------


def image_listing(root: Path) -> list[list[str]]:
    """`strata images` rows as (repository, tag, image ID)."""
    run = subprocess.run(
        [str(STRATA), "--root", str(root), "images"], capture_output=True, timeout=600
    )
    assert run.returncode == 0, run.stderr.decode()
    return [line.split()[:3] for line in run.stdout.decode().splitlines()[1:]]


def oci_config(archive: Path) -> dict[str, object]:
    """The image config inside an OCI layout tarball, as written (no tool rewriting it)."""
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> dict[str, Any]:
            handle = tar.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert handle is not None
            return cast(dict[str, Any], json.loads(handle.read()))

        index = tar.extractfile("index.json")
        assert index is not None
        manifest = blob(json.loads(index.read())["manifests"][0]["digest"])
        return blob(manifest["config"]["digest"])


def test_file_outputs_leave_no_image_in_the_store(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN echo out > /out\n")
    before = image_listing(build_root)
    out = tmp_path / "out"
    build(
        build_root,
        project,
        "-o",
        f"type=oci,dest={out / 'image.oci.tar'}",
        "-o",
        f"type=docker,dest={out / 'image.docker.tar'},name=named:1",
        "-o",
        f"type=local,dest={out / 'files'}",
        "-o",
        f"type=tar,dest={out / 'files.tar'}",
    )
    assert image_listing(build_root) == before
    assert (out / "files" / "out").read_text() == "out\n"
    # the archives are complete images for an independent reader
    for kind, name in (("oci-archive", "image.oci.tar"), ("docker-archive", "image.docker.tar")):
        inspect = subprocess.run(
            ["skopeo", "inspect", "--config", f"{kind}:{out / name}"],
            capture_output=True,
            timeout=600,
        )
        assert inspect.returncode == 0, inspect.stderr.decode()
        assert len(json.loads(inspect.stdout)["rootfs"]["diff_ids"]) == 2


def test_image_output_still_stores_the_image_next_to_a_file_output(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN echo out > /out\n")
    # As with buildx, -t with only a file output names the archive's image, nothing more.
    build(build_root, project, "-t", "tagged:1", "-o", f"type=oci,dest={tmp_path / 'a.tar'}")
    assert [row[:2] for row in image_listing(build_root)] == [["busybox", "strata-test"]]
    build(
        build_root,
        project,
        "-o",
        "type=image,name=kept:1",
        "-o",
        f"type=oci,dest={tmp_path / 'b.tar'}",
    )
    assert sorted(row[:2] for row in image_listing(build_root)) == [
        ["busybox", "strata-test"],
        ["kept", "1"],
    ]


def test_config_of_a_build_without_any_time_has_created_null(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", "FROM scratch\nENV A=1\n")
    archive = tmp_path / "scratch.tar"
    build(build_root, project, "-o", f"type=oci,dest={archive}")
    config = oci_config(archive)
    assert "created" in config and config["created"] is None
    assert config["history"] == [
        {"created_by": "ENV A=1", "comment": "buildkit.dockerfile.v0", "empty_layer": True}
    ]


# -- ADD <url>: fetched each build, CACHED when unchanged ------------------------------------------


@dataclass
class Served:
    """What the test server answers for every GET; the test changes it between builds."""

    body: bytes = b"hello\n"
    last_modified: str = "Wed, 01 May 2024 10:00:00 GMT"
    requests: int = 0


@pytest.fixture
def http_server() -> Iterator[tuple[str, Served]]:
    served = Served()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(served.body)))
            self.send_header("Last-Modified", served.last_modified)
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def plain_build(root: Path, project: Path) -> str:
    run = subprocess.run(
        [str(STRATA), "--root", str(root), "build", "--progress=plain", str(project)],
        capture_output=True,
        env=dict(os.environ, PROGRESS_NO_TRUNC="1"),
        timeout=600,
    )
    assert run.returncode == 0, run.stderr.decode()
    return run.stderr.decode()


def outcomes(log: str, step: str) -> list[str]:
    """How each vertex named `step` ended (DONE or CACHED), in order."""
    numbers = [m.group(1) for m in re.finditer(rf"^#(\d+) {re.escape(step)}$", log, re.M)]
    ends: list[str] = []
    for number in numbers:
        end = re.search(rf"^#{number} (DONE|CACHED)\b", log, re.M)
        ends.append(end.group(1) if end else "?")
    return ends


def test_add_url_is_cached_when_the_download_is_unchanged(
    build_root: Path, tmp_path: Path, http_server: tuple[str, Served]
) -> None:
    url, served = http_server
    project = write_project(
        tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nADD {url}/f.txt /f.txt\nRUN cat /f.txt\n"
    )
    add = f"[2/3] ADD {url}/f.txt /f.txt"
    first = plain_build(build_root, project)
    # the source and the copy into the stage carry the same name, as in BuildKit
    assert outcomes(first, add) == ["DONE", "DONE"]
    again = plain_build(build_root, project)
    assert served.requests == 2  # asked again: BuildKit requests the URL every build
    assert outcomes(again, add) == ["CACHED", "CACHED"]
    assert outcomes(again, "[3/3] RUN cat /f.txt") == ["CACHED"]

    served.body = b"changed\n"
    changed = plain_build(build_root, project)
    assert outcomes(changed, add) == ["DONE", "DONE"]
    assert outcomes(changed, "[3/3] RUN cat /f.txt") == ["DONE"]


def test_add_url_with_a_new_last_modified_is_not_cached(
    build_root: Path, tmp_path: Path, http_server: tuple[str, Served]
) -> None:
    # The file's mtime is its Last-Modified, so BuildKit keys the source on it too; the
    # copy into the stage is keyed by content checksums, which leave mtimes out.
    url, served = http_server
    project = write_project(tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nADD {url}/f.txt /f.txt\n")
    add = f"[2/2] ADD {url}/f.txt /f.txt"
    plain_build(build_root, project)
    served.last_modified = "Thu, 02 May 2024 10:00:00 GMT"
    assert outcomes(plain_build(build_root, project), add) == ["DONE", "CACHED"]

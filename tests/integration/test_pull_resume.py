"""`strata build` SIGKILLed while it downloads a big base layer (served slowly by the
fault-injecting registry), then run again: the second build completes and asks only for
the bytes the first one did not keep (a `Range` request; the server's byte count for
that blob is less than the blob), and the killed download is never visible in `blobs/`."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.integration.pull_support import STRATA, build, project, run_strata
from tests.unit.fake_registry import FakeRegistry

pytestmark = pytest.mark.timeout(300)

BIG = 64 << 20
KILL_AFTER = 4 << 20


def big_layer(size: int = BIG) -> bytes:
    """An uncompressed layer holding one file of `size` random bytes."""
    payload = os.urandom(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = len(payload)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
    return raw.getvalue()


def serve_image(registry: FakeRegistry, layer: bytes) -> str:
    layer_digest = registry.put_blob(layer)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }
    ).encode()
    config_digest = registry.put_blob(config)
    registry.put_json_manifest(
        "big/base",
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        },
        tags=["1"],
    )
    return layer_digest


def blobs_are_whole(root: Path) -> list[str]:
    """Files in the content store whose sha256 is not their name (should be none)."""
    bad = []
    for path in (root / "blobs" / "sha256").glob("*"):
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != path.name:
            bad.append(path.name)
    return bad


def test_a_build_killed_mid_pull_resumes_the_layer_with_range(tmp_path: Path) -> None:
    root = tmp_path / "root"
    layer = big_layer()
    size = len(layer)
    with FakeRegistry() as registry:
        digest = serve_image(registry, layer)
        context = project(
            tmp_path / "ctx", f"FROM {registry.host}/big/base:1\nCOPY f /f\n", {"f": "x"}
        )
        registry.faults.chunk_delay = 0.002  # 16 KiB pieces: about 8 MiB/s at most
        first = subprocess.Popen(
            [str(STRATA), "--root", str(root), "build", "--progress=plain", str(context)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while registry.bytes_served.get(digest, 0) < KILL_AFTER:
                assert first.poll() is None, first.stderr.read() if first.stderr else b""
                assert time.monotonic() < deadline, "the layer download never got going"
                time.sleep(0.02)
            os.killpg(first.pid, signal.SIGKILL)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
            if first.stderr is not None:
                first.stderr.close()
        served_first = registry.bytes_served[digest]
        left_behind = sorted(p.name for p in (root / "ingest").glob("*"))
        visible_after_kill = (root / "blobs" / "sha256" / digest.split(":")[1]).exists()
        whole_after_kill = blobs_are_whole(root)

        registry.faults.chunk_delay = 0.0
        second = build(root, context, "-t", "resumed")
        served_second = registry.bytes_served[digest] - served_first
        ranged = [
            r.headers.get("range", "")
            for r in registry.log("GET", f"/blobs/{digest}")
            if r.headers.get("range")
        ]

    assert first.returncode == -signal.SIGKILL
    assert served_first < size
    assert not visible_after_kill
    assert whole_after_kill == []
    assert left_behind, "the killed download left no partial file to resume"
    assert second.returncode == 0, second.stderr.decode()
    assert ranged and all(r != "bytes=0-" for r in ranged), ranged
    start = int(ranged[0].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= served_first
    assert served_second == size - start < size
    assert not list((root / "ingest").glob(f"{digest.split(':')[1]}*"))
    assert (root / "blobs" / "sha256" / digest.split(":")[1]).exists()
    assert blobs_are_whole(root) == []


def test_two_builds_pulling_the_same_layer_download_it_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    layer = big_layer(16 << 20)
    with FakeRegistry() as registry:
        digest = serve_image(registry, layer)
        registry.faults.chunk_delay = 0.001
        contexts = [
            project(
                tmp_path / f"ctx{n}", f"FROM {registry.host}/big/base:1\nCOPY f /f\n", {"f": str(n)}
            )
            for n in (1, 2)
        ]
        runs = [
            subprocess.Popen(
                [str(STRATA), "--root", str(root), "build", "--progress=plain", str(context)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            for context in contexts
        ]
        try:
            errors = [run.communicate(timeout=240)[1] for run in runs]
        finally:
            for run in runs:
                if run.poll() is None:
                    os.killpg(run.pid, signal.SIGKILL)
                    run.wait(timeout=30)
        served = registry.bytes_served[digest]

    assert [run.returncode for run in runs] == [0, 0], [e.decode()[-2000:] for e in errors]
    assert served == len(layer), (served, len(layer))
    assert blobs_are_whole(root) == []


def test_ctrl_c_mid_pull_stops_the_build_and_the_next_one_resumes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    layer = big_layer(32 << 20)
    size = len(layer)
    with FakeRegistry() as registry:
        digest = serve_image(registry, layer)
        context = project(
            tmp_path / "ctx", f"FROM {registry.host}/big/base:1\nCOPY f /f\n", {"f": "x"}
        )
        registry.faults.chunk_delay = 0.002
        first = subprocess.Popen(
            [str(STRATA), "--root", str(root), "build", "--progress=plain", str(context)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while registry.bytes_served.get(digest, 0) < KILL_AFTER:
                assert first.poll() is None
                assert time.monotonic() < deadline, "the layer download never got going"
                time.sleep(0.02)
            os.kill(first.pid, signal.SIGINT)
            _, err = first.communicate(timeout=60)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
                first.wait(timeout=30)
        served_first = registry.bytes_served[digest]
        visible = (root / "blobs" / "sha256" / digest.split(":")[1]).exists()
        registry.faults.chunk_delay = 0.0
        second = build(root, context)
        served_second = registry.bytes_served[digest] - served_first

    text = err.decode(errors="replace")
    assert first.returncode == 130, text
    assert "Traceback" not in text, text
    assert len([line for line in text.splitlines() if line.startswith("ERROR:")]) == 1, text
    # The download stopped with the build, not after the whole layer had come.
    assert served_first < size
    assert not visible
    assert second.returncode == 0, second.stderr.decode()
    assert 0 < served_second < size
    assert blobs_are_whole(root) == []


def test_ctrl_c_during_strata_pull_exits_130_and_the_next_pull_resumes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    layer = big_layer(32 << 20)
    size = len(layer)
    with FakeRegistry() as registry:
        digest = serve_image(registry, layer)
        ref = f"{registry.host}/big/base:1"
        registry.faults.chunk_delay = 0.002
        first = subprocess.Popen(
            [str(STRATA), "--root", str(root), "pull", ref],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while registry.bytes_served.get(digest, 0) < KILL_AFTER:
                assert first.poll() is None
                assert time.monotonic() < deadline, "the layer download never got going"
                time.sleep(0.02)
            os.kill(first.pid, signal.SIGINT)
            _, err = first.communicate(timeout=60)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
                first.wait(timeout=30)
        served_first = registry.bytes_served[digest]
        visible = (root / "blobs" / "sha256" / digest.split(":")[1]).exists()
        registry.faults.chunk_delay = 0.0
        second = run_strata(root, "pull", ref)
        served_second = registry.bytes_served[digest] - served_first

    text = err.decode(errors="replace")
    assert first.returncode == 130, text
    assert [line for line in text.splitlines() if line.strip()] == ["ERROR: interrupted"], text
    assert served_first < size and not visible
    assert second.returncode == 0, second.stderr.decode()
    assert "Pull complete" in second.stdout.decode()
    assert 0 < served_second < size
    assert blobs_are_whole(root) == []


def kill_mid_pull(registry: FakeRegistry, root: Path, context: Path, digest: str) -> None:
    """Run `strata build`, SIGKILL it once KILL_AFTER bytes of `digest` were served."""
    run = subprocess.Popen(
        [str(STRATA), "--root", str(root), "build", "--progress=plain", str(context)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while registry.bytes_served.get(digest, 0) < KILL_AFTER:
            assert run.poll() is None, "the build ended before it was killed"
            assert time.monotonic() < deadline, "the layer download never got going"
            time.sleep(0.02)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)


def test_a_partial_download_with_wrong_bytes_is_restarted_from_zero(tmp_path: Path) -> None:
    root = tmp_path / "root"
    layer = big_layer(16 << 20)
    with FakeRegistry() as registry:
        digest = serve_image(registry, layer)
        context = project(
            tmp_path / "ctx", f"FROM {registry.host}/big/base:1\nCOPY f /f\n", {"f": "x"}
        )
        registry.faults.chunk_delay = 0.002
        kill_mid_pull(registry, root, context, digest)
        (partial,) = (root / "ingest").glob(f"{digest.split(':')[1]}*")
        with open(partial, "r+b") as fh:  # the kept bytes go bad (a disk, another tool)
            fh.write(b"\0" * 4096)
        registry.faults.chunk_delay = 0.0
        done = build(root, context)
        ranges = [r.headers.get("range") for r in registry.log("GET", f"/blobs/{digest}")]

    assert done.returncode == 0, done.stderr.decode()
    # The first GET (killed), a resume that hashed wrong, then the whole blob again.
    assert ranges[0] is None and ranges[1] is not None and ranges[-1] is None, ranges
    assert blobs_are_whole(root) == []
    assert (root / "blobs" / "sha256" / digest.split(":")[1]).stat().st_size == len(layer)

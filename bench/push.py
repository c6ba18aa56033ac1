"""Push speed and memory: `strata push` against `skopeo copy` from the same OCI layout.

1. A 3-layer ~200 MB image (bench/pull.py's layout: gzip layers of random bytes, a
   random/text mix, and text) is loaded into a strata state root; then, each in its own
   child process and each to a freshly started Debian `docker-registry` on 127.0.0.1 (so
   nothing is skipped as already there):
   - strata: `strata push 127.0.0.1:<port>/bench/strata:1`;
   - skopeo: `skopeo copy oci:<layout>:bench docker://127.0.0.1:<port>/bench/skopeo:1`.
   Prints seconds, the ratio (goal ≤ 1.0) and peak RSS.
2. A 1 GiB layer (an uncompressed tar of random bytes) pushed by `strata push`: prints
   strata's peak RSS (goal: under 100 MB, the blob streams from its file).

    .venv/bin/python bench/push.py [SIZE_MIB] [BIG_MIB]
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import pull as pull_bench

MIB = 1 << 20
ROUNDS = 3
STRATA = pull_bench.STRATA
SKOPEO_COPY = ("skopeo", "copy", "--quiet", "--dest-tls-verify=false")


def name_layout(layout: Path, name: str) -> None:
    """Give the layout's image the full name strata's `load` registers it under."""
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["annotations"]["io.containerd.image.name"] = name
    (layout / "index.json").write_text(json.dumps(index))


def big_layout(dest: Path, size: int) -> int:
    """One uncompressed layer holding `size` random bytes, streamed to disk."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    payload = dest / "payload.bin"
    with open(payload, "wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MIB))
            out.write(chunk)
            left -= len(chunk)
    layer_tmp = dest / "layer.tar"
    with tarfile.open(layer_tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tar.gettarinfo(str(payload), "big.bin")
        info.mtime = 0
        with open(payload, "rb") as fh:
            tar.addfile(info, fh)
    payload.unlink()
    hasher = hashlib.sha256()
    with open(layer_tmp, "rb") as fh:
        while chunk := fh.read(8 * MIB):
            hasher.update(chunk)
    layer_digest = hasher.hexdigest()
    layer_size = layer_tmp.stat().st_size
    layer_tmp.rename(blobs / layer_digest)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
            "config": {},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": f"sha256:{layer_digest}",
                    "size": layer_size,
                }
            ],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **put(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "bench"},
            }
        ],
    }
    (dest / "index.json").write_text(json.dumps(index))
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return layer_size


def strata_cli(state: Path, *args: str) -> None:
    subprocess.run([str(STRATA), "--root", str(state), *args], check=True,
                   stdout=subprocess.DEVNULL)


def push_round(work: Path, state: Path, layout: Path, n: int) -> tuple[
    tuple[float, int], tuple[float, int]
]:
    """One strata push and one skopeo copy, each to a fresh registry."""
    results = []
    for tool in ("strata", "skopeo"):
        registry_dir = work / f"registry-{tool}-{n}"
        registry_dir.mkdir()
        server, host = pull_bench.start_registry(registry_dir)
        try:
            if tool == "strata":
                target = f"{host}/bench/strata:1"
                strata_cli(state, "tag", "bench/img:1", target)
                results.append(pull_bench.measure([str(STRATA), "--root", str(state), "push",
                                                   "-q", target]))
                strata_cli(state, "rmi", target)
            else:
                results.append(pull_bench.measure(
                    [*SKOPEO_COPY, f"oci:{layout}:bench", f"docker://{host}/bench/skopeo:1"]
                ))
        finally:
            server.terminate()
            server.wait(10)
            shutil.rmtree(registry_dir, ignore_errors=True)
    return results[0], results[1]


def main() -> None:
    for tool in ("docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench/push.py needs {tool} (scripts/install-deps.sh installs it)")
    size_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    big_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    with tempfile.TemporaryDirectory(prefix="strata-bench-push-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        layout = work / "layout"
        blob_bytes = pull_bench.make_oci_layout(layout, size_mib * MIB)
        name_layout(layout, "bench/img:1")
        state = work / "state"
        strata_cli(state, "load", "-q", "-i", str(layout))
        print(f"image: 3 gzip layers, {blob_bytes / MIB:.0f} MiB of blobs")
        strata_runs: list[tuple[float, int]] = []
        skopeo_runs: list[tuple[float, int]] = []
        for n in range(ROUNDS):
            strata_run, skopeo_run = push_round(work, state, layout, n)
            strata_runs.append(strata_run)
            skopeo_runs.append(skopeo_run)
        strata_s, strata_rss = min(strata_runs)
        skopeo_s, skopeo_rss = min(skopeo_runs)
        print(f"{'tool (best of ' + str(ROUNDS) + ')':<24}{'seconds':>9}{'MB/s':>8}{'peak RSS':>10}")
        for tool, seconds, rss in (
            ("strata push", strata_s, strata_rss),
            ("skopeo copy", skopeo_s, skopeo_rss),
        ):
            print(f"{tool:<24}{seconds:>9.2f}{blob_bytes / MIB / seconds:>8.1f}"
                  f"{rss / MIB:>8.0f}MB")
        print(f"ratio strata/skopeo: {strata_s / skopeo_s:.2f} (goal <= 1.0)")
        shutil.rmtree(state)
        shutil.rmtree(layout)

        big = work / "big"
        big_size = big_layout(big, big_mib * MIB)
        name_layout(big, "bench/big:1")
        big_state = work / "big-state"
        strata_cli(big_state, "load", "-q", "-i", str(big))
        shutil.rmtree(big)
        registry_dir = work / "registry-big"
        registry_dir.mkdir()
        server, host = pull_bench.start_registry(registry_dir)
        try:
            target = f"{host}/bench/big:1"
            strata_cli(big_state, "tag", "bench/big:1", target)
            seconds, rss = pull_bench.measure(
                [str(STRATA), "--root", str(big_state), "push", "-q", target]
            )
        finally:
            server.terminate()
            server.wait(10)
        verdict = "ok" if rss < 100 * MIB else "OVER"
        print(f"{big_size / MIB:.0f} MiB layer: strata push {seconds:.2f}s, "
              f"peak RSS {rss / MIB:.0f} MB (goal < 100 MB: {verdict})")


if __name__ == "__main__":
    main()

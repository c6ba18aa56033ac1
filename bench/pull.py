"""Pull speed: strata's RegistryClient against `skopeo copy` on a 3-layer ~200 MB image.

Builds an OCI layout (gzip layers: random bytes, a random/text mix, and text), starts
Debian's `docker-registry` on 127.0.0.1 (port 0, storage in a temp dir), pushes the
image with `skopeo copy`, then times, each in its own child process:

- strata: `resolve_image` + `fetch_blobs` (verified, up to 4 at once) into a fresh
  state root;
- skopeo: `skopeo copy docker://… dir:…` (also verifies digests).

Prints seconds, the ratio and peak RSS. Goal: strata no slower than skopeo, peak RSS
well under the image size (blobs stream to disk).

    .venv/bin/python bench/pull.py [SIZE_MIB]
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from strata.devtools.localregistry import LocalRegistry

MIB = 1 << 20
ROUNDS = 3
SKOPEO_COPY = ("skopeo", "copy", "--quiet")

# Started between this script and each measured command: it spawns the command, waits
# and writes the command's peak RSS (getrusage RUSAGE_CHILDREN, in KiB) to a file. A
# bare interpreter (-S -I), so the child's peak is not inflated by this script.
LAUNCHER = """
import os, resource, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status = os.waitpid(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""

# The measured strata pull: the command a user runs, as a whole process.
STRATA = Path(sys.executable).parent / "strata"


def measure(argv: list[str]) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of one command."""
    with tempfile.NamedTemporaryFile("r") as rss_file:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-S", "-I", "-c", LAUNCHER, rss_file.name, *argv],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        elapsed = time.perf_counter() - start
        return elapsed, int(rss_file.read()) * 1024


def gzip_layer(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


def text(size: int, seed: int) -> bytes:
    lines = []
    total = 0
    i = seed
    while total < size:
        line = f"2024-05-01T10:{i % 60:02}:00Z INFO request id={i} path=/api/v1/{i % 97} ok\n"
        lines.append(line)
        total += len(line)
        i += 7
    return "".join(lines).encode()[:size]


def make_oci_layout(dest: Path, total: int) -> int:
    """A 3-layer linux/amd64 image tagged `bench`; returns the sum of its blob sizes."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layers_raw = [
        {"random.bin": os.urandom(total * 45 // 100)},
        {"mixed.bin": os.urandom(total * 30 // 100), "mixed.log": text(total * 20 // 100, 1)},
        {"app.log": text(total * 60 // 100, 2), "more.bin": os.urandom(total * 15 // 100)},
    ]
    layers = []
    diff_ids = []
    for files in layers_raw:
        blob = gzip_layer(files)
        diff_ids.append("sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest())
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(blob)})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
            "layers": layers,
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
    return sum(int(str(layer["size"])) for layer in layers) + len(config) + len(manifest)


def main() -> None:
    for tool in ("docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench/pull.py needs {tool} (scripts/install-deps.sh installs it)")
    size_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory(prefix="strata-bench-pull-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        blob_bytes = make_oci_layout(work / "layout", size_mib * MIB)
        server = LocalRegistry(work / "registry").start()
        host = server.address
        try:
            image = f"{host}/bench:1"
            layout = f"oci:{work / 'layout'}:bench"
            subprocess.run(
                [*SKOPEO_COPY, "--dest-tls-verify=false", layout, f"docker://{image}"],
                check=True,
            )
            print(f"image: 3 gzip layers, {blob_bytes / MIB:.0f} MiB of blobs, on {host}")
            version_runs = [measure([str(STRATA), "--version"]) for _ in range(ROUNDS)]
            strata_runs: list[tuple[float, int]] = []
            skopeo_runs: list[tuple[float, int]] = []
            for n in range(ROUNDS):
                state = work / f"state-{n}"
                strata_runs.append(measure([str(STRATA), "--root", str(state), "pull", "-q", image]))
                shutil.rmtree(state)
                out = work / f"skopeo-{n}"
                skopeo_runs.append(
                    measure(
                        [*SKOPEO_COPY, "--src-tls-verify=false", f"docker://{image}", f"dir:{out}"]
                    )
                )
                shutil.rmtree(out)
        finally:
            server.stop()
        strata_s, strata_rss = min(strata_runs)
        skopeo_s, skopeo_rss = min(skopeo_runs)
        print(f"{'tool':<34}{'seconds':>9}{'MB/s':>8}{'peak RSS':>10}")
        for label, seconds, rss in (
            ("strata pull (4 at once)", strata_s, strata_rss),
            ("skopeo copy docker:// dir:", skopeo_s, skopeo_rss),
        ):
            rate = blob_bytes / seconds / 1e6
            print(f"{label:<34}{seconds:>9.2f}{rate:>8.0f}{rss / MIB:>8.0f}MB")
        print(f"strata / skopeo time: {strata_s / skopeo_s:.2f} (best of {ROUNDS} each)")
        floor = min(version_runs)[0]
        print(
            f"of strata's time, {floor:.2f}s is starting the command (strata --version); "
            f"the pull itself: {strata_s - floor:.2f}s ({(strata_s - floor) / skopeo_s:.2f} of skopeo)"
        )


if __name__ == "__main__":
    main()

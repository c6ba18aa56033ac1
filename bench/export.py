"""Layer export speed: `write_layer` on 1 GiB of mixed files next to `gzip -6` on the same tar.

Prints MB/s (of uncompressed tar), compression ratio and peak RSS for each. Each
measurement runs in its own child process, started by a minimal launcher that reads
the child's peak RSS with getrusage (no GNU time needed).
Goal: ≥ 2× gzip -6's throughput at a similar ratio, peak RSS < 200 MB.

    .venv/bin/python bench/export.py [SIZE_MIB]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20


def make_mixed_tree(dest: Path, total: int) -> None:
    """System files (binaries, text), random bytes, logs and a sparse file: ~`total` bytes."""
    dest.mkdir()
    budget = total * 6 // 10
    copied = dest / "usr"
    for source in (Path("/usr/lib"), Path("/usr/share"), Path("/usr/bin")):
        for path in sorted(source.rglob("*")):
            if budget <= 0:
                break
            if path.is_symlink() or not path.is_file():
                continue
            try:
                size = path.stat().st_size
                target = copied / path.relative_to("/usr")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            except OSError:
                continue
            budget -= size
    with open(dest / "random.bin", "wb") as fh:
        for _ in range(total // 10 // MIB):
            fh.write(os.urandom(MIB))
    with open(dest / "app.log", "w") as log:
        i = 0
        while log.tell() < total // 5:
            log.write(f"2024-05-01T10:{i % 60:02}:00Z INFO request id={i} path=/api/v1/{i % 97}\n")
            i += 1
    with open(dest / "sparse.img", "wb") as fh:
        fh.truncate(total // 10)


# Started between this script and each measured command: it spawns the command, waits
# and writes the command's peak RSS (getrusage RUSAGE_CHILDREN, in KiB) to a file.
# Linux counts a child's peak from the memory of the process that started it, so the
# starter must be small: a bare interpreter (-S -I), never this script itself.
LAUNCHER = """
import os, resource, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status = os.waitpid(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(argv: list[str], stdout_path: str) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of one command, its stdout going to `stdout_path`.

    No GNU time needed; the figure includes the launcher's own few MB as a floor
    (`launcher_floor` measures it), which matters only for tiny tools like gzip.
    """
    with tempfile.NamedTemporaryFile("r") as rss_file, open(stdout_path, "wb") as out:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-S", "-I", "-c", LAUNCHER, rss_file.name, *argv],
            stdout=out,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        elapsed = time.perf_counter() - start
        return elapsed, int(rss_file.read()) * 1024


def launcher_floor() -> int:
    """The peak RSS `measure` reports for a command that uses almost no memory."""
    return measure(["true"], os.devnull)[1]


def show_rss(rss: int) -> str:
    return f"{rss / MIB:.0f}MB"


WRITE_LAYER = """
import sys
from pathlib import Path
from strata.image.layer import write_layer
info = write_layer(Path(sys.argv[1]), sys.stdout.buffer, compression=sys.argv[2])
print(info.uncompressed_size, info.size, file=sys.stderr)
"""


def main() -> None:
    size_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    with tempfile.TemporaryDirectory(prefix="strata-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        tree = work / "tree"
        make_mixed_tree(tree, size_mib * MIB)
        tar = work / "layer.tar"
        # an uncompressed layer first: the input gzip -6 gets, and a warm page cache
        subprocess.run(
            [sys.executable, "-c", WRITE_LAYER, str(tree), "none"],
            stdout=open(tar, "wb"),  # noqa: SIM115
            stderr=subprocess.DEVNULL,
            check=True,
        )
        raw = tar.stat().st_size
        print(f"layer: {raw / MIB:.0f} MiB uncompressed tar of mixed files")
        print(f"{'tool':<28}{'MB/s':>8}{'ratio':>8}{'peak RSS':>11}")
        rows: dict[str, float] = {}
        for compression in ("gzip", "zstd", "none"):
            out = work / f"out.{compression}"
            seconds, rss = measure(
                [sys.executable, "-c", WRITE_LAYER, str(tree), compression], str(out)
            )
            rows[compression] = raw / seconds / 1e6
            ratio = out.stat().st_size / raw
            label = f"strata write_layer {compression}"
            print(f"{label:<28}{rows[compression]:>8.0f}{ratio:>8.3f}{show_rss(rss):>11}")
        gz = work / "out.gzip6"
        seconds, rss = measure(["gzip", "-6", "-c", str(tar)], str(gz))
        rows["gzip-6"] = raw / seconds / 1e6
        ratio = gz.stat().st_size / raw
        print(f"{'gzip -6 (on the tar)':<28}{rows['gzip-6']:>8.0f}{ratio:>8.3f}{show_rss(rss):>11}")
        print(f"speed-up of strata gzip over gzip -6: {rows['gzip'] / rows['gzip-6']:.1f}x")
        print(f"peak RSS includes the launcher's floor of {show_rss(launcher_floor())}")


if __name__ == "__main__":
    main()

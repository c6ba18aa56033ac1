"""Content-hash cost of a 5,000-file build context: cold, warm (unchanged) and one edit.

Prints milliseconds and the counters the hasher keeps (lstat calls, files read, cache
hits), so the claim "an unchanged context costs one lstat per entry and no reads" is
checked by counting, not by timing.

    .venv/bin/python bench/contenthash.py [--files N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from strata.store.root import StateRoot
from strata.worker.contenthash import DigestCache, checksum
from strata.worker.context import ScanStats


def make_context(root: Path, files: int) -> int:
    """`files` files of 0.5–8 KiB in 50 directories of 2 levels; returns the entry count."""
    dirs = 0
    for i in range(files):
        sub = root / f"pkg{i % 10}" / f"mod{i % 50}"
        if not sub.exists():
            sub.mkdir(parents=True)
        size = 512 + (i * 7919) % 7680
        (sub / f"file{i}.py").write_bytes(bytes([i % 251]) * size)
    for _dirpath, dirnames, _filenames in os.walk(root):
        dirs += len(dirnames)
    return files + dirs


def run(label: str, ctx: Path, cache: DigestCache) -> tuple[str, ScanStats, float]:
    stats = ScanStats()
    start = time.perf_counter()
    digest = checksum(ctx, "/", cache=cache, owner_reset=True, stats=stats)
    elapsed = (time.perf_counter() - start) * 1000
    print(
        f"{label:<10} {elapsed:8.1f} ms  lstat={stats.lstat_calls:<6} "
        f"read={stats.files_read:<5} bytes={stats.bytes_read:<9} hits={stats.cache_hits}"
    )
    return digest, stats, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as tmp:
        ctx = Path(tmp) / "ctx"
        ctx.mkdir()
        entries = make_context(ctx, args.files)
        # Let the files age past the racy window, so the cold run may remember them.
        time.sleep(1.1)
        state = StateRoot.open(Path(tmp) / "state")
        cache = DigestCache(state)
        print(f"context: {args.files} files, {entries} entries below the root")
        cold, _, _ = run("cold", ctx, cache)
        warm, warm_stats, _ = run("warm", ctx, cache)
        assert warm == cold
        edited = ctx / "pkg3/mod13/file13.py"
        edited.write_bytes(b"edited")
        past = time.time() - 10
        os.utime(edited, (past, past))  # mtime may be set back; ctime still moves on
        time.sleep(1.1)  # ctime must leave the racy window, as it would in real use
        edit, edit_stats, _ = run("one-edit", ctx, cache)
        assert edit != cold
        # The warm run is one lstat per entry (+1 for the source itself) and no reads.
        print(
            f"warm lstat per entry: {(warm_stats.lstat_calls - 1) / entries:.2f}, "
            f"files read warm: {warm_stats.files_read}, after one edit: {edit_stats.files_read}"
        )
        state.close()


if __name__ == "__main__":
    main()

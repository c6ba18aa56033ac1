"""The persistent digest cache: an unchanged tree is re-hashed from stat alone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.store.root import StateRoot
from strata.worker.contenthash import DigestCache, checksum
from strata.worker.context import ScanStats


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateRoot]:
    root = StateRoot.open(tmp_path / "state")
    yield root
    root.close()


def make_tree(root: Path, count: int = 20) -> None:
    for i in range(count):
        sub = root / f"d{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"file {i}\n")
    os.symlink("d0/f0.txt", root / "link")


def test_second_checksum_reads_no_file(tmp_path: Path, state: StateRoot) -> None:
    ctx = tmp_path / "ctx"
    make_tree(ctx)
    cache = DigestCache(state, racy_window_ns=0)
    first_stats = ScanStats()
    first = checksum(ctx, "/", cache=cache, stats=first_stats)
    assert first_stats.files_read == 20

    second_stats = ScanStats()
    assert checksum(ctx, "/", cache=cache, stats=second_stats) == first
    assert second_stats.files_read == 0
    # one lstat for each of the 25 entries below the root (20 files, 4 dirs, 1 link)
    # plus the lookup of the source itself
    assert second_stats.lstat_calls == 26


def test_cache_is_shared_by_a_new_process_view_of_the_state_root(
    tmp_path: Path, state: StateRoot
) -> None:
    ctx = tmp_path / "ctx"
    make_tree(ctx)
    first = checksum(ctx, "/", cache=DigestCache(state, racy_window_ns=0))
    reopened = StateRoot.open(tmp_path / "state")
    try:
        stats = ScanStats()
        second = checksum(ctx, "/", cache=DigestCache(reopened, racy_window_ns=0), stats=stats)
    finally:
        reopened.close()
    assert second == first
    assert stats.files_read == 0


def test_edited_file_is_read_again_and_others_are_not(tmp_path: Path, state: StateRoot) -> None:
    ctx = tmp_path / "ctx"
    make_tree(ctx)
    cache = DigestCache(state, racy_window_ns=0)
    first = checksum(ctx, "/", cache=cache)
    (ctx / "d1/f1.txt").write_text("edited\n")
    stats = ScanStats()
    edited = checksum(ctx, "/", cache=cache, stats=stats)
    assert edited != first
    assert stats.files_read == 1
    assert edited == checksum(ctx, "/")  # the cached answer equals a cold one


def test_same_size_same_mtime_rewrite_is_caught_by_ctime(tmp_path: Path, state: StateRoot) -> None:
    ctx = tmp_path / "ctx"
    make_tree(ctx)
    cache = DigestCache(state, racy_window_ns=0)
    checksum(ctx, "/", cache=cache)
    target = ctx / "d2/f2.txt"
    st = os.stat(target)
    target.write_text("file X\n")  # same length as "file 2\n"
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert checksum(ctx, "/", cache=cache) == checksum(ctx, "/")


def test_racy_files_are_not_remembered(tmp_path: Path, state: StateRoot) -> None:
    ctx = tmp_path / "ctx"
    make_tree(ctx, count=3)
    cache = DigestCache(state, racy_window_ns=3600 * 10**9)
    checksum(ctx, "/", cache=cache)
    stats = ScanStats()
    checksum(ctx, "/", cache=cache, stats=stats)
    assert stats.files_read == 3


def test_deleted_files_are_forgotten(tmp_path: Path, state: StateRoot) -> None:
    ctx = tmp_path / "ctx"
    make_tree(ctx, count=4)
    cache = DigestCache(state, racy_window_ns=0)
    checksum(ctx, "/", cache=cache)
    (ctx / "d3/f3.txt").unlink()
    checksum(ctx, "/", cache=cache)
    rows = state.connect().execute("SELECT path FROM contenthash_files").fetchall()
    paths = {bytes(r[0]).decode() for r in rows}
    assert str(ctx / "d0/f0.txt") in paths
    assert str(ctx / "d3/f3.txt") not in paths


def test_single_file_checksum_uses_the_cache(tmp_path: Path, state: StateRoot) -> None:
    ctx = tmp_path / "ctx"
    make_tree(ctx, count=2)
    cache = DigestCache(state, racy_window_ns=0)
    first = checksum(ctx, "d1/f1.txt", cache=cache)
    stats = ScanStats()
    assert checksum(ctx, "d1/f1.txt", cache=cache, stats=stats) == first
    assert stats.files_read == 0 and stats.cache_hits == 1

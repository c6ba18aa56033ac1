"""`atomic_write`: a file whole or not at all, and leftovers of dead writers reaped."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from strata.atomicfile import atomic_write, reap_leftovers, temp_path_for


def test_the_destination_appears_only_when_the_block_ends_cleanly(tmp_path: Path) -> None:
    dest = tmp_path / "out.tar"
    with atomic_write(dest) as fh:
        fh.write(b"archive")
        assert not dest.exists() and temp_path_for(dest).exists()
    assert dest.read_bytes() == b"archive"
    assert list(tmp_path.iterdir()) == [dest]


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "out.tar"
    with pytest.raises(RuntimeError), atomic_write(dest) as fh:
        fh.write(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_dead_writers_files_are_reaped_and_live_ones_and_others_kept(tmp_path: Path) -> None:
    dead = tmp_path / ".a.tar.strata-4242.tmp"
    dead.write_bytes(b"left by a SIGKILL")
    live = tmp_path / ".b.tar.strata-4343.tmp"
    unrelated = tmp_path / ".c.tar.4444.tmp"
    unrelated.write_bytes(b"not ours")
    with open(live, "wb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert reap_leftovers(tmp_path) == [dead]
        with atomic_write(tmp_path / "d.tar") as fh:
            fh.write(b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".b.tar.strata-4343.tmp",
        ".c.tar.4444.tmp",
        "d.tar",
    ]

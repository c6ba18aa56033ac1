"""Regressions from the worker and store review: signal handling while the executor's
own lock is held, one owner directory per process however many threads ask, lock
probes that do not mistake each other for users, and the one tree copy."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from strata.errors import StoreError
from strata.fsutil import copy_tree
from strata.gc.usage import BUILD_LOCK, PROBE_LOCK, builds_running, lock_in_use
from strata.store.root import StateRoot

REPO = Path(__file__).resolve().parents[2]


def test_a_signal_arriving_while_the_main_thread_holds_the_executor_lock_is_handled(
    tmp_path: Path,
) -> None:
    # The handler runs on the main thread; if it waited for the lock that thread holds
    # (as when a signal lands inside `with self._lock:`), the process would hang.
    script = (
        "import signal\n"
        "from strata.store.root import StateRoot\n"
        "from strata.worker.executor import Executor\n"
        f"root = StateRoot.open({str(tmp_path / 'root')!r})\n"
        "executor = Executor(root)\n"
        "with executor._signals('c', False) as received:\n"
        "    with executor._lock:\n"
        "        signal.raise_signal(signal.SIGINT)\n"
        "print(received)\n"
        "root.close()\n"
    )
    # The timeout only keeps a regression from hanging the suite.
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"[{int(__import__('signal').SIGINT)}]\n"


def test_threads_asking_at_once_share_one_owner_directory(tmp_path: Path) -> None:
    for attempt in range(10):
        root = StateRoot.open(tmp_path / f"root{attempt}")
        try:
            start = threading.Barrier(8)
            seen: list[Path] = []

            def ask(
                r: StateRoot = root, b: threading.Barrier = start, out: list[Path] = seen
            ) -> None:
                b.wait()
                out.append(r.owner_dir())

            threads = [threading.Thread(target=ask) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(set(seen)) == 1
            assert [p.name for p in root.tmp_root.iterdir()] == [seen[0].name]
        finally:
            root.close()


def test_a_lock_probe_does_not_take_another_probers_lock_for_a_user(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "root")
    lock_path = tmp_path / "cache.lock"
    lock_path.touch()
    try:
        results: list[bool] = []
        with open(lock_path, "rb") as other_probe, root.lock(PROBE_LOCK):
            # Another du/prune in the middle of its probe: exclusive, for an instant.
            fcntl.flock(other_probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            prober = threading.Thread(target=lambda: results.append(lock_in_use(root, lock_path)))
            prober.start()
            prober.join(0.5)  # not an assertion: gives a wrong probe the chance to run
            fcntl.flock(other_probe, fcntl.LOCK_UN)
        prober.join()
        assert results == [False]
    finally:
        root.close()


def test_a_shared_holder_is_in_use_and_a_missing_lock_file_is_not_created(
    tmp_path: Path,
) -> None:
    root = StateRoot.open(tmp_path / "root")
    try:
        with root.lock(BUILD_LOCK, shared=True):
            assert builds_running(root)
        assert not builds_running(root)
        missing = tmp_path / "no-such.lock"
        assert not lock_in_use(root, missing)
        assert not missing.exists()
    finally:
        root.close()


def test_copy_tree_keeps_root_mode_links_and_hard_links(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "d").mkdir(parents=True)
    (source / "d" / "f").write_text("x")
    os.link(source / "d" / "f", source / "hard")
    (source / "link").symlink_to("d/f")
    os.chmod(source, 0o701)
    dest = tmp_path / "dest"
    dest.mkdir()
    copy_tree(source, dest)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o701
    assert os.readlink(dest / "link") == "d/f"
    assert (dest / "hard").stat().st_ino == (dest / "d" / "f").stat().st_ino
    assert (dest / "d" / "f").read_text() == "x"


def test_copy_tree_failure_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"copying .* failed"):
        copy_tree(tmp_path / "missing", tmp_path)

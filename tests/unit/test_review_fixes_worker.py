"""Regressions from the worker and store review: signal handling while the executor's
own lock is held, and one owner directory per process however many threads ask."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

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

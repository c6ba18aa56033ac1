"""Executor behaviour across processes: cache sharing, SIGINT, SIGKILL and the reaper.

Each test starts this module as a separate strata process (`python -m ...`) that runs
one step, so locks and signals are exercised exactly as between two builds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.store.cachemounts import CacheMounts
from strata.store.root import StateRoot, mounts_under
from strata.worker.executor import Executor, ProcessSpec
from strata.worker.mounts import RuntimeCacheMount
from strata.worker.snapshots.factory import open_snapshotter
from tests.integration.conftest import commit_tree, process_running, wait_for

REPO = Path(__file__).resolve().parents[2]


def worker_main(root_path: str, base: str, script: str, cache_json: str) -> int:
    """Run one step on snapshot `base` of the root; print its output as it comes."""
    from strata.errors import StrataError

    root = StateRoot.open(root_path)
    try:
        snap = open_snapshotter(root, "overlay")
        mounts = [RuntimeCacheMount(**spec) for spec in json.loads(cache_json)]
        key = f"step-{os.getpid()}"
        rootfs = snap.prepare(key, base)

        def show(stream: str, chunk: bytes, at: float) -> None:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()

        try:
            return Executor(root).run(
                ProcessSpec(("/bin/sh", "-c", script)), rootfs, mounts, on_output=show
            )
        except StrataError as err:
            print(f"ERROR: {err.message}", flush=True)
            return err.exit_code
        finally:
            snap.remove(key)
    finally:
        root.close()


def start_worker(
    root: StateRoot, base: str, script: str, caches: list[dict[str, object]]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.test_executor_processes",
            str(root.path),
            base,
            script,
            json.dumps(caches),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def cache_dir(root: StateRoot, cache_id: str) -> Path:
    row = (
        root.connect()
        .execute("SELECT n FROM cache_mounts WHERE id = ? ORDER BY n", (cache_id,))
        .fetchone()
    )
    assert row is not None
    return root.cachemounts_dir / str(row[0]) / "data"


def someone_waits_for_lock(lock_file: Path) -> bool:
    inode = lock_file.stat().st_ino
    with open("/proc/locks") as fh:
        return any("->" in line and f":{inode} " in line for line in fh)


@pytest.fixture
def base(state_root: StateRoot, busybox_rootfs: Path) -> str:
    return commit_tree(open_snapshotter(state_root, "overlay"), "bb", busybox_rootfs)


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_locked_cache_serialises_two_steps_in_separate_processes(
    state_root: StateRoot, base: str, workers: list[subprocess.Popen[str]]
) -> None:
    cache = [{"target": "/c", "id": "shared-log", "sharing": "locked"}]
    CacheMounts(state_root)  # the table exists before we poll it
    first = start_worker(
        state_root,
        base,
        "echo start-A >> /c/log; while [ ! -e /c/go ]; do sleep 0.02; done; echo end-A >> /c/log",
        cache,
    )
    workers.append(first)
    wait_for(
        lambda: (
            state_root.connect().execute("SELECT count(*) FROM cache_mounts").fetchone()[0] == 1
        ),
        "the cache to exist",
    )
    data = cache_dir(state_root, "shared-log")
    wait_for(lambda: (data / "log").exists(), "the first step to start")
    second = start_worker(state_root, base, "echo start-B >> /c/log; echo end-B >> /c/log", cache)
    workers.append(second)
    wait_for(lambda: someone_waits_for_lock(data.parent / "lock"), "the second step to queue")
    (data / "go").touch()
    assert first.wait() == 0 and second.wait() == 0
    assert (data / "log").read_text().split() == ["start-A", "end-A", "start-B", "end-B"]


def test_private_cache_in_use_gives_a_separate_copy(state_root: StateRoot, base: str) -> None:
    caches = CacheMounts(state_root)
    snap = open_snapshotter(state_root, "overlay")
    with caches.acquire("priv", "private") as held:
        (held / "mine").write_text("held")
        lines: list[bytes] = []
        Executor(state_root, cache_mounts=caches).run(
            ProcessSpec(("/bin/sh", "-c", "ls /c; echo other > /c/theirs")),
            snap.prepare("s", base),
            [RuntimeCacheMount("/c", "priv", sharing="private")],
            on_output=lambda s, line, t: lines.append(line),
        )
        assert lines == []  # the step saw a fresh, empty copy
        assert not (held / "theirs").exists()
    # Once free, the first directory is reused.
    with caches.acquire("priv", "private") as again:
        assert again == held


def test_shared_cache_is_one_directory_for_concurrent_users(state_root: StateRoot) -> None:
    caches = CacheMounts(state_root)
    with caches.acquire("sh", "shared") as a, caches.acquire("sh", "shared") as b:
        assert a == b


def test_discard_starts_the_cache_empty(state_root: StateRoot) -> None:
    caches = CacheMounts(state_root)
    with caches.acquire("gone") as d:
        (d / "f").write_text("x")
    assert caches.discard("gone") == 1
    with caches.acquire("gone") as d:
        assert list(d.iterdir()) == []


def test_discard_does_not_wait_for_a_user_and_the_next_user_starts_empty(
    state_root: StateRoot,
) -> None:
    caches = CacheMounts(state_root)
    with caches.acquire("busy", "shared") as held:
        (held / "old").write_text("x")
        done: list[int] = []
        discarding = threading.Thread(target=lambda: done.append(caches.discard("busy")))
        discarding.start()
        discarding.join(60)  # an ordering aid: a discard that waited would never return
        assert done == [1]
        with caches.acquire("busy", "shared") as fresh:
            assert fresh != held and list(fresh.iterdir()) == []
        # The user of the discarded directory keeps it while it runs...
        assert (held / "old").read_text() == "x"
    # ...and it is deleted when that user lets go.
    assert not held.exists()
    assert caches.ids() == ["busy"]


def test_locked_waiter_gets_a_fresh_cache_when_it_was_discarded_meanwhile(
    state_root: StateRoot,
) -> None:
    caches = CacheMounts(state_root)
    got: list[tuple[Path, list[str]]] = []

    def waiter() -> None:
        with caches.acquire("queue", "locked") as d:
            got.append((d, sorted(p.name for p in d.iterdir())))

    with caches.acquire("queue", "locked") as first:
        (first / "stale").write_text("x")
        waiting = threading.Thread(target=waiter)
        waiting.start()
        wait_for(lambda: someone_waits_for_lock(first.parent / "lock"), "the waiter to queue")
        assert caches.discard("queue") == 1
    waiting.join(60)
    assert len(got) == 1
    assert got[0][0] != first and got[0][1] == []
    assert not first.exists()


def test_cache_dirs_a_crash_left_without_a_row_are_removed_by_the_next_open(
    state_root: StateRoot,
) -> None:
    caches = CacheMounts(state_root)
    with caches.acquire("orphan") as d:
        (d / "f").write_text("x")
    # A process died after forgetting the row but before deleting the directory, and
    # another one while seeding a new cache.
    with state_root.transaction() as db:
        db.execute("DELETE FROM cache_mounts WHERE id = 'orphan'")
    half_made = state_root.cachemounts_dir / ".new-crashed"
    (half_made / "data").mkdir(parents=True)
    CacheMounts(state_root)
    assert sorted(p.name for p in state_root.cachemounts_dir.iterdir()) == []


def test_sigint_mid_step_kills_the_container_and_leaves_no_mount(
    state_root: StateRoot, base: str, workers: list[subprocess.Popen[str]]
) -> None:
    proc = start_worker(state_root, base, "echo started; exec sleep 4242", [])
    workers.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"
    proc.send_signal(signal.SIGINT)
    assert proc.wait() == 130
    assert "ERROR: interrupted" in proc.stdout.read()
    assert mounts_under(state_root.path) == []
    assert not process_running("sleep 4242")


def test_sigterm_mid_step_exits_143(
    state_root: StateRoot, base: str, workers: list[subprocess.Popen[str]]
) -> None:
    proc = start_worker(state_root, base, "echo started; exec sleep 4343", [])
    workers.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 143
    assert mounts_under(state_root.path) == []
    assert not process_running("sleep 4343")


def test_after_sigkill_the_next_open_reaps_container_and_mounts(
    state_root: StateRoot, base: str, workers: list[subprocess.Popen[str]]
) -> None:
    proc = start_worker(state_root, base, "echo started; exec sleep 4444", [])
    workers.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"
    proc.kill()
    proc.wait()
    assert mounts_under(state_root.tmp_root) != []  # the dead process left them
    left = state_root.connect().execute("SELECT key, kind FROM snapshots ORDER BY id").fetchall()
    assert left == [(base, "committed"), (f"step-{proc.pid}", "active")]
    reopened = StateRoot.open(state_root.path)
    try:
        assert mounts_under(state_root.tmp_root) == []
        wait_for(lambda: not process_running("sleep 4444"), "the orphaned container to die")
        # The step's writable snapshot goes with its dead owner; the base stays.
        keys = [s.key for s in open_snapshotter(reopened, "overlay").list()]
        assert keys == [base]
    finally:
        reopened.close()


if __name__ == "__main__":
    sys.exit(worker_main(*sys.argv[1:5]))

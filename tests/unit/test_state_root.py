import os
import subprocess
import sys
from pathlib import Path

from strata.store.root import StateRoot


def test_open_creates_layout_and_wal_database(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "root")
    for d in ("blobs/sha256", "snapshots", "cachemounts", "tmp", "locks"):
        assert (tmp_path / "root" / d).is_dir()
    mode = root.connect().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_tmp_space_of_a_killed_process_is_reaped_and_live_one_kept(tmp_path: Path) -> None:
    path = tmp_path / "root"
    live = StateRoot.open(path)
    mine = live.mkdtemp("bundle")
    script = (
        "import os, sys\n"
        "from strata.store.root import StateRoot\n"
        f"r = StateRoot.open({str(path)!r})\n"
        "d = r.mkdtemp('x')\n"
        "(d / 'junk').write_text('x')\n"
        "print(d, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9
    dead_dir = Path(proc.stdout.strip())
    assert dead_dir.exists()
    StateRoot.open(path)
    assert not dead_dir.parent.exists()
    assert mine.exists()
    live.close()
    assert not mine.exists()
    assert os.listdir(path / "tmp") == []


def test_a_transaction_that_raises_rolls_back(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "root")
    root.connect().execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    try:
        with root.transaction() as db:
            db.execute("INSERT INTO t VALUES ('a')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert root.connect().execute("SELECT count(*) FROM t").fetchone()[0] == 0

"""Persistent directories for `RUN --mount=type=cache`.

A cache is found by its id *and* its base, as BuildKit's `solver/llbsolver/mounts/mount.go`
does: the base is the seed content (`from`/`source`) or, when uid/gid/mode are given, a
directory with those permissions; changing either selects a different cache that starts
fresh. Each cache lives in `cachemounts/<n>/data`; one id+base may have several
directories when `sharing=private` users overlapped.

Sharing across threads and processes uses one lock file per directory:
`shared` holds it shared, `private` and `locked` hold it exclusive (`private` skips busy
directories and makes a new one, `locked` waits). Cache contents are state, never part
of a cache key or a layer.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from strata.errors import StoreError
from strata.store.root import StateRoot

Sharing = Literal["shared", "private", "locked"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS cache_mounts (
    n          INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL,
    base_key   TEXT NOT NULL,
    created    REAL NOT NULL,
    last_used  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_mounts_id ON cache_mounts(id, base_key);
"""


def base_key_for(base_key: str | None, base: Path | None, uid: int, gid: int, mode: int) -> str:
    """The identity of a cache's starting point (BuildKit: the `from` result, or the
    hidden "setting cache mount permissions" directory)."""
    if base is not None:
        return "from:" + (base_key if base_key is not None else str(base.resolve()))
    if (uid, gid, mode) == (0, 0, 0o755):
        return "empty"
    return f"perm:{uid}:{gid}:{mode:o}"


class CacheMounts:
    """The cache directories of one state root."""

    def __init__(self, root: StateRoot) -> None:
        self.root = root
        root.ensure_schema("cache_mounts", SCHEMA)

    def _dir(self, n: int) -> Path:
        return self.root.cachemounts_dir / str(n)

    def _lock_path(self, n: int) -> Path:
        return self._dir(n) / "lock"

    def _candidates(self, cache_id: str, key: str) -> list[int]:
        rows = (
            self.root.connect()
            .execute(
                "SELECT n FROM cache_mounts WHERE id = ? AND base_key = ? ORDER BY n",
                (cache_id, key),
            )
            .fetchall()
        )
        return [int(r[0]) for r in rows]

    def _create(
        self, cache_id: str, key: str, base: Path | None, uid: int, gid: int, mode: int
    ) -> int:
        """Make a new, seeded directory and record it (files first, then the row)."""
        staging = self.root.cachemounts_dir / f".new-{uuid.uuid4().hex}"
        data = staging / "data"
        data.mkdir(parents=True)
        try:
            (staging / "lock").touch()
            if base is not None:
                proc = subprocess.run(
                    ["cp", "-a", "--no-target-directory", f"{base}/.", str(data)],
                    capture_output=True,
                    text=True,
                )
                if proc.returncode != 0:
                    raise StoreError(f"cannot seed cache mount {cache_id}: {proc.stderr.strip()}")
            else:
                os.chown(data, uid, gid)
                os.chmod(data, mode)
            now = time.time()
            with self.root.transaction() as db:
                cur = db.execute(
                    "INSERT INTO cache_mounts (id, base_key, created, last_used) VALUES (?,?,?,?)",
                    (cache_id, key, now, now),
                )
                n = int(cur.lastrowid or 0)
                shutil.rmtree(self._dir(n), ignore_errors=True)
                staging.rename(self._dir(n))
            return n
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @contextlib.contextmanager
    def acquire(
        self,
        cache_id: str,
        sharing: Sharing = "shared",
        *,
        base: Path | None = None,
        base_key: str | None = None,
        uid: int = 0,
        gid: int = 0,
        mode: int = 0o755,
    ) -> Iterator[Path]:
        """Yield the host directory of cache `cache_id` for the `with` block.

        `base` seeds a new cache (copied in, never modified); `base_key` names that seed
        stably across builds (e.g. the digest of the `from` result); without it the
        seed's path is used. uid/gid/mode shape a cache started without a seed."""
        if sharing not in ("shared", "private", "locked"):
            raise StoreError(f'unsupported sharing value "{sharing}"')
        key = base_key_for(base_key, base, uid, gid, mode)
        fh: IO[bytes] | None = None
        n = 0
        try:
            with self.root.lock("cachemounts"):
                candidates = self._candidates(cache_id, key)
                if sharing == "private":
                    for cand in candidates:
                        fh = open(self._lock_path(cand), "a+b")  # noqa: SIM115
                        try:
                            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        except BlockingIOError:
                            fh.close()
                            fh = None
                            continue
                        n = cand
                        break
                    if fh is None:
                        n = self._create(cache_id, key, base, uid, gid, mode)
                        fh = open(self._lock_path(n), "a+b")  # noqa: SIM115
                        fcntl.flock(fh, fcntl.LOCK_EX)
                else:
                    n = (
                        candidates[0]
                        if candidates
                        else self._create(cache_id, key, base, uid, gid, mode)
                    )
                    fh = open(self._lock_path(n), "a+b")  # noqa: SIM115
            # Waiting happens outside the global lock so other caches stay usable.
            if sharing == "shared":
                fcntl.flock(fh, fcntl.LOCK_SH)
            elif sharing == "locked":
                fcntl.flock(fh, fcntl.LOCK_EX)
            with self.root.transaction() as db:
                db.execute("UPDATE cache_mounts SET last_used = ? WHERE n = ?", (time.time(), n))
            data = self._dir(n) / "data"
            if not data.is_dir():
                raise StoreError(f"cache mount {cache_id} was discarded while waiting for it")
            yield data
        finally:
            if fh is not None:
                fh.close()

    def discard(self, cache_id: str) -> int:
        """Delete every directory of cache `cache_id` (any base), waiting for users to
        finish; `--no-cache` does this so the cache starts empty. Returns how many."""
        with self.root.lock("cachemounts"):
            rows = (
                self.root.connect()
                .execute("SELECT n FROM cache_mounts WHERE id = ?", (cache_id,))
                .fetchall()
            )
            # Forget the rows first: from now on acquire() starts a fresh directory.
            with self.root.transaction() as db:
                db.execute("DELETE FROM cache_mounts WHERE id = ?", (cache_id,))
        for (n,) in rows:
            # Wait for current users outside the global lock, then delete.
            with contextlib.suppress(FileNotFoundError), open(self._lock_path(n), "rb") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                shutil.rmtree(self._dir(n) / "data", ignore_errors=True)
            shutil.rmtree(self._dir(n), ignore_errors=True)
        return len(rows)

    def ids(self) -> list[str]:
        """Every cache id that has at least one directory."""
        rows = self.root.connect().execute("SELECT DISTINCT id FROM cache_mounts ORDER BY id")
        return [str(r[0]) for r in rows.fetchall()]

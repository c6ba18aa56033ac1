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

The rows are table `cache_mounts` (owner: `CacheMounts`; see `store/schema.py`).

`discard` (for `--no-cache`) never waits: it forgets a cache's rows at once, so the
next user starts empty, and deletes each directory as soon as nobody uses it (right
away, or when its last user lets go, or at the next `CacheMounts` of any process).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from strata.errors import StoreError
from strata.fsutil import copy_tree
from strata.modes import Sharing
from strata.store.root import StateRoot


@dataclass(frozen=True)
class CacheDirectory:
    """One row of `cache_mounts`: directory `cachemounts/<number>` of cache `cache_id`."""

    number: int
    cache_id: str
    created: float
    last_used: float
    base_key: str = ""


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

    def __init__(self, root: StateRoot, *, reap: bool = True) -> None:
        """`reap=False` skips deleting discarded directories (for read-only callers
        such as du, which only list the rows)."""
        self.root = root
        if reap:
            self.remove_discarded()

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
                try:
                    copy_tree(base, data)
                except StoreError as err:
                    raise StoreError(f"cannot seed cache mount {cache_id}: {err.message}") from None
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
        while True:
            held = self._hold(cache_id, key, sharing, base, uid, gid, mode)
            if held is not None:
                break
            # The cache was discarded while we waited for it: start again, fresh.
        n, fh = held
        try:
            with self.root.transaction() as db:
                db.execute("UPDATE cache_mounts SET last_used = ? WHERE n = ?", (time.time(), n))
            yield self._dir(n) / "data"
        finally:
            fh.close()
            self._remove_if_discarded(n)

    def _hold(
        self,
        cache_id: str,
        key: str,
        sharing: Sharing,
        base: Path | None,
        uid: int,
        gid: int,
        mode: int,
    ) -> tuple[int, IO[bytes]] | None:
        """Pick (or make) a directory for one user and lock it as `sharing` says.
        None when it was discarded while we waited for its lock."""
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
            if not self._recorded(n) or not (self._dir(n) / "data").is_dir():
                fh.close()
                fh = None
                self._remove_if_discarded(n)
                return None
            held, fh = (n, fh), None
            return held
        finally:
            if fh is not None:
                fh.close()

    def _recorded(self, n: int) -> bool:
        row = self.root.connect().execute("SELECT 1 FROM cache_mounts WHERE n = ?", (n,))
        return row.fetchone() is not None

    def _remove_if_discarded(self, n: int) -> None:
        """Delete directory `n` if it has no row any more and nobody holds it."""
        with self.root.lock("cachemounts"):
            if not self._recorded(n):
                self._remove_unused(n)

    def remove(self, n: int) -> bool:
        """Delete cache directory `n` with its row (for prune) unless a RUN holds it
        right now; whether it went."""
        with self.root.lock("cachemounts"):
            if not self._recorded(n):
                return False
            return self._remove_unused(n, forget=True)

    def _forget(self, n: int) -> None:
        with self.root.transaction() as db:
            db.execute("DELETE FROM cache_mounts WHERE n = ?", (n,))

    def _remove_unused(self, n: int, *, forget: bool = False) -> bool:
        """Delete directory `n` unless a user holds its lock; whether it is gone. Call
        with the global lock held and the row already deleted, or with `forget` to have
        the row deleted once the directory is known to be unused."""
        try:
            fh = open(self._lock_path(n), "rb")  # noqa: SIM115
        except FileNotFoundError:
            if forget:
                self._forget(n)
            shutil.rmtree(self._dir(n), ignore_errors=True)
            return True
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            if forget:
                self._forget(n)
            # Renamed first, so no later open of the lock path finds it half-deleted.
            trash = self.root.cachemounts_dir / f".removed-{n}-{uuid.uuid4().hex}"
            self._dir(n).rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def remove_discarded(self) -> int:
        """Delete the directories that lost their row (discarded while in use, or by a
        process that died before deleting them) and that nobody holds now, and what a
        crash left half-made or half-deleted. Returns how many cache dirs went."""
        removed = 0
        with self.root.lock("cachemounts"):
            recorded = self.numbers()
            for entry in self.root.cachemounts_dir.iterdir():
                if entry.name.isdigit() and int(entry.name) not in recorded:
                    removed += self._remove_unused(int(entry.name))
                elif entry.name.startswith((".new-", ".removed-")):
                    # Made and renamed only under the global lock we hold: leftovers.
                    shutil.rmtree(entry, ignore_errors=True)
        return removed

    def discard(self, cache_id: str) -> int:
        """Forget every directory of cache `cache_id` (any base) so that the next user
        starts empty, as `--no-cache` wants; returns how many. Never waits: directories
        in use stay with their current users and are deleted when they let go."""
        with self.root.lock("cachemounts"):
            rows = (
                self.root.connect()
                .execute("SELECT n FROM cache_mounts WHERE id = ?", (cache_id,))
                .fetchall()
            )
            with self.root.transaction() as db:
                db.execute("DELETE FROM cache_mounts WHERE id = ?", (cache_id,))
            for (n,) in rows:
                self._remove_unused(int(n))
        return len(rows)

    def directories(self) -> list[CacheDirectory]:
        """Every recorded cache directory, oldest first."""
        rows = self.root.connect().execute(
            "SELECT n, id, created, last_used, base_key FROM cache_mounts ORDER BY n"
        )
        return [
            CacheDirectory(int(n), str(i), float(c), float(u), str(k)) for n, i, c, u, k in rows
        ]

    def data_dir(self, number: int) -> Path:
        """The host directory of cache directory `number` (to read it: a remote cache
        exports cache mounts)."""
        return self._dir(number) / "data"

    def seed(self, cache_id: str, base_key: str, fill: Callable[[Path], None]) -> bool:
        """Create cache `cache_id` with base `base_key` as `fill(directory)` makes it,
        unless that cache has a directory already (never over local content); whether
        it did. The filling happens outside the global lock (it may download)."""
        if self._candidates(cache_id, base_key):
            return False
        staging = self.root.cachemounts_dir / f".new-{uuid.uuid4().hex}"
        data = staging / "data"
        data.mkdir(parents=True)
        try:
            (staging / "lock").touch()
            fill(data)
            with self.root.lock("cachemounts"):
                if self._candidates(cache_id, base_key):
                    shutil.rmtree(staging, ignore_errors=True)
                    return False
                now = time.time()
                with self.root.transaction() as db:
                    cur = db.execute(
                        "INSERT INTO cache_mounts (id, base_key, created, last_used)"
                        " VALUES (?,?,?,?)",
                        (cache_id, base_key, now, now),
                    )
                    n = int(cur.lastrowid or 0)
                    shutil.rmtree(self._dir(n), ignore_errors=True)
                    staging.rename(self._dir(n))
            return True
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def numbers(self) -> set[int]:
        """The numbers of every recorded directory (`cachemounts/<n>`)."""
        return {int(r[0]) for r in self.root.connect().execute("SELECT n FROM cache_mounts")}

    def ids(self) -> list[str]:
        """Every cache id that has at least one directory."""
        rows = self.root.connect().execute("SELECT DISTINCT id FROM cache_mounts ORDER BY id")
        return [str(r[0]) for r in rows.fetchall()]

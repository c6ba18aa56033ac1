"""Read-only host views of results, mounted once per build and undone at its end.

COPY sources, bind mounts and content checksums all need a result as a directory on this
machine. A committed snapshot is exposed through a snapshotter `view` mounted under the
build's tmp space; the same snapshot read by several steps is mounted once. A bind mount
of the build context gets a filtered copy (ignored paths left out, owners reset to 0:0)
so that a RUN sees exactly what BuildKit's client would have sent.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from pathlib import Path

from strata.solver.results import ContextResult, Result, SnapshotResult
from strata.worker.fileops import CopyOptions, copy
from strata.worker.snapshots.mount import mount_all, unmount
from strata.worker.snapshots.snapshotter import Snapshotter


class BuildViews:
    """Mounted views and scratch directories of one build; `close` undoes them all."""

    def __init__(self, snapshotter: Snapshotter, scratch: Path) -> None:
        self.snapshotter = snapshotter
        self.scratch = scratch
        self._lock = threading.Lock()
        self._mounted: dict[str, Path] = {}
        self._view_keys: list[str] = []
        self._context_copies: dict[Path, Path] = {}
        self._empty: Path | None = None

    def new_dir(self, prefix: str) -> Path:
        """A fresh directory in this build's scratch space."""
        path = self.scratch / f"{prefix}-{uuid.uuid4().hex[:10]}"
        path.mkdir(mode=0o755)
        return path

    def empty_dir(self) -> Path:
        """An empty directory standing for the scratch tree."""
        with self._lock:
            if self._empty is None:
                self._empty = self.new_dir("empty")
            return self._empty

    def tree(self, result: Result) -> Path:
        """The result's files as a host directory (for a context: the directory itself)."""
        if isinstance(result, ContextResult):
            return result.directory
        return self.snapshot_tree(result)

    def snapshot_tree(self, result: SnapshotResult) -> Path:
        if result.name is None:
            return self.empty_dir()
        with self._lock:
            found = self._mounted.get(result.name)
            if found is not None:
                return found
            key = f"view-{os.getpid()}-{uuid.uuid4().hex}"
            target = self.new_dir("view")
            mounts = self.snapshotter.view(key, result.name)
            self._view_keys.append(key)
            mount_all(mounts, target)
            self._mounted[result.name] = target
            return target

    def context_copy(self, result: ContextResult) -> Path:
        """The context as a RUN bind mount sees it: ignored paths absent, owned by 0:0."""
        with self._lock:
            found = self._context_copies.get(result.directory)
            if found is not None:
                return found
        target = self.new_dir("context")
        if result.ignore is None and _owned_by_root(result.directory):
            target.rmdir()
            target = result.directory
        else:
            options = CopyOptions(owner_reset=True, ignore=result.ignore, allow_wildcard=False)
            copy(result.directory, ["/"], target, "/", options=options)
        with self._lock:
            return self._context_copies.setdefault(result.directory, target)

    def close(self) -> None:
        """Unmount every view and forget the view snapshots."""
        with self._lock:
            mounted = list(self._mounted.values())
            keys = list(self._view_keys)
            self._mounted.clear()
            self._view_keys.clear()
        for target in mounted:
            with contextlib.suppress(OSError):
                unmount(target)
        for key in keys:
            with contextlib.suppress(Exception):
                self.snapshotter.remove(key)


def _owned_by_root(directory: Path) -> bool:
    """True when every entry is 0:0 already, so the context can be bound as it is."""
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in (*dirnames, *filenames):
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_uid != 0 or st.st_gid != 0:
                return False
    st = os.stat(directory)
    return st.st_uid == 0 and st.st_gid == 0

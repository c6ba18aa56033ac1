"""File-tree helpers shared by the store and the worker.

The store may not import the worker, yet both copy whole trees (native snapshots,
cache-mount seeds), so the copy lives below both.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from strata.errors import StoreError


def copy_tree(source: Path, dest: Path) -> None:
    """Copy the contents and the root's metadata of `source` into the existing `dest`,
    keeping owners, modes, times, links, xattrs and hard links (`cp -a`)."""
    proc = subprocess.run(
        ["cp", "-a", "--no-target-directory", f"{source}/.", str(dest)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise StoreError(f"copying {source} to {dest} failed: {proc.stderr.strip()}")

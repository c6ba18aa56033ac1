"""What strata needs from the machine, said in one line before it is missed.

Building and `strata run` mount file systems (overlayfs, binds, tmpfs) and start
containers with runc: that takes root, or at least CAP_SYS_ADMIN in the initial user
namespace (strata does not build rootless). Without it the first mount fails deep in
the worker with EPERM; `require_privileges` says so up front instead. A state root the
user cannot write (a root-owned `/var/lib/strata` for a non-root user) is explained the
same way by `state_root_error`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from strata.errors import PrivilegeError, StoreError

__all__ = ["require_privileges", "state_root_error"]

CAP_SYS_ADMIN = 21


def effective_capabilities(status: Path = Path("/proc/self/status")) -> int | None:
    """This process's effective capability set (`CapEff`), None when unknown."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        return None
    return None


def require_privileges(action: str, *, euid: int | None = None, caps: int | None = None) -> None:
    """Raise `PrivilegeError` naming what `action` (`strata build`, `strata run`) lacks:
    root, or CAP_SYS_ADMIN for a root without it (an unprivileged container)."""
    uid = os.geteuid() if euid is None else euid
    if uid != 0:
        raise PrivilegeError(
            f"{action} needs root: it mounts file systems and starts containers with runc"
            f" (running as uid {uid}; strata does not run rootless)"
        )
    effective = effective_capabilities() if caps is None else caps
    if effective is not None and not effective & (1 << CAP_SYS_ADMIN):
        raise PrivilegeError(
            f"{action} needs the CAP_SYS_ADMIN capability to mount file systems, which this"
            " process lacks (in a container, run it privileged)"
        )


def state_root_error(path: Path, error: OSError | sqlite3.Error) -> StoreError:
    """One line for a state root that cannot be opened: who owns it, who we are."""
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    message = f"cannot use state root {path}: {reason}"
    uid = os.geteuid()
    owner = _owner_uid(path)
    if uid != 0 and owner is not None and owner != uid:
        message += (
            f" (it belongs to uid {owner} and strata runs as uid {uid}: run as that user,"
            " or choose a root you own with --root or $STRATA_ROOT)"
        )
    return StoreError(message)


def _owner_uid(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        try:
            return candidate.stat().st_uid
        except OSError:
            continue
    return None

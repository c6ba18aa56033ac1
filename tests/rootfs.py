"""Base file trees for tests: a busybox root made from Debian's busybox-static.

Tests build real images from these (with `strata import` once the store exists) so
that every container test runs a real static binary under runc, offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BUSYBOX = Path("/bin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""

GROUP = """root:x:0:
daemon:x:1:
staff:x:50:app
app:x:1000:
nogroup:x:65534:
"""


def busybox_available() -> bool:
    return BUSYBOX.is_file() and os.access(BUSYBOX, os.X_OK)


def make_busybox_rootfs(dest: Path) -> Path:
    """Create a minimal root file system at `dest`: busybox, its applets, users, groups."""
    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "root",
        "home/app",
        "proc",
        "sys",
        "dev",
        "var",
    ):
        (dest / d).mkdir(parents=True, exist_ok=True)
    tmp = dest / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run(
        [str(BUSYBOX), "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = dest / applet
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (dest / "etc" / "passwd").write_text(PASSWD)
    (dest / "etc" / "group").write_text(GROUP)
    if os.geteuid() == 0:
        os.chown(dest / "home" / "app", 1000, 1000)
    return dest

"""Nothing under a state root is reachable by another local user (moby CVE-2021-41091's
class): a setuid-root binary a build made, a 0666 device node from an ADDed archive and
a secret a step left in a cache mount all sit in snapshot and cache-mount directories
that `nobody` cannot enter, because the root is 0700 whatever the umask."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import BUSYBOX_IMAGE, busybox_tarball, strata, write_project

__all__ = ["busybox_tarball"]

# runuser, not `setpriv --reuid`: setpriv still holds root's capabilities while it
# calls execve, so the path of the program it starts is looked up as root.
NOBODY = ["runuser", "-u", "nobody", "--"]
ROOT_ONLY_TEXT = "only root may read this"
CACHE_SECRET = "secret-left-in-a-cache-mount"


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A directory any user may enter (pytest's own tmp dirs are 0700, which would hide
    the root from `nobody` whatever strata did)."""
    if shutil.which("runuser") is None:
        pytest.skip("needs runuser (util-linux) to act as nobody")
    parent = Path(tempfile.mkdtemp(prefix="strata-perm-", dir="/var/tmp"))
    parent.chmod(0o755)
    try:
        yield parent
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOBODY, *args], capture_output=True, text=True, timeout=60)


def device_tar() -> bytes:
    """An archive holding one world-writable character device (1:3, the null device)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        node = tarfile.TarInfo("worlddev")
        node.type = tarfile.CHRTYPE
        node.devmajor, node.devminor = 1, 3
        node.mode = 0o666
        tar.addfile(node)
    return out.getvalue()


def find(root: Path, name: str, under: str, mode_bits: int = 0) -> Path:
    """The first file called `name` below `root/under` whose mode has `mode_bits`."""
    hits = [
        Path(d) / name
        for d, _, files in os.walk(root / under)
        if name in files and os.lstat(Path(d) / name).st_mode & mode_bits == mode_bits
    ]
    assert hits, f"no {name} under {root / under}"
    return hits[0]


def test_nobody_reaches_no_setuid_binary_device_or_cache_secret(
    open_parent: Path, tmp_path: Path, busybox_tarball: Path
) -> None:
    from strata.export.tarball_import import import_tarball
    from strata.store.images import ImageStore
    from strata.store.root import StateRoot

    old_umask = os.umask(0o022)  # the umask the defect was seen under
    try:
        root_path = open_parent / "root"
        root = StateRoot.open(root_path)
        try:
            with open(busybox_tarball, "rb") as fh:
                manifest = import_tarball(ImageStore(root), fh, source="busybox")
            ImageStore(root).put(BUSYBOX_IMAGE, manifest)
        finally:
            root.close()
        project = tmp_path / "p"
        project.mkdir()
        shutil.copy("/bin/cat", project / "cat")
        (project / "dev.tar").write_bytes(device_tar())
        write_project(
            project,
            f"FROM {BUSYBOX_IMAGE}\n"
            "COPY cat /suidcat\n"
            "ADD dev.tar /\n"
            "RUN chmod 4755 /suidcat && ls -l /suidcat /worlddev\n"
            f"RUN --mount=type=cache,target=/cache echo {CACHE_SECRET} > /cache/secret\n",
        )
        built = strata(root_path, "build", "--progress=plain", str(project))
        assert built.returncode == 0, built.stderr.decode()
    finally:
        os.umask(old_umask)

    root_only = open_parent / "root-only"
    root_only.write_text(ROOT_ONLY_TEXT)
    root_only.chmod(0o600)
    suidcat = find(root_path, "suidcat", "snapshots", 0o4000)
    device = find(root_path, "worlddev", "snapshots", 0o666)
    secret = find(root_path, "secret", "cachemounts")
    # What the build made is what an attacker would want: as root we see it as such.
    assert os.stat(suidcat).st_uid == 0
    assert (
        ROOT_ONLY_TEXT in subprocess.run([suidcat, root_only], capture_output=True).stdout.decode()
    )
    assert secret.read_text().strip() == CACHE_SECRET
    # And nobody can reach the parent, so only the root's own modes stand in the way.
    assert as_nobody("ls", str(open_parent)).returncode == 0

    ran = as_nobody(str(suidcat), str(root_only))
    assert ran.returncode != 0 and ROOT_ONLY_TEXT not in ran.stdout
    wrote = as_nobody("sh", "-c", 'echo x > "$1"', "sh", str(device))
    assert wrote.returncode != 0
    read = as_nobody("cat", str(secret))
    assert read.returncode != 0 and CACHE_SECRET not in read.stdout
    for path in (root_path / "metadata.db", root_path / "blobs" / "sha256"):
        assert as_nobody("ls", str(path)).returncode != 0

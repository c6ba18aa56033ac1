"""Faults of the machine: a full disk while exporting, copying or writing metadata, a
damaged metadata.db, Ctrl-C at random moments. Each ends with one message, the right
exit code and no traceback, and leaves a root the next command uses.

The full disk is real: a 64 MiB ext4 file system on a loop device, used as the state
root or as an `-o` destination, filled by the build itself or by a filler file.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.store.root import StateRoot
from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    STRATA,
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

SMALL_FS_BYTES = 64 << 20


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A fresh 64 MiB ext4 file system (no blocks reserved for root), mounted."""
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("needs mkfs.ext4 (e2fsprogs) for a small file system")
    image = tmp_path / "small.img"
    with open(image, "wb") as fh:
        fh.truncate(SMALL_FS_BYTES)
    subprocess.run(["mkfs.ext4", "-q", "-m", "0", str(image)], check=True)
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a loop device here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


@pytest.fixture
def small_root(small_fs: Path, busybox_tarball: Path) -> Path:
    """A state root on the small file system holding the busybox base image."""
    from strata.export.tarball_import import import_tarball
    from strata.store.images import ImageStore

    path = small_fs / "root"
    root = StateRoot.open(path)
    try:
        images = ImageStore(root)
        with open(busybox_tarball, "rb") as fh:
            manifest = import_tarball(images, fh, source="busybox", changes=['CMD ["sh"]'])
        images.put(BUSYBOX_IMAGE, manifest)
    finally:
        root.close()
    return path


def fill(directory: Path) -> list[Path]:
    """Fill `directory`'s file system to the last block; return the filler files."""
    fillers = []
    for i, chunk in enumerate((1 << 20, 4096, 512)):
        path = directory / f"filler-{i}"
        try:
            fh = open(path, "wb", buffering=0)  # noqa: SIM115 - closed below
        except OSError:
            break  # not even room for another file
        fillers.append(path)
        with fh:
            block = b"\0" * chunk
            try:
                while fh.write(block):
                    pass
            except OSError:
                pass
    return fillers


def one_error(run: subprocess.CompletedProcess[bytes]) -> str:
    """The single `ERROR:` line of a failed command (no traceback anywhere)."""
    err = run.stderr.decode()
    assert run.returncode == 1, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, err
    return errors[0]


def assert_usable(root: Path, tmp_path: Path) -> None:
    """The root passes `strata check` and builds."""
    checked = strata(root, "check")
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    project = write_project(
        tmp_path / f"after-{time.monotonic_ns()}",
        f"FROM {BUSYBOX_IMAGE}\nCOPY note /note\nRUN cat /note > /copied\n",
        {"note": "still fine\n"},
    )
    out = tmp_path / f"out-{time.monotonic_ns()}"
    strata(root, "build", "-o", str(out), str(project), check=True)
    assert (out / "copied").read_text() == "still fine\n"


# -- a full disk ---------------------------------------------------------------------------


def test_a_copy_that_fills_the_disk_is_one_message_and_the_root_builds_after(
    small_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "copy", f"FROM {BUSYBOX_IMAGE}\nCOPY big /big\n")
    (project / "big").write_bytes(os.urandom(80 << 20))  # more than the file system holds
    line = one_error(strata(small_root, "build", str(project)))
    assert "no space left on device writing" in line and "COPY big /big" in line
    (project / "big").unlink()
    assert_usable(small_root, tmp_path)


def test_a_layer_export_that_fills_the_disk_is_one_message_naming_the_store(
    small_root: Path, tmp_path: Path
) -> None:
    # The RUN's 30 MB fit; its layer blob, as big again (random bytes do not compress),
    # does not.
    project = write_project(
        tmp_path / "run", f"FROM {BUSYBOX_IMAGE}\nRUN head -c 30000000 /dev/urandom > /big\n"
    )
    line = one_error(strata(small_root, "build", "-t", "big:1", str(project)))
    assert "no space left on device writing a blob into the content store of" in line
    assert str(small_root) in line
    assert list((small_root / "tmp").iterdir()) == []  # no half-written blob left
    assert strata(small_root, "images", "-q", "big").stdout == b""
    strata(small_root, "prune", "--all", "--force", check=True)
    assert_usable(small_root, tmp_path)


def test_a_cache_mount_that_fills_the_disk_fails_its_step_and_prune_frees_it(
    small_root: Path, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "cache",
        f"FROM {BUSYBOX_IMAGE}\n"
        "RUN --mount=type=cache,target=/c head -c 80000000 /dev/urandom > /c/big\n",
    )
    line = one_error(strata(small_root, "build", str(project)))
    assert "did not complete successfully" in line
    strata(small_root, "prune", "--all", "--force", check=True)
    assert_usable(small_root, tmp_path)


def test_an_output_file_that_fills_the_disk_is_one_message_and_removed(
    build_root: Path, small_fs: Path, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "run", f"FROM {BUSYBOX_IMAGE}\nRUN head -c 70000000 /dev/urandom > /big\n"
    )
    dest = small_fs / "image.tar"
    line = one_error(strata(build_root, "build", "-o", f"type=docker,dest={dest}", str(project)))
    assert f"no space left on device writing {dest}" in line
    assert not dest.exists()
    saved = small_fs / "saved.tar"
    fill(small_fs)
    line = one_error(strata(build_root, "save", "-o", str(saved), BUSYBOX_IMAGE))
    assert str(saved) in line and "No space left on device" in line
    assert not saved.exists()
    assert [p.name for p in small_fs.iterdir() if p.name.startswith(".")] == []
    assert_usable(build_root, tmp_path)


def test_metadata_writes_on_a_full_disk_are_one_message_and_nothing_half_done(
    small_root: Path, tmp_path: Path
) -> None:
    fillers = fill(small_root.parent)
    for args in (("tag", BUSYBOX_IMAGE, "other:1"), ("images",), ("build", str(tmp_path))):
        line = one_error(strata(small_root, *args))
        assert "no space left on device" in line, line
        assert "metadata" in line or "blob" in line or str(small_root) in line, line
    for filler in fillers:
        filler.unlink()
    assert b"other" not in strata(small_root, "images", check=True).stdout
    assert_usable(small_root, tmp_path)


# -- a damaged metadata.db -------------------------------------------------------------------


def test_a_metadata_db_that_is_not_a_database_is_one_message_naming_it(
    build_root: Path, tmp_path: Path
) -> None:
    db = build_root / "metadata.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"this is not what SQLite wrote " * 200)
    for args in (("images",), ("build", str(tmp_path)), ("check",)):
        line = one_error(strata(build_root, *args))
        assert f"metadata database {db} is damaged" in line and "move it away" in line
    db.rename(f"{db}.damaged")
    assert strata(build_root, "images", "-q", check=True).stdout == b""


def test_a_metadata_db_with_damaged_pages_is_one_message(build_root: Path, tmp_path: Path) -> None:
    db = build_root / "metadata.db"
    size = db.stat().st_size
    assert size > 8192
    with open(db, "r+b") as fh:  # every page but the header's
        fh.seek(4096)
        fh.write(b"\xa5" * (size - 4096))
    line = one_error(strata(build_root, "images"))
    assert f"metadata database {db} is damaged" in line


# -- Ctrl-C -----------------------------------------------------------------------------------


def interrupt_at(root: Path, args: list[str], delay: float) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.Popen(
        [str(STRATA), "--root", str(root), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_ctrl_c_at_random_moments_exits_130_without_a_traceback(
    build_root: Path, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    moments = random.Random(seed)
    project = write_project(
        tmp_path / "app",
        f"FROM {BUSYBOX_IMAGE}\nCOPY a /a\nRUN sleep 0.3 && cat /a > /b\n",
        {"a": "x\n"},
    )
    tarball = tmp_path / "image.tar"
    strata(build_root, "save", "-o", str(tarball), BUSYBOX_IMAGE, check=True)
    commands: list[tuple[list[str], int, float]] = [
        (["build", "--no-cache", "-t", "app:1", str(project)], 10, 2.5),
        (["save", "-o", str(tmp_path / "out.tar"), BUSYBOX_IMAGE], 10, 1.0),
        (["images"], 10, 0.5),
        (["load", "-i", str(tarball)], 5, 1.0),
        (["import", str(tarball), "imported:1"], 5, 1.0),
        (["prune", "--force"], 5, 0.5),
    ]
    for args, times, longest in commands:
        for _ in range(times):
            # From 120 ms: in the first ~20 ms the interpreter itself is still starting,
            # before any of strata's code runs (see strata/_startup.py).
            delay = moments.uniform(0.12, longest)
            run = interrupt_at(build_root, args, delay)
            what = f"strata {args[0]} interrupted after {delay:.3f}s (seed {seed})"
            err = run.stderr.decode()
            assert "Traceback" not in err, f"{what}:\n{err}"
            assert run.returncode in (0, 130), f"{what}: exit {run.returncode}\n{err}"
            if run.returncode == 130:  # one message, last: "interrupted" or "canceled"
                assert err.strip().splitlines()[-1].startswith("ERROR"), f"{what}:\n{err}"
    assert not list(tmp_path.glob(".out.tar.*"))
    assert_usable(build_root, tmp_path)

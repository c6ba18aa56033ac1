"""A strata process killed at any point leaves a state root the next command uses as is.

Each test starts a real command through the CLI binary, waits (bounded) for a marker
that proves it reached the stage under test, and SIGKILLs it the way the world does:

- `tree`: the whole process tree at once (its process group, the runtime it started in
  a session of its own, the container's processes), as an OOM-kill of the service or
  a power loss would;
- `strata-only`: only the strata process, so `runc run` and the container keep running
  with nobody to clean up after them.

Then the same command runs again and must succeed with the right result, and afterwards
the root must hold no mount, no container process, no runtime state and no tmp directory
of a dead process; `du` and `prune -af` must still work.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest

from strata.export.tarball_import import import_tarball
from strata.store.images import ImageStore
from strata.store.root import StateRoot
from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    STRATA,
    build_root,
    busybox_tarball,
    write_project,
)
from tests.rootfs import make_busybox_rootfs

__all__ = ["build_root", "busybox_tarball"]

KillMode = Literal["tree", "strata-only"]

PAYLOAD_FILES = 96
PAYLOAD_FILE_SIZE = 1 << 20
MARKER_TIMEOUT_SECONDS = 120.0
COMMAND_TIMEOUT_SECONDS = 300.0


# -- processes ------------------------------------------------------------------------


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields follow the last ")".
    return int(stat.rpartition(")")[2].split()[1])


def descendants(pid: int) -> set[int]:
    """Every process below `pid` right now (from the ppid links in /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, stopped or sleeping; a zombie has already let go of everything."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def kill_tree(proc: subprocess.Popen[bytes]) -> set[int]:
    """Freeze the process and everything below it, then SIGKILL them all together (and
    the process group): nothing gets to run a cleanup handler. Returns the pids."""
    _signal(proc.pid, signal.SIGSTOP)
    frozen = {proc.pid}
    while True:
        new = descendants(proc.pid) - frozen
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        frozen |= new
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in frozen:
        _signal(pid, signal.SIGKILL)
    proc.wait()
    return frozen


def kill_strata_only(proc: subprocess.Popen[bytes]) -> set[int]:
    """SIGKILL the strata process alone; its children live on. Returns the pids of the
    tree at the time of the kill."""
    tree = descendants(proc.pid) | {proc.pid}
    proc.kill()
    proc.wait()
    return tree


def start(root: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start `strata --root ROOT ARGS...` in a process group of its own."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(STRATA), "--root", str(root), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ, PROGRESS_NO_TRUNC="1"),
        )


def wait_for_marker(
    proc: subprocess.Popen[bytes], reached: Callable[[], bool], what: str, log: Path
) -> None:
    """Poll until the command reaches the point under test (bounded; ordering only)."""
    deadline = time.monotonic() + MARKER_TIMEOUT_SECONDS
    while not reached():
        if proc.poll() is not None:
            raise AssertionError(
                f"command ended ({proc.returncode}) before {what}:\n{log.read_text()}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}:\n{log.read_text()}")
        time.sleep(0.01)


def crash(
    root: Path,
    args: list[str],
    reached: Callable[[], bool],
    what: str,
    mode: KillMode,
    log: Path,
) -> set[int]:
    """Run a command, kill it once `reached()` holds; the pids it had then."""
    proc = start(root, *args, log=log)
    try:
        wait_for_marker(proc, reached, what, log)
    except BaseException:
        kill_tree(proc)
        raise
    if mode == "tree":
        return kill_tree(proc)
    return kill_strata_only(proc)


def strata_ok(root: Path, *args: str) -> str:
    """Run a command that must succeed (bounded, so a stuck lock fails instead of hanging)."""
    done = subprocess.run(
        [str(STRATA), "--root", str(root), *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=COMMAND_TIMEOUT_SECONDS,
        env=dict(os.environ, PROGRESS_NO_TRUNC="1"),
    )
    assert done.returncode == 0, (
        f"strata {' '.join(args)} failed ({done.returncode}):\n{done.stderr.decode()}"
    )
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    return done.stdout.decode()


# -- what a recovered root looks like -------------------------------------------------


def mounts_of(root: Path) -> list[str]:
    """`findmnt -rn -o TARGET | grep ROOT`, with findmnt's `\\xHH` escapes (spaces,
    non-ASCII) decoded so that any root path matches."""
    listed = subprocess.run(
        ["findmnt", "-rn", "-o", "TARGET"], capture_output=True, check=True
    ).stdout.splitlines()
    targets = [
        os.fsdecode(re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m[1], 16)]), line))
        for line in listed
    ]
    return [t for t in targets if t == str(root) or t.startswith(f"{root}/")]


def runtime_containers(root: Path) -> list[str]:
    """Containers any runtime still knows under the root's tmp dirs (`runc --root D list`)."""
    found: list[str] = []
    for state_dir in root.glob("tmp/*/runc"):
        listed = subprocess.run(
            ["runc", "--root", str(state_dir), "list", "-q"], capture_output=True, text=True
        )
        found.extend(f"{state_dir}: {cid}" for cid in listed.stdout.split())
    return found


def assert_recovered(root: Path, killed_tree: set[int]) -> None:
    """After a later command has finished: nothing of the killed one is left."""
    assert mounts_of(root) == []
    assert runtime_containers(root) == []
    assert sorted(pid for pid in killed_tree if alive(pid)) == []
    assert sorted(p.name for p in (root / "tmp").iterdir()) == []
    strata_ok(root, "du")
    strata_ok(root, "prune", "-af")
    assert mounts_of(root) == []
    assert sorted(p.name for p in (root / "snapshots").iterdir() if p.name.startswith(".")) == []
    assert sorted(p.name for p in (root / "tmp").iterdir()) == []


@pytest.fixture
def cleanup_after_crash(build_root: Path) -> Iterator[set[int]]:
    """Pids to kill if a test fails before its recovery did; the root is reaped too."""
    pids: set[int] = set()
    yield pids
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    StateRoot.open(build_root).close()


# -- payloads -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of incompressible files (PAYLOAD_FILES x 1 MiB), made once."""
    directory = tmp_path_factory.mktemp("payload") / "payload"
    directory.mkdir()
    for n in range(PAYLOAD_FILES):
        (directory / f"f{n:04d}.bin").write_bytes(os.urandom(PAYLOAD_FILE_SIZE))
    return directory


def sha256_listing(directory: Path) -> str:
    """What `cd DIR && sha256sum *` prints (busybox's format)."""
    lines = []
    for path in sorted(directory.iterdir()):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    return "".join(lines)


def ingest_bigger_than(root: Path, size: int) -> Callable[[], bool]:
    """A blob being written into the content store has passed `size` bytes."""

    def reached() -> bool:
        for partial in root.glob("tmp/*/ingest-*"):
            try:
                if partial.stat().st_size > size:
                    return True
            except FileNotFoundError:
                continue
        return False

    return reached


# -- the tests ------------------------------------------------------------------------

LONG_RUN = """FROM busybox:strata-test
RUN --mount=type=cache,id=crash,target=/cache,sharing=locked \\
    if [ ! -e /cache/started ]; then \\
      echo first > /cache/tmp && mv /cache/tmp /cache/started && sleep 30; \\
    fi; \\
    cat /cache/started > /done
"""


@pytest.mark.parametrize("mode", ["tree", "strata-only"])
def test_build_killed_during_a_long_run_is_rebuilt_and_its_cache_mount_reused(
    build_root: Path, tmp_path: Path, mode: KillMode, cleanup_after_crash: set[int]
) -> None:
    project = write_project(tmp_path / "p", LONG_RUN)

    def run_started() -> bool:
        return any((build_root / "cachemounts").rglob("started"))

    killed = crash(
        build_root,
        ["build", "--progress=plain", "-t", "crash:run", str(project)],
        run_started,
        "the RUN to write its marker",
        mode,
        tmp_path / "killed.log",
    )
    cleanup_after_crash |= killed
    if mode == "strata-only":
        # The variant means something only if the container outlived strata.
        assert [pid for pid in killed if alive(pid)] != []

    strata_ok(build_root, "build", "--progress=plain", "-t", "crash:run", str(project))

    # The killed RUN's cache mount was handed to the next build, contents and all.
    assert strata_ok(build_root, "run", "--rm", "crash:run", "cat", "/done") == "first\n"
    assert_recovered(build_root, killed)


def test_build_killed_while_copying_a_large_context_copies_it_whole_next_time(
    build_root: Path, tmp_path: Path, payload: Path, cleanup_after_crash: set[int]
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM busybox:strata-test\nCOPY . /data/\n")
    args = ["build", "--progress=plain", "-f", str(dockerfile), "-t", "crash:copy", str(payload)]

    def copy_started() -> bool:
        return any(build_root.glob("snapshots/*/fs/data/*"))

    killed = crash(build_root, args, copy_started, "COPY to write files", "tree", tmp_path / "l")
    cleanup_after_crash |= killed

    strata_ok(build_root, *args)

    listing = strata_ok(
        build_root, "run", "--rm", "-w", "/data", "crash:copy", "sh", "-c", "sha256sum *"
    )
    assert listing == sha256_listing(payload)
    assert_recovered(build_root, killed)


def test_build_killed_while_compressing_a_large_layer_exports_next_time(
    build_root: Path, tmp_path: Path, cleanup_after_crash: set[int]
) -> None:
    project = write_project(
        tmp_path / "p",
        "FROM busybox:strata-test\n"
        "RUN dd if=/dev/urandom of=/big bs=1M count=64 2>/dev/null && sha256sum /big > /big.sum\n",
    )
    args = ["build", "--progress=plain", "-t", "crash:export", str(project)]
    killed = crash(
        build_root,
        args,
        ingest_bigger_than(build_root, 1 << 20),
        "the exporter to write a layer blob",
        "tree",
        tmp_path / "killed.log",
    )
    cleanup_after_crash |= killed

    strata_ok(build_root, *args)

    check = strata_ok(build_root, "run", "--rm", "crash:export", "sha256sum", "-c", "/big.sum")
    assert check == "/big: OK\n"
    assert_recovered(build_root, killed)


def test_import_killed_midway_imports_whole_next_time(
    build_root: Path, tmp_path: Path, payload: Path, cleanup_after_crash: set[int]
) -> None:
    rootfs = make_busybox_rootfs(tmp_path / "rootfs")
    tarball = tmp_path / "big.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(rootfs, arcname=".")
        tar.add(payload, arcname="payload")
    args = ["import", "--change", 'CMD ["sh"]', str(tarball), "crash:import"]
    killed = crash(
        build_root,
        args,
        ingest_bigger_than(build_root, 1 << 20),
        "import to write the layer blob",
        "tree",
        tmp_path / "killed.log",
    )
    cleanup_after_crash |= killed

    strata_ok(build_root, *args)

    listing = strata_ok(
        build_root, "run", "--rm", "-w", "/payload", "crash:import", "sh", "-c", "sha256sum *"
    )
    assert listing == sha256_listing(payload)
    assert_recovered(build_root, killed)


MANY_FILES = """FROM busybox:strata-test
RUN mkdir /many && cd /many && seq 1 10000 | xargs touch && echo made > /made
"""


def test_prune_killed_while_deleting_leaves_a_root_the_same_build_uses(
    build_root: Path, tmp_path: Path, cleanup_after_crash: set[int]
) -> None:
    project = write_project(tmp_path / "p", MANY_FILES)
    build = ["build", "--progress=plain", "-t", "crash:prune", str(project)]
    strata_ok(build_root, *build)
    strata_ok(build_root, "rmi", "crash:prune")

    def deleting() -> bool:
        return any(p.name.startswith(".removed-") for p in (build_root / "snapshots").iterdir())

    killed = crash(
        build_root,
        ["prune", "-af"],
        deleting,
        "prune to delete a snapshot's files",
        "tree",
        tmp_path / "killed.log",
    )
    cleanup_after_crash |= killed

    strata_ok(build_root, *build)

    count = strata_ok(build_root, "run", "--rm", "crash:prune", "sh", "-c", "ls /many | wc -l")
    assert count.strip() == "10000"
    assert_recovered(build_root, killed)


def test_build_killed_in_a_root_whose_path_has_spaces_and_non_ascii_is_reaped(
    tmp_path: Path, busybox_tarball: Path
) -> None:
    """The reaper reads /proc/self/mountinfo, where such names come escaped or as raw
    UTF-8 bytes: it must still find the dead build's mounts."""
    root_path = tmp_path / "état des lieux" / "root"
    root = StateRoot.open(root_path)
    try:
        images = ImageStore(root)
        with open(busybox_tarball, "rb") as fh:
            manifest = import_tarball(images, fh, source="busybox", changes=['CMD ["sh"]'])
        images.put(BUSYBOX_IMAGE, manifest)
    finally:
        root.close()
    project = write_project(tmp_path / "p", LONG_RUN)
    args = ["build", "--progress=plain", "-t", "crash:odd", str(project)]
    killed: set[int] = set()
    try:
        killed = crash(
            root_path,
            args,
            lambda: any((root_path / "cachemounts").rglob("started")),
            "the RUN to write its marker",
            "strata-only",
            tmp_path / "killed.log",
        )
        assert mounts_of(root_path) != []

        strata_ok(root_path, *args)

        assert_recovered(root_path, killed)
    finally:
        for pid in killed:
            _signal(pid, signal.SIGKILL)


CONCURRENT_OPENER = """
import sys
from strata.store.root import StateRoot

for _ in range(int(sys.argv[2])):
    root = StateRoot.open(sys.argv[1])
    (root.mkdtemp("t") / "file").write_text("mine")
    root.close()
"""


def test_processes_opening_one_root_at_once_never_reap_each_others_tmp_space(
    tmp_path: Path,
) -> None:
    """Every open reaps the tmp dirs of dead processes; a live process's dir must never
    look dead, not even in the instant between making it and locking it (that used to
    delete it under its owner: FileNotFoundError in 4 processes x 300 opens)."""
    root_path = tmp_path / "root"
    StateRoot.open(root_path).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_OPENER, str(root_path), "300"],
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    failures = []
    for proc in procs:
        _, err = proc.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
        if proc.returncode != 0:
            failures.append(err.decode())
    assert failures == []
    assert sorted(p.name for p in (root_path / "tmp").iterdir()) == []

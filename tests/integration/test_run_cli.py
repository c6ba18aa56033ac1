"""`strata run` as a user runs it: a real process, real runc, a stored busybox image."""

from __future__ import annotations

import io
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from strata.store.root import StateRoot, mounts_under
from strata.worker.snapshots.factory import open_snapshotter
from tests.integration.conftest import process_pid, process_running, wait_for
from tests.integration.test_snapshot_unpack import store_image

STRATA = [sys.executable, "-c", "from strata.cli.main import main; main()"]
IMAGE = "busybox:test"


def tar_tree(tree: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(tree.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(tree)), recursive=False)
    return buf.getvalue()


@pytest.fixture(scope="session")
def busybox_layer(busybox_rootfs: Path) -> bytes:
    return tar_tree(busybox_rootfs)


@pytest.fixture
def root_with_image(state_root: StateRoot, busybox_layer: bytes) -> Path:
    store_image(state_root, IMAGE, [busybox_layer])
    # Give the image a config as a Dockerfile would.
    from strata.store.images import ImageStore

    images = ImageStore(state_root)
    stored = images.load_image(IMAGE)
    config = dict(stored.config)
    config["config"] = {
        "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FROM_IMAGE=yes"],
        "Cmd": ["/bin/sh", "-c", "echo default-cmd"],
        "WorkingDir": "/",
    }
    manifest = images.commit_image(config, stored.layers)
    images.put(IMAGE, manifest)
    return state_root.path


def strata_run(root: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STRATA, "--root", str(root), "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kw,  # type: ignore[call-overload]
    )


def test_image_cmd_runs_and_exit_code_passes_through(root_with_image: Path) -> None:
    assert strata_run(root_with_image, "--rm", IMAGE).stdout == "default-cmd\n"
    r = strata_run(root_with_image, "--rm", IMAGE, "sh", "-c", "echo out; exit 5")
    assert (r.returncode, r.stdout) == (5, "out\n")


SLEEPER = "echo ready; exec sleep 4848"


def test_container_killed_by_a_signal_exits_128_plus_the_signal(root_with_image: Path) -> None:
    proc = subprocess.Popen(
        [*STRATA, "--root", str(root_with_image), "run", "--rm", IMAGE, "sh", "-c", SLEEPER],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "ready\n"
        wait_for(lambda: process_pid("sleep 4848") is not None, "the container's process")
        pid = process_pid("sleep 4848")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # from outside: as `docker kill` would
        assert proc.wait(timeout=60) == 137
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_volume_and_workdir_let_the_container_write_a_file_the_host_sees(
    root_with_image: Path, tmp_path: Path
) -> None:
    work = tmp_path / "project"
    work.mkdir()
    r = strata_run(
        root_with_image,
        "--rm",
        "-v",
        f"{work}:{work}",
        "-w",
        str(work),
        IMAGE,
        "sh",
        "-c",
        "pwd; echo written > result.txt",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{work}\n"
    assert (work / "result.txt").read_text() == "written\n"


def test_read_only_volume_refuses_writes(root_with_image: Path, tmp_path: Path) -> None:
    r = strata_run(
        root_with_image,
        "--rm",
        "-v",
        f"{tmp_path}:/data:ro",
        IMAGE,
        "sh",
        "-c",
        "echo x > /data/f",
    )
    assert r.returncode != 0
    assert not (tmp_path / "f").exists()


def test_env_flags_env_file_user_and_entrypoint(root_with_image: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=file\n")
    r = strata_run(
        root_with_image,
        "--rm",
        "-e",
        "FROM_FLAG=flag",
        "--env-file",
        str(env_file),
        "-u",
        "app",
        IMAGE,
        "sh",
        "-c",
        'echo "$FROM_IMAGE $FROM_FILE $FROM_FLAG"; id -u',
    )
    assert r.stdout.splitlines() == ["yes file flag", "1000"]
    r = strata_run(root_with_image, "--rm", "--entrypoint", "/bin/echo", IMAGE, "hello")
    assert r.stdout == "hello\n"


def test_container_stderr_passes_through_unchanged_beside_stdout(root_with_image: Path) -> None:
    r = strata_run(
        root_with_image, "--rm", IMAGE, "sh", "-c", 'echo out; printf "e1\\ne2" >&2; exit 4'
    )
    assert (r.returncode, r.stdout, r.stderr) == (4, "out\n", "e1\ne2")


def test_env_without_a_name_is_refused_before_anything_starts(
    root_with_image: Path, tmp_path: Path
) -> None:
    r = strata_run(root_with_image, "--rm", "-e", "=x", IMAGE, "true")
    assert (r.returncode, r.stderr) == (1, "ERROR: invalid environment variable: =x\n")
    env_file = tmp_path / "env"
    env_file.write_text("OK=1\n=y\n")
    r = strata_run(root_with_image, "--rm", "--env-file", str(env_file), IMAGE, "true")
    assert (r.returncode, r.stderr) == (1, "ERROR: no variable name on line '=y'\n")
    env_file.write_text("TWO WORDS=1\n")
    r = strata_run(root_with_image, "--rm", "--env-file", str(env_file), IMAGE, "true")
    assert r.stderr == "ERROR: variable 'TWO WORDS' contains whitespaces\n"
    assert mounts_under(root_with_image) == []


def test_network_none_sees_only_loopback(root_with_image: Path) -> None:
    r = strata_run(root_with_image, "--rm", "--network", "none", IMAGE, "ls", "/sys/class/net")
    assert r.stdout.split() == ["lo"]


def test_interactive_passes_stdin(root_with_image: Path) -> None:
    r = strata_run(root_with_image, "--rm", "-i", IMAGE, "cat", input="through stdin\n")
    assert r.stdout == "through stdin\n"


def test_tty_gives_the_process_a_terminal(root_with_image: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            *STRATA,
            "--root",
            str(root_with_image),
            "run",
            "--rm",
            "-t",
            IMAGE,
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo is-a-tty",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    output = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        code = proc.wait(timeout=60)
        os.close(master)
    assert b"is-a-tty" in output
    assert code == 0


def test_sigterm_is_forwarded_to_the_container(root_with_image: Path) -> None:
    proc = subprocess.Popen(
        [
            *STRATA,
            "--root",
            str(root_with_image),
            "run",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            'trap "echo got-term; exit 9" TERM; echo ready; while true; do sleep 0.05; done',
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 9
        assert proc.stdout.read() == "got-term\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_leaves_no_mounts_and_no_container_snapshot(
    root_with_image: Path, state_root: StateRoot
) -> None:
    assert strata_run(root_with_image, IMAGE, "true").returncode == 0
    assert mounts_under(root_with_image) == []
    snapshots = open_snapshotter(state_root).list()
    assert [s.key for s in snapshots if s.key.startswith("container/")] == []
    assert all(s.kind == "committed" for s in snapshots)


def strata_cmd(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STRATA, "--root", str(root), *args], capture_output=True, text=True, timeout=120
    )


def test_named_container_keeps_its_files_until_removed(
    root_with_image: Path, state_root: StateRoot
) -> None:
    assert strata_run(root_with_image, "--name", "keep", IMAGE, "touch", "/kept").returncode == 0
    snap = open_snapshotter(state_root)
    assert (snap.upper_dir("container/keep") / "kept").exists()
    r = strata_run(root_with_image, "--name", "keep", IMAGE, "true")
    assert r.returncode != 0 and "already in use" in r.stderr
    removed = strata_cmd(root_with_image, "rm", "keep")
    assert (removed.returncode, removed.stdout) == (0, "keep\n")
    assert not snap.exists("container/keep")
    # The name is free again.
    assert strata_run(root_with_image, "--rm", "--name", "keep", IMAGE, "true").returncode == 0
    assert not snap.exists("container/keep")


def test_rm_of_an_unknown_container_fails_unless_forced(root_with_image: Path) -> None:
    r = strata_cmd(root_with_image, "rm", "ghost")
    assert (r.returncode, r.stderr) == (1, "ERROR: No such container: ghost\n")
    assert strata_cmd(root_with_image, "rm", "-f", "ghost").returncode == 0


def test_invalid_container_name_is_refused(root_with_image: Path) -> None:
    r = strata_run(root_with_image, "--name", "../escape", IMAGE, "true")
    assert r.returncode == 1
    assert "Invalid container name (../escape)" in r.stderr


def test_running_named_container_cannot_be_removed_and_survives_sigkill(
    root_with_image: Path, state_root: StateRoot
) -> None:
    proc = subprocess.Popen(
        [
            *STRATA,
            "--root",
            str(root_with_image),
            "run",
            "--name",
            "busy",
            IMAGE,
            "sh",
            "-c",
            "echo work > /done; echo ready; exec sleep 4646",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "ready\n"
        r = strata_cmd(root_with_image, "rm", "busy")
        assert r.returncode == 1 and "container is running" in r.stderr
        second = strata_run(root_with_image, "--name", "busy", IMAGE, "true")
        assert second.returncode == 1 and "already in use" in second.stderr
    finally:
        proc.kill()
        proc.wait()
    # Killed, its files stay (as a Docker container's do) and the next start reaps the
    # rest: no container, no mount. Then it can be removed.
    reopened = StateRoot.open(root_with_image)
    try:
        snap = open_snapshotter(reopened)
        assert (snap.upper_dir("container/busy") / "done").read_text() == "work\n"
        assert mounts_under(root_with_image) == []
        wait_for(lambda: not process_running("sleep 4646"), "the orphaned container to die")
    finally:
        reopened.close()
    assert strata_cmd(root_with_image, "rm", "busy").returncode == 0


def test_oci_runtime_crun_runs_or_says_why_it_cannot(root_with_image: Path) -> None:
    if shutil.which("crun") is None:
        pytest.skip("crun not installed")
    r = strata_run(root_with_image, "--rm", "--oci-runtime=crun", IMAGE, "echo", "via-crun")
    if r.returncode == 0:
        assert r.stdout == "via-crun\n"
    else:
        # crun may print its error before logging it, so its own copy can still show
        (line,) = [line for line in r.stderr.splitlines() if line.startswith("ERROR: ")]
        assert "crun cannot start containers on this host" in line
        assert "cgroups in hybrid mode not supported" in line


def test_unknown_image_is_a_clear_error(root_with_image: Path) -> None:
    r = strata_run(root_with_image, "--rm", "nosuch:image", "true")
    assert r.returncode == 1
    assert "nosuch" in r.stderr


def test_command_that_cannot_start_exits_like_docker_run(root_with_image: Path) -> None:
    r = strata_run(root_with_image, "--rm", IMAGE, "/no/such/command")
    assert r.returncode == 127
    # one line: runc's own copy of the error it logged is not echoed before ours
    (line,) = r.stderr.splitlines()
    assert line.startswith("ERROR: runc: ") and "/no/such/command" in line
    r = strata_run(root_with_image, "--rm", IMAGE, "/etc/passwd")
    assert r.returncode == 126
    r = strata_run(root_with_image, "--rm", "-u", "ghost", IMAGE, "true")
    assert r.returncode == 125
    assert "unable to find user ghost" in r.stderr


def test_relative_workdir_is_refused(root_with_image: Path) -> None:
    r = strata_run(root_with_image, "--rm", "-w", "rel", IMAGE, "pwd")
    assert r.returncode == 1
    assert "the working directory 'rel' is invalid, it needs to be an absolute path" in r.stderr


NAMED = ("--name", "c1", IMAGE, "true")


def test_run_keeps_a_container_under_the_global_snapshotter_and_rm_finds_it(
    root_with_image: Path,
) -> None:
    kept = subprocess.run(
        [*STRATA, "--root", str(root_with_image), "--snapshotter", "native", "run", *NAMED],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert kept.returncode == 0, kept.stderr
    root = StateRoot.open(root_with_image)
    try:
        assert open_snapshotter(root, "native").exists("container/c1")
        assert not open_snapshotter(root, "overlay").exists("container/c1")
    finally:
        root.close()
    # The name is taken whichever snapshotter the next run uses.
    again = strata_run(root_with_image, "--snapshotter", "overlay", "--name", "c1", IMAGE, "true")
    assert again.returncode != 0
    assert 'container name "c1" is already in use' in again.stderr
    # `rm` under the default snapshotter still finds the container kept by native.
    removed = subprocess.run(
        [*STRATA, "--root", str(root_with_image), "rm", "c1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == "c1\n"
    root = StateRoot.open(root_with_image)
    try:
        assert not open_snapshotter(root, "native").exists("container/c1")
    finally:
        root.close()


def test_user_spelled_with_a_non_ascii_digit_is_an_unknown_user(root_with_image: Path) -> None:
    r = strata_run(root_with_image, "--rm", "-u", "²", IMAGE, "true")
    assert r.returncode != 0
    assert "unable to find user ²: no matching entries in passwd file" in r.stderr
    assert "Traceback" not in r.stderr

"""`strata build --ssh` end to end: `RUN --mount=type=ssh` sees an agent socket forwarded
from $SSH_AUTH_SOCK (`--ssh default`) or served from key files (`--ssh ID=KEY`), and
missing forwards fail with BuildKit's errors. busybox has no ssh client, so the step
checks the socket itself (`test -S`, owner and mode) and writes what it saw into the
result, read back with `-o type=local`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import wait_for
from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    STRATA,
    build_root,
    busybox_tarball,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

REPORT = (
    'test -S "$SSH_AUTH_SOCK" && stat -c "%a %u %g" "$SSH_AUTH_SOCK" > /ssh.txt '
    '&& echo "$SSH_AUTH_SOCK" >> /ssh.txt'
)


def build(
    root: Path, project: Path, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    environ = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return subprocess.run(
        [str(STRATA), "--root", str(root), "build", "--progress=plain", *flags, str(project)],
        capture_output=True,
        env={**environ, "PROGRESS_NO_TRUNC": "1", **(env or {})},
        timeout=600,
    )


def ssh_agents() -> set[int]:
    """Pids of running ssh-agent processes."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if comm == "ssh-agent":
                found.add(int(entry))
    return found


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Path]:
    """A real ssh-agent on a socket of its own (stopped afterwards)."""
    socket_path = tmp_path / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(socket_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(socket_path.is_socket, "the ssh agent's socket")
        yield socket_path
    finally:
        proc.terminate()
        proc.wait()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    key = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    return key


def test_ssh_default_forwards_the_agent_named_by_ssh_auth_sock(
    build_root: Path, tmp_path: Path, agent: Path
) -> None:
    project = write_project(
        tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN --mount=type=ssh {REPORT}\n"
    )
    out = tmp_path / "out"
    run = build(
        build_root,
        project,
        "--ssh",
        "default",
        "-o",
        f"type=local,dest={out}",
        env={"SSH_AUTH_SOCK": str(agent)},
    )
    assert run.returncode == 0, run.stderr.decode()
    assert (out / "ssh.txt").read_text() == "600 0 0\n/run/buildkit/ssh_agent.0\n"
    # the mount point was only there for the step
    assert not (out / "run" / "buildkit").exists()
    assert agent.is_socket()  # the host's socket is left as it was
    assert oct(agent.stat().st_mode & 0o777) == "0o600"


def test_ssh_key_file_is_served_by_an_agent_that_ends_with_the_step(
    build_root: Path, tmp_path: Path, key_file: Path
) -> None:
    project = write_project(
        tmp_path / "p",
        f"FROM {BUSYBOX_IMAGE}\n"
        f"RUN --mount=type=ssh,id=deploy,target=/agent,uid=1000,mode=0640 {REPORT}\n",
    )
    out = tmp_path / "out"
    agents_before = ssh_agents()
    run = build(build_root, project, "--ssh", f"deploy={key_file}", "-o", f"type=local,dest={out}")
    assert run.returncode == 0, run.stderr.decode()
    assert (out / "ssh.txt").read_text() == "640 1000 0\n/agent\n"
    assert ssh_agents() <= agents_before


def test_required_ssh_without_any_forwarding_is_buildkits_error(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN --mount=type=ssh,required=true true\n"
    )
    run = build(build_root, project)
    log = run.stderr.decode()
    assert run.returncode == 1, log
    lines = log.splitlines()
    # the step's own error, without the build's prefixes, then the failure report
    [step] = [
        line
        for line in lines
        if line.startswith("#") and line.endswith(" RUN --mount=type=ssh,required=true true")
    ]
    number = step.split()[0]
    assert f'{number} ERROR: no SSH key "default" forwarded from the client' in lines
    assert f" > {step.split(' ', 1)[1]}:" in lines
    assert lines[-1] == (
        'ERROR: failed to build: failed to solve: no SSH key "default" forwarded from the client'
    )


def test_required_ssh_id_the_client_does_not_forward_is_refused(
    build_root: Path, tmp_path: Path, key_file: Path
) -> None:
    project = write_project(
        tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN --mount=type=ssh,id=other,required true\n"
    )
    run = build(build_root, project, "--ssh", f"deploy={key_file}")
    log = run.stderr.decode()
    assert run.returncode == 1, log
    assert log.splitlines()[-1] == (
        "ERROR: failed to build: failed to solve: unset ssh forward key other"
    )


def test_optional_ssh_without_forwarding_is_skipped(build_root: Path, tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p",
        f"FROM {BUSYBOX_IMAGE}\n"
        # SSH_AUTH_SOCK is part of the step (the frontend sets it), the socket is not
        'RUN --mount=type=ssh test "$SSH_AUTH_SOCK" = /run/buildkit/ssh_agent.0 '
        '&& test ! -e "$SSH_AUTH_SOCK"\n',
    )
    run = build(build_root, project)
    assert run.returncode == 0, run.stderr.decode()

"""RUN steps run under Docker's default seccomp profile: no user namespaces, no kernel
keyring, no io_uring; `RUN --security=insecure` (entitled with `--allow
security.insecure`) runs unconfined, as BuildKit's insecure mode does."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from strata.store.root import StateRoot
from strata.worker.executor import Executor, ProcessSpec
from strata.worker.snapshots.snapshotter import Snapshotter
from tests.integration.conftest import commit_tree
from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

# Tries each call the profile refuses and prints `name=errno` (0 when it worked). C,
# built static, because the busybox image has no interpreter that can make raw calls.
PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    long r = unshare(CLONE_NEWUSER);
    printf("unshare_newuser=%d\n", r == 0 ? 0 : errno);
    r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session keyring */, 0);
    printf("keyctl=%d\n", r >= 0 ? 0 : errno);
    char params[120];
    memset(params, 0, sizeof params);
    r = syscall(425 /* io_uring_setup, the same number on x86_64 and aarch64 */, 1, params);
    printf("io_uring_setup=%d\n", r >= 0 ? 0 : errno);
    return 0;
}
"""
EPERM = 1


def step_output(log: str) -> list[str]:
    """What the steps printed: plain-progress lines `#N <seconds> <text>`."""
    return re.findall(r"^#\d+ \d+\.\d+ (.*)$", log, re.MULTILINE)


def seccomp_mode(log: str, marker: str) -> int:
    found = re.search(rf"{marker} Seccomp:\s+(\d+)", log)
    assert found, log
    return int(found.group(1))


def test_run_is_filtered_and_insecure_is_not(build_root: Path, tmp_path: Path) -> None:
    dockerfile = (
        f"FROM {BUSYBOX_IMAGE}\n"
        'RUN echo "sandbox $(grep Seccomp: /proc/self/status)"; '
        "if unshare -U true; then echo unshare-worked; else echo unshare-refused; fi\n"
        'RUN --security=insecure echo "insecure $(grep Seccomp: /proc/self/status)"; '
        "unshare -U true && echo insecure-unshare-worked\n"
    )
    project = write_project(tmp_path / "p", dockerfile)
    run = strata(
        build_root, "build", "--progress=plain", "--allow", "security.insecure", str(project)
    )
    log = run.stderr.decode()
    assert run.returncode == 0, log
    assert seccomp_mode(log, "sandbox") == 2
    printed = step_output(log)
    assert "unshare-refused" in printed and "unshare-worked" not in printed
    assert seccomp_mode(log, "insecure") == 0
    assert "insecure-unshare-worked" in printed


def test_keyring_io_uring_and_user_namespaces_are_refused_in_a_step(
    build_root: Path, tmp_path: Path
) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc (with static libc) to build the system-call probe")
    project = tmp_path / "p"
    project.mkdir()
    (project / "probe.c").write_text(PROBE_C)
    built = subprocess.run(
        ["gcc", "-static", "-O", "-o", str(project / "probe"), str(project / "probe.c")],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build a static probe here: {built.stderr.strip()[:200]}")
    write_project(
        project,
        f"FROM {BUSYBOX_IMAGE}\nCOPY probe /probe\n"
        "RUN /probe | sed 's/^/sandbox-/'\n"
        "RUN --security=insecure /probe | sed 's/^/insecure-/'\n",
    )
    run = strata(
        build_root, "build", "--progress=plain", "--allow", "security.insecure", str(project)
    )
    log = run.stderr.decode()
    assert run.returncode == 0, log
    results = dict(line.split("=", 1) for line in step_output(log) if "=" in line)
    for call in ("unshare_newuser", "keyctl", "io_uring_setup"):
        assert results[f"sandbox-{call}"] == str(EPERM), (call, log)
        # Unconfined, the same calls work, so the refusals above are the filter's.
        assert results[f"insecure-{call}"] == "0", (call, log)


def test_strata_run_is_filtered_too(build_root: Path) -> None:
    script = (
        "grep Seccomp: /proc/self/status; "
        "if unshare -U true 2>/dev/null; then echo unshare-worked; else echo unshare-refused; fi"
    )
    run = strata(build_root, "run", "--rm", BUSYBOX_IMAGE, "sh", "-c", script)
    out = run.stdout.decode()
    assert run.returncode == 0, run.stderr.decode()
    assert re.search(r"^Seccomp:\s+2$", out, re.MULTILINE), out
    assert "unshare-refused" in out and "unshare-worked" not in out


def test_strata_run_security_opt_seccomp_unconfined_lifts_the_filter(build_root: Path) -> None:
    run = strata(
        build_root,
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        BUSYBOX_IMAGE,
        "grep",
        "Seccomp:",
        "/proc/self/status",
    )
    other = strata(build_root, "run", "--rm", "--security-opt", "apparmor=x", BUSYBOX_IMAGE, "true")

    assert run.returncode == 0, run.stderr.decode()
    assert re.search(r"^Seccomp:\s+0$", run.stdout.decode(), re.MULTILINE), run.stdout
    assert other.returncode == 1
    assert "apparmor=x" in other.stderr.decode()


def test_executor_can_run_a_container_without_the_filter(
    overlay_snapshotter: Snapshotter, busybox_rootfs: Path, state_root: StateRoot
) -> None:
    """What `--security-opt seccomp=unconfined` asks of the executor: the profile
    alone is dropped, the rest of the sandbox stays."""
    base = commit_tree(overlay_snapshotter, "busybox", busybox_rootfs)
    executor = Executor(state_root)
    script = "grep -E '^(Seccomp|CapBnd):' /proc/self/status"
    seen: dict[bool, str] = {}
    for unconfined in (False, True):
        out: list[bytes] = []
        code = executor.run(
            ProcessSpec(("/bin/sh", "-c", script)),
            overlay_snapshotter.prepare(f"s-{unconfined}", base),
            seccomp_unconfined=unconfined,
            on_output=lambda stream, chunk, at, out=out: out.append(chunk),  # type: ignore[misc]
        )
        assert code == 0
        seen[unconfined] = b"".join(out).decode()
    assert re.search(r"Seccomp:\s+2", seen[False])
    assert re.search(r"Seccomp:\s+0", seen[True])
    capabilities = [line for line in seen[True].splitlines() if line.startswith("CapBnd")]
    assert capabilities == [line for line in seen[False].splitlines() if line.startswith("CapBnd")]

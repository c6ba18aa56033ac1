"""The executor under real runc on a busybox root: process, user, network, mounts."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from strata.errors import ExecError
from strata.store.root import StateRoot, mounts_under
from strata.worker.executor import Executor, ProcessSpec
from strata.worker.mounts import (
    RuntimeBindMount,
    RuntimeCacheMount,
    RuntimeMount,
    RuntimeSecretMount,
    RuntimeSSHMount,
    RuntimeTmpfsMount,
)
from strata.worker.snapshots.snapshotter import Snapshotter
from strata.worker.spec import NetworkMode, SecurityMode
from tests.integration.conftest import process_pid


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    key: str
    lines: list[tuple[str, bytes, float]] = field(default_factory=list)


def run_step(
    executor: Executor,
    snap: Snapshotter,
    base: str,
    script: str,
    *,
    mounts: list[RuntimeMount] | None = None,
    user: str = "",
    cwd: str = "/",
    env: tuple[str, ...] = (),
    network: NetworkMode = "default",
    security: SecurityMode = "sandbox",
    key: str = "step",
) -> Result:
    lines: list[tuple[str, bytes, float]] = []
    rootfs = snap.prepare(key, base)
    code = executor.run(
        ProcessSpec(("/bin/sh", "-c", script), env=env, cwd=cwd, user=user),
        rootfs,
        mounts or [],
        network=network,
        security=security,
        on_output=lambda s, line, t: lines.append((s, line, t)),
    )
    out = b"".join(line for s, line, _ in lines if s == "stdout").decode()
    err = b"".join(line for s, line, _ in lines if s == "stderr").decode()
    return Result(code, out, err, key, lines)


def upper_entries(snap: Snapshotter, key: str) -> set[str]:
    """Every path the step left in its snapshot's changes (committed first)."""
    snap.commit(f"{key}-done", key)
    diff = snap.diff_dir(f"{key}-done")
    return {str(p.relative_to(diff)) for p in diff.rglob("*")}


@pytest.fixture
def executor(state_root: StateRoot) -> Executor:
    return Executor(state_root)


def test_output_reaches_the_callback_per_stream_and_exit_code_returns(
    executor: Executor, snapshotter: Snapshotter, busybox_base: str
) -> None:
    r = run_step(executor, snapshotter, busybox_base, "echo one; echo two >&2; echo three; exit 7")
    assert r.code == 7
    assert r.stdout == "one\nthree\n"
    assert r.stderr == "two\n"
    assert {s for s, _, _ in r.lines} == {"stdout", "stderr"}
    assert all(t > 0 for _, _, t in r.lines)


def test_partial_line_reaches_the_callback_while_the_process_still_runs(
    executor: Executor, snapshotter: Snapshotter, busybox_base: str, tmp_path: Path
) -> None:
    """Text without its newline is passed on at once, not when its line ends: the step
    waits for a file that the callback creates only on seeing the unfinished line (the
    step's own guard ends the wait after 10 s, and then the order below is wrong)."""
    gate = tmp_path / "gate"
    gate.mkdir()
    chunks: list[tuple[str, bytes]] = []

    def on_output(stream: str, chunk: bytes, at: float) -> None:
        chunks.append((stream, chunk))
        if chunk.endswith(b"waiting"):
            (gate / "open").touch()

    rootfs = snapshotter.prepare("s", busybox_base)
    code = executor.run(
        ProcessSpec(
            (
                "/bin/sh",
                "-c",
                "printf waiting; i=0; until [ -e /gate/open ] || [ $i -ge 100 ]; "
                "do i=$((i+1)); sleep 0.1; done; [ -e /gate/open ] && echo ' opened'",
            )
        ),
        rootfs,
        [RuntimeBindMount("/gate", gate, readonly=True)],
        on_output=on_output,
    )
    assert chunks == [("stdout", b"waiting"), ("stdout", b" opened\n")]
    assert code == 0


def test_files_written_by_the_step_land_in_the_snapshot_and_nothing_else(
    executor: Executor, snapshotter: Snapshotter, busybox_base: str
) -> None:
    r = run_step(executor, snapshotter, busybox_base, "echo hi > /made; cat /etc/hosts >/dev/null")
    assert r.code == 0
    entries = upper_entries(snapshotter, r.key)
    assert "made" in entries
    # /etc/hosts and /etc/resolv.conf did not exist in the image: their stubs are gone,
    # and so is the unchanged /etc that overlayfs copied up to hold them.
    assert "etc/hosts" not in entries and "etc/resolv.conf" not in entries
    assert entries == {"made"}


def test_user_name_resolves_from_the_root_passwd(
    executor: Executor, overlay_snapshotter: Snapshotter, busybox_rootfs: Path
) -> None:
    from tests.integration.conftest import commit_tree

    base = commit_tree(overlay_snapshotter, "bb", busybox_rootfs)
    script = "id -u; id -g; id -G"
    r = run_step(executor, overlay_snapshotter, base, script, user="app")
    assert r.stdout.splitlines() == ["1000", "1000", "1000 50"]
    r = run_step(executor, overlay_snapshotter, base, script, user="app:root", key="s2")
    assert r.stdout.splitlines() == ["1000", "0", "0"]
    r = run_step(executor, overlay_snapshotter, base, script, user="4242:4343", key="s3")
    assert r.stdout.splitlines() == ["4242", "4343", "4343"]
    r = run_step(executor, overlay_snapshotter, base, script, key="s4")
    assert r.stdout.splitlines() == ["0", "0", "0"]
    with pytest.raises(ExecError, match="unable to find user ghost: no matching entries"):
        run_step(executor, overlay_snapshotter, base, "true", user="ghost", key="s5")
    overlay_snapshotter.remove("s5")


@pytest.fixture
def base(overlay_snapshotter: Snapshotter, busybox_rootfs: Path) -> str:
    from tests.integration.conftest import commit_tree

    return commit_tree(overlay_snapshotter, "bb", busybox_rootfs)


def test_default_environment_hostname_and_working_directory(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        'echo "$PATH"; hostname; pwd; cat /etc/hosts',
        cwd="/new/work",
    )
    lines = r.stdout.splitlines()
    assert lines[0] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert lines[1] == "buildkitsandbox"
    assert lines[2] == "/new/work"
    assert "127.0.0.1\tlocalhost buildkitsandbox" in lines
    # BuildKit keeps a working directory it had to create.
    assert "new/work" in upper_entries(overlay_snapshotter, r.key)


def test_network_none_has_only_loopback_and_host_sees_host_interfaces(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    r = run_step(executor, overlay_snapshotter, base, "ls /sys/class/net", network="none")
    assert r.stdout.split() == ["lo"]
    r = run_step(
        executor, overlay_snapshotter, base, "ip -o addr show lo", network="none", key="s2"
    )
    assert "127.0.0.1" in r.stdout
    r = run_step(executor, overlay_snapshotter, base, "ls /sys/class/net", network="host", key="s3")
    assert sorted(r.stdout.split()) == sorted(os.listdir("/sys/class/net"))


def test_sandbox_masks_proc_paths_and_insecure_gets_all_capabilities(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    script = (
        "grep CapEff /proc/self/status; wc -c < /proc/timer_list; "
        "echo 1 > /proc/sys/vm/overcommit_memory 2>/dev/null || echo read-only"
    )
    sandbox = run_step(executor, overlay_snapshotter, base, script)
    lines = sandbox.stdout.splitlines()
    assert lines[0] == "CapEff:\t00000000a80425fb"
    assert lines[1].strip() == "0"  # masked: /dev/null is bound over it
    assert lines[2] == "read-only"
    insecure = run_step(
        executor,
        overlay_snapshotter,
        base,
        "grep CapEff /proc/self/status",
        security="insecure",
        key="s2",
    )
    effective = int(insecure.stdout.split()[1], 16)
    assert effective & (1 << 21)  # CAP_SYS_ADMIN


def test_bind_mounts_are_read_only_and_rw_writes_are_discarded(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str, tmp_path: Path
) -> None:
    src = tmp_path / "ctx"
    src.mkdir()
    (src / "file").write_text("from host\n")
    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        "cat /ro/file; echo x > /ro/new 2>/dev/null || echo denied; "
        "echo changed > /rw/file; cat /rw/file",
        mounts=[RuntimeBindMount("/ro", src), RuntimeBindMount("/rw", src, readonly=False)],
    )
    assert r.stdout.splitlines() == ["from host", "denied", "changed"]
    assert (src / "file").read_text() == "from host\n"
    assert not (src / "new").exists()
    entries = upper_entries(overlay_snapshotter, r.key)
    assert "ro" not in entries and "rw" not in entries


def test_rw_bind_changes_are_kept_on_the_state_root_disk_not_in_memory(
    executor: Executor,
    overlay_snapshotter: Snapshotter,
    base: str,
    tmp_path: Path,
    state_root: StateRoot,
) -> None:
    src = tmp_path / "ctx"
    src.mkdir()
    uppers: list[Path] = []
    devices: list[int] = []

    def look(stream: str, line: bytes, at: float) -> None:
        # While the step runs: where does the throwaway overlay keep its changes?
        for mount_line in Path("/proc/self/mountinfo").read_text().splitlines():
            for option in mount_line.split(" - ")[1].split(" ")[2].split(","):
                if option.startswith("upperdir=") and "bindrw" in option:
                    upper = Path(option.removeprefix("upperdir="))
                    uppers.append(upper)
                    devices.append(os.stat(upper).st_dev)

    rootfs = overlay_snapshotter.prepare("s", base)
    code = executor.run(
        ProcessSpec(("/bin/sh", "-c", "echo big > /rw/f; echo ok")),
        rootfs,
        [RuntimeBindMount("/rw", src, readonly=False)],
        on_output=look,
    )
    assert code == 0 and len(uppers) == 1
    assert uppers[0].is_relative_to(state_root.tmp_root)
    assert not uppers[0].exists()  # removed after the step
    assert devices == [os.stat(state_root.path).st_dev]


def test_relative_target_resolves_against_the_working_directory(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str, tmp_path: Path
) -> None:
    src = tmp_path / "ctx"
    src.mkdir()
    (src / "f").write_text("ok")
    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        "cat /app/sub/f",
        cwd="/app",
        mounts=[RuntimeBindMount("sub", src)],
    )
    assert r.stdout == "ok"
    entries = upper_entries(overlay_snapshotter, r.key)
    assert "app" in entries and "app/sub" not in entries


def test_tmpfs_mount_is_empty_and_leaves_nothing(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        "grep ' /scratch ' /proc/mounts; echo data > /scratch/f",
        mounts=[RuntimeTmpfsMount("/scratch", size=1 << 20)],
    )
    assert r.stdout.startswith("tmpfs /scratch tmpfs")
    assert "size=1024k" in r.stdout
    assert not any(e.startswith("scratch") for e in upper_entries(overlay_snapshotter, r.key))


def test_secret_is_readable_in_the_step_and_in_no_layer(
    executor: Executor, snapshotter: Snapshotter, busybox_base: str
) -> None:
    r = run_step(
        executor,
        snapshotter,
        busybox_base,
        "cat /run/secrets/token; stat -c '%a %u' /run/secrets/token; echo; echo \"$TOKEN_ENV\"; "
        "cp /run/secrets/token /copied-on-purpose-not",
        mounts=[
            RuntimeSecretMount("token", b"s3cr3t"),
            RuntimeSecretMount("other", b"envvalue", env="TOKEN_ENV"),
        ],
    )
    assert r.stdout.splitlines() == ["s3cr3t400 0", "", "envvalue"]
    snapshotter.commit("after", r.key)
    diff = snapshotter.diff_dir("after")
    assert not (diff / "run").exists()
    leaked = [
        p
        for p in diff.rglob("*")
        if p.is_file() and not p.name.startswith("copied") and b"s3cr3t" in p.read_bytes()
    ]
    assert leaked == []


def test_missing_required_secret_fails_and_optional_env_secret_is_empty(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    with pytest.raises(ExecError, match="secret token: not found"):
        run_step(
            executor,
            overlay_snapshotter,
            base,
            "true",
            mounts=[RuntimeSecretMount("token", None, required=True)],
        )
    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        'echo "[$V]"; ls /run/secrets 2>&1 || true',
        mounts=[RuntimeSecretMount("token", None, env="V")],
        key="s2",
    )
    assert r.stdout.splitlines()[0] == "[]"


def test_cache_mount_persists_across_steps_and_stays_out_of_layers(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    cache = [RuntimeCacheMount("/var/cache/app", "app-cache")]
    r1 = run_step(
        executor, overlay_snapshotter, base, "echo run1 >> /var/cache/app/log", mounts=cache
    )
    assert r1.code == 0
    r2 = run_step(
        executor,
        overlay_snapshotter,
        base,
        "echo run2 >> /var/cache/app/log; cat /var/cache/app/log",
        mounts=cache,
        key="s2",
    )
    assert r2.stdout.splitlines() == ["run1", "run2"]
    assert not any(e.startswith("var/cache") for e in upper_entries(overlay_snapshotter, "s2"))


def test_cache_mount_uid_and_mode_shape_a_new_cache(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        "stat -c '%u %g %a' /c; id -u > /c/who",
        mounts=[RuntimeCacheMount("/c", "perm", uid=1000, gid=1000, mode=0o700)],
        user="app",
    )
    assert r.stdout.strip() == "1000 1000 700"
    assert r.code == 0


def test_ssh_mount_serves_a_forwarded_agent_and_sets_ssh_auth_sock(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str, tmp_path: Path
) -> None:
    if shutil.which("ssh-agent") is None:
        pytest.skip("ssh-agent not installed")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.01"])
        r = run_step(
            executor,
            overlay_snapshotter,
            base,
            'echo "$SSH_AUTH_SOCK"; stat -c "%F %a" "$SSH_AUTH_SOCK"',
            mounts=[RuntimeSSHMount(agent_socket=sock)],
        )
    finally:
        agent.terminate()
        agent.wait()
    assert r.stdout.splitlines() == ["/run/buildkit/ssh_agent.0", "socket 600"]
    assert upper_entries(overlay_snapshotter, r.key) == set()


def test_agent_proxy_forwards_requests_to_the_host_agent(tmp_path: Path) -> None:
    if shutil.which("ssh-agent") is None:
        pytest.skip("ssh-agent not installed")
    from strata.worker.ssh_agent import AgentProxy

    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.01"])
        proxy = AgentProxy(sock, tmp_path / "proxy.sock")
        try:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(str(tmp_path / "proxy.sock"))
            # SSH2_AGENTC_REQUEST_IDENTITIES (11) -> SSH2_AGENT_IDENTITIES_ANSWER (12)
            c.sendall(b"\x00\x00\x00\x01\x0b")
            answer = c.recv(64)
            c.close()
        finally:
            proxy.close()
    finally:
        agent.terminate()
        agent.wait()
    assert answer[4] == 12


def test_missing_required_ssh_fails_with_buildkit_wording(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    with pytest.raises(ExecError, match='no SSH key "default" forwarded from the client'):
        run_step(
            executor, overlay_snapshotter, base, "true", mounts=[RuntimeSSHMount(required=True)]
        )


def test_stdin_passes_through(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str, tmp_path: Path
) -> None:
    data = tmp_path / "in"
    data.write_text("piped\n")
    lines: list[bytes] = []
    with open(data, "rb") as fh:
        code = executor.run(
            ProcessSpec(("/bin/cat",)),
            overlay_snapshotter.prepare("s", base),
            stdin=fh,
            on_output=lambda s, line, t: lines.append(line),
        )
    assert code == 0 and b"".join(lines) == b"piped\n"


def test_missing_executable_reports_the_runtime_error(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    with pytest.raises(ExecError, match="nonexistent"):
        executor.run(ProcessSpec(("/nonexistent",)), overlay_snapshotter.prepare("s", base))


def test_crun_in_hybrid_cgroup_mode_fails_with_a_clear_error(
    state_root: StateRoot, overlay_snapshotter: Snapshotter, base: str
) -> None:
    if shutil.which("crun") is None:
        pytest.skip("crun not installed")
    crun = Executor(state_root, "crun")
    try:
        code = crun.run(ProcessSpec(("/bin/true",)), overlay_snapshotter.prepare("s", base))
    except ExecError as err:
        assert "cgroups in hybrid mode not supported" in err.message
        assert "use runc" in err.message
    else:
        assert code == 0  # a host where crun works


def test_nothing_is_left_mounted_or_running_after_a_step(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str, state_root: StateRoot
) -> None:
    run_step(executor, overlay_snapshotter, base, "true", mounts=[RuntimeSecretMount("s", b"x")])
    assert mounts_under(state_root.tmp_root) == []
    listed = subprocess.run(
        ["runc", "--root", str(executor.state_dir), "list", "-q"], capture_output=True, text=True
    )
    assert listed.stdout.split() == []
    # At most an empty mount point is kept, for the next step's bundle.
    bundles = [p for p in state_root.owner_dir().iterdir() if p.name.startswith("bundle")]
    assert [list(b.iterdir()) for b in bundles] in ([], [[]])


def test_devices_and_dev_shm_exist(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        "stat -c %F /dev/null; grep -c ' /dev/shm ' /proc/mounts; grep -c mqueue /proc/mounts",
    )
    assert r.stdout.split() == ["character", "special", "file", "1", "1"]
    assert stat.S_ISDIR(os.stat("/dev").st_mode)


def test_ssh_key_files_are_served_by_an_agent_we_start(tmp_path: Path) -> None:
    if shutil.which("ssh-agent") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-client not installed")
    from strata.worker.ssh_agent import agent_socket

    key = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "strata-test", "-f", str(key)],
        check=True,
    )
    # A deep directory: the socket path is longer than a Unix socket address allows.
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    with agent_socket(deep, key_files=[key], uid=1000, mode=0o600) as sock:
        listed = subprocess.run(
            ["ssh-add", "-l"],
            env={**os.environ, "SSH_AUTH_SOCK": f"/proc/self/cwd/{sock.name}"},
            cwd=sock.parent,
            capture_output=True,
            text=True,
        )
        owner = sock.stat().st_uid
    assert "strata-test" in listed.stdout
    assert owner == 1000


def test_cancel_from_another_thread_interrupts_the_step_and_cleans_up(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str, state_root: StateRoot
) -> None:
    import threading

    from strata.errors import Interrupted

    started = threading.Event()
    outcome: list[BaseException | int] = []

    def step() -> None:
        try:
            outcome.append(
                executor.run(
                    ProcessSpec(("/bin/sh", "-c", "echo started; exec sleep 4545")),
                    overlay_snapshotter.prepare("s", base),
                    on_output=lambda s, line, t: started.set(),
                )
            )
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=step)
    worker.start()
    assert started.wait(60)
    executor.cancel()
    worker.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], Interrupted)
    assert mounts_under(state_root.tmp_root) == []


def test_step_gets_its_own_namespaces_and_shares_the_network_only_with_host(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    kinds = ("pid", "ipc", "uts", "mnt", "net")
    script = "; ".join(f"readlink /proc/self/ns/{k}" for k in kinds) + "; echo $$"
    host = [os.readlink(f"/proc/self/ns/{k}") for k in kinds]
    r = run_step(executor, overlay_snapshotter, base, script, network="none")
    *inside, pid = r.stdout.splitlines()
    assert pid == "1"
    assert [a != b for a, b in zip(inside, host, strict=True)] == [True] * 5
    # `host` shares the host's network; `default` is the step's own (behind
    # slirp4netns), or the host's where slirp4netns is missing.
    private = shutil.which("slirp4netns") is not None
    for key, network, shared in (("s2", "host", True), ("s3", "default", not private)):
        r = run_step(executor, overlay_snapshotter, base, script, network=network, key=key)
        inside = r.stdout.splitlines()[:5]
        assert [a == b for a, b in zip(inside, host, strict=True)] == [False] * 4 + [shared]


def test_without_slirp4netns_default_falls_back_to_the_host_network_with_a_warning(
    state_root: StateRoot,
    overlay_snapshotter: Snapshotter,
    base: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import strata.worker.network

    monkeypatch.setattr(strata.worker.network, "SLIRP4NETNS", "slirp4netns-not-installed")
    executor = Executor(state_root)
    host = os.readlink("/proc/self/ns/net")
    first = run_step(executor, overlay_snapshotter, base, "readlink /proc/self/ns/net")
    second = run_step(executor, overlay_snapshotter, base, "true", key="s2")
    assert first.stdout.strip() == host
    warning = "WARNING: RUN uses the host's network: slirp4netns is not installed\n"
    assert first.stderr == warning
    assert second.stderr == ""  # said once


def test_a_slirp4netns_that_fails_to_start_leaves_the_step_on_the_host_network(
    state_root: StateRoot,
    overlay_snapshotter: Snapshotter,
    base: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import strata.worker.network

    monkeypatch.setattr(strata.worker.network, "SLIRP4NETNS", "false")  # exits at once
    executor = Executor(state_root)
    step = "readlink /proc/self/ns/net; cat /etc/resolv.conf"
    r = run_step(executor, overlay_snapshotter, base, step)
    assert r.code == 0
    netns, _, resolv = r.stdout.partition("\n")
    assert netns == os.readlink("/proc/self/ns/net")
    assert resolv == Path("/etc/resolv.conf").read_text()  # the host's, as with host
    assert r.stderr == "WARNING: RUN uses the host's network: slirp4netns exited with status 1\n"


def test_rlimit_nofile_and_dev_pts_are_set_up(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    from strata.worker.spec import nofile_limit

    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        "ulimit -n; grep -c ' /dev/pts devpts ' /proc/mounts; grep ' /sys ' /proc/mounts",
    )
    lines = r.stdout.splitlines()
    assert lines[0] == str(nofile_limit())
    assert lines[1] == "1"
    assert lines[2].split()[3].split(",")[0] == "ro"


def test_secret_owner_mode_custom_target_and_env_with_file(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        "stat -c '%u %g %a' rel/tok; cat rel/tok; echo; echo \"$TOK\"; "
        "stat -c '%a' /run/secrets/both; id -u; cat rel/tok >/dev/null && echo readable",
        cwd="/work",
        user="app",
        mounts=[
            RuntimeSecretMount("tok", b"abc", target="rel/tok", uid=1000, gid=50, mode=0o440),
            RuntimeSecretMount("both", b"xyz", target="/run/secrets/both", env="TOK"),
        ],
    )
    assert r.stdout.splitlines() == ["1000 50 440", "abc", "xyz", "400", "1000", "readable"]
    entries = upper_entries(overlay_snapshotter, r.key)
    assert not any(e.startswith(("work/rel", "run")) for e in entries)


def test_cache_mount_seeded_from_a_base_and_read_only_cache(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str, tmp_path: Path
) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "from-stage").write_text("seeded\n")
    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        "cat /c/from-stage; echo more > /c/added; echo x > /ro/f 2>/dev/null || echo ro-refused",
        mounts=[
            RuntimeCacheMount("/c", "seeded", base=seed, base_key="stage-digest-1"),
            RuntimeCacheMount("/ro", "readonly-cache", readonly=True),
        ],
    )
    assert r.stdout.splitlines() == ["seeded", "ro-refused"]
    assert sorted(p.name for p in seed.iterdir()) == ["from-stage"]  # the seed is untouched
    # The same id with the same base finds the cache again, with what the step added.
    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        "ls /c",
        mounts=[RuntimeCacheMount("/c", "seeded", base=seed, base_key="stage-digest-1")],
        key="s2",
    )
    assert r.stdout.split() == ["added", "from-stage"]


def _runtime_started_by_us() -> bool:
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat_fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if stat_fields[1] == me and b"run" in cmdline and b"--bundle" in cmdline:
            return True
    return False


def test_cancel_while_the_runtime_is_still_creating_the_container_stops_the_step(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str, state_root: StateRoot
) -> None:
    import threading

    from strata.errors import Interrupted

    outcome: list[BaseException | int] = []

    def step() -> None:
        try:
            outcome.append(
                executor.run(
                    ProcessSpec(("/bin/sleep", "4949")),
                    overlay_snapshotter.prepare("s", base),
                    on_output=lambda s, line, t: None,
                )
            )
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=step)
    worker.start()
    try:
        # Cancel the moment `runc run` exists, before it has made the container: a
        # plain `runc kill` fails then, and the step would sleep on for 4949 s.
        while not _runtime_started_by_us() and worker.is_alive():
            pass
        executor.cancel()
        worker.join(60)  # an ordering aid; a missed kill would never end the step
        assert not worker.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], Interrupted)
    finally:
        if worker.is_alive():
            pid = process_pid("/bin/sleep 4949")
            if pid is not None:
                os.kill(pid, 9)
            worker.join()
    assert mounts_under(state_root.tmp_root) == []


def test_image_etc_hosts_is_shadowed_for_the_step_and_left_unchanged(
    executor: Executor, overlay_snapshotter: Snapshotter, busybox_rootfs: Path, tmp_path: Path
) -> None:
    from tests.integration.conftest import commit_tree

    tree = tmp_path / "img"
    shutil.copytree(busybox_rootfs, tree, symlinks=True)
    (tree / "etc" / "hosts").write_text("10.9.9.9 from-the-image\n")
    (tree / "etc" / "resolv.conf").write_text("nameserver 10.9.9.9\n")
    base = commit_tree(overlay_snapshotter, "with-etc", tree)
    r = run_step(
        executor,
        overlay_snapshotter,
        base,
        "cat /etc/hosts; echo oops >> /etc/hosts 2>/dev/null || echo read-only",
    )
    assert "from-the-image" not in r.stdout
    assert r.stdout.splitlines()[0] == "127.0.0.1\tlocalhost buildkitsandbox"
    assert r.stdout.splitlines()[-1] == "read-only"
    assert upper_entries(overlay_snapshotter, r.key) == set()


def test_process_env_has_path_first_and_later_values_win(
    executor: Executor, overlay_snapshotter: Snapshotter, base: str
) -> None:
    lines: list[bytes] = []
    code = executor.run(
        ProcessSpec(("/usr/bin/env",), env=("LANG=C", "PATH=/bin:/usr/bin", "LANG=C.UTF-8")),
        overlay_snapshotter.prepare("s", base),
        [RuntimeSecretMount("tok", b"from-secret", env="LANG")],
        on_output=lambda s, line, t: lines.append(line),
    )
    assert code == 0
    env = b"".join(lines).decode().splitlines()
    assert env[:2] == ["PATH=/bin:/usr/bin", "LANG=from-secret"]
    assert [e for e in env if e.startswith("LANG=")] == ["LANG=from-secret"]


def _disk_files_containing(top: Path, needle: bytes) -> list[Path]:
    """Files below `top` on `top`'s own file system whose bytes contain `needle`."""
    device = os.stat(top).st_dev
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if os.lstat(os.path.join(dirpath, d)).st_dev == device]
        for name in filenames:
            path = Path(dirpath) / name
            try:
                st = os.lstat(path)
                if st.st_dev == device and stat.S_ISREG(st.st_mode) and needle in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def test_secrets_touch_no_file_on_the_state_roots_disk_during_and_after_the_step(
    executor: Executor,
    overlay_snapshotter: Snapshotter,
    base: str,
    state_root: StateRoot,
    tmp_path: Path,
) -> None:
    signal_dir = tmp_path / "signal"
    signal_dir.mkdir()
    seen_during: list[list[Path]] = []

    def on_output(stream: str, line: bytes, at: float) -> None:
        seen_during.append(
            _disk_files_containing(state_root.path, b"file-secret-value")
            + _disk_files_containing(state_root.path, b"env-secret-value")
        )
        (signal_dir / "go").touch()

    rootfs = overlay_snapshotter.prepare("s", base)
    code = executor.run(
        ProcessSpec(("/bin/sh", "-c", "echo ready; while [ ! -e /sig/go ]; do sleep 0.02; done")),
        rootfs,
        [
            RuntimeSecretMount("file", b"file-secret-value"),
            RuntimeSecretMount("env", b"env-secret-value", env="TOKEN"),
            RuntimeBindMount("/sig", signal_dir, readonly=False, write_back=True),
        ],
        on_output=on_output,
    )
    assert code == 0
    assert seen_during == [[]]
    assert _disk_files_containing(state_root.path, b"secret-value") == []

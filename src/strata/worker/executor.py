"""Running one process in a container under runc (or crun), BuildKit's runcexecutor way.

`Executor.run` mounts the root file system into a bundle in the state root's tmp
space (a per-run tmpfs, so secrets in config.json never reach a disk), prepares the
runtime mounts, writes config.json and /etc/hosts, /etc/resolv.conf next to it
(bind-mounted, never written into the root), runs `runc run` in the foreground and
streams output in chunks as the process writes it. Afterwards every mount is undone and every mount point
the run had to create in the root is removed again (BuildKit `executor/stubs.go`), so
the snapshot holds only what the process wrote.

The runtime's state dir is `<owner_dir>/runc`, so after a crash the next
`StateRoot.open` finds and deletes leftover containers. It need not wait for one: the
runtime gets SIGKILL when strata dies (a parent-death signal, as BuildKit's runc
executor sets `PdeathSignal`), and a watchdog process (`strata.worker.watchdog`) kills
the containers themselves and undoes their mounts as soon as the process is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, cast

from strata.errors import ExecError, Interrupted, StrataError
from strata.modes import NetworkMode, SecurityMode
from strata.modes import Runtime as Runtime
from strata.sandbox import SandboxOptions
from strata.store.cachemounts import CacheMounts
from strata.store.root import StateRoot
from strata.worker.context import resolve_in_root
from strata.worker.mounts import RuntimeMount, prepare_mounts
from strata.worker.network import (
    NetworkUnavailable,
    PrivateNetwork,
    container_resolv_conf,
    private_network_available,
)
from strata.worker.snapshots.mount import MountSpec, mount_all, mount_one, unmount
from strata.worker.spec import (
    DEFAULT_HOSTNAME,
    build_spec,
    hosts_file,
    process_failed_message,
    resolv_conf,
)
from strata.worker.users import resolve_user
from strata.worker.watchdog import MARKER as WATCHDOG_MARKER

OutputCallback = Callable[[str, bytes, float], None]
"""Called with ("stdout" | "stderr", a chunk of output, unix time it was read).

A chunk is what one read of the pipe returned: it may hold several lines or end in the
middle of one (`printf 'waiting... '`). BuildKit sends each write of the process on as
one log record (`util/progress/logs/logs.go`) and its printers join partial lines, so
a line without its newline is on screen at once, not when the line ends or the step
exits. Consumers that want whole lines join the chunks of one stream themselves."""

FORWARDED_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)
MAX_CHUNK = 64 * 1024
KILL_RETRY_SECONDS = 0.02
# The run's bundle: config.json, /etc/hosts, /etc/resolv.conf, the runtime's log and
# the mount points of the root and of secrets.
BUNDLE_TMPFS_OPTIONS = ("nosuid", "nodev", "mode=0700", "size=64m")

WATCHDOG = "strata.worker.watchdog"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
_LIBC = ctypes.CDLL(None, use_errno=True)

__all__ = ["Executor", "OutputCallback", "ProcessSpec", "process_failed_message"]


def die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A `preexec_fn` asking the kernel to SIGKILL the child when the thread that
    started it dies (BuildKit's runc executor sets the same `PdeathSignal`); the kernel
    clears it only on fork and setuid exec, so it holds for the runtime. A parent that
    died before the call leaves the child to kill itself."""

    def set_signal() -> None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return set_signal


@dataclass(frozen=True)
class ProcessSpec:
    """What to run: argv, environment, working directory (created if missing), user
    (`name`, `uid`, `uid:gid`, `name:group`), hostname and extra /etc/hosts entries."""

    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    hostname: str = DEFAULT_HOSTNAME
    extra_hosts: tuple[tuple[str, str], ...] = ()
    # The build's `--shm-size`, `--ulimit`, `--cgroup-parent`, `--resource` (see
    # `strata.sandbox`; its extra hosts are `extra_hosts`). The default changes nothing.
    sandbox: SandboxOptions = field(default_factory=SandboxOptions)


def pick_runtime(requested: Runtime | None) -> str:
    """runc unless crun is asked for; crun when runc is not installed."""
    if requested is not None:
        if shutil.which(requested) is None:
            raise ExecError(f"OCI runtime {requested} is not installed")
        return requested
    for candidate in ("runc", "crun"):
        if shutil.which(candidate) is not None:
            return candidate
    raise ExecError("no OCI runtime found: install runc (or crun)")


@dataclass
class MountStubs:
    """Mount points the runtime will create in the root, and the times of the existing
    directories they go into, taken before the run."""

    paths: list[Path]
    parent_times: dict[Path, tuple[int, int]]


def resolve_in_container(rootfs: Path, path: str) -> Path:
    """`path` as the container sees it, on the host (`context.resolve_in_root`); a
    symlink loop is the run's failure, an `ExecError`."""
    try:
        return resolve_in_root(rootfs, path)
    except StrataError as err:
        raise ExecError(err.message) from None


def stub_paths(rootfs: Path, targets: Sequence[str]) -> MountStubs:
    """For each mount target, the missing target and missing ancestors up to the first
    one that exists, deepest first (BuildKit `executor/stubs.go`)."""
    stubs = MountStubs([], {})
    for target in targets:
        if target.strip("/") == "":
            continue
        path = resolve_in_container(rootfs, target)
        while path != rootfs:
            try:
                os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                stubs.paths.append(path)
                path = path.parent
                continue
            break
        if stubs.paths and stubs.paths[-1].parent == path and path not in stubs.parent_times:
            with contextlib.suppress(OSError):
                st = os.stat(path)
                stubs.parent_times[path] = (st.st_atime_ns, st.st_mtime_ns)
    return stubs


def remove_stubs(stubs: MountStubs) -> None:
    """Remove mount stubs that are still empty (empty dir, 0-byte file). BuildKit keeps
    the parent's times across the removal; we go further and give the parent back the
    times it had before the run, so creating the stub leaves no trace either (§2.4 of
    our BuildKit notes: "nothing is left")."""
    for path in stubs.paths:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            if any(os.scandir(path)):
                continue
        elif st.st_size != 0:
            continue
        parent = path.parent
        try:
            pst = os.stat(parent)
        except OSError:
            continue
        times = stubs.parent_times.get(parent, (pst.st_atime_ns, pst.st_mtime_ns))
        with contextlib.suppress(OSError):
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
        with contextlib.suppress(OSError):
            os.utime(parent, ns=times)


def config_targets(config: dict[str, object]) -> list[str]:
    """Mount destinations of a spec that live in the image's tree (not /proc, /dev...)."""
    mounts = config.get("mounts")
    assert isinstance(mounts, list)
    skip = ("/proc", "/dev", "/sys")
    return [
        str(m["destination"])
        for m in mounts
        if not any(
            str(m["destination"]) == p or str(m["destination"]).startswith(p + "/") for p in skip
        )
    ]


def stub_parents(rootfs: Path, targets: Sequence[str]) -> list[str]:
    """The existing directories above each mount target (relative, deepest first):
    creating a stub inside one makes overlayfs copy it up into the upper dir. Call
    before the run, while no stub exists yet."""
    found: list[str] = []
    for target in targets:
        path = resolve_in_container(rootfs, target).parent
        while path != rootfs and rootfs in path.parents:
            rel = str(path.relative_to(rootfs))
            if path.is_dir() and not path.is_symlink() and rel not in found:
                found.append(rel)
            path = path.parent
    return sorted(found, key=lambda r: r.count("/"), reverse=True)


def _overlay_option(rootfs: Sequence[MountSpec], name: str) -> str | None:
    for m in rootfs:
        if m.type == "overlay":
            for opt in m.options:
                key, _, value = opt.partition("=")
                if key == name:
                    return value
    return None


def _upper_dir_of(rootfs: Sequence[MountSpec]) -> Path | None:
    upper = _overlay_option(rootfs, "upperdir")
    return Path(upper) if upper else None


def _lower_dirs_of(rootfs: Sequence[MountSpec]) -> list[Path]:
    lowers = _overlay_option(rootfs, "lowerdir")
    return [Path(p) for p in lowers.split(":")] if lowers else []


def _comparable(path: Path) -> tuple[int, int, int, int, dict[str, bytes]] | None:
    try:
        st = os.lstat(path)
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return None
    xattrs = {
        n: os.getxattr(path, n, follow_symlinks=False)
        for n in names
        if not n.startswith("trusted.overlay.")
    }
    return (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, xattrs)


def prune_copied_up_dirs(upper: Path, lowers: Sequence[Path], rels: Sequence[str]) -> None:
    """Remove directories overlayfs copied up only because a mount stub was made in
    them: empty in the upper dir, not opaque, and identical to the lower directory they
    shadow. BuildKit's overlay differ leaves such unchanged directories out of the
    layer (`util/overlay/overlay_linux.go`); removing them keeps our diff the same.
    Runs after the overlay is unmounted (the upper dir must not change under a mount)."""
    for rel in rels:
        here = upper / rel
        try:
            if not here.is_dir() or here.is_symlink() or any(os.scandir(here)):
                continue
            if os.getxattr(here, "trusted.overlay.opaque", follow_symlinks=False) == b"y":
                continue
        except OSError:
            pass
        lower = next((lo / rel for lo in lowers if os.path.lexists(lo / rel)), None)
        if lower is None or not here.is_dir():
            continue
        if _comparable(here) == _comparable(lower):
            parent = here.parent
            pst = os.stat(parent)
            with contextlib.suppress(OSError):
                os.rmdir(here)
                os.utime(parent, ns=(pst.st_atime_ns, pst.st_mtime_ns))


def _runtime_error(log_path: Path) -> str | None:
    """The last error the runtime logged (JSON log lines), if any."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return None
    message = None
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            message = str(entry.get("msg", "")).strip() or message
    return message


def _pump_chunks(stream: IO[bytes], name: str, callback: OutputCallback) -> None:
    """Pass on what the process wrote to `stream` as soon as a read returns it.

    `read1` returns after one read of the pipe with whatever it holds, so no byte waits
    for a newline or for more output to fill a buffer."""
    reader = cast(io.BufferedReader, stream)
    try:
        while True:
            chunk = reader.read1(MAX_CHUNK)
            if not chunk:
                break
            callback(name, chunk, time.time())
    finally:
        stream.close()


def _without_runtime_report(chunk: bytes, error: str | None) -> bytes:
    """`chunk` less its last line when that line is the runtime's `error` report."""
    if error is None:
        return chunk
    head, _, last = chunk.rstrip(b"\n").rpartition(b"\n")
    if last.strip() != error.encode():
        return chunk
    return head + b"\n" if head else b""


def _write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd`; a closed or broken stderr just loses the output."""
    view = memoryview(data)
    with contextlib.suppress(OSError):
        while view:
            view = view[os.write(fd, view) :]


def without_runtime_report(log_path: Path, sink: OutputCallback) -> OutputCallback:
    """`sink` for the runtime's stderr, less the runtime's own report of a failure
    (see `pass_stderr_through`): a build step's log shows what its process wrote, not
    runc's `container process is already dead` when a cancelled step's container was
    killed as it started."""

    def copy(stream: str, chunk: bytes, at: float) -> None:
        try:
            logged = os.stat(log_path).st_size > 0
        except OSError:
            logged = False
        error = _runtime_error(log_path) if logged else None
        kept = _without_runtime_report(chunk, error)
        if kept:
            sink(stream, kept, at)

    return copy


def pass_stderr_through(log_path: Path, target_fd: int = 2) -> OutputCallback:
    """A sink that copies the runtime's stderr to `target_fd` as it comes, except the
    runtime's own report of a failure to start the container.

    runc writes a fatal error to its `--log` file and then prints it on stderr as well
    (runc `utils.go`, fatalWithCode); the executor raises that logged error as an
    `ExecError`, which the CLI prints, so passing runc's copy on would show the error
    twice. By the time the copy reaches the pipe the log holds it, so only a last line
    equal to the logged error is dropped; the container's own stderr, which shares the
    pipe, passes untouched. (crun may print before it logs; then its copy still shows.)"""

    def copy(stream: str, chunk: bytes, at: float) -> None:
        try:
            logged = os.stat(log_path).st_size > 0
        except OSError:
            logged = False
        error = _runtime_error(log_path) if logged else None
        _write_all(target_fd, _without_runtime_report(chunk, error))

    return copy


class _Starting:
    """A private network being made on a thread of its own (making it costs some ms of
    system calls and a process start that need not hold the step up)."""

    def __init__(self, start: Callable[[], PrivateNetwork | None]) -> None:
        self._network: PrivateNetwork | None = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._network = start()
            except BaseException as exc:  # handed to the caller by `result`
                self._error = exc

        self._thread = threading.Thread(target=run, name="private-network")
        self._thread.start()

    def result(self) -> PrivateNetwork | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._network

    def close(self) -> None:
        """Stop the network once the run is over (or failed before it began)."""
        self._thread.join()
        if self._network is not None:
            self._network.close()


class Executor:
    """Runs containers for one state root. Thread-safe: each `run` has its own bundle."""

    def __init__(
        self,
        root: StateRoot,
        runtime: Runtime | None = None,
        *,
        cache_mounts: CacheMounts | None = None,
    ) -> None:
        self.root = root
        self.runtime = pick_runtime(runtime)
        self.cache_mounts = cache_mounts
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._idle_bundles: list[Path] = []
        self._no_private_network: str | None = None  # why not, once known
        self._network_checked = False
        self._warned_host_network = False

    @property
    def state_dir(self) -> Path:
        """The runtime's `--root`, where StateRoot's reaper looks for leftovers."""
        return self.root.owner_dir() / "runc"

    def _runtime_cmd(self, *args: str) -> list[str]:
        return [self.runtime, "--root", str(self.state_dir), *args]

    def cancel(self) -> None:
        """Kill every container this executor runs; their `run` calls raise Interrupted.
        For engines whose runs happen off the main thread."""
        self._cancelled.set()
        with self._lock:
            running = list(self._running.items())
        for cid, proc in running:
            self._stop(cid, proc)

    def _kill(self, cid: str) -> bool:
        """SIGKILL the container; False when the runtime has no such running container."""
        done = subprocess.run(self._runtime_cmd("kill", cid, "KILL"), capture_output=True)
        return done.returncode == 0

    def _stop(self, cid: str, proc: subprocess.Popen[bytes]) -> None:
        """Kill container `cid` of runtime process `proc`, also when the runtime is still
        creating it: `kill` fails until the container exists, so a helper thread retries
        until it works or the runtime has exited. Otherwise a signal that arrives in the
        first milliseconds of a step would only take effect when the step ends."""

        def keep_killing() -> None:
            while proc.returncode is None and not self._kill(cid):
                time.sleep(KILL_RETRY_SECONDS)

        threading.Thread(target=keep_killing, name=f"stop-{cid}", daemon=True).start()

    def run(
        self,
        process: ProcessSpec,
        rootfs: Sequence[MountSpec],
        mounts: Sequence[RuntimeMount] = (),
        *,
        network: NetworkMode = "default",
        security: SecurityMode = "sandbox",
        seccomp_unconfined: bool = False,
        on_output: OutputCallback | None = None,
        stdin: int | IO[bytes] | None = None,
        tty: bool = False,
        forward_signals: bool = False,
    ) -> int:
        """Run `process` on the root assembled from `rootfs` mounts; return its exit code.

        Output goes to `on_output` in chunks as it is read (see `OutputCallback`), or
        when it is None to this process's stdout and stderr (stderr less the runtime's
        own copy of a start-up error, which the raised `ExecError` carries). `stdin` is passed through (default: /dev/null). With
        `forward_signals` (for `strata run`) SIGINT, SIGTERM and friends go to the
        container; otherwise SIGINT/SIGTERM kill it, everything is undone, and
        `Interrupted` is raised. The container runs under Docker's default seccomp
        profile unless `security` is `insecure` or `seccomp_unconfined` is set."""
        if self._cancelled.is_set():
            raise Interrupted()
        self._ensure_watchdog()
        bundle, in_memory = self._take_bundle_dir()
        disk_dirs: list[Path] = []

        def disk_scratch() -> Path:
            disk_dirs.append(self.root.mkdtemp("bindrw"))
            return disk_dirs[-1]

        try:
            with contextlib.ExitStack() as stack:
                starting: _Starting | None = None
                if network == "default":
                    # Made in the background while the root is mounted and the bundle
                    # written, and waited for only just before the runtime starts.
                    starting = _Starting(lambda: self._start_private_network(bundle, on_output))
                    stack.callback(starting.close)
                rootfs_dir = bundle / "rootfs"
                rootfs_dir.mkdir()
                after_unmount: list[Callable[[], None]] = []
                stack.callback(lambda: [f() for f in after_unmount])
                mount_all(rootfs, rootfs_dir)
                stack.callback(unmount, rootfs_dir)
                private = starting.result() if starting is not None else None
                config = self._prepare(
                    process,
                    rootfs_dir,
                    mounts,
                    network,
                    security,
                    tty,
                    stack,
                    disk_scratch,
                    private.path if private is not None else None,
                )
                if private is not None and not self._ready(private, on_output):
                    self._use_host_network(config, bundle)
                if seccomp_unconfined:  # `--security-opt seccomp=unconfined`
                    cast(dict[str, object], config["linux"]).pop("seccomp", None)
                upper = _upper_dir_of(rootfs)
                if upper is not None:
                    parents = stub_parents(rootfs_dir, config_targets(config))
                    after_unmount.append(
                        lambda: prune_copied_up_dirs(upper, _lower_dirs_of(rootfs), parents)
                    )
                (bundle / "config.json").write_text(json.dumps(config))
                cid = f"strata-{uuid.uuid4().hex[:16]}"
                return self._start(cid, bundle, process, on_output, stdin, forward_signals)
        finally:
            unmount(bundle)
            self._give_back_bundle_dir(bundle, in_memory)
            for d in disk_dirs:
                shutil.rmtree(d, ignore_errors=True)

    def _start_private_network(
        self, bundle: Path, on_output: OutputCallback | None
    ) -> PrivateNetwork | None:
        """The step's own network namespace behind slirp4netns (`strata.worker.network`),
        or None, after a one-line warning, when none can be made here: the step then
        shares the host's network, as every step did before strata had private ones."""
        if not self._network_checked:
            self._no_private_network = private_network_available()
            self._network_checked = True
        if self._no_private_network is None:
            try:
                return PrivateNetwork.start(bundle)
            except NetworkUnavailable as exc:
                self._no_private_network = str(exc)
        self._warn_host_network(on_output)
        return None

    def _ready(self, private: PrivateNetwork, on_output: OutputCallback | None) -> bool:
        """Whether slirp4netns got `private` ready; if not, warn (once) and say so."""
        try:
            private.wait_ready()
        except NetworkUnavailable as exc:
            self._no_private_network = str(exc)
            self._warn_host_network(on_output)
            return False
        return True

    @staticmethod
    def _use_host_network(config: dict[str, object], bundle: Path) -> None:
        """Turn a spec made for a private network into one on the host's network."""
        linux = cast(dict[str, object], config["linux"])
        namespaces = cast(list[dict[str, str]], linux["namespaces"])
        linux["namespaces"] = [ns for ns in namespaces if ns["type"] != "network"]
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""
        (bundle / "etc" / "resolv.conf").write_text(resolv_conf(host_resolv, "host"))

    def _warn_host_network(self, on_output: OutputCallback | None) -> None:
        """Say once per executor that steps get the host's network, and why."""
        with self._lock:
            if self._warned_host_network:
                return
            self._warned_host_network = True
        line = f"WARNING: RUN uses the host's network: {self._no_private_network}\n".encode()
        if on_output is not None:
            on_output("stderr", line, time.time())
        else:
            _write_all(2, line)

    def _ensure_watchdog(self) -> None:
        """Start the watchdog of this process's owner dir unless one runs: it reaps the
        containers if the process dies without cleaning up (see the module doc). The
        marker file, made with O_EXCL, makes it one per owner dir, not one per executor."""
        owner = self.root.owner_dir()
        try:
            os.close(os.open(owner / WATCHDOG_MARKER, os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return
        # Started in the background by a shell that exits at once, so the watchdog is
        # nobody's child here: nothing to wait for, no zombie, no lingering Popen.
        subprocess.run(
            ["/bin/sh", "-c", 'exec "$@" &', "sh", sys.executable, "-m", WATCHDOG, str(owner)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            check=False,
        )

    def _take_bundle_dir(self) -> tuple[Path, bool]:
        """A directory for one run's bundle, with a fresh tmpfs on it when possible (then
        True): the bundle's handful of small files would otherwise cost journaled creates
        and deletes on the state root's disk in every step. The empty mount points are
        reused for the same reason; the reaper removes them with this process's tmp."""
        with self._lock:
            bundle = self._idle_bundles.pop() if self._idle_bundles else None
        if bundle is None:
            bundle = self.root.mkdtemp("bundle")
        try:
            mount_one(MountSpec("tmpfs", "tmpfs", BUNDLE_TMPFS_OPTIONS), bundle)
        except OSError:  # where tmpfs may not be mounted: on disk, removed after the run
            return bundle, False
        return bundle, True

    def _give_back_bundle_dir(self, bundle: Path, in_memory: bool) -> None:
        """Keep an unmounted, empty bundle dir for the next run; remove anything else."""
        with contextlib.suppress(OSError):
            if in_memory and not os.listdir(bundle):
                with self._lock:
                    self._idle_bundles.append(bundle)
                return
        shutil.rmtree(bundle, ignore_errors=True)

    def _prepare(
        self,
        process: ProcessSpec,
        rootfs_dir: Path,
        mounts: Sequence[RuntimeMount],
        network: NetworkMode,
        security: SecurityMode,
        tty: bool,
        stack: contextlib.ExitStack,
        disk_scratch: Callable[[], Path],
        network_namespace: Path | None,
    ) -> dict[str, object]:
        user = resolve_user(rootfs_dir, process.user)
        cwd = process.cwd or "/"
        cwd_host = resolve_in_container(rootfs_dir, cwd)
        if not cwd_host.exists():
            # BuildKit creates a missing working directory (root-owned, 0755); it stays.
            cwd_host.mkdir(mode=0o755, parents=True)
        bundle = rootfs_dir.parent
        prepared = prepare_mounts(
            self.root,
            mounts,
            cwd=cwd,
            env=process.env,
            scratch=bundle,
            stack=stack,
            cache=self.cache_mounts,
            disk_scratch=disk_scratch,
        )
        stubs = stub_paths(rootfs_dir, ["/etc/resolv.conf", "/etc/hosts", *prepared.targets])
        stack.callback(remove_stubs, stubs)
        files = bundle / "etc"
        files.mkdir()
        hosts = files / "hosts"
        hosts.write_text(hosts_file(process.hostname, process.extra_hosts))
        resolv = files / "resolv.conf"
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""
        if network_namespace is not None:
            resolv.write_text(container_resolv_conf(host_resolv))
        else:
            resolv.write_text(resolv_conf(host_resolv, network))
        for f in (hosts, resolv):
            f.chmod(0o644)
        return build_spec(
            args=process.args,
            env=[*process.env, *prepared.env],
            cwd=cwd,
            user=user,
            hostname=process.hostname,
            network=network,
            security=security,
            tty=tty,
            hosts_path=hosts,
            resolv_path=resolv,
            mounts=prepared.oci_mounts,
            rootfs=str(rootfs_dir),
            network_namespace=str(network_namespace) if network_namespace else None,
            sandbox=process.sandbox,
        )

    def _start(
        self,
        cid: str,
        bundle: Path,
        process: ProcessSpec,
        on_output: OutputCallback | None,
        stdin: int | IO[bytes] | None,
        forward_signals: bool,
    ) -> int:
        log_path = bundle / "runtime.log"
        cmd = self._runtime_cmd(
            "--log", str(log_path), "--log-format", "json", "run", "--bundle", str(bundle), cid
        )
        # Without a consumer, stdout goes straight to ours; stderr still passes through
        # us so the runtime's copy of its own start-up error can be left out.
        stdout_sink = on_output
        stderr_sink = (
            without_runtime_report(log_path, on_output)
            if on_output is not None
            else pass_stderr_through(log_path)
        )
        with self._signals(cid, forward_signals) as received:
            proc = subprocess.Popen(
                cmd,
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_sink is not None else None,
                stderr=subprocess.PIPE,
                start_new_session=not forward_signals,
                preexec_fn=die_with_parent(os.getpid()),
            )
            with self._lock:
                self._running[cid] = proc
            if (received and not forward_signals) or self._cancelled.is_set():
                self._stop(cid, proc)
            readers: list[threading.Thread] = []
            for stream, name, sink in (
                (proc.stdout, "stdout", stdout_sink),
                (proc.stderr, "stderr", stderr_sink),
            ):
                if stream is not None and sink is not None:
                    t = threading.Thread(target=_pump_chunks, args=(stream, name, sink))
                    t.start()
                    readers.append(t)
            try:
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    self._stop(cid, proc)
                    proc.wait()
                for t in readers:
                    t.join()
                if received or self._cancelled.is_set() or proc.returncode != 0:
                    # `run` deletes a container that exits normally; only a killed or
                    # failed one may linger in the runtime's state dir.
                    subprocess.run(self._runtime_cmd("delete", "--force", cid), capture_output=True)
                with self._lock:
                    self._running.pop(cid, None)
        if received and not forward_signals:
            raise Interrupted(signal_number=received[0])
        if self._cancelled.is_set():
            raise Interrupted()
        if code < 0:
            code = 128 - code
        if code != 0:
            error = _runtime_error(log_path)
            if error is not None:
                raise ExecError(self._explain(error), exit_status=code)
        return code

    def _explain(self, error: str) -> str:
        if "cgroups in hybrid mode not supported" in error:
            return (
                f"{self.runtime} cannot start containers on this host: {error} "
                "(the host mounts cgroup v1 and v2 side by side; use runc instead)"
            )
        return f"{self.runtime}: {error}"

    @contextlib.contextmanager
    def _signals(self, cid: str, forward: bool) -> Iterator[list[int]]:
        """Install signal handlers for one run when on the main thread: either forward
        to the runtime (which passes them to the container) or stop the wait."""
        received: list[int] = []
        if threading.current_thread() is not threading.main_thread():
            yield received
            return
        wanted = FORWARDED_SIGNALS if forward else (signal.SIGINT, signal.SIGTERM)
        previous: dict[int, object] = {}

        def handler(signum: int, frame: FrameType | None) -> None:
            # No `self._lock` here: the handler runs on the main thread, which may be
            # inside `with self._lock:` when the signal lands, and would wait for
            # itself. A single dict lookup is atomic under the GIL.
            proc = self._running.get(cid)
            if forward:
                if proc is not None and proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signum)
                return
            # Runs on the main thread between waitpid retries: kill, and let the wait end.
            received.append(signum)
            if proc is not None:
                self._stop(cid, proc)

        for wanted_signal in wanted:
            previous[wanted_signal] = signal.signal(wanted_signal, handler)
        try:
            yield received
        finally:
            for restored, old in previous.items():
                signal.signal(restored, old)  # type: ignore[arg-type]

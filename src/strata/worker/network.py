"""A private network for one container: its own network namespace, with outbound
access through slirp4netns, a user-mode NAT.

`docker build` gives each step its own network namespace behind a bridge. strata has
no bridge (no daemon to own one), so like rootless BuildKit and Podman it connects the
step's namespace with slirp4netns: a tap device inside (10.0.2.100/24, gateway
10.0.2.2, DNS forwarder 10.0.2.3) whose packets slirp4netns turns into ordinary
sockets of the host. A step can fetch packages, but it cannot see or inject the host's
traffic (its raw sockets see only its own tap), and with `--disable-host-loopback` it
cannot reach services bound to the host's 127.0.0.1 either (Docker's bridge cannot).

The namespace is made in a short-lived thread (`unshare(CLONE_NEWNET)` moves only the
calling thread) and bind-mounted on a file, so slirp4netns can be connected to it
before the container starts and the runtime joins it by path. Costs per step: making
the namespace (about 1 ms) and starting slirp4netns (a few ms, overlapped with mounting
the step's root); stopping slirp4netns waits for the kernel to tear its tap device
down (some 20 ms), so that wait happens in the background. slirp4netns ends with
strata: its `--exit-fd` is a pipe whose other end only strata holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import subprocess
import threading
from pathlib import Path

SLIRP4NETNS = "slirp4netns"
SLIRP_DNS = "10.0.2.3"
# slirp4netns's maximum; a large MTU makes bulk transfers through the NAT much faster
# (rootlesskit and Podman use it too).
SLIRP_MTU = 65520
READY_TIMEOUT_SECONDS = 30.0

CLONE_NEWNET = 0x40000000  # linux/sched.h
MS_BIND = 4096  # linux/mount.h
MNT_DETACH = 2
_LIBC = ctypes.CDLL(None, use_errno=True)


class NetworkUnavailable(Exception):
    """A private network cannot be made here; the message says why, in a few words."""


def private_network_available() -> str | None:
    """None when private networks can be made here, else why not."""
    if shutil.which(SLIRP4NETNS) is None:
        return "slirp4netns is not installed"
    return None


def _new_namespace_at(path: Path) -> None:
    """A new network namespace, kept alive by a bind mount on the (existing) file
    `path`. Done in a thread of its own: unshare moves only the calling thread into
    the new namespace, and the thread ends right after, so no other work ever runs in
    it."""
    errors: list[str] = []

    def make() -> None:
        if _LIBC.unshare(CLONE_NEWNET) != 0:
            errors.append(f"unshare: {os.strerror(ctypes.get_errno())}")
            return
        source = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        if _LIBC.mount(source, os.fsencode(path), None, MS_BIND, None) != 0:
            errors.append(f"mount: {os.strerror(ctypes.get_errno())}")

    thread = threading.Thread(target=make, name="netns")
    thread.start()
    thread.join()
    if errors:
        raise NetworkUnavailable(f"cannot make a network namespace ({errors[0]})")


class PrivateNetwork:
    """One step's network namespace (`path`) and the slirp4netns serving it. Start with
    `PrivateNetwork.start`, call `wait_ready` before the container starts, `close`
    after it ended."""

    def __init__(
        self, path: Path, slirp: subprocess.Popen[bytes], ready_fd: int, exit_fd: int
    ) -> None:
        self.path = path
        self._slirp = slirp
        self._ready_fd: int | None = ready_fd
        self._exit_fd: int | None = exit_fd

    @classmethod
    def start(cls, directory: Path) -> PrivateNetwork:
        """Make the namespace on `directory/netns` and start slirp4netns on it (without
        waiting for it to be ready). Raises NetworkUnavailable."""
        path = directory / "netns"
        try:
            path.touch()
        except OSError as exc:
            raise NetworkUnavailable(f"cannot make {path} ({exc.strerror})") from None
        try:
            _new_namespace_at(path)
        except NetworkUnavailable:
            path.unlink()
            raise
        read_end, write_end = os.pipe()
        # slirp4netns exits when its --exit-fd reads EOF: the other end is ours alone
        # (not inherited), so it closes however strata ends, SIGKILL included.
        exit_read, exit_write = os.pipe()
        try:
            slirp = subprocess.Popen(
                [
                    SLIRP4NETNS,
                    "--configure",
                    f"--mtu={SLIRP_MTU}",
                    "--disable-host-loopback",
                    "--netns-type=path",
                    f"--ready-fd={write_end}",
                    f"--exit-fd={exit_read}",
                    str(path),
                    "tap0",
                ],
                pass_fds=(write_end, exit_read),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_end)
            os.close(exit_write)
            _unmount_namespace(path)
            raise NetworkUnavailable(f"cannot start slirp4netns ({exc.strerror})") from None
        finally:
            os.close(write_end)
            os.close(exit_read)
        return cls(path, slirp, read_end, exit_write)

    def wait_ready(self) -> None:
        """Return once slirp4netns has configured the namespace; raise
        NetworkUnavailable (and clean up) if it exits or stalls first."""
        fd = self._ready_fd
        if fd is None:
            return
        self._ready_fd = None
        try:
            readable, _, _ = select.select([fd], [], [], READY_TIMEOUT_SECONDS)
            ready = bool(readable) and os.read(fd, 1) == b"1"
        finally:
            os.close(fd)
        if not ready:
            code = self._slirp.poll()
            self.close()
            why = "did not get ready" if code is None else f"exited with status {code}"
            raise NetworkUnavailable(f"slirp4netns {why}")

    def close(self) -> None:
        """Stop slirp4netns and drop the namespace. The kernel takes some 20 ms to tear
        the tap device down when slirp4netns exits; a background thread waits for that
        so the step does not."""
        for fd in (self._ready_fd, self._exit_fd):
            if fd is not None:
                os.close(fd)
        self._ready_fd = self._exit_fd = None
        slirp = self._slirp
        with contextlib.suppress(ProcessLookupError):
            slirp.kill()
        threading.Thread(target=slirp.wait, name="slirp-reaper", daemon=True).start()
        _unmount_namespace(self.path)


def _unmount_namespace(path: Path) -> None:
    _LIBC.umount2(os.fsencode(path), MNT_DETACH)
    with contextlib.suppress(OSError):
        path.unlink()


def container_resolv_conf(host_text: str) -> str:
    """/etc/resolv.conf for a private network: the host's, with loopback nameservers
    (unreachable from the step's namespace) replaced by slirp4netns's forwarder, which
    asks the host's resolver from the host's side; the forwarder alone if none is left."""
    lines: list[str] = []
    servers = 0
    forwarder_added = False
    for line in host_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "nameserver" and len(fields) > 1:
            addr = fields[1]
            if addr.startswith("127.") or addr == "::1" or ":" in addr:
                # Loopback, or IPv6 (the NAT here is IPv4 only).
                if not forwarder_added:
                    lines.append(f"nameserver {SLIRP_DNS}")
                    forwarder_added = True
                    servers += 1
                continue
            servers += 1
        lines.append(line)
    if servers == 0:
        lines.append(f"nameserver {SLIRP_DNS}")
    return "\n".join(lines) + "\n"

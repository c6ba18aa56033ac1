"""SSH agent sockets for `RUN --mount=type=ssh`.

A container gets its own socket, owned and moded as the mount asks, never the host's
socket itself (changing that one's owner or mode would change the host). Either it
forwards to an agent the user already runs ($SSH_AUTH_SOCK), through `AgentProxy`, or
it is the socket of an `ssh-agent` we start and load with the given key files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from strata.errors import ExecError


@contextlib.contextmanager
def short_socket_path(path: Path) -> Iterator[str]:
    """A name for `path` that fits a Unix socket address (108 bytes): the directory
    reached through an fd of ours under /proc, as long as the block runs."""
    if len(str(path)) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/{os.getpid()}/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class AgentProxy:
    """A Unix socket at `listen` that forwards each connection to `upstream`."""

    def __init__(self, upstream: Path, listen: Path) -> None:
        self.upstream = upstream
        self.listen = listen
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with short_socket_path(listen) as path:
            self._server.bind(path)
        self._server.listen(16)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="ssh-agent-proxy", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                with short_socket_path(self.upstream) as address:
                    upstream.connect(address)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._thread.join(timeout=5)


def _wait_for_socket(sock: Path, agent: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while not sock.exists():
        if agent.poll() is not None or time.monotonic() > deadline:
            agent.kill()
            agent.wait()
            raise ExecError("ssh-agent did not start")
        time.sleep(0.01)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def agent_socket(
    directory: Path,
    *,
    upstream: Path | None = None,
    key_files: Sequence[Path] = (),
    uid: int = 0,
    gid: int = 0,
    mode: int = 0o600,
) -> Iterator[Path]:
    """A socket in `directory` serving SSH agent requests for the `with` block."""
    sock = directory / "agent.sock"
    with contextlib.ExitStack() as serving:
        if upstream is not None:
            serving.callback(AgentProxy(upstream, sock).close)
        else:
            serving.callback(_stop_agent, _start_agent(sock, key_files))
        os.chown(sock, uid, gid)
        os.chmod(sock, mode)
        yield sock


def _start_agent(sock: Path, key_files: Sequence[Path]) -> subprocess.Popen[bytes]:
    """An `ssh-agent` listening on `sock`, loaded with `key_files`."""
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        raise ExecError("ssh mounts with key files need ssh-agent and ssh-add (openssh-client)")
    with short_socket_path(sock) as address:
        agent = subprocess.Popen(
            ["ssh-agent", "-D", "-a", address],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_socket(sock, agent)
            for key in key_files:
                added = subprocess.run(
                    ["ssh-add", str(key)],
                    env={**os.environ, "SSH_AUTH_SOCK": address},
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                )
                if added.returncode != 0:
                    raise ExecError(f"cannot load ssh key {key}: {added.stderr.strip()}")
        except BaseException:
            _stop_agent(agent)
            raise
    return agent


def _stop_agent(agent: subprocess.Popen[bytes]) -> None:
    agent.terminate()
    agent.wait()

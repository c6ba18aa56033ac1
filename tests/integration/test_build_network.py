"""RUN networking: `default` is the step's own network namespace with outbound access
through slirp4netns (a server on the host's address answers, the host's loopback does
not); `host` is the host's network (behind `--allow network.host`); `none` reaches
nothing but its own loopback."""

from __future__ import annotations

import http.server
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the network\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def host_address() -> str:
    """This host's address on its default route (no packet is sent to find it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))
        except OSError:
            pytest.skip("the host has no IPv4 route off loopback")
        address = str(probe.getsockname()[0])
    if address.startswith("127."):
        pytest.skip("the host has no IPv4 address off loopback")
    return address


@pytest.fixture
def server_port() -> Iterator[int]:
    """An HTTP server on all of the host's addresses, loopback included."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def needs_slirp() -> None:
    if shutil.which("slirp4netns") is None:
        pytest.skip("private networks need slirp4netns (scripts/install-deps.sh)")


def test_default_network_reaches_a_server_and_none_does_not(
    build_root: Path, tmp_path: Path, server_port: int
) -> None:
    url = f"http://{host_address()}:{server_port}/"
    project = write_project(
        tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN wget -q -O /got {url} && cat /got\n"
    )
    run = strata(build_root, "build", "--progress=plain", str(project))
    assert run.returncode == 0, run.stderr.decode()
    assert "hello from the network" in run.stderr.decode()

    isolated = write_project(
        tmp_path / "q", f"FROM {BUSYBOX_IMAGE}\nRUN --network=none wget -q -T 5 -O /got {url}\n"
    )
    refused = strata(build_root, "build", "--progress=plain", str(isolated))
    assert refused.returncode == 1
    assert "did not complete successfully" in refused.stderr.decode()


def test_default_network_is_private_and_host_network_is_the_hosts(
    build_root: Path, tmp_path: Path, server_port: int
) -> None:
    needs_slirp()
    # The host's loopback, by its own name and by slirp4netns's gateway (which would
    # forward to it without --disable-host-loopback), is out of a step's reach...
    loopback = f"http://127.0.0.1:{server_port}/"
    gateway = f"http://10.0.2.2:{server_port}/"
    dockerfile = (
        f"FROM {BUSYBOX_IMAGE}\n"
        f"RUN if wget -q -T 5 -O- {loopback}; then echo reached-loopback; fi; "
        f"if wget -q -T 5 -O- {gateway}; then echo reached-gateway; fi; "
        "ip -o -4 addr show; echo private-step-done\n"
    )
    run = strata(
        build_root, "build", "--progress=plain", str(write_project(tmp_path / "p", dockerfile))
    )
    log = run.stderr.decode()
    assert run.returncode == 0, log
    assert "private-step-done" in log
    assert "hello from the network" not in log
    # Its own interface behind the NAT, not the host's.
    assert "inet 10.0.2.100/24" in log and f"inet {host_address()}/" not in log
    # ...while with the host's network it is reachable as on the host.
    host_step = f"FROM {BUSYBOX_IMAGE}\nRUN --network=host wget -q -O- {loopback}\n"
    run = strata(
        build_root,
        "build",
        "--progress=plain",
        "--allow",
        "network.host",
        str(write_project(tmp_path / "q", host_step)),
    )
    assert run.returncode == 0, run.stderr.decode()
    assert "hello from the network" in run.stderr.decode()


# Counts the UDP datagrams that reach 127.0.0.1:PORT within SECONDS and prints
# `received=N`. C, built static: the busybox image has no UDP listener.
UDP_LISTENER_C = r"""
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
int main(int argc, char **argv) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(atoi(argv[1]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("bind"); return 1; }
    printf("listening\n");
    fflush(stdout);
    struct timeval tick = {0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
    time_t end = time(NULL) + atoi(argv[2]);
    int received = 0;
    char buf[256];
    while (time(NULL) < end) {
        if (recv(fd, buf, sizeof buf, 0) > 0) received++;
    }
    printf("received=%d\n", received);
    return 0;
}
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_step_cannot_receive_what_the_host_sends_to_its_loopback(
    build_root: Path, tmp_path: Path
) -> None:
    needs_slirp()
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc (with static libc) to build the UDP listener")
    project = tmp_path / "p"
    project.mkdir()
    (project / "listen.c").write_text(UDP_LISTENER_C)
    built = subprocess.run(
        ["gcc", "-static", "-O", "-o", str(project / "listen"), str(project / "listen.c")],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build a static probe here: {built.stderr.strip()[:200]}")
    port = free_udp_port()
    write_project(
        project,
        f"FROM {BUSYBOX_IMAGE}\nCOPY listen /listen\n"
        f"RUN /listen {port} 3 | sed s/^/private-/\n"
        f"RUN --network=host /listen {port} 3 | sed s/^/host-/\n",
    )
    stop = threading.Event()

    def send_to_loopback() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            while not stop.wait(0.02):
                out.sendto(b"a host datagram", ("127.0.0.1", port))

    sender = threading.Thread(target=send_to_loopback)
    sender.start()
    try:
        run = strata(
            build_root,
            "build",
            "--progress=plain",
            "--allow",
            "network.host",
            str(project),
        )
    finally:
        stop.set()
        sender.join(10)
    log = run.stderr.decode()
    assert run.returncode == 0, log
    counts = dict(re.findall(r"(private|host)-received=(\d+)", log))
    assert counts["private"] == "0", log
    # The host's network hears them: the probe can see what it is meant to miss.
    assert int(counts["host"]) > 0, log

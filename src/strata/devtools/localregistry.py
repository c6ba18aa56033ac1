"""Debian's `docker-registry` (distribution 2.8) on a free 127.0.0.1 port, for the demo
and the benchmarks: a real registry to pull from, with no network beyond loopback.

    with LocalRegistry(Path(".cache/registry")) as registry:
        print(registry.address)       # 127.0.0.1:41233
        seed_image(registry, oci_archive, "library/python:3.11")

The storage directory persists between runs, so an image seeded once is served again
(the port is new each time: write the configuration that points at it after starting).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

LISTENING = re.compile(r"listening on (?:\[::\]|127\.0\.0\.1|[\d.]+):(\d+)")
START_TIMEOUT = 20.0


class LocalRegistryError(Exception):
    """The registry binary is missing or did not start (with its log's tail)."""


class LocalRegistry:
    """A `docker-registry serve` process with its storage under `directory`."""

    def __init__(self, directory: Path, *, extra_config: str = "") -> None:
        self.directory = directory.absolute()
        self.extra_config = extra_config
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalRegistry:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise LocalRegistryError(
                "docker-registry is not installed (Debian package docker-registry)"
            )
        storage = self.directory / "data"
        storage.mkdir(parents=True, exist_ok=True)
        config = self.directory / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: info\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {storage}\n"
            "  delete:\n    enabled: true\n"
            "http:\n  addr: 127.0.0.1:0\n"
            + self.extra_config
        )
        log_path = self.directory / "registry.log"
        log = open(log_path, "wb")  # noqa: SIM115 - owned by the process's lifetime
        self._process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = LISTENING.search(log_path.read_text(errors="replace"))
            if found is not None:
                self.port = int(found.group(1))
                return self
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        tail = log_path.read_text(errors="replace")[-2000:]
        raise LocalRegistryError(f"docker-registry did not start:\n{tail}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log(self) -> str:
        """Everything the registry logged (its access log counts requests)."""
        path = self.directory / "registry.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def has_image(registry: LocalRegistry, repository: str, tag: str) -> bool:
    """Whether the registry serves `repository:tag` (asked with skopeo)."""
    done = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{registry.address}/{repository}:{tag}",
        ],
        capture_output=True,
    )
    return done.returncode == 0


def seed_image(registry: LocalRegistry, oci_archive: Path, target: str) -> None:
    """Copy an OCI archive (`strata save --format oci`) to `repository:tag` with skopeo."""
    done = subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci-archive:{oci_archive}",
            f"docker://{registry.address}/{target}",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise LocalRegistryError(f"skopeo copy to {target} failed: {done.stderr.strip()}")

"""`make demo`: Docker's build guide, "Mounts" section, command for command with strata.

The guide's commands are run as written, by the shell, from inside a copy of
examples/guide (.cache/demo-project), with `docker build` / `docker builder prune` /
`docker run` spelled `strata build` / `strata prune` / `strata run`. The guide's Go
module download becomes pip's, against a package index served from the build context,
and its `go get chi@v5.0.8` becomes `python3 index/pin.py greetings==1.1`, run in a
container with the project bind-mounted at its own path as the guide does.

The guide's Dockerfile starts `FROM python:3.11`, a Docker Hub name, as a real project's
would. Docker Hub is out of reach here, so the demo starts Debian's `docker-registry` on
127.0.0.1, seeds it once with a Python image made from Debian's packages
(`strata.devtools.pyimage`), and points strata at it as docker.io's mirror
(`.cache/demo-strata.toml`, passed as `STRATA_CONFIG`): strata pulls it as it would from
Docker Hub, and the log shows `[internal] load metadata for docker.io/library/python:3.11`
and the layer downloads.

The state root is `.cache/demo-root`, passed as `STRATA_ROOT` so the commands read as in
the guide; it is kept between runs and, as in the guide, `strata prune -af` clears its
build cache first. Each command is printed before its output; the first one that fails
stops the demo (with the tail of its log when it wrote one).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from strata.devtools.localregistry import LocalRegistry, LocalRegistryError, has_image, seed_image

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache"
GUIDE = REPO / "examples" / "guide"
ROOT = CACHE / "demo-root"
PROJECT = CACHE / "demo-project"
CONFIG = CACHE / "demo-strata.toml"
LOG_REDIRECT = re.compile(r"2> (\S+)")

# The Python base image stands in for the guide's golang image; it is made once from
# Debian's packages in a root of its own, saved as an OCI archive and pushed to the
# local registry that serves as docker.io's mirror.
BASE_IMAGE = "python:3.11"
SEED_ROOT = CACHE / "demo-seed-root"
SEED_ARCHIVE = CACHE / "demo-seed-python-3.11.oci.tar"
SETUP = (
    f"python -m strata.devtools.pyimage --cache .cache/strata-example --root {SEED_ROOT}"
    f" --name {BASE_IMAGE}"
)

# (what the guide says at this point, the command) in the guide's order.
GUIDE_STEPS: tuple[tuple[str, str], ...] = (
    ("Before you rebuild the image, clear your build cache.", "strata prune -af"),
    (
        "Rebuild, with --progress=plain, redirecting the output to a log file.",
        "strata build --target=client --progress=plain . 2> log1.txt",
    ),
    (
        "The base image came from the registry: its metadata, then its layers.",
        r"grep -E 'load metadata|sha256:[0-9a-f]{64} .*B / .* done' log1.txt",
    ),
    ("The log shows how the packages were downloaded.", "awk '/Downloading/' log1.txt"),
    (
        "Change the version of one of the packages the program imports.",
        'strata run -v "$PWD:$PWD" -w "$PWD" python:3.11 '
        "python3 index/pin.py greetings==1.1",
    ),
    ("Run another build.", "strata build --target=client --progress=plain . 2> log2.txt"),
    (
        "Only the changed package was downloaded: the cache mount kept the others.",
        "awk '/Downloading/' log2.txt",
    ),
    ("strata also says why the step ran again.", "grep 'cache miss' log2.txt"),
    ("Clear the build cache, cache mounts included.", "strata prune -af"),
    ("And build again.", "strata build --target=client --progress=plain . 2> log3.txt"),
    ("Every package is downloaded again.", "awk '/Downloading/' log3.txt"),
    (
        "The server target reuses the base stage from the cache.",
        "strata build --target=server --progress=plain . 2> log4.txt",
    ),
    ("", r"awk '/\[(base|build-server) |CACHED/' log4.txt"),
    (
        "The client image is FROM scratch: export its files and run the archive.",
        "strata build -q --target=client -o type=local,dest=out .",
    ),
    (
        "",
        'strata run -v "$PWD:$PWD" -w "$PWD" python:3.11 python3 out/bin/client.pyz',
    ),
)


def environment() -> dict[str, str]:
    """This environment with the state root set and the venv's commands first."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join([bin_dir, os.environ.get("PATH", "/usr/bin:/bin")])
    return dict(os.environ, STRATA_ROOT=str(ROOT), STRATA_CONFIG=str(CONFIG), PATH=path)


def shell(command: str, cwd: Path, env: dict[str, str]) -> bool:
    """Print `command` as typed, run it with sh in `cwd`, and report whether it worked."""
    print(f"$ {command}", flush=True)
    done = subprocess.run(["sh", "-c", command], cwd=cwd, env=env)
    if done.returncode == 0:
        return True
    print(f"(failed: exit status {done.returncode})", file=sys.stderr)
    redirected = LOG_REDIRECT.search(command)
    if redirected is not None:
        log = cwd / redirected.group(1)
        if log.exists():
            tail = log.read_text(errors="replace").splitlines()[-30:]
            print("\n".join(tail), file=sys.stderr)
    return False


def fresh_project() -> None:
    """A new copy of examples/guide, so the pin step always starts from greetings 1.0."""
    if PROJECT.exists():
        shutil.rmtree(PROJECT)
    shutil.copytree(GUIDE, PROJECT)


def seed_registry(registry: LocalRegistry, env: dict[str, str]) -> bool:
    """Put python:3.11 into the local registry once (it keeps its storage)."""
    if has_image(registry, "library/python", "3.11"):
        return True
    if not SEED_ARCHIVE.exists():
        if not shell(SETUP, REPO, env):
            return False
        save = f"strata --root {SEED_ROOT} save --format oci -o {SEED_ARCHIVE} {BASE_IMAGE}"
        if not shell(save, REPO, env):
            return False
    print(f"$ skopeo copy oci-archive:{SEED_ARCHIVE.relative_to(REPO)} "
          f"docker://{registry.address}/library/python:3.11")
    seed_image(registry, SEED_ARCHIVE, "library/python:3.11")
    return True


def write_config(registry: LocalRegistry) -> None:
    """docker.io's mirror is the local registry (plain HTTP: it is on loopback)."""
    CONFIG.write_text(f'[registry."docker.io"]\n  mirrors = ["{registry.address}"]\n')


def main() -> int:
    started = time.monotonic()
    env = environment()
    fresh_project()
    print("# Docker's guide to cache and bind mounts, with strata.")
    try:
        with LocalRegistry(CACHE / "demo-registry") as registry:
            print(f"# A local registry stands in for Docker Hub: {registry.address}")
            write_config(registry)
            if not seed_registry(registry, env):
                return 1
            print(f"$ cat {CONFIG.relative_to(REPO)}")
            print(CONFIG.read_text(), end="")
            print(f"$ export STRATA_ROOT=$PWD/{ROOT.relative_to(REPO)}")
            print(f"$ export STRATA_CONFIG=$PWD/{CONFIG.relative_to(REPO)}")
            print(f"$ cd {PROJECT.relative_to(REPO)}    # a copy of examples/guide")
            for said, command in GUIDE_STEPS:
                if said:
                    print(f"\n# {said}")
                if not shell(command, PROJECT, env):
                    return 1
    except LocalRegistryError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"\n# done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

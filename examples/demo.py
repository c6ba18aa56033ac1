"""`make demo`: Docker's build guide ("Mounts") with strata, on examples/guide.

1. make the Python base image (Debian packages, downloaded once into .cache/) and import it;
2. build the client with a cache mount for pip: every package is downloaded;
3. add one dependency and rebuild: only that one is downloaded;
4. prune the build cache (`strata prune -af`) and rebuild: everything is downloaded again.

Each build's log goes to a file; the demo prints the `Downloading` lines of each, as the
guide does with `awk '/proxy.golang.org/' log1.txt`. It uses its own state root in
.cache/demo-root, emptied at the start, so it never touches /var/lib/strata.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
STRATA = Path(sys.executable).with_name("strata")
CACHE = REPO / ".cache"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(STRATA), *args], capture_output=True, text=True)


def show(title: str, command: str) -> None:
    print(f"\n== {title}\n$ {command}", flush=True)


def build(root: Path, project: Path, log: Path) -> bool:
    show(
        f"build the client, log in {log.name}",
        f"strata build --target=client --progress=plain . 2> {log.name}",
    )
    proc = run("--root", str(root), "build", "--target=client", "--progress=plain", str(project))
    log.write_text(proc.stderr)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        print(f"build failed (exit {proc.returncode})", file=sys.stderr)
        return False
    print(f"$ awk '/Downloading/' {log.name}")
    for line in proc.stderr.splitlines():
        if "Downloading" in line:
            print(line)
    cached = sum(1 for line in proc.stderr.splitlines() if line.endswith(" CACHED"))
    print(f"({cached} steps cached)")
    return True


def main() -> int:
    root = CACHE / "demo-root"
    work = CACHE / "demo-project"
    for path in (root, work):
        if path.exists():
            subprocess.run(["umount", "-R", "-l", str(path)], capture_output=True)
            shutil.rmtree(path)
    shutil.copytree(HERE / "guide", work)
    show("make the Python base image", "python -m strata.devtools.pyimage")
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "strata.devtools.pyimage",
            "--cache",
            str(CACHE / "strata-example"),
            "--root",
            str(root),
        ],
        text=True,
    )
    if made.returncode != 0:
        return made.returncode
    if not build(root, work, work / "log1.txt"):
        return 1
    requirements = work / "requirements.txt"
    show("add a dependency", "echo wordcount==1.0 >> requirements.txt")
    requirements.write_text(requirements.read_text() + "wordcount==1.0\n")
    if not build(root, work, work / "log2.txt"):
        return 1
    show("clear the build cache", "strata prune -af")
    pruned = run("--root", str(root), "prune", "-af")
    if pruned.returncode != 0:
        print("(strata prune is not available yet: skipping the last step)")
        return 0
    print(pruned.stdout, end="")
    if not build(root, work, work / "log3.txt"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

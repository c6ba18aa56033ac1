"""strata beside BuildKit: issue 13's speed table, both builders timed as whole processes.

    python bench/buildkit.py [--runs 3] [--only NAME ...]

Starts a private dockerd (Debian's docker.io, BuildKit 0.8 inside; `make bench` installs
it through scripts/install-docker.sh) on a socket, data root and exec root under
`.cache/buildkit-bench/`, without iptables or a bridge, and stops it at the end. Both
builders get the same busybox root file system under the same name (`docker import`,
`strata import`), and each benchmark runs through strata and then BuildKit
(`DOCKER_BUILDKIT=1 docker -H unix://... build`), timed as client processes from start
to exit, median of `--runs`. strata runs with PYTHONDONTWRITEBYTECODE unset and its
bytecode compiled, as users run it. When dockerd cannot start here, the reason is
printed and strata runs alone. Needs root (both builders mount and run containers).

The benchmarks:
- cold: a 4-stage Dockerfile with 10 RUNs, `--no-cache`;
- no-op: the same rebuilt with everything cached;
- edit: `COPY . /app` of 5,000 files (100 MB), rebuilt after one small file changed;
- export: one 300 MB layer (`COPY` of a 300 MB file, `--no-cache`) exported as a docker
  archive: strata's `-o type=docker,dest=...`; BuildKit 0.8 in dockerd has no docker
  exporter, so its time is `docker build` plus `docker save` (two processes, summed);
- deps: a cache-mount dependency flow, 200 packages installed, then one more added: a
  RUN with a cache mount "downloads" (copies from a package repository bound from the
  context) what the cache lacks and unpacks every package.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.rootfs import busybox_available, make_busybox_rootfs  # noqa: E402

CACHE = REPO / ".cache" / "buildkit-bench"
DOCKER_CLIENTS = ("/usr/bin/docker", "docker")  # Debian's client first: it matches dockerd
BASE = "busybox:bench"

MULTI_STAGE = """\
FROM busybox:bench AS base
RUN echo base > /base.txt
RUN mkdir -p /out && echo 1 > /out/one
FROM base AS left
RUN echo left > /left.txt
RUN cat /base.txt /left.txt > /l.txt
RUN wc -c /l.txt > /l.size
FROM base AS right
RUN echo right > /right.txt
RUN cat /base.txt /right.txt > /r.txt
RUN wc -c /r.txt > /r.size
FROM base
COPY --from=left /l.txt /l.size /
COPY --from=right /r.txt /r.size /
RUN cat /l.txt /r.txt > /both.txt
RUN ls / > /listing
"""

COPY_ALL = "FROM busybox:bench\nCOPY . /app\n"
BIG_LAYER = "FROM busybox:bench\nCOPY big.dat /big.dat\n"
DEPS = """\
FROM busybox:bench
COPY requirements.txt /requirements.txt
RUN --mount=type=cache,target=/cache --mount=type=bind,source=repo,target=/repo \\
    mkdir -p /deps && for p in $(cat /requirements.txt); do \\
      [ -f /cache/$p.tar ] || cp /repo/$p.tar /cache/$p.tar; \\
      mkdir -p /deps/$p && tar -xf /cache/$p.tar -C /deps/$p; \\
    done
"""

WORDS = (
    b"def class return import from self value result data item index list dict "
    b"for while if else elif try except with as yield lambda None True False "
    b"config request response handler build layer cache snapshot image digest "
).split()


def text_pool(size: int, seed: int = 13) -> bytes:
    """`size` bytes of source-like text (compresses about as well as code does)."""
    rng = random.Random(seed)
    lines = []
    total = 0
    while total < size:
        line = b"    " + b" ".join(rng.choices(WORDS, k=rng.randint(3, 12))) + b"\n"
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


# -- builders -----------------------------------------------------------------------------


@dataclass
class Builder:
    name: str
    prefix: list[str]
    env: dict[str, str]

    def build(self, project: Path, *args: str) -> list[list[str]]:
        raise NotImplementedError

    def export(self, project: Path, dest: Path) -> list[list[str]]:
        raise NotImplementedError


class Strata(Builder):
    def build(self, project: Path, *args: str) -> list[list[str]]:
        return [[*self.prefix, "build", "-q", *args, str(project)]]

    def export(self, project: Path, dest: Path) -> list[list[str]]:
        out = f"type=docker,dest={dest},name=big:bench"
        return [[*self.prefix, "build", "-q", "--no-cache", "-o", out, str(project)]]


class BuildKit(Builder):
    def build(self, project: Path, *args: str) -> list[list[str]]:
        # --network=host: this dockerd has no bridge, which RUN's default network needs.
        return [[*self.prefix, "build", "-q", "--network=host", *args, str(project)]]

    def export(self, project: Path, dest: Path) -> list[list[str]]:
        return [
            *self.build(project, "--no-cache", "-t", "big:bench"),
            [*self.prefix, "save", "-o", str(dest), "big:bench"],
        ]


def run_timed(commands: Sequence[Sequence[str]], env: dict[str, str]) -> float:
    """Seconds from the start of the first process to the exit of the last."""
    start = time.perf_counter()
    for argv in commands:
        proc = subprocess.run(list(argv), env=env, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}"
            )
    return time.perf_counter() - start


# -- dockerd --------------------------------------------------------------------------------


class Dockerd:
    """A private dockerd under `.cache/buildkit-bench/docker`, stopped by `stop`."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.socket = home / "docker.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = next((c for c in DOCKER_CLIENTS if shutil.which(c)), None)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> str | None:
        """Start dockerd; None when it answers, else why it cannot be used."""
        dockerd = shutil.which("dockerd")
        if dockerd is None or self.client is None:
            return "dockerd or the docker client is not installed (scripts/install-docker.sh)"
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "dockerd.log", "wb") as log:
            self.process = subprocess.Popen(
                [
                    dockerd,
                    "--host",
                    self.host,
                    "--data-root",
                    str(self.home / "data"),
                    "--exec-root",
                    str(self.home / "exec"),
                    "--pidfile",
                    str(self.home / "dockerd.pid"),
                    "--iptables=false",
                    "--ip-masq=false",
                    "--bridge=none",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"dockerd exited ({self.process.returncode}): {self.log_tail()}"
            probe = subprocess.run([self.client, "-H", self.host, "info"], capture_output=True)
            if probe.returncode == 0:
                return None
            time.sleep(0.5)
        return f"dockerd did not answer within 60 s: {self.log_tail()}"

    def log_tail(self) -> str:
        try:
            lines = (self.home / "dockerd.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- projects -------------------------------------------------------------------------------


def project_dir(name: str, builder: str, dockerfile: str) -> Path:
    path = CACHE / "work" / name / builder
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    (path / "Dockerfile").write_text(dockerfile)
    return path


def edit_project(builder: str) -> Path:
    """5,000 source files of 20 kB each (100 MB), made once and copied per builder."""
    source = CACHE / "data" / "edit-project"
    if not (source / ".complete").exists():
        shutil.rmtree(source, ignore_errors=True)
        pool = text_pool(1 << 20)
        rng = random.Random(7)
        for i in range(5000):
            sub = source / "src" / f"pkg{i % 50:02d}"
            sub.mkdir(parents=True, exist_ok=True)
            offset = rng.randrange(len(pool) - 20_000)
            (sub / f"module{i:05d}.py").write_bytes(
                f"# module {i}\n".encode() + pool[offset : offset + 20_000]
            )
        (source / ".complete").write_text("")
    path = project_dir("edit", builder, COPY_ALL)
    shutil.copytree(source / "src", path / "src")
    return path


def big_layer_project(builder: str) -> Path:
    source = CACHE / "data" / "big.dat"
    if not source.exists():
        source.parent.mkdir(parents=True, exist_ok=True)
        pool = text_pool(1 << 20)
        with open(source.with_suffix(".part"), "wb") as fh:
            for i in range(300):
                fh.write(f"{i:08d}".encode() + pool[8:])
        source.with_suffix(".part").rename(source)
    path = project_dir("export", builder, BIG_LAYER)
    os.link(source, path / "big.dat")
    return path


def deps_project(builder: str, count: int) -> Path:
    """A package repository of 210 small tarballs and requirements naming `count`."""
    repo = CACHE / "data" / "repo"
    if not (repo / ".complete").exists():
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir(parents=True)
        pool = text_pool(1 << 20, seed=3)
        staging = CACHE / "data" / "pkg-staging"
        for i in range(210):
            shutil.rmtree(staging, ignore_errors=True)
            (staging / "lib").mkdir(parents=True)
            for j in range(8):
                start = (i * 8 + j) * 1000 % (len(pool) - 6000)
                (staging / "lib" / f"mod{j}.py").write_bytes(pool[start : start + 6000])
            with tarfile.open(repo / f"pkg{i:03d}.tar", "w") as tar:
                tar.add(staging / "lib", arcname="lib")
        shutil.rmtree(staging, ignore_errors=True)
        (repo / ".complete").write_text("")
    path = project_dir("deps", builder, DEPS)
    shutil.copytree(repo, path / "repo")
    (path / "repo" / ".complete").unlink()
    write_requirements(path, count)
    return path


def write_requirements(project: Path, count: int) -> None:
    (project / "requirements.txt").write_text("".join(f"pkg{i:03d}\n" for i in range(count)))


def settle() -> None:
    """Let files written just now age past the digest caches' racy window (1 s)."""
    time.sleep(1.2)


# -- benchmarks ---------------------------------------------------------------------------


def bench_cold(builder: Builder, runs: int) -> list[float]:
    project = project_dir("cold", builder.name, MULTI_STAGE)
    run_timed(builder.build(project, "-t", "multi:bench"), builder.env)  # base ready
    return [
        run_timed(builder.build(project, "--no-cache", "-t", "multi:bench"), builder.env)
        for _ in range(runs)
    ]


def bench_noop(builder: Builder, runs: int) -> list[float]:
    project = project_dir("noop", builder.name, MULTI_STAGE)
    settle()
    run_timed(builder.build(project, "-t", "multi:bench"), builder.env)
    return [
        run_timed(builder.build(project, "-t", "multi:bench"), builder.env) for _ in range(runs)
    ]


def bench_edit(builder: Builder, runs: int) -> list[float]:
    project = edit_project(builder.name)
    settle()
    run_timed(builder.build(project, "-t", "edit:bench"), builder.env)
    times = []
    for i in range(runs):
        edited = project / "src" / "pkg07" / "module00007.py"
        with open(edited, "ab") as fh:
            # Unique per run: BuildKit's cache outlives a run of this script.
            fh.write(f"EDIT = {i} # {time.time_ns()}\n".encode())
        times.append(run_timed(builder.build(project, "-t", "edit:bench"), builder.env))
    return times


def bench_export(builder: Builder, runs: int) -> list[float]:
    project = big_layer_project(builder.name)
    dest = CACHE / "work" / "export" / f"{builder.name}.tar"
    times = []
    for _ in range(runs):
        dest.unlink(missing_ok=True)
        times.append(run_timed(builder.export(project, dest), builder.env))
    dest.unlink(missing_ok=True)
    return times


def bench_deps(builder: Builder, runs: int) -> list[float]:
    project = deps_project(builder.name, 200)
    settle()
    run_timed(builder.build(project, "-t", "deps:bench"), builder.env)
    times = []
    for i in range(runs):
        write_requirements(project, 201 + i)
        times.append(run_timed(builder.build(project, "-t", "deps:bench"), builder.env))
    return times


@dataclass(frozen=True)
class Benchmark:
    name: str
    label: str
    goal: float
    run: Callable[[Builder, int], list[float]]


BENCHMARKS = (
    Benchmark("cold", "cold 4-stage / 10-RUN build", 0.6, bench_cold),
    Benchmark("noop", "no-op rebuild of the same", 0.5, bench_noop),
    Benchmark("edit", "5,000 files + 100 MB, one small file edited", 0.25, bench_edit),
    Benchmark("export", "one 300 MB layer built + docker archive", 0.5, bench_export),
    Benchmark("deps", "cache-mount dependency flow, 200 +1", 0.5, bench_deps),
)


# -- set-up ---------------------------------------------------------------------------------


def busybox_tar() -> Path:
    tarball = CACHE / "data" / "busybox.tar"
    if not tarball.exists():
        tarball.parent.mkdir(parents=True, exist_ok=True)
        rootfs = make_busybox_rootfs(CACHE / "data" / "busybox-rootfs")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], check=True
        )
    return tarball


def strata_builder() -> Strata:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    exe = str(Path(sys.executable).parent / "strata")
    root = CACHE / "strata-root"
    shutil.rmtree(root, ignore_errors=True)
    prefix = [exe, "--root", str(root)]
    # Compile strata's bytecode once, as an installed strata has it.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src")], env=env)
    subprocess.run([*prefix, "--version"], env=env, capture_output=True, check=True)
    subprocess.run(
        [*prefix, "import", str(busybox_tar()), BASE], env=env, check=True, capture_output=True
    )
    return Strata("strata", prefix, env)


def buildkit_builder(dockerd: Dockerd) -> BuildKit:
    assert dockerd.client is not None
    env = dict(os.environ)
    env["DOCKER_BUILDKIT"] = "1"
    prefix = [dockerd.client, "-H", dockerd.host]
    # Start from an empty build cache, as strata starts from an empty state root.
    subprocess.run([*prefix, "builder", "prune", "-af"], env=env, check=True, capture_output=True)
    subprocess.run(
        [*prefix, "import", str(busybox_tar()), BASE], env=env, check=True, capture_output=True
    )
    return BuildKit("buildkit", prefix, env)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=[b.name for b in BENCHMARKS])
    parser.add_argument("--no-buildkit", action="store_true", help="time strata alone")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("runc") is None or not busybox_available():
        print("buildkit bench: skipped (needs root, runc and busybox-static)")
        return 0
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    dockerd = Dockerd(CACHE / "docker")
    why = "--no-buildkit" if args.no_buildkit else dockerd.start()
    try:
        if why is not None:
            print(f"buildkit bench: BuildKit not timed ({why}); strata alone")
        builders: list[Builder] = [strata_builder()]
        if why is None:
            builders.append(buildkit_builder(dockerd))
        print(f"buildkit bench: whole-process seconds, median of {args.runs}")
        print(f"  {'benchmark':<46} {'strata':>8} {'BuildKit':>9} {'ratio':>6}  goal")
        for bench in chosen:
            medians = [statistics.median(bench.run(b, args.runs)) for b in builders]
            strata_s = medians[0]
            if len(medians) == 2:
                kit, ratio = f"{medians[1]:8.2f}s", f"{strata_s / medians[1]:6.2f}"
            else:
                kit, ratio = f"{'-':>9}", f"{'-':>6}"
            print(
                f"  {bench.label:<46} {strata_s:7.2f}s {kit} {ratio}  ≤ {bench.goal}",
                flush=True,
            )
    finally:
        dockerd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cost of one trivial build step next to a bare `runc run` of the same bundle.

A step here is what the solver pays for `RUN true`: prepare a snapshot on the base,
mount it, write the bundle, run the container, undo the mounts and commit the
snapshot. The baseline is `runc run` alone on an already-written bundle whose root is
already mounted. Samples of the three are taken in turn, in a shuffled order, so that
load from other work on the machine weighs on each alike. Needs root, runc and /bin/busybox. Prints
medians; the goal is a ratio within 1.3.

A second pass prices the private network: the same step with the default network (its
own namespace behind slirp4netns) next to `--network=host`, interleaved likewise; the
goal is under 10 ms per step.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.rootfs import make_busybox_rootfs

from strata.errors import ExecError
from strata.fsutil import copy_tree
from strata.modes import NetworkMode
from strata.store.root import StateRoot
from strata.worker.executor import BUNDLE_TMPFS_OPTIONS, Executor, ProcessSpec
from strata.worker.network import private_network_available
from strata.worker.snapshots.factory import open_snapshotter
from strata.worker.snapshots.mount import MountSpec, mount_all, mount_one, unmount
from strata.worker.spec import build_spec, hosts_file, resolv_conf
from strata.worker.users import ResolvedUser

ROUNDS = 40


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


class BareRuntime:
    """`runc run` alone on one bundle written once, its root mounted once."""

    def __init__(self, root: StateRoot, runtime: str, base: str) -> None:
        self.runtime = runtime
        self.snap = open_snapshotter(root, "overlay")
        self.bundle = root.mkdtemp("bare")
        # In memory, as the executor keeps its bundles, so only the work differs.
        mount_one(MountSpec("tmpfs", "tmpfs", BUNDLE_TMPFS_OPTIONS), self.bundle)
        self.rootfs = self.bundle / "rootfs"
        self.rootfs.mkdir()
        mount_all(self.snap.prepare(f"bare-{runtime}", base), self.rootfs)
        # The same config strata writes, generated /etc files included.
        (self.bundle / "hosts").write_text(hosts_file("buildkitsandbox"))
        (self.bundle / "resolv.conf").write_text(resolv_conf("nameserver 10.0.0.1\n", "default"))
        spec = build_spec(
            args=["/bin/true"],
            env=[],
            cwd="/",
            user=ResolvedUser(0, 0),
            hosts_path=self.bundle / "hosts",
            resolv_path=self.bundle / "resolv.conf",
        )
        spec["root"] = {"path": str(self.rootfs), "readonly": False}
        (self.bundle / "config.json").write_text(json.dumps(spec))
        # The runtime's own state on the state root's disk, as the executor keeps it.
        self.state = root.mkdtemp("bare-runc")
        self.runs = 0

    def sample(self) -> float:
        self.runs += 1
        start = time.perf_counter()
        subprocess.run(
            [
                self.runtime,
                "--root",
                str(self.state),
                "run",
                "--bundle",
                str(self.bundle),
                f"bare-{self.runs}",
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - start

    def close(self) -> None:
        unmount(self.bundle)


class Steps:
    """What the solver pays for `RUN true`: prepare, run, commit (removal not timed)."""

    def __init__(
        self,
        root: StateRoot,
        runtime: str,
        base: str,
        snapshotter: str,
        network: NetworkMode = "host",
    ) -> None:
        self.snap = open_snapshotter(root, snapshotter)
        self.executor = Executor(root, runtime)  # type: ignore[arg-type]
        self.base = base
        self.network = network
        self.prefix = f"bench-{runtime}-{snapshotter}-{network}"
        self.runs = 0

    def sample(self) -> float:
        self.runs += 1
        key = f"{self.prefix}-{self.runs}"
        start = time.perf_counter()
        mounts = self.snap.prepare(key, self.base)
        code = self.executor.run(
            ProcessSpec(("/bin/true",)), mounts, network=self.network, on_output=lambda *a: None
        )
        self.snap.commit(f"{key}-done", key)
        elapsed = time.perf_counter() - start
        assert code == 0
        self.snap.remove(f"{key}-done")
        return elapsed


def interleaved(contenders: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """ROUNDS samples of each contender, taken in turn in a fresh order each round, so
    that load from elsewhere, and what one sample leaves behind, weigh on all alike."""
    for take in contenders.values():
        take()  # warm-up: page cache, first-use setup
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    order = random.Random(4)
    names = list(contenders)
    for _ in range(ROUNDS):
        order.shuffle(names)
        for name in names:
            samples[name].append(contenders[name]())
    return samples


def bench_runtime(root: StateRoot, runtime: str, base: str) -> dict[str, list[float]]:
    """Samples of the bare runtime next to steps on each snapshotter. The two
    snapshotters are measured in separate passes: the native one's copies leave dirty
    pages that the next overlay unmount (which syncs the upper file system) would flush
    on the overlay step's clock."""
    bare = BareRuntime(root, runtime, base)
    try:
        bare.sample()  # fails here when the runtime cannot start containers at all
        overlay = interleaved(
            {"bare": bare.sample, "overlay": Steps(root, runtime, base, "overlay").sample}
        )
        native = interleaved(
            {"bare": bare.sample, "native": Steps(root, runtime, base, "native").sample}
        )
        return {**overlay, "native": native["native"], "native-bare": native["bare"]}
    finally:
        bare.close()


def bench_network(root: StateRoot, runtime: str, base: str) -> None:
    """The private network's price per step: default next to host, interleaved."""
    missing = private_network_available()
    if missing is not None:
        print(f"  private network: not measured ({missing})")
        return
    samples = interleaved(
        {
            "host": Steps(root, runtime, base, "overlay", "host").sample,
            "private": Steps(root, runtime, base, "overlay", "default").sample,
        }
    )
    host = median_ms(samples["host"])
    private = median_ms(samples["private"])
    extra = median_ms([p - h for p, h in zip(samples["private"], samples["host"], strict=True)])
    print(f"  step with --network=host:           {host:7.1f} ms")
    print(f"  step with its own network (slirp):  {private:7.1f} ms")
    print(f"  private network's cost per step:    {extra:7.1f} ms  (median of pairs; goal < 10)")


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="strata-bench-"))
    root = StateRoot.open(tmp / "root")
    try:
        rootfs = make_busybox_rootfs(tmp / "busybox")
        for name in ("overlay", "native"):
            snap = open_snapshotter(root, name)
            snap.prepare(f"base-{name}", None)
            copy_tree(rootfs, snap.upper_dir(f"base-{name}"))
            snap.commit("base", f"base-{name}")
        print(f"trivial step (RUN true), median of {ROUNDS} interleaved rounds:")
        for runtime in ("runc", "crun"):
            if shutil.which(runtime) is None:
                print(f"  {runtime}: not installed")
                continue
            try:
                samples = bench_runtime(root, runtime, "base")
            except subprocess.CalledProcessError:
                print(f"  {runtime}: does not start containers on this host")
                continue
            except ExecError as err:
                print(f"  {runtime}: {err.message}")
                continue
            bare = median_ms(samples["bare"])
            step = median_ms(samples["overlay"])
            native = median_ms(samples["native"])
            native_bare = median_ms(samples["native-bare"])
            extra = median_ms(
                [s - b for s, b in zip(samples["overlay"], samples["bare"], strict=True)]
            )
            print(f"  {runtime} run alone on a ready bundle: {bare:7.1f} ms")
            print(f"  strata step, overlay snapshotter:   {step:7.1f} ms  ({step / bare:.2f}x)")
            print(
                f"  strata step, native snapshotter:    {native:7.1f} ms  "
                f"({native / native_bare:.2f}x of {native_bare:.1f} ms in its pass)"
            )
            print(f"  strata's own cost per overlay step: {extra:7.1f} ms  (median of pairs)")
            bench_network(root, runtime, "base")
    finally:
        root.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

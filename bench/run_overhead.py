"""Cost of one trivial build step next to a bare `runc run` of the same bundle.

A step here is what the solver pays for `RUN true`: prepare a snapshot on the base,
mount it, write the bundle, run the container, undo the mounts and commit the
snapshot. The baseline is `runc run` alone on an already-written bundle whose root is
already mounted. Needs root, runc and /bin/busybox. Prints medians; the goal is a
ratio within 1.3.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.rootfs import make_busybox_rootfs

from strata.errors import ExecError
from strata.store.root import StateRoot
from strata.worker.executor import Executor, ProcessSpec
from strata.worker.native import copy_tree
from strata.worker.snapshot import mount_all, open_snapshotter, unmount
from strata.worker.spec import build_spec, hosts_file, resolv_conf
from strata.worker.users import ResolvedUser

ROUNDS = 30


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_steps(root: StateRoot, runtime: str, base: str, snapshotter: str) -> list[float]:
    snap = open_snapshotter(root, snapshotter)
    executor = Executor(root, runtime)  # type: ignore[arg-type]
    samples = []
    for i in range(ROUNDS):
        key = f"bench-{runtime}-{snapshotter}-{i}"
        start = time.perf_counter()
        mounts = snap.prepare(key, base)
        code = executor.run(ProcessSpec(("/bin/true",)), mounts, on_output=lambda *a: None)
        snap.commit(f"{key}-done", key)
        samples.append(time.perf_counter() - start)
        assert code == 0
        snap.remove(f"{key}-done")
    return samples


def bench_bare(root: StateRoot, runtime: str, base: str) -> list[float]:
    snap = open_snapshotter(root, "overlay")
    bundle = root.mkdtemp("bare")
    rootfs = bundle / "rootfs"
    rootfs.mkdir()
    mount_all(snap.prepare(f"bare-{runtime}", base), rootfs)
    try:
        # The same config strata writes, generated /etc files included.
        (bundle / "hosts").write_text(hosts_file("buildkitsandbox"))
        (bundle / "resolv.conf").write_text(resolv_conf("nameserver 10.0.0.1\n", "default"))
        spec = build_spec(
            args=["/bin/true"],
            env=[],
            cwd="/",
            user=ResolvedUser(0, 0),
            hosts_path=bundle / "hosts",
            resolv_path=bundle / "resolv.conf",
        )
        spec["root"] = {"path": str(rootfs), "readonly": False}
        (bundle / "config.json").write_text(json.dumps(spec))
        state = bundle / "state"
        samples = []
        for i in range(ROUNDS):
            start = time.perf_counter()
            subprocess.run(
                [runtime, "--root", str(state), "run", "--bundle", str(bundle), f"bare-{i}"],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            samples.append(time.perf_counter() - start)
        return samples
    finally:
        unmount(rootfs)


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
        print(f"trivial step (RUN true), median of {ROUNDS}:")
        for runtime in ("runc", "crun"):
            if shutil.which(runtime) is None:
                print(f"  {runtime}: not installed")
                continue
            try:
                bare = median_ms(bench_bare(root, runtime, "base"))
            except subprocess.CalledProcessError:
                print(f"  {runtime}: does not start containers on this host")
                continue
            try:
                step = median_ms(bench_steps(root, runtime, "base", "overlay"))
                native = median_ms(bench_steps(root, runtime, "base", "native"))
            except ExecError as err:
                print(f"  {runtime}: {err.message}")
                continue
            print(f"  {runtime} run alone on a ready bundle: {bare:7.1f} ms")
            print(f"  strata step, overlay snapshotter:   {step:7.1f} ms  ({step / bare:.2f}x)")
            print(f"  strata step, native snapshotter:    {native:7.1f} ms  ({native / bare:.2f}x)")
    finally:
        root.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

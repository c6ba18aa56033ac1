"""`strata du` and `strata prune`: what is listed, what goes, what a rebuild then re-runs.

Builds go through the real CLI (runc, overlayfs); records for the finer cases are made
with the real snapshotter and record tables. The last part pins the parsing and the
buildx output shapes (tabwriter, sizes) without building anything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from strata.cli.cache import buildx_tabs, docker_table, go_time, human_size, prune_row
from strata.errors import UsageError
from strata.gc.prune import (
    WAITING_MESSAGE,
    build_lease,
    parse_filters,
    parse_go_duration,
    parse_size,
    prune,
)
from strata.gc.usage import (
    RecordSource,
    UsageRecord,
    cache_mount_description,
    disk_usage,
)
from strata.solver.records import CacheRecords
from strata.store.cachemounts import CacheMounts
from strata.store.root import StateRoot
from strata.store.usage import remember_cache_mount
from strata.worker.snapshots.factory import open_snapshotter
from strata.worker.snapshots.snapshotter import Snapshotter
from tests.integration.guide_fixtures import (
    STRATA,
    build_root,
    busybox_tarball,
    strata,
    was_cached,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

MB = 1_000_000

DOCKERFILE = """\
FROM busybox:strata-test
COPY a.txt /a.txt
RUN --mount=type=cache,target=/cache echo x > /cache/f && dd if=/dev/urandom of=/big bs=1000 count=300 2>/dev/null
RUN echo hi > /hi
"""


def build(root: Path, project: Path) -> str:
    run = strata(root, "build", "--progress=plain", str(project))
    log = run.stderr.decode()
    assert run.returncode == 0, log
    return log


def usage(root_path: Path) -> list[UsageRecord]:
    root = StateRoot.open(root_path)
    try:
        return disk_usage(root)
    finally:
        root.close()


def snapshot_dirs(root_path: Path) -> list[str]:
    return sorted(p.name for p in (root_path / "snapshots").iterdir() if p.name.isdigit())


@pytest.fixture
def built(build_root: Path, tmp_path: Path) -> Path:
    """A project built once into `build_root`; returns the project directory."""
    project = write_project(tmp_path / "p", DOCKERFILE, {"a.txt": "a\n"})
    build(build_root, project)
    return project


# -- du -------------------------------------------------------------------------------------------


def test_du_lists_base_layers_as_shared_and_steps_and_cache_mounts_as_private(
    build_root: Path, built: Path
) -> None:
    records = usage(build_root)
    types = sorted(r.type for r in records)
    assert types.count("exec.cachemount") == 1
    shared = [r for r in records if r.shared]
    assert shared and all(r.description.startswith("pulled from ") for r in shared)
    run = next(r for r in records if r.type == "regular" and "dd if=/dev/urandom" in r.description)
    assert run.size >= 300_000
    assert run.parents and not run.mutable and run.reclaimable
    cache = next(r for r in records if r.type == "exec.cachemount")
    assert cache.mutable and cache.description.startswith("cached mount /cache from exec ")

    out = strata(build_root, "du", check=True).stdout.decode()
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "RECLAIMABLE", "SIZE", "LAST", "ACCESSED"]
    assert any(line.split()[0] == f"{cache.id}*" for line in lines[1:])
    assert any(f"{human_size(shared[0].size)}*" in line for line in lines)
    summary = [line.split(":")[0] for line in lines if ":" in line and "\t" in line]
    assert summary == ["Shared", "Private", "Reclaimable", "Total"]
    total = sum(r.size for r in records)
    assert (
        lines[-1]
        == buildx_tabs(
            f"Shared:\t-\nPrivate:\t-\nReclaimable:\t-\nTotal:\t{human_size(total)}\n"
        ).splitlines()[-1]
    )


def test_du_verbose_prints_one_block_per_record(build_root: Path, built: Path) -> None:
    out = strata(build_root, "du", "--verbose", check=True).stdout.decode()
    records = usage(build_root)
    assert out.count("ID:           ") == len(records)
    assert "Type:         exec.cachemount" in out
    assert "Parents:\n - " in out
    assert "Description:  [" in out


def test_du_filter_selects_records_and_drops_the_summary(build_root: Path, built: Path) -> None:
    out = strata(build_root, "du", "--filter", "type=exec.cachemount", check=True).stdout
    lines = out.decode().splitlines()
    assert len(lines) == 2  # header and the one cache mount, no summary
    assert lines[1].split()[0].endswith("*")


def test_cache_mount_description_names_target_command_and_id(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "r")
    try:
        caches = CacheMounts(root)
        with caches.acquire("//root/.cache") as data:
            (data / "f").write_text("x")
        remember_cache_mount(root, "//root/.cache", "/root/.cache", ["/bin/sh", "-c", "make"])
        [record] = disk_usage(root)
    finally:
        root.close()
    assert record.description == (
        'cached mount /root/.cache from exec /bin/sh -c make with id "//root/.cache"'
    )
    assert cache_mount_description("/c", "/c", ["true"]) == "cached mount /c from exec true"


# -- prune ----------------------------------------------------------------------------------------


def test_prune_keeps_image_shared_layers_and_the_next_build_reruns_the_steps(
    build_root: Path, built: Path
) -> None:
    before = usage(build_root)
    private = [r for r in before if not r.shared]

    run = strata(build_root, "prune", "-f", check=True)

    out = run.stdout.decode().splitlines()
    assert out[0] == "ID\t\t\t\t\t\tRECLAIMABLE\tSIZE\t\tLAST ACCESSED"
    removed_ids = {line.split()[0].rstrip("*") for line in out[1:-1]}
    assert removed_ids == {r.id for r in private}
    assert out[-1].startswith("Total:\t")
    after = usage(build_root)
    assert after and all(r.shared for r in after)
    assert sum(r.size for r in after) < sum(r.size for r in before) - 300_000

    log = build(build_root, built)
    assert was_cached(log, "FROM"), log
    assert not was_cached(log, "COPY a.txt"), log
    assert not was_cached(log, "RUN echo hi"), log


def test_prune_all_removes_every_record_and_the_image_still_builds(
    build_root: Path, built: Path
) -> None:
    strata(build_root, "prune", "--all", "--force", check=True)
    assert [r for r in usage(build_root) if r.type != "source.local"] == []
    assert snapshot_dirs(build_root) == []
    assert list((build_root / "cachemounts").iterdir()) == []
    log = build(build_root, built)
    assert not was_cached(log, "RUN echo hi"), log


def test_type_filters_remove_only_cache_mounts_or_everything_but_them(
    build_root: Path, built: Path
) -> None:
    strata(build_root, "prune", "-f", "--filter", "type!=exec.cachemount", check=True)
    records = usage(build_root)
    assert sorted({r.type for r in records if not r.shared}) == ["exec.cachemount"]
    log = build(build_root, built)
    assert not was_cached(log, "RUN echo hi"), log

    strata(build_root, "prune", "-f", "--filter", "type=exec.cachemount", check=True)
    records = usage(build_root)
    assert not [r for r in records if r.type == "exec.cachemount"]
    assert [r for r in records if "RUN echo hi" in r.description]
    log = build(build_root, built)  # layers were kept: everything hits
    assert was_cached(log, "RUN echo hi"), log


def test_prune_asks_first_and_removes_nothing_without_a_yes(build_root: Path, built: Path) -> None:
    before = usage(build_root)
    for answer in (b"", b"n\n", b"yes\n"):
        run = strata(build_root, "prune", stdin=answer)
        assert run.returncode == 0
        assert run.stdout.decode() == (
            "WARNING! This will remove all dangling build cache. "
            "Are you sure you want to continue? [y/N] "
        )
        assert len(usage(build_root)) == len(before)
    run = strata(build_root, "prune", "-a", stdin=b"n\n")
    assert run.stdout.decode().startswith("WARNING! This will remove all build cache.")
    run = strata(build_root, "prune", stdin=b"Y\n")
    assert "Total:" in run.stdout.decode()
    assert len(usage(build_root)) < len(before)


def make_result(snap: Snapshotter, records: CacheRecords, name: str, size: int) -> None:
    key = f"active-{name}"
    snap.prepare(key, None)
    (snap.upper_dir(key) / "payload").write_bytes(os.urandom(size))
    snap.commit(name, key)
    records.put(f"key-{name}", name, kind="ExecOp", description=f"RUN {name}", components={})


@pytest.fixture
def three_results(state_root: StateRoot) -> Snapshotter:
    """Results a, b, c of 1 MB each, last used in the order b, c, a."""
    snap = open_snapshotter(state_root, "overlay")
    records = CacheRecords(state_root)
    for name in ("a", "b", "c"):
        make_result(snap, records, name, MB)
    for name in ("b", "c", "a"):
        time.sleep(0.25)  # apart enough for `until` to fall between two uses
        records.touch(f"key-{name}")
    return snap


def test_keep_storage_removes_least_recently_used_until_under_the_size(
    state_root: StateRoot, three_results: Snapshotter
) -> None:
    out = subprocess.run(
        [str(STRATA), "--root", str(state_root.path), "prune", "-f", "--keep-storage", "2.5mb"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    remaining = sorted(r.description for r in disk_usage(state_root))
    assert remaining == ["RUN a", "RUN c"]
    assert sum(r.size for r in disk_usage(state_root)) < 2.5 * (1 << 20)
    assert len(out.splitlines()) == 3  # header, one row, total


def test_reserved_space_is_the_same_limit(
    state_root: StateRoot, three_results: Snapshotter
) -> None:
    report = prune(state_root, reserved_space=1_500_000)
    assert [r.description for r in report.removed] == ["RUN b", "RUN c"]


def test_until_keeps_records_used_more_recently(
    state_root: StateRoot, three_results: Snapshotter
) -> None:
    used = {r.description: r.last_used for r in disk_usage(state_root)}
    oldest, next_oldest = used["RUN b"], used["RUN c"]
    assert oldest is not None and next_oldest is not None
    # Keep whatever was used after the moment between b's and c's last use.
    report = prune(state_root, until=time.time() - (oldest + next_oldest) / 2)
    assert [r.description for r in report.removed] == ["RUN b"]


def test_id_and_description_filters_select_single_records(
    state_root: StateRoot, three_results: Snapshotter
) -> None:
    records = {r.description: r for r in disk_usage(state_root)}
    report = prune(state_root, filters=[f"id={records['RUN a'].id[:10]}"])
    assert [r.description for r in report.removed] == ["RUN a"]
    report = prune(state_root, filters=["description=RUN c"])
    assert [r.description for r in report.removed] == ["RUN c"]
    report = prune(state_root, filters=["description=RUN"])  # exact match only
    assert report.removed == []


def test_prune_waits_for_a_running_build_and_then_removes(
    state_root: StateRoot, three_results: Snapshotter
) -> None:
    waiting = threading.Event()
    release = threading.Event()
    held = threading.Event()
    reports: list[int] = []

    def hold() -> None:
        other = StateRoot.open(state_root.path)
        try:
            with build_lease(other):
                held.set()
                release.wait(60)
        finally:
            other.close()

    def pruning() -> None:
        other = StateRoot.open(state_root.path)
        try:
            messages: list[str] = []

            def on_wait(message: str) -> None:
                messages.append(message)
                waiting.set()

            reports.append(len(prune(other, on_wait=on_wait).removed))
            assert messages == [WAITING_MESSAGE]
        finally:
            other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(60)
    pruner = threading.Thread(target=pruning)
    pruner.start()
    try:
        assert waiting.wait(60)
        assert len(disk_usage(state_root)) == 3  # nothing removed while the build runs
    finally:
        release.set()
        holder.join()
        pruner.join()
    assert reports == [3]
    assert disk_usage(state_root) == []


def test_prune_keeps_a_cache_mount_a_step_is_using(state_root: StateRoot) -> None:
    caches = CacheMounts(state_root)
    with caches.acquire("//busy") as data:
        (data / "f").write_text("x")
        report = prune(state_root)
        assert report.removed == []
        records = disk_usage(state_root)
        assert [r.in_use for r in records] == [True]
    assert len(prune(state_root).removed) == 1


def test_killed_prune_leaves_a_usable_root(state_root: StateRoot) -> None:
    snap = open_snapshotter(state_root, "overlay")
    records = CacheRecords(state_root)
    parent = None
    for index in range(120):
        key = f"active-{index}"
        snap.prepare(key, parent if index % 2 else None)
        (snap.upper_dir(key) / "f").write_bytes(os.urandom(20_000))
        name = f"r{index}"
        snap.commit(name, key)
        records.put(f"k{index}", name, kind="ExecOp", description=name, components={})
        parent = name
    child = subprocess.Popen(
        [str(STRATA), "--root", str(state_root.path), "prune", "-f"],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()  # the header
        child.stdout.readline()  # a first record is gone: kill it mid-way
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    db = state_root.connect()
    for (sid,) in db.execute("SELECT id FROM snapshots").fetchall():
        assert (state_root.snapshots_dir / str(sid)).is_dir()
    live = {str(r[0]) for r in db.execute("SELECT key FROM snapshots")}
    for (snapshot,) in db.execute("SELECT snapshot FROM solver_cache").fetchall():
        assert snapshot in live or snapshot is None
    left = len(disk_usage(state_root))
    assert 0 < left < 120
    report = prune(state_root)
    assert len(report.removed) == left
    assert snapshot_dirs(state_root.path) == []
    assert not [p for p in state_root.snapshots_dir.iterdir() if p.name.startswith(".removed")]


def test_prune_sweeps_leftover_directories_and_unreferenced_blobs(state_root: StateRoot) -> None:
    from strata.store.content import ContentStore

    (state_root.snapshots_dir / "999").mkdir()
    (state_root.snapshots_dir / ".removed-5-1").mkdir()
    content = ContentStore(state_root)
    dangling = content.ingest_bytes(b"nobody holds me")
    held = content.ingest_bytes(b"an image holds me")
    content.add_refs("image:test", [held])
    report = prune(state_root, blob_grace=0)
    assert report.reclaimed > 0
    assert not content.has(dangling)
    assert content.has(held)
    assert sorted(os.listdir(state_root.snapshots_dir)) == []


def test_prune_removes_blobs_held_only_by_a_dead_process_lease(state_root: StateRoot) -> None:
    from strata.store.content import LEASE_PREFIX, ContentStore

    content = ContentStore(state_root)
    orphan = content.ingest_bytes(b"leased by a process that was killed")
    # A lease names its process's tmp/ owner dir; this one's process is gone.
    content.add_refs(f"{LEASE_PREFIX}gone-process/0123", [orphan])
    with content.lease() as live_lease:
        leased = content.ingest_bytes(b"leased by this process", hold=live_lease)
        report = prune(state_root, blob_grace=0)
        assert content.has(leased)
    assert not content.has(orphan)
    assert report.reclaimed > 0


def test_young_unreferenced_blobs_are_kept_for_imports_in_flight(state_root: StateRoot) -> None:
    from strata.store.content import ContentStore

    content = ContentStore(state_root)
    dangling = content.ingest_bytes(b"being imported")
    prune(state_root)
    assert content.has(dangling)


# -- parsing and output shapes -----------------------------------------------------------------------


def test_sizes_parse_as_docker_binary_units() -> None:
    assert parse_size("512mb") == 512 << 20
    assert parse_size("1GB") == 1 << 30
    assert parse_size("10g") == 10 << 30
    assert parse_size("1.5KiB") == 1536
    assert parse_size("100") == 100
    with pytest.raises(ValueError, match="invalid suffix: 'zb'"):
        parse_size("1zb")


def test_durations_parse_as_go_durations() -> None:
    assert parse_go_duration("24h") == 86400
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("1.5s") == 1.5
    assert parse_go_duration("0") == 0
    with pytest.raises(ValueError, match='missing unit in duration "10"'):
        parse_go_duration("10")
    with pytest.raises(ValueError, match='unknown unit "d" in duration "1d"'):
        parse_go_duration("1d")
    with pytest.raises(ValueError, match='invalid duration "h"'):
        parse_go_duration("h")


def test_filters_parse_as_buildx_sends_them() -> None:
    parsed = parse_filters(["until=24h", "type!=exec.cachemount", "id=abc", "description=x"])
    assert parsed.until == 86400
    assert {(s.key, s.operator, s.value) for s in parsed.selectors} == {
        ("type", "!=", "exec.cachemount"),
        ("id", "~=", "abc"),
        ("description", "==", "x"),
    }
    with pytest.raises(UsageError, match='conflicting filters "until" and "unused-for"'):
        parse_filters(["until=1h", "unused-for=2h"])
    with pytest.raises(UsageError, match="expected name=value"):
        parse_filters(["inuse"])
    with pytest.raises(UsageError, match="expects a duration"):
        parse_filters(["until=soon"])


def test_buildx_prune_rows_are_laid_out_with_tabs() -> None:
    record = UsageRecord(
        id="yl2k2g6qw9q2rti15rl1mkegs",
        type="regular",
        size=14_770_000,
        reclaimable=True,
        shared=False,
        in_use=False,
        mutable=True,
        created=0.0,
        last_used=1000.0,
        description="",
        usage_count=1,
        parents=(),
        source=RecordSource("snapshot", 1),
    )
    now = 1000.0 + 4 * 86400
    text = buildx_tabs("ID\tRECLAIMABLE\tSIZE\tLAST ACCESSED\n" + prune_row(record, now))
    assert text == (
        "ID\t\t\t\t\t\tRECLAIMABLE\tSIZE\t\tLAST ACCESSED\n"
        "yl2k2g6qw9q2rti15rl1mkegs*              \ttrue \t\t14.77MB   \t4 days ago\n"
    )
    assert buildx_tabs("Total:\t1.2GB\n") == "Total:\t1.2GB\n"


def test_docker_tables_pad_columns_with_three_spaces() -> None:
    # Width: the widest cell (12) plus 3 spaces of padding.
    assert docker_table("ID\tSIZE\nabcdefghijkl\t1B\n") == (
        "ID" + " " * 13 + "SIZE\nabcdefghijkl" + " " * 3 + "1B\n"
    )


def test_sizes_and_times_print_as_go_does() -> None:
    assert human_size(0) == "0B"
    assert human_size(999) == "999B"
    assert human_size(1000) == "1kB"
    assert human_size(1_234_567) == "1.235MB"
    assert human_size(10_360_000_000) == "10.36GB"
    assert go_time(0.5) == "1970-01-01 00:00:00.5 +0000 UTC"
    assert go_time(None) == "0001-01-01 00:00:00 +0000 UTC"

"""Snapshotter behaviour, run against both the overlay and the native implementation."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from strata.errors import StoreError
from strata.store.root import StateRoot
from strata.worker.snapshots.factory import open_snapshotter
from strata.worker.snapshots.mount import is_mounted, mounted
from strata.worker.snapshots.snapshotter import Snapshotter
from tests.integration.conftest import commit_tree


def snapshot_files(tree: Path) -> dict[str, str]:
    """Every entry below `tree` as path -> kind/content, for comparing trees."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(tree))
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = "link:" + os.readlink(full)
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = f"dir:{stat.S_IMODE(st.st_mode):o}"
            elif stat.S_ISREG(st.st_mode):
                found[rel] = f"file:{stat.S_IMODE(st.st_mode):o}:{full.read_text()}"
            else:
                found[rel] = "other"
    return found


def apply_upper(diff: Path, tree: Path) -> None:
    """Reference reading of the overlay-upper diff format, applied onto a plain tree."""
    for dirpath, dirnames, filenames in os.walk(diff):
        rel_dir = Path(dirpath).relative_to(diff)
        for name in list(dirnames) + filenames:
            src = Path(dirpath) / name
            dst = tree / rel_dir / name
            st = src.lstat()
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                if dst.is_dir() and not dst.is_symlink():
                    shutil.rmtree(dst)
                elif dst.exists() or dst.is_symlink():
                    dst.unlink()
                continue
            if stat.S_ISDIR(st.st_mode):
                opaque = b""
                with contextlib.suppress(OSError):
                    opaque = os.getxattr(src, "trusted.overlay.opaque")
                if (dst.exists() and not dst.is_dir()) or opaque == b"y":
                    if dst.is_dir():
                        shutil.rmtree(dst)
                    elif dst.exists() or dst.is_symlink():
                        dst.unlink()
                dst.mkdir(exist_ok=True)
                os.chmod(dst, stat.S_IMODE(st.st_mode))
                continue
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            elif dst.exists() or dst.is_symlink():
                dst.unlink()
            if stat.S_ISLNK(st.st_mode):
                dst.symlink_to(os.readlink(src))
            else:
                shutil.copy2(src, dst)


def test_prepare_without_parent_mounts_an_empty_writable_tree(
    snapshotter: Snapshotter, tmp_path: Path
) -> None:
    mounts = snapshotter.prepare("a", None)
    target = tmp_path / "mnt"
    target.mkdir()
    with mounted(mounts, target):
        assert list(target.iterdir()) == []
        (target / "hello").write_text("hi")
    snapshotter.commit("layer-a", "a")
    assert (snapshotter.diff_dir("layer-a") / "hello").read_text() == "hi"
    assert not is_mounted(target)


def test_child_snapshot_sees_parent_and_diff_holds_only_changes(
    snapshotter: Snapshotter, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    (base / "etc").mkdir(parents=True)
    (base / "etc" / "keep").write_text("keep")
    (base / "etc" / "change").write_text("old")
    (base / "etc" / "gone").write_text("bye")
    (base / "olddir" / "sub").mkdir(parents=True)
    (base / "olddir" / "sub" / "f").write_text("f")
    commit_tree(snapshotter, "base", base)

    mounts = snapshotter.prepare("child", "base")
    target = tmp_path / "mnt"
    target.mkdir()
    with mounted(mounts, target):
        assert (target / "etc" / "keep").read_text() == "keep"
        (target / "etc" / "change").write_text("new")
        (target / "etc" / "gone").unlink()
        (target / "etc" / "added").write_text("added")
        shutil.rmtree(target / "olddir")
        (target / "olddir").mkdir()
        (target / "olddir" / "fresh").write_text("fresh")
        expected = snapshot_files(target)
    snapshotter.commit("child-layer", "child")

    diff = snapshotter.diff_dir("child-layer")
    assert not (diff / "etc" / "keep").exists()
    assert (diff / "etc" / "change").read_text() == "new"
    assert (diff / "etc" / "added").read_text() == "added"
    gone = (diff / "etc" / "gone").lstat()
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0

    # The diff applied to the parent tree must reproduce the child exactly.
    replay = tmp_path / "replay"
    shutil.copytree(base, replay, symlinks=True)
    apply_upper(diff, replay)
    assert snapshot_files(replay) == expected


def test_view_is_read_only_and_shows_the_whole_chain(
    snapshotter: Snapshotter, tmp_path: Path
) -> None:
    one = tmp_path / "one"
    one.mkdir()
    (one / "a").write_text("1")
    commit_tree(snapshotter, "l1", one)
    snapshotter.prepare("k2", "l1")
    (snapshotter.upper_dir("k2") / "b").write_text("2")
    snapshotter.commit("l2", "k2")

    target = tmp_path / "view"
    target.mkdir()
    with mounted(snapshotter.view("v", "l2"), target):
        assert sorted(p.name for p in target.iterdir()) == ["a", "b"]
        with pytest.raises(OSError):
            (target / "c").write_text("3")
    snapshotter.remove("v")
    assert not snapshotter.exists("v")


def test_remove_refuses_a_parent_and_deletes_files_of_a_leaf(
    snapshotter: Snapshotter, state_root: StateRoot, tmp_path: Path
) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    commit_tree(snapshotter, "p", tree)
    snapshotter.prepare("c", "p")
    leaf_id = snapshotter.stat("c").id
    with pytest.raises(StoreError, match="depends on it"):
        snapshotter.remove("p")
    snapshotter.remove("c")
    assert not (state_root.snapshots_dir / str(leaf_id)).exists()
    snapshotter.remove("p")
    assert snapshotter.list() == []


def test_metadata_records_parent_kind_and_size(snapshotter: Snapshotter, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "f").write_bytes(b"x" * 1000)
    commit_tree(snapshotter, "p", tree)
    snapshotter.prepare("c", "p")
    info = snapshotter.stat("c")
    assert (info.kind, info.parent) == ("active", "p")
    parent = snapshotter.stat("p")
    assert parent.kind == "committed" and parent.size >= 1000


def test_duplicate_keys_and_names_are_refused(snapshotter: Snapshotter, tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    commit_tree(snapshotter, "p", tree)
    snapshotter.prepare("c", "p")
    with pytest.raises(StoreError, match="already exists"):
        snapshotter.prepare("c", "p")
    with pytest.raises(StoreError, match="already exists"):
        snapshotter.commit("p", "c")
    with pytest.raises(StoreError, match="not committed"):
        snapshotter.prepare("d", "c")


def test_diff_keeps_owner_mode_symlink_and_hardlink(
    snapshotter: Snapshotter, tmp_path: Path
) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    commit_tree(snapshotter, "p", tree)
    target = tmp_path / "mnt"
    target.mkdir()
    with mounted(snapshotter.prepare("c", "p"), target):
        (target / "f").write_text("data")
        os.chown(target / "f", 1000, 50)
        os.chmod(target / "f", 0o640)
        (target / "link").symlink_to("f")
        os.link(target / "f", target / "hard")
    snapshotter.commit("c1", "c")
    diff = snapshotter.diff_dir("c1")
    st = (diff / "f").lstat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 50, 0o640)
    assert os.readlink(diff / "link") == "f"
    assert (diff / "hard").stat().st_ino == st.st_ino


def test_auto_selects_overlay_where_overlayfs_mounts(state_root: StateRoot) -> None:
    assert open_snapshotter(state_root).name == "overlay"
    # The probe result is remembered, so a second open does not probe again.
    row = state_root.connect().execute("SELECT overlay FROM snapshotter_probe").fetchone()
    assert row == (1,)


def test_overlay_chain_of_130_layers_mounts(
    overlay_snapshotter: Snapshotter, state_root: StateRoot, tmp_path: Path
) -> None:
    # 130 absolute lowerdir paths exceed the kernel's one-page limit for mount options.
    parent: str | None = None
    for i in range(130):
        key = f"k{i}"
        overlay_snapshotter.prepare(key, parent)
        (overlay_snapshotter.upper_dir(key) / f"f{i}").write_text(str(i))
        overlay_snapshotter.commit(f"l{i}", key)
        parent = f"l{i}"
    mounts = overlay_snapshotter.prepare("top", parent)
    assert len(",".join(mounts[0].options)) > os.sysconf("SC_PAGE_SIZE")
    target = tmp_path / "mnt"
    target.mkdir()
    with mounted(mounts, target):
        assert len(list(target.iterdir())) == 130
        assert (target / "f0").read_text() == "0"
        assert (target / "f129").read_text() == "129"
        (target / "f0").write_text("changed")
    assert (overlay_snapshotter.upper_dir("top") / "f0").read_text() == "changed"


def _leave_snapshots_and_die(root: StateRoot, snapshotter_name: str) -> None:
    """In a child process: prepare an active snapshot, a view and a disowned active
    snapshot on committed `p`, write into the first, then die without cleaning up."""
    script = (
        "import os\n"
        "from strata.store.root import StateRoot\n"
        "from strata.worker.snapshots.factory import open_snapshotter\n"
        f"root = StateRoot.open({str(root.path)!r})\n"
        f"snap = open_snapshotter(root, {snapshotter_name!r})\n"
        "snap.prepare('orphan', 'p')\n"
        "(snap.upper_dir('orphan') / 'half-written').write_text('x')\n"
        "snap.view('orphan-view', 'p')\n"
        "snap.prepare('kept', 'p')\n"
        "snap.disown('kept')\n"
        "os.kill(os.getpid(), 9)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()


def test_active_snapshots_of_a_killed_process_are_removed_by_the_next_open(
    snapshotter: Snapshotter, state_root: StateRoot, tmp_path: Path
) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    commit_tree(snapshotter, "p", tree)
    _leave_snapshots_and_die(state_root, snapshotter.name)
    left = {s.key: s for s in snapshotter.list()}
    assert {"orphan", "orphan-view", "kept"} <= set(left)  # the dead process left them
    orphan_dir = state_root.snapshots_dir / str(left["orphan"].id)
    assert orphan_dir.exists()

    reopened = StateRoot.open(state_root.path)
    try:
        after = open_snapshotter(reopened, snapshotter.name)
        assert sorted(s.key for s in after.list()) == ["kept", "p"]
        assert not orphan_dir.exists()
        assert after.stat("kept").owner is None
        # The parent is free again: nothing depends on it but the kept container.
        after.remove("kept")
        after.remove("p")
    finally:
        reopened.close()


def test_snapshots_of_a_live_process_are_kept_by_another_open(
    snapshotter: Snapshotter, state_root: StateRoot, tmp_path: Path
) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    commit_tree(snapshotter, "p", tree)
    snapshotter.prepare("mine", "p")
    assert snapshotter.stat("mine").owner == state_root.owner_dir().name
    other = StateRoot.open(state_root.path)
    try:
        assert open_snapshotter(other, snapshotter.name).exists("mine")
    finally:
        other.close()
    snapshotter.commit("done", "mine")
    assert snapshotter.stat("done").owner is None


def test_files_a_killed_remove_left_behind_are_deleted_by_the_next_open(
    snapshotter: Snapshotter, state_root: StateRoot
) -> None:
    # The dead owner's name is that of a process that has exited: no tmp dir holds its
    # lock. The live one is this process's owner dir, whose lock is held.
    child = subprocess.Popen(["true"])
    child.wait()
    trash = state_root.snapshots_dir / f".removed-7-{child.pid}-0123abcd"
    (trash / "fs" / "deep").mkdir(parents=True)
    probe = state_root.snapshots_dir / f".probe-{child.pid}-0123abcd"
    probe.mkdir()
    mine = state_root.snapshots_dir / f".removed-8-{state_root.owner_dir().name}"
    mine.mkdir()
    open_snapshotter(state_root, snapshotter.name)
    assert not trash.exists()
    assert not probe.exists()
    assert mine.exists()  # its process (this one) may still be deleting it


def test_trash_of_a_reused_pid_is_still_deleted(
    snapshotter: Snapshotter, state_root: StateRoot
) -> None:
    # Liveness is the owner dir's lock, not the pid: this process's pid with another
    # owner suffix names a dead process whose pid was reused.
    stale = state_root.snapshots_dir / f".removed-9-{os.getpid()}-deadbeef"
    stale.mkdir()
    open_snapshotter(state_root, snapshotter.name)
    assert not stale.exists()


def test_a_kill_during_remove_never_leaves_a_row_without_files(
    snapshotter: Snapshotter, state_root: StateRoot, tmp_path: Path
) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "f").write_text("x")
    commit_tree(snapshotter, "victim", tree)
    # The child dies right after moving the snapshot's directory aside, the worst spot.
    script = (
        "import os\n"
        "from strata.store.root import StateRoot\n"
        "from strata.worker.snapshots.factory import open_snapshotter\n"
        f"root = StateRoot.open({str(state_root.path)!r})\n"
        f"snap = open_snapshotter(root, {snapshotter.name!r})\n"
        "real_rename = os.rename\n"
        "def rename_and_die(src, dst):\n"
        "    real_rename(src, dst)\n"
        "    if '.removed-' in os.fspath(dst):\n"
        "        os.kill(os.getpid(), 9)\n"
        "os.rename = rename_and_die\n"
        "snap.remove('victim')\n"
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()

    reopened = StateRoot.open(state_root.path)
    try:
        after = open_snapshotter(reopened, snapshotter.name)
        assert not [n for n in os.listdir(reopened.snapshots_dir) if n.startswith(".removed-")]
        missing = [s.key for s in after.list() if not (reopened.snapshots_dir / str(s.id)).exists()]
        assert missing == []
        assert not after.exists("victim")
    finally:
        reopened.close()

"""Incremental COPY (`strata.worker.reuse`): a re-run context copy equals a full copy.

Each check builds the same project twice: in a state root that has built earlier
versions of it (so its COPY starts from the previous result and links unchanged files)
and in a fresh root (a full copy). The two COPY snapshots must describe the same tree
(`tree_state`: bytes, modes, owners, mtimes, xattrs, links within the tree) and give the
same layer diff IDs.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strata.worker.reuse as reuse_module
from strata.api import BuildRequest, build
from strata.errors import StrataError
from strata.solver.copies import CopyManifests
from strata.solver.records import CacheRecords
from strata.store.root import StateRoot
from strata.worker.reuse import CopyReuse
from strata.worker.snapshots.factory import open_snapshotter
from tests.integration.image_fixtures import tree_state

SNAPSHOTTERS = ["overlay", "native"]

DOCKERFILES = (
    "FROM scratch\nCOPY . /app\n",
    "FROM scratch\nCOPY --chmod=640 --chown=7:8 . /app/\n",
    # Onto a parent that has files and directories at the destination (an overlay
    # copies them up or whites them out), from several sources that may overlap.
    "FROM scratch\nCOPY base/ /\nCOPY src* a.tx[t] dat[a] doc[s] /etc/\n",
    "FROM scratch\nCOPY . /\n",
    "FROM scratch\nADD . /app\n",
)


# -- helpers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def opened(path: Path) -> Iterator[StateRoot]:
    root = StateRoot.open(path)
    try:
        yield root
    finally:
        root.close()


def raw_tree(root_path: Path, snapshotter: str, name: str) -> dict[str, Any]:
    """The tree of snapshot `name`, everything a layer carries, times and all."""
    with opened(root_path) as root:
        tree_dir = open_snapshotter(root, snapshotter).tree_dir(name)
        # No window: every time compared as it is.
        return normalised(tree_state(tree_dir, keep_overlay_xattrs=False), (1, 0))


def committed_results(root: StateRoot, snapshotter: str) -> list[str]:
    return [
        s.key
        for s in open_snapshotter(root, snapshotter).list()
        if s.kind == "committed" and s.key.startswith("result-")
    ]


def build_copy(
    root_path: Path, project: Path, snapshotter: str
) -> tuple[str, dict[str, Any], list[str]]:
    """Build `project`; return its COPY snapshot, that snapshot's tree and the diff IDs
    (the snapshot is "" when the COPY was a cache hit)."""
    with opened(root_path) as root:
        before = set(committed_results(root, snapshotter))
        started = time.time()
        result = build(
            BuildRequest(context=project, tags=("incr:test",), snapshotter=snapshotter), root=root
        )
        window = (int(started) - 1, int(time.time()) + 1)
        diff_ids = list(result.config["rootfs"]["diff_ids"])
        made = [k for k in committed_results(root, snapshotter) if k not in before]
        records = CacheRecords(root)
        # The COPY's snapshot is the one whose layer is the image's (a cache hit made none).
        layers = {
            k: records.reusable_layer_of(k, "gzip") for k in committed_results(root, snapshotter)
        }
        named = [k for k, row in layers.items() if row is not None and row.diff_id == diff_ids[-1]]
        assert named, (made, layers)
        name = made[-1] if made and made[-1] in named else named[-1]
        # Overlay's own xattrs (a copied-up directory's origin handle differs from root
        # to root) never reach a layer; an opaque directory does, and the diff IDs
        # compare that.
        tree_dir = open_snapshotter(root, snapshotter).tree_dir(name)
        tree = normalised(tree_state(tree_dir, keep_overlay_xattrs=False), window)
        if any(entry["mtime"] == "now" for entry in tree.values()):
            # Directory times of "now" differ between any two builds a second apart,
            # and the layers with them; the trees still say where they are.
            diff_ids = ["(layers with times of now)"]
        if not made:
            name = ""
    return name, tree, diff_ids


def normalised(state: dict[str, Any], window: tuple[int, int]) -> dict[str, Any]:
    """`tree_state` with links to other trees ignored: a `link_group` naming only the
    entry itself is a link outside this tree (to the previous snapshot), which no layer
    can see. A directory whose mtime (seconds) falls in `window`, the build's, got the
    time of a write during the build: its mtime becomes "now"."""
    members: dict[str, int] = {}
    for entry in state.values():
        if "link_group" in entry:
            members[entry["link_group"]] = members.get(entry["link_group"], 0) + 1
    out: dict[str, Any] = {}
    for rel, entry in state.items():
        entry = dict(entry)
        if "link_group" in entry and members[entry["link_group"]] == 1:
            del entry["link_group"]
        if entry["mode"].startswith("d") and window[0] <= entry["mtime"] <= window[1]:
            entry["mtime"] = "now"
        out[rel] = entry
    return out


def reference(tmp: Path, project: Path, snapshotter: str) -> tuple[dict[str, Any], list[str]]:
    """The full copy: the same project built in a fresh state root."""
    index = len(list(tmp.glob("ref-*")))
    _, tree, diff_ids = build_copy(tmp / f"ref-{index}", project, snapshotter)
    return tree, diff_ids


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)


def make_project(project: Path, dockerfile: str) -> None:
    project.mkdir(parents=True)
    (project / "Dockerfile").write_text(dockerfile)
    write_file(project / "a.txt", b"alpha\n")
    write_file(project / "src" / "main.py", b"print('hi')\n" * 50, 0o755)
    write_file(project / "src" / "lib" / "util.py", b"X = 1\n")
    write_file(project / ".hidden" / "..x", b"dotted names\n")
    write_file(project / "data" / "big.bin", bytes(range(256)) * 64)
    os.link(project / "data" / "big.bin", project / "data" / "big-link.bin")
    os.symlink("../a.txt", project / "src" / "a-link")
    # A parent tree for the third Dockerfile (no edit touches it).
    write_file(project / "base" / "etc" / "a.txt", b"from the parent\n", 0o600)
    write_file(project / "base" / "etc" / "main.py", b"shadowed\n")
    write_file(project / "base" / "etc" / "lib" / "keep.py", b"kept\n")
    os.chmod(project / "base" / "etc" / "lib", 0o700)


# -- edits -----------------------------------------------------------------------------------

NAMES = st.sampled_from(
    [
        "a.txt",
        "b.txt",
        "src/main.py",
        "src/lib/util.py",
        "src/new.py",
        "data/big.bin",
        "data/big-link.bin",
        "src/a-link",
        "src/lib",
        "data",
        "docs/readme.md",
    ]
)
CONTENT = st.binary(max_size=300)

EDITS = st.one_of(
    st.tuples(st.just("write"), NAMES, CONTENT),
    st.tuples(st.just("append"), NAMES, CONTENT),
    st.tuples(st.just("delete"), NAMES),
    st.tuples(st.just("chmod"), NAMES, st.sampled_from([0o600, 0o644, 0o755, 0o4755, 0o640])),
    st.tuples(st.just("chown"), NAMES, st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("mtime"), NAMES, st.integers(0, 2_000_000_000)),
    st.tuples(st.just("symlink"), NAMES, st.sampled_from(["a.txt", "../x", "/etc/passwd"])),
    st.tuples(st.just("hardlink"), NAMES, NAMES),
    st.tuples(st.just("rename"), NAMES, NAMES),
    st.tuples(st.just("dir_to_file"), NAMES, CONTENT),
    st.tuples(st.just("xattr"), NAMES, st.binary(min_size=1, max_size=20)),
)


def remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        import shutil

        shutil.rmtree(path)


def apply_edit(project: Path, edit: tuple[Any, ...]) -> None:
    """Apply one edit; an edit that makes no sense for the tree as it is does nothing."""
    kind, name = edit[0], edit[1]
    path = project / name
    with contextlib.suppress(OSError):
        if kind == "write":
            if path.is_dir() and not path.is_symlink():
                return
            if path.is_symlink():
                path.unlink()
            write_file(path, edit[2])
        elif kind == "append" and path.is_file() and not path.is_symlink():
            with open(path, "ab") as fh:
                fh.write(edit[2] + b"+")
        elif kind == "delete":
            remove(path)
        elif kind == "chmod" and path.exists() and not path.is_symlink():
            os.chmod(path, edit[2])
        elif kind == "chown" and os.path.lexists(path):
            os.lchown(path, edit[2], edit[3])
        elif kind == "mtime" and os.path.lexists(path):
            os.utime(path, (edit[2], edit[2]), follow_symlinks=False)
        elif kind == "symlink":
            remove(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(edit[2], path)
        elif kind == "hardlink":
            other = project / edit[2]
            if other.is_file() and not other.is_symlink() and not os.path.lexists(path):
                path.parent.mkdir(parents=True, exist_ok=True)
                os.link(other, path)
        elif kind == "rename":
            other = project / edit[2]
            if os.path.lexists(path) and not os.path.lexists(other):
                other.parent.mkdir(parents=True, exist_ok=True)
                os.rename(path, other)
        elif kind == "dir_to_file":
            if path.is_dir() and not path.is_symlink():
                remove(path)
                write_file(path, edit[2])
        elif kind == "xattr" and path.is_file() and not path.is_symlink():
            os.setxattr(path, "user.strata-test", edit[2])


# -- the property ----------------------------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    dockerfile=st.sampled_from(DOCKERFILES),
    batches=st.lists(st.lists(EDITS, min_size=1, max_size=5), min_size=1, max_size=3),
)
@pytest.mark.parametrize("snapshotter", SNAPSHOTTERS)
def test_incremental_copy_equals_a_full_copy_after_random_edits(
    tmp_path_factory: pytest.TempPathFactory,
    snapshotter: str,
    dockerfile: str,
    batches: list[list[tuple[Any, ...]]],
) -> None:
    tmp = tmp_path_factory.mktemp("incr")
    project = tmp / "project"
    make_project(project, dockerfile)
    # Files written just now would be "racy" (changed within a clock tick of the copy)
    # and never reused; these edits happen whole milliseconds apart from any copy.
    with mock.patch.object(reuse_module, "RACY_WINDOW_NS", 0):
        build_copy(tmp / "incremental", project, snapshotter)
        for batch in batches:
            for edit in batch:
                apply_edit(project, edit)
            try:
                made, got, got_ids = build_copy(tmp / "incremental", project, snapshotter)
            except StrataError as exc:
                # An edit the COPY refuses (a file over a directory of the parent):
                # a full copy refuses it the same way.
                with pytest.raises(StrataError) as full:
                    reference(tmp, project, snapshotter)
                assert str(full.value) == str(exc)
                continue
            if not made:
                # A cache hit (only times or owners of context files changed, which no
                # key covers): the stored result is an older copy, not this one.
                continue
            want, want_ids = reference(tmp, project, snapshotter)
            assert got == want
            assert got_ids == want_ids


# -- reuse happens, and leaves the previous result alone -------------------------------------


@pytest.mark.parametrize("snapshotter", SNAPSHOTTERS)
def test_unchanged_files_are_linked_and_the_previous_result_is_untouched(
    tmp_path: Path, snapshotter: str
) -> None:
    project = tmp_path / "project"
    make_project(project, DOCKERFILES[0])
    with mock.patch.object(reuse_module, "RACY_WINDOW_NS", 0):
        first, _, _ = build_copy(tmp_path / "root", project, snapshotter)
        first_tree = raw_tree(tmp_path / "root", snapshotter, first)
        (project / "a.txt").write_text("changed\n")
        second, second_tree, ids = build_copy(tmp_path / "root", project, snapshotter)
    assert second != first
    with opened(tmp_path / "root") as root:
        snapshots = open_snapshotter(root, snapshotter)
        old, new = snapshots.tree_dir(first), snapshots.tree_dir(second)
        unchanged = os.lstat(new / "app/src/main.py")
        assert unchanged.st_ino == os.lstat(old / "app/src/main.py").st_ino
        assert os.lstat(new / "app/a.txt").st_ino != os.lstat(old / "app/a.txt").st_ino
        assert (new / "app/a.txt").read_text() == "changed\n"
        # Hard links within the context stay links within the new tree.
        assert (
            os.lstat(new / "app/data/big.bin").st_ino
            == os.lstat(new / "app/data/big-link.bin").st_ino
        )
    assert raw_tree(tmp_path / "root", snapshotter, first) == first_tree
    want, want_ids = reference(tmp_path, project, snapshotter)
    assert second_tree == want and ids == want_ids


@pytest.mark.parametrize("snapshotter", SNAPSHOTTERS)
def test_a_copy_over_files_of_the_parent_reuses_them_too(tmp_path: Path, snapshotter: str) -> None:
    """Files that replace the parent's (an overlay whiteout first) and files in a
    directory of the parent (copied up) are linked like the others."""
    project = tmp_path / "project"
    make_project(project, DOCKERFILES[2])
    with mock.patch.object(reuse_module, "RACY_WINDOW_NS", 0):
        first, _, _ = build_copy(tmp_path / "root", project, snapshotter)
        (project / "src" / "new.py").write_text("new\n")
        second, got, ids = build_copy(tmp_path / "root", project, snapshotter)
    with opened(tmp_path / "root") as root:
        snapshots = open_snapshotter(root, snapshotter)
        old, new = snapshots.tree_dir(first), snapshots.tree_dir(second)
        for shared in ("etc/a.txt", "etc/main.py", "etc/lib/util.py"):
            assert os.lstat(new / shared).st_ino == os.lstat(old / shared).st_ino, shared
        assert (new / "etc/new.py").read_text() == "new\n"
    want, want_ids = reference(tmp_path, project, snapshotter)
    assert got == want and ids == want_ids


@pytest.mark.parametrize("snapshotter", SNAPSHOTTERS)
def test_an_archive_added_after_reused_files_is_extracted_over_them(
    tmp_path: Path, snapshotter: str
) -> None:
    """ADD extracts a local archive where reused files may be: they are written out
    before it, so the archive lands on them as on a full copy's files (and what it
    wrote is not followed: that copy keeps no manifest)."""
    import tarfile

    project = tmp_path / "project"
    make_project(project, "FROM scratch\nADD src pkg.tar /app/\n")
    (project / "pkg.tar").write_text("not an archive yet\n")
    with mock.patch.object(reuse_module, "RACY_WINDOW_NS", 0):
        build_copy(tmp_path / "root", project, snapshotter)
        staging = tmp_path / "staging"
        write_file(staging / "main.py", b"from the archive\n")
        write_file(staging / "extra.py", b"extra\n")
        (project / "pkg.tar").unlink()
        with tarfile.open(project / "pkg.tar", "w") as tar:
            tar.add(staging / "main.py", arcname="main.py")
            tar.add(staging / "extra.py", arcname="extra.py")
        second, got, ids = build_copy(tmp_path / "root", project, snapshotter)
    assert second
    assert got["app/main.py"]["sha256"] == hashlib.sha256(b"from the archive\n").hexdigest()
    with opened(tmp_path / "root") as root:
        assert CopyManifests(root).files_of(second) is None
    want, want_ids = reference(tmp_path, project, snapshotter)
    assert got == want and ids == want_ids


@pytest.mark.parametrize("snapshotter", SNAPSHOTTERS)
def test_a_chmod_in_a_later_layer_leaves_the_linked_file_of_the_copy_alone(
    tmp_path: Path, snapshotter: str
) -> None:
    """A RUN changing a reused file changes its own layer's copy, never the inode the
    two COPY snapshots share."""
    project = tmp_path / "project"
    make_project(project, "FROM scratch\nCOPY . /app\n")
    with mock.patch.object(reuse_module, "RACY_WINDOW_NS", 0):
        first, _, _ = build_copy(tmp_path / "root", project, snapshotter)
        (project / "a.txt").write_text("changed\n")
        second, _, _ = build_copy(tmp_path / "root", project, snapshotter)
    with opened(tmp_path / "root") as root:
        snapshots = open_snapshotter(root, snapshotter)
        shared = snapshots.tree_dir(first) / "app/src/main.py"
        before = os.lstat(shared)
        # What a derived layer does: a child snapshot of the second copy, changed.
        from strata.worker.snapshots.mount import mounted

        target = tmp_path / "mnt"
        target.mkdir()
        mounts = snapshots.prepare("child", second)
        with mounted(mounts, target):
            os.chmod(target / "app/src/main.py", 0o600)
            os.chown(target / "app/src/main.py", 5, 5)
            with open(target / "app/src/main.py", "ab") as fh:
                fh.write(b"# more\n")
        snapshots.remove("child")
        after = os.lstat(shared)
        assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_size) == (
            stat.S_IMODE(before.st_mode),
            before.st_uid,
            before.st_size,
        )


# -- a crash in the middle -------------------------------------------------------------------


def _interrupting_finish(action: str) -> Any:
    real = CopyReuse.finish

    def finish(self: CopyReuse) -> None:
        # Link about half of the pending files, then fail.
        everything = dict(self.pending)
        self.pending = dict(sorted(everything.items())[: max(1, len(everything) // 2)])
        real(self)
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("injected failure in the middle of an incremental COPY")

    return finish


def _build_and_crash(root_path: str, project: str, action: str, snapshotter: str) -> None:
    with mock.patch.object(CopyReuse, "finish", _interrupting_finish(action)):
        build_copy(Path(root_path), Path(project), snapshotter)


@pytest.mark.parametrize("snapshotter", SNAPSHOTTERS)
@pytest.mark.parametrize("action", ["raise", "kill"])
def test_a_crash_in_the_middle_of_an_incremental_copy_leaves_nothing_trusted(
    tmp_path: Path, action: str, snapshotter: str
) -> None:
    project = tmp_path / "project"
    make_project(project, DOCKERFILES[0])
    for i in range(40):
        write_file(project / "many" / f"f{i:02d}.txt", f"{i}\n".encode())
    root_path = tmp_path / "root"
    with mock.patch.object(reuse_module, "RACY_WINDOW_NS", 0):
        first, _, _ = build_copy(root_path, project, snapshotter)
        first_tree = raw_tree(root_path, snapshotter, first)
        with opened(root_path) as root:
            results_before = committed_results(root, snapshotter)
            manifest_before = CopyManifests(root).files_of(first)
        (project / "a.txt").write_text("changed\n")
        if action == "raise":
            with pytest.raises(RuntimeError, match="injected"):
                _build_and_crash(str(root_path), str(project), action, snapshotter)
        else:
            child = multiprocessing.get_context("fork").Process(
                target=_build_and_crash, args=(str(root_path), str(project), action, snapshotter)
            )
            child.start()
            child.join(120)
            assert child.exitcode == -signal.SIGKILL
        with opened(root_path) as root:
            snapshots = open_snapshotter(root, snapshotter)  # reaps what the dead build left
            assert committed_results(root, snapshotter) == results_before
            assert [s.key for s in snapshots.list() if s.kind != "committed"] == []
            assert CopyManifests(root).files_of(first) == manifest_before
        assert raw_tree(root_path, snapshotter, first) == first_tree
        _, got, got_ids = build_copy(root_path, project, snapshotter)
    want, want_ids = reference(tmp_path, project, snapshotter)
    assert got == want and got_ids == want_ids

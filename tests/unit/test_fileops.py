"""COPY into a tree: destination rules, wildcards, links, metadata and owners (BuildKit's rules)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from strata.errors import SourceNotFoundError, StrataError
from strata.worker.chmod import parse_chmod
from strata.worker.fileops import CopyOptions, copy

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root to set owners")


def write(root: Path, rel: str, data: str = "", mode: int = 0o644) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    os.chmod(path, mode)
    return path


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    write(root, "a.txt", "A")
    write(root, "b.txt", "B")
    write(root, "dir/one", "1")
    write(root, "dir/sub/two", "2")
    return root


@pytest.fixture
def dst(tmp_path: Path) -> Path:
    root = tmp_path / "dst"
    root.mkdir()
    return root


# -- destination rules ----------------------------------------------------------------------


def test_file_to_trailing_slash_creates_directory(src: Path, dst: Path) -> None:
    copy(src, ["a.txt"], dst, "/app/")
    assert (dst / "app/a.txt").read_text() == "A"


def test_file_to_missing_path_becomes_that_file(src: Path, dst: Path) -> None:
    copy(src, ["a.txt"], dst, "/app/renamed")
    assert (dst / "app/renamed").read_text() == "A"


def test_file_into_existing_directory_keeps_its_basename(src: Path, dst: Path) -> None:
    (dst / "app").mkdir()
    copy(src, ["a.txt"], dst, "/app")
    assert (dst / "app/a.txt").read_text() == "A"


def test_dot_destination_is_a_directory(src: Path, dst: Path) -> None:
    copy(src, ["a.txt"], dst, "/work/.")
    assert (dst / "work/a.txt").read_text() == "A"


def test_directory_source_copies_its_contents(src: Path, dst: Path) -> None:
    copy(src, ["dir"], dst, "/app")
    assert (dst / "app/one").read_text() == "1"
    assert (dst / "app/sub/two").read_text() == "2"
    assert not (dst / "app/dir").exists()


def test_directory_contents_merge_with_existing_directory(src: Path, dst: Path) -> None:
    write(dst, "app/keep", "k")
    write(dst, "app/sub/also", "a")
    copy(src, ["dir"], dst, "/app/")
    assert sorted(p.name for p in (dst / "app").iterdir()) == ["keep", "one", "sub"]
    assert sorted(p.name for p in (dst / "app/sub").iterdir()) == ["also", "two"]


def test_multiple_sources_onto_missing_path_leave_the_last_file(src: Path, dst: Path) -> None:
    copy(src, ["a.txt", "b.txt"], dst, "/x")
    assert (dst / "x").read_text() == "B"


def test_directory_onto_existing_file_fails(src: Path, dst: Path) -> None:
    write(dst, "x", "file")
    with pytest.raises(StrataError, match=r"^cannot copy to non-directory: /x$"):
        copy(src, ["dir"], dst, "/x")


def test_file_onto_directory_inside_tree_fails(src: Path, dst: Path) -> None:
    write(dst, "app/one/inner", "occupied")
    with pytest.raises(StrataError, match=r"^cannot replace to directory /app/one with file$"):
        copy(src, ["dir"], dst, "/app")


def test_existing_file_is_replaced(src: Path, dst: Path) -> None:
    write(dst, "app/a.txt", "old content that is longer")
    copy(src, ["a.txt"], dst, "/app/")
    assert (dst / "app/a.txt").read_text() == "A"


def test_source_path_cannot_leave_the_source_root(src: Path, dst: Path) -> None:
    copy(src, ["../../../a.txt"], dst, "/")
    assert (dst / "a.txt").read_text() == "A"


def test_missing_source_is_not_found(src: Path, dst: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r'^"/missing": not found$'):
        copy(src, ["missing"], dst, "/app/")


# -- wildcards ------------------------------------------------------------------------------


def test_wildcard_copies_matches_in_lexical_order(src: Path, dst: Path) -> None:
    copy(src, ["*.txt"], dst, "/out")
    # both files land on /out in order: the last one wins, as BuildKit copies them in turn
    assert (dst / "out").read_text() == "B"


def test_wildcard_into_directory(src: Path, dst: Path) -> None:
    copy(src, ["?.txt"], dst, "/out/")
    assert sorted(p.name for p in (dst / "out").iterdir()) == ["a.txt", "b.txt"]


def test_wildcard_matching_nothing_is_a_no_op(src: Path, dst: Path) -> None:
    copy(src, ["*.nothing"], dst, "/out/")
    assert not (dst / "out").exists()


def test_wildcard_matched_directory_copies_its_contents(src: Path, dst: Path) -> None:
    copy(src, ["d*"], dst, "/out/")
    assert (dst / "out/one").exists() and (dst / "out/sub/two").exists()


def test_escaped_bracket_matches_literally(tmp_path: Path, dst: Path) -> None:
    write(tmp_path / "s", "arr[0].txt", "zero")
    copy(tmp_path / "s", ["arr[[]0].txt"], dst, "/out/")
    assert (dst / "out/arr[0].txt").read_text() == "zero"


# -- symlinks and hard links ------------------------------------------------------------------


def test_top_level_symlink_is_followed_and_named_after_the_link(src: Path, dst: Path) -> None:
    os.symlink("a.txt", src / "alias")
    copy(src, ["alias"], dst, "/out/")
    assert not (dst / "out/alias").is_symlink()
    assert (dst / "out/alias").read_text() == "A"


def test_symlink_to_directory_copies_target_contents(src: Path, dst: Path) -> None:
    os.symlink("/dir", src / "dirlink")
    copy(src, ["dirlink"], dst, "/out")
    assert (dst / "out/one").read_text() == "1"


def test_symlink_in_source_path_component_is_followed(src: Path, dst: Path) -> None:
    os.symlink("dir", src / "d")
    copy(src, ["d/sub/two"], dst, "/out/")
    assert (dst / "out/two").read_text() == "2"


def test_wildcard_matched_symlink_is_followed(src: Path, dst: Path) -> None:
    os.symlink("a.txt", src / "z.link")
    copy(src, ["*.link"], dst, "/out/")
    assert (dst / "out/z.link").read_text() == "A"
    assert not (dst / "out/z.link").is_symlink()


def test_symlinks_inside_directories_are_kept(src: Path, dst: Path) -> None:
    os.symlink("../one", src / "dir/sub/up")
    os.symlink("/etc/shadow", src / "dir/abs")
    copy(src, ["dir"], dst, "/out")
    assert os.readlink(dst / "out/sub/up") == "../one"
    assert os.readlink(dst / "out/abs") == "/etc/shadow"


def test_destination_symlink_resolves_inside_the_destination(
    tmp_path: Path, src: Path, dst: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (dst / "real").mkdir()
    os.symlink("/real", dst / "app")
    os.symlink(str(outside), dst / "escape")
    copy(src, ["a.txt"], dst, "/app/")
    copy(src, ["b.txt"], dst, "/escape/")
    assert (dst / "real/a.txt").read_text() == "A"
    assert list(outside.iterdir()) == []
    assert (dst / str(outside).lstrip("/") / "b.txt").read_text() == "B"


def test_symlink_inside_destination_tree_is_not_followed_when_copying_a_dir(
    tmp_path: Path, src: Path, dst: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (dst / "app").mkdir()
    os.symlink(str(outside), dst / "app/sub")
    with pytest.raises(StrataError, match=r"cannot copy to non-directory: /app/sub"):
        copy(src, ["dir"], dst, "/app")
    assert list(outside.iterdir()) == []


def test_hard_links_among_copied_files_are_recreated(src: Path, dst: Path) -> None:
    os.link(src / "dir/one", src / "dir/sub/one-again")
    copy(src, ["dir"], dst, "/out")
    a, b = os.stat(dst / "out/one"), os.stat(dst / "out/sub/one-again")
    assert a.st_ino == b.st_ino
    assert os.stat(src / "dir/one").st_ino != a.st_ino


def test_hard_links_are_not_shared_between_wildcard_matches(src: Path, dst: Path) -> None:
    os.link(src / "dir/one", src / "dir/one-again")
    copy(src, ["dir/one*"], dst, "/out/")
    assert os.stat(dst / "out/one").st_ino != os.stat(dst / "out/one-again").st_ino
    assert (dst / "out/one-again").read_bytes() == (src / "dir/one").read_bytes()


def test_fifo_is_recreated_and_socket_becomes_empty_file(tmp_path: Path, dst: Path) -> None:
    import socket

    src = tmp_path / "special"
    src.mkdir()
    os.mkfifo(src / "pipe", 0o640)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(src / "sock"))
        copy(src, ["/"], dst, "/out")
    finally:
        sock.close()
    assert stat.S_ISFIFO(os.lstat(dst / "out/pipe").st_mode)
    assert stat.S_IMODE(os.lstat(dst / "out/pipe").st_mode) == 0o640
    assert stat.S_ISREG(os.lstat(dst / "out/sock").st_mode)
    assert os.path.getsize(dst / "out/sock") == 0


@needs_root
def test_device_files_are_recreated(tmp_path: Path, dst: Path) -> None:
    src = tmp_path / "dev"
    src.mkdir()
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    copy(src, ["null"], dst, "/dev/")
    st = os.lstat(dst / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


# -- metadata -----------------------------------------------------------------------------------


def test_mode_and_mtime_are_preserved(src: Path, dst: Path) -> None:
    os.chmod(src / "dir/one", 0o4750)
    os.utime(src / "dir/one", ns=(1_000_000_123, 2_000_000_456))
    os.utime(src / "dir/sub", ns=(3_000_000_000, 4_000_000_000))
    copy(src, ["dir"], dst, "/out")
    st = os.lstat(dst / "out/one")
    assert stat.S_IMODE(st.st_mode) == 0o4750
    assert st.st_mtime_ns == 2_000_000_456
    assert os.lstat(dst / "out/sub").st_mtime_ns == 4_000_000_000


def test_xattrs_are_preserved(src: Path, dst: Path) -> None:
    try:
        os.setxattr(src / "a.txt", "user.origin", b"context")
    except OSError:
        pytest.skip("filesystem without user xattrs")
    copy(src, ["a.txt"], dst, "/out/")
    assert os.getxattr(dst / "out/a.txt", "user.origin") == b"context"


def test_created_parents_are_0755_and_existing_ones_untouched(src: Path, dst: Path) -> None:
    (dst / "opt").mkdir(mode=0o700)
    os.chmod(dst / "opt", 0o700)
    copy(src, ["a.txt"], dst, "/opt/deep/er/")
    assert stat.S_IMODE(os.stat(dst / "opt").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(dst / "opt/deep").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(dst / "opt/deep/er").st_mode) == 0o755


def test_directory_source_onto_new_path_gets_0755_not_the_source_mode(src: Path, dst: Path) -> None:
    os.chmod(src / "dir", 0o700)
    copy(src, ["dir"], dst, "/new")
    assert stat.S_IMODE(os.stat(dst / "new").st_mode) == 0o755


@needs_root
def test_owners_are_kept_from_a_stage(src: Path, dst: Path) -> None:
    os.chown(src / "dir/one", 1000, 1001)
    copy(src, ["dir"], dst, "/out")
    st = os.lstat(dst / "out/one")
    assert (st.st_uid, st.st_gid) == (1000, 1001)


@needs_root
def test_owner_reset_gives_context_files_to_root(src: Path, dst: Path) -> None:
    os.chown(src / "dir/one", 1000, 1001)
    copy(src, ["dir"], dst, "/out", options=CopyOptions(owner_reset=True))
    st = os.lstat(dst / "out/one")
    assert (st.st_uid, st.st_gid) == (0, 0)


@needs_root
def test_chown_applies_to_files_dirs_links_and_created_parents(src: Path, dst: Path) -> None:
    os.symlink("one", src / "dir/ln")
    copy(src, ["dir"], dst, "/p/q/out", options=CopyOptions(chown=(1234, 5678)))
    for rel in ("p", "p/q", "p/q/out", "p/q/out/one", "p/q/out/sub", "p/q/out/ln"):
        st = os.lstat(dst / rel)
        assert (st.st_uid, st.st_gid) == (1234, 5678), rel


@needs_root
def test_existing_destination_directory_keeps_its_owner(src: Path, dst: Path) -> None:
    (dst / "app").mkdir()
    os.chown(dst / "app", 7, 7)
    copy(src, ["dir"], dst, "/app", options=CopyOptions(chown=(1, 1)))
    st = os.stat(dst / "app")
    assert (st.st_uid, st.st_gid) == (7, 7)


def test_octal_chmod_applies_to_files_dirs_and_created_parents(src: Path, dst: Path) -> None:
    copy(src, ["dir"], dst, "/p/out", options=CopyOptions(chmod=parse_chmod("0750")))
    for rel in ("p", "p/out"):
        assert stat.S_IMODE(os.stat(dst / rel).st_mode) == 0o750, rel
    for rel in ("p/out/one", "p/out/sub", "p/out/sub/two"):
        assert stat.S_IMODE(os.stat(dst / rel).st_mode) == 0o750, rel


def test_symbolic_chmod_is_relative_and_parents_stay_0755(src: Path, dst: Path) -> None:
    os.chmod(src / "dir/one", 0o600)
    os.chmod(src / "dir/sub/two", 0o700)
    copy(src, ["dir"], dst, "/p/out", options=CopyOptions(chmod=parse_chmod("go+rX")))
    assert stat.S_IMODE(os.stat(dst / "p").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(dst / "p/out/one").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(dst / "p/out/sub/two").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(dst / "p/out/sub").st_mode) == 0o755


def test_timestamp_option_overrides_times(src: Path, dst: Path) -> None:
    copy(src, ["dir"], dst, "/out", options=CopyOptions(timestamp_ns=5 * 10**9))
    assert os.lstat(dst / "out/sub/two").st_mtime_ns == 5 * 10**9

"""--parents, --exclude, WORKDIR mkdir, heredoc files, rm, --chown name lookup and
laying a linked copy's tree onto its base."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from strata.dockerfile.ignore import PatternMatcher
from strata.errors import SourceNotFoundError, StrataError
from strata.worker.contenthash import checksum
from strata.worker.fileops import (
    CopyOptions,
    copy,
    lay_tree,
    mkdir,
    mkfile,
    parents_source,
    resolve_chown,
    rm,
)
from tests.rootfs import make_busybox_rootfs

ROOT = os.geteuid() == 0


def write(root: Path, rel: str, data: str = "") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    return path


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for rel in ("x/y/a.txt", "x/y/b.md", "x/y/deep/c.txt", "x/z/d.txt", "top.txt"):
        write(root, rel, rel)
    return root


@pytest.fixture
def dst(tmp_path: Path) -> Path:
    root = tmp_path / "dst"
    root.mkdir()
    return root


def copy_parents(src: Path, source: str, dst: Path, dest: str) -> None:
    split = parents_source(source)
    options = CopyOptions(
        include=PatternMatcher([split.pattern]),
        required_paths=(split.required,) if split.required else (),
    )
    copy(src, [split.source], dst, dest, options=options)


def test_parents_split_at_dot_pivot() -> None:
    split = parents_source("./x/./y/*.txt")
    assert (split.source, split.pattern, split.required) == ("/x", "y/*.txt", None)
    plain = parents_source("x/y/a.txt")
    assert (plain.source, plain.pattern, plain.required) == ("/", "x/y/a.txt", "/x/y/a.txt")


def test_parents_leading_dot_pivot_is_the_root() -> None:
    # BuildKit cuts the source as written at its first `/./`: for `/./x/./y` that is
    # the very start, so every path below the root is kept.
    split = parents_source("/./x/./y/*.txt")
    assert (split.source, split.pattern, split.required) == ("/", "x/y/*.txt", None)
    literal = parents_source("/./x/./y")
    assert (literal.source, literal.pattern, literal.required) == ("/", "x/y", "/x/y")


def test_parents_keeps_the_source_path(src: Path, dst: Path) -> None:
    copy_parents(src, "x/y/*.txt", dst, "/out/")
    assert files_under(dst / "out") == ["x", "x/y", "x/y/a.txt"]


def test_parents_pivot_keeps_only_the_part_after_it(src: Path, dst: Path) -> None:
    copy_parents(src, "./x/./y/*.txt", dst, "/out/")
    assert files_under(dst / "out") == ["y", "y/a.txt"]


def test_parents_double_star_matches_any_depth(src: Path, dst: Path) -> None:
    copy_parents(src, "x/**/*.txt", dst, "/out/")
    assert files_under(dst / "out") == [
        "x",
        "x/y",
        "x/y/a.txt",
        "x/y/deep",
        "x/y/deep/c.txt",
        "x/z",
        "x/z/d.txt",
    ]


def test_parents_literal_source_must_exist(src: Path, dst: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r'"/x/nope.txt": not found'):
        copy_parents(src, "x/nope.txt", dst, "/out/")


def test_exclude_skips_matching_files_relative_to_each_source(src: Path, dst: Path) -> None:
    options = CopyOptions(exclude=PatternMatcher(["*.md", "deep"]))
    copy(src, ["x/y"], dst, "/out", options=options)
    assert files_under(dst / "out") == ["a.txt"]


def test_exclude_with_reinclusion_keeps_parent_directories(src: Path, dst: Path) -> None:
    options = CopyOptions(exclude=PatternMatcher(["y", "!y/deep/c.txt"]))
    copy(src, ["x"], dst, "/out", options=options)
    assert files_under(dst / "out") == ["y", "y/deep", "y/deep/c.txt", "z", "z/d.txt"]


def test_excluded_files_do_not_change_the_checksum_of_what_is_copied(src: Path) -> None:
    exclude = PatternMatcher(["**/*.md"])
    before = checksum(src, "x", exclude=exclude)
    write(src, "x/y/b.md", "edited")
    assert checksum(src, "x", exclude=exclude) == before


def test_context_ignore_hides_files_from_copy(src: Path, dst: Path) -> None:
    options = CopyOptions(ignore=PatternMatcher(["x/z", "**/*.md"]), owner_reset=True)
    copy(src, ["x"], dst, "/out", options=options)
    assert files_under(dst / "out") == ["y", "y/a.txt", "y/deep", "y/deep/c.txt"]
    with pytest.raises(SourceNotFoundError):
        copy(src, ["x/z/d.txt"], dst, "/out2", options=options)


# -- mkdir / mkfile / rm ---------------------------------------------------------------------


def test_mkdir_creates_parents_and_leaves_existing_dirs_alone(dst: Path) -> None:
    (dst / "srv").mkdir(mode=0o700)
    os.chmod(dst / "srv", 0o700)
    mkdir(dst, "/srv/app/data", 0o755, 0, 0)
    assert stat.S_IMODE(os.stat(dst / "srv").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(dst / "srv/app/data").st_mode) == 0o755
    mkdir(dst, "/srv/app/data", 0o700, 0, 0)
    assert stat.S_IMODE(os.stat(dst / "srv/app/data").st_mode) == 0o755


@pytest.mark.skipif(not ROOT, reason="needs root to set owners")
def test_mkdir_owns_created_dirs_by_the_user(dst: Path) -> None:
    (dst / "home").mkdir()
    mkdir(dst, "/home/app/work", 0o755, 1000, 1000, mtime_ns=10**9)
    for rel in ("home/app", "home/app/work"):
        st = os.stat(dst / rel)
        assert (st.st_uid, st.st_gid) == (1000, 1000)
    assert os.stat(dst / "home").st_uid == 0
    assert os.stat(dst / "home/app/work").st_mtime_ns == 10**9


def test_mkdir_through_symlink_stays_inside(tmp_path: Path, dst: Path) -> None:
    os.symlink(str(tmp_path / "elsewhere"), dst / "w")
    mkdir(dst, "/w/sub", 0o755, os.getuid(), os.getgid())
    assert not (tmp_path / "elsewhere").exists()
    assert (dst / str(tmp_path / "elsewhere").lstrip("/") / "sub").is_dir()


def test_mkdir_onto_a_file_fails(dst: Path) -> None:
    write(dst, "file")
    with pytest.raises(StrataError, match=r"not a directory"):
        mkdir(dst, "/file/sub", 0o755, 0, 0)


def test_mkfile_writes_heredoc_content_and_mode(dst: Path) -> None:
    (dst / "etc").mkdir()
    mkfile(dst, "/etc/greeting", b"hello\n", 0o640, os.getuid(), os.getgid())
    assert (dst / "etc/greeting").read_bytes() == b"hello\n"
    assert stat.S_IMODE(os.stat(dst / "etc/greeting").st_mode) == 0o640


def test_rm_removes_trees_and_not_link_targets(dst: Path) -> None:
    write(dst, "keep/file", "k")
    os.symlink("/keep", dst / "link")
    rm(dst, "/link")
    assert not os.path.lexists(dst / "link")
    assert (dst / "keep/file").exists()
    rm(dst, "/keep")
    assert not (dst / "keep").exists()


def test_rm_missing_path_fails_unless_allowed(dst: Path) -> None:
    with pytest.raises(StrataError, match=r"no such file or directory"):
        rm(dst, "/nothing")
    rm(dst, "/nothing", allow_not_found=True)


# -- --chown -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("rootfs")
    make_busybox_rootfs(dest)
    with open(dest / "etc/group", "a") as fh:
        fh.write("staff:x:50:app\n")
    return dest


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("app", (1000, 1000)),
        ("app:staff", (1000, 50)),
        ("root", (0, 0)),
        ("root:staff", (0, 50)),
        ("1234", (1234, 1234)),
        ("1234:42", (1234, 42)),
        ("app:42", (1000, 42)),
        ("nobody", None),
        ("ghost", (0, 0)),
        ("app:ghosts", (1000, 1000)),
    ],
)
def test_resolve_chown_reads_the_destination_files(
    rootfs: Path, spec: str, expected: tuple[int, int] | None
) -> None:
    uid, gid = resolve_chown(spec, rootfs)
    if expected is None:
        lines = (rootfs / "etc/passwd").read_text().splitlines()
        nobody = next(line.split(":") for line in lines if line.startswith("nobody:"))
        expected = (int(nobody[2]), int(nobody[3]))
    assert (uid, gid) == expected


def test_resolve_chown_without_passwd_file_is_zero(tmp_path: Path) -> None:
    assert resolve_chown("app:staff", tmp_path) == (0, 0)
    assert resolve_chown("5:6", tmp_path) == (5, 6)


def test_lay_tree_replaces_symlinks_and_files_without_following_them(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layer, dest = tmp_path / "layer", tmp_path / "dest"
    write(layer, "dst/a.txt", "a")
    write(layer, "was-dir", "now a file")
    write(layer, "dir/new", "n")
    os.chmod(layer / "dir", 0o700)
    write(dest, "dir/old", "o")
    (dest / "was-dir").mkdir()
    write(dest, "was-dir/inner", "gone")
    os.symlink(str(outside), dest / "dst")
    lay_tree(layer, dest)
    assert list(outside.iterdir()) == []
    assert (dest / "dst").is_dir() and not (dest / "dst").is_symlink()
    assert (dest / "dst/a.txt").read_text() == "a"
    assert (dest / "was-dir").read_text() == "now a file"
    assert sorted(p.name for p in (dest / "dir").iterdir()) == ["new", "old"]
    assert stat.S_IMODE(os.lstat(dest / "dir").st_mode) == 0o700  # the layer's metadata


def test_lay_tree_keeps_hard_links_links_and_fifos(tmp_path: Path) -> None:
    layer, dest = tmp_path / "layer", tmp_path / "dest"
    dest.mkdir()
    write(layer, "one", "1")
    os.link(layer / "one", layer / "two")
    os.symlink("one", layer / "link")
    os.mkfifo(layer / "pipe", 0o640)
    write(dest, "link", "a file before")
    lay_tree(layer, dest)
    assert os.lstat(dest / "one").st_ino == os.lstat(dest / "two").st_ino
    assert os.readlink(dest / "link") == "one"
    assert stat.S_ISFIFO(os.lstat(dest / "pipe").st_mode)
    assert stat.S_IMODE(os.lstat(dest / "pipe").st_mode) == 0o640


def test_resolve_chown_takes_only_go_numbers_as_ids(tmp_path: Path) -> None:
    # llb's parseUID is strconv.ParseInt(s, 10, 32): no underscores, no spaces, no
    # non-ASCII digits. Those are names, here found in the destination's passwd.
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("1_000:x:7:8::/:/bin/sh\n٣:x:9:bad::/:/bin/sh\n")
    assert resolve_chown("1_000", tmp_path) == (7, 8)
    assert resolve_chown("٣", tmp_path) == (9, 0)  # a malformed gid field reads as 0
    assert resolve_chown(" 5", tmp_path) == (0, 0)
    assert resolve_chown("+5:6", tmp_path) == (5, 6)

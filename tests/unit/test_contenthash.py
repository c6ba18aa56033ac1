"""Content checksums keep BuildKit's invariants: what is read counts, when it was touched does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from strata.dockerfile.ignore import PatternMatcher
from strata.errors import SourceNotFoundError
from strata.worker.contenthash import EMPTY_DIGEST, checksum


def write(root: Path, rel: str, data: str = "", mode: int = 0o644) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    os.chmod(path, mode)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    write(root, "app/main.py", "print('hi')\n")
    write(root, "app/util.py", "x = 1\n")
    write(root, "app/data/a.json", "{}")
    write(root, "README", "readme")
    return root


def test_touching_mtime_keeps_the_digest(tree: Path) -> None:
    before = checksum(tree, "/app")
    os.utime(tree / "app/main.py", (1, 1))
    os.utime(tree / "app", (2, 2))
    assert checksum(tree, "/app") == before


def test_content_change_changes_file_and_parent_digests(tree: Path) -> None:
    file_before = checksum(tree, "app/main.py")
    dir_before = checksum(tree, "app")
    (tree / "app/main.py").write_text("print('bye')\n")
    assert checksum(tree, "app/main.py") != file_before
    assert checksum(tree, "app") != dir_before


def test_mode_change_changes_the_digest(tree: Path) -> None:
    before = checksum(tree, "app")
    os.chmod(tree / "app/util.py", 0o755)
    assert checksum(tree, "app") != before


def test_setuid_bit_changes_the_digest(tree: Path) -> None:
    before = checksum(tree, "app/util.py")
    os.chmod(tree / "app/util.py", 0o4644)
    assert checksum(tree, "app/util.py") != before


def test_rename_changes_the_directory_digest(tree: Path) -> None:
    before = checksum(tree, "app")
    os.rename(tree / "app/util.py", tree / "app/util2.py")
    assert checksum(tree, "app") != before


def test_adding_an_empty_file_or_dir_changes_the_directory_digest(tree: Path) -> None:
    before = checksum(tree, "app")
    write(tree, "app/empty")
    with_file = checksum(tree, "app")
    assert with_file != before
    (tree / "app/emptydir").mkdir()
    assert checksum(tree, "app") not in (before, with_file)


def test_same_content_in_two_places_hashes_the_same(tmp_path: Path) -> None:
    write(tmp_path / "one", "d/f", "same")
    write(tmp_path / "two", "elsewhere/f", "same")
    os.utime(tmp_path / "one/d", (5, 5))
    assert checksum(tmp_path / "one", "d") == checksum(tmp_path / "two", "elsewhere")


def test_owner_change_counts_unless_owner_reset(tree: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    plain = checksum(tree, "app")
    reset = checksum(tree, "app", owner_reset=True)
    os.chown(tree / "app/util.py", 1000, 1000)
    assert checksum(tree, "app") != plain
    assert checksum(tree, "app", owner_reset=True) == reset


def test_xattrs_count_but_security_ones_other_than_capability_do_not(tree: Path) -> None:
    target = tree / "app/util.py"
    before = checksum(tree, "app/util.py")
    try:
        os.setxattr(target, "user.note", b"v1")
    except OSError:
        pytest.skip("filesystem without user xattrs")
    with_user = checksum(tree, "app/util.py")
    assert with_user != before
    try:
        os.setxattr(target, "security.strata-test", b"x")
    except OSError:
        return
    assert checksum(tree, "app/util.py") == with_user


def test_hard_link_hashes_like_its_source(tmp_path: Path) -> None:
    write(tmp_path, "a/f", "payload")
    write(tmp_path, "b/f", "payload")
    os.link(tmp_path / "a/f", tmp_path / "a/g")
    write(tmp_path, "b/g", "payload")
    os.utime(tmp_path / "b/f", (1, 1))
    assert checksum(tmp_path, "a") == checksum(tmp_path, "b")


def test_top_symlink_is_followed_and_inner_symlinks_hash_as_links(tree: Path) -> None:
    os.symlink("app", tree / "link")
    assert checksum(tree, "link") == checksum(tree, "app")
    assert checksum(tree, "link", follow_top_symlink=False) != checksum(tree, "app")
    os.symlink("main.py", tree / "app/alias")
    with_link = checksum(tree, "app")
    os.remove(tree / "app/alias")
    os.symlink("util.py", tree / "app/alias")
    assert checksum(tree, "app") != with_link


def test_symlink_pointing_outside_resolves_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "etc/passwd", "inside")
    write(tmp_path, "etc/passwd", "outside")
    os.symlink("/etc/passwd", root / "pw")
    os.symlink("../../../etc/passwd", root / "pw2")
    inside = checksum(root, "etc/passwd")
    assert checksum(root, "pw") == inside
    assert checksum(root, "pw2") == inside


def test_missing_literal_path_reports_not_found_like_buildkit(tree: Path) -> None:
    with pytest.raises(SourceNotFoundError) as info:
        checksum(tree, "app/../nope.txt")
    assert str(info.value) == '"/nope.txt": not found'


def test_dotdot_cannot_leave_the_root(tree: Path) -> None:
    assert checksum(tree, "../../README") == checksum(tree, "README")


def test_wildcard_without_match_is_the_empty_digest(tree: Path) -> None:
    assert checksum(tree, "*.nothing", wildcard=True) == EMPTY_DIGEST


def test_wildcard_covers_matches_and_their_subtrees(tree: Path) -> None:
    before = checksum(tree, "app/*", wildcard=True)
    assert before != checksum(tree, "app")
    write(tree, "app/data/b.json", "[]")
    assert checksum(tree, "app/*", wildcard=True) != before


def test_wildcard_ignores_files_it_does_not_match(tree: Path) -> None:
    before = checksum(tree, "app/*.py", wildcard=True)
    write(tree, "app/notes.txt", "x")
    write(tree, "app/data/c.py", "x")  # '*' does not cross '/'
    assert checksum(tree, "app/*.py", wildcard=True) == before
    write(tree, "app/new.py", "x")
    assert checksum(tree, "app/*.py", wildcard=True) != before


def test_wildcard_single_match_with_same_basename_is_that_entry(tmp_path: Path) -> None:
    write(tmp_path, "arr[0].txt", "x")
    # An escaped bracket keeps the pattern's basename different from the file name...
    assert checksum(tmp_path, "arr[[]0].txt", wildcard=True) != checksum(tmp_path, "arr[0].txt")
    # ...while a file literally named like the pattern hashes as itself.
    write(tmp_path, "q?", "y")
    assert checksum(tmp_path, "q?", wildcard=True) == checksum(tmp_path, "q?")


def test_wildcard_flag_is_a_no_op_for_literal_paths(tree: Path) -> None:
    assert checksum(tree, "app", wildcard=True) == checksum(tree, "app")


def test_exclude_patterns_keep_excluded_files_out_of_the_digest(tree: Path) -> None:
    exclude = PatternMatcher(["*.json", "data"])
    before = checksum(tree, "app", exclude=exclude)
    write(tree, "app/data/z.json", "changed")
    write(tree, "app/other.json", "ignored")
    assert checksum(tree, "app", exclude=exclude) == before
    write(tree, "app/util.py", "y = 2\n")
    assert checksum(tree, "app", exclude=exclude) != before


def test_include_patterns_hash_only_selected_files(tree: Path) -> None:
    include = PatternMatcher(["app/*.py"])
    before = checksum(tree, "/", include=include)
    write(tree, "README", "changed")
    write(tree, "app/data/a.json", "changed")
    assert checksum(tree, "/", include=include) == before
    write(tree, "app/main.py", "changed")
    assert checksum(tree, "/", include=include) != before


def test_required_path_missing_is_not_found(tree: Path) -> None:
    include = PatternMatcher(["app/missing.py"])
    with pytest.raises(SourceNotFoundError, match=r'"/app/missing.py": not found'):
        checksum(tree, "/", include=include, required_paths=["/app/missing.py"])
    checksum(tree, "/", include=PatternMatcher(["app/main.py"]), required_paths=["/app/main.py"])
    checksum(tree, "/app", required_paths=["/app/main.py"])
    with pytest.raises(SourceNotFoundError):
        checksum(tree, "/app", required_paths=["/app/gone.py"])


def test_ignored_context_paths_do_not_exist_for_the_digest(tree: Path) -> None:
    ignore = PatternMatcher(["app/data", "*.log"])
    before = checksum(tree, "/", ignore=ignore, owner_reset=True)
    write(tree, "app/data/new.json", "x")
    write(tree, "debug.log", "x")
    assert checksum(tree, "/", ignore=ignore, owner_reset=True) == before
    with pytest.raises(SourceNotFoundError):
        checksum(tree, "app/data/a.json", ignore=ignore)
    assert checksum(tree, "*.log", wildcard=True, ignore=ignore) == EMPTY_DIGEST


def test_reincluded_file_inside_ignored_dir_is_hashed(tree: Path) -> None:
    ignore = PatternMatcher(["app", "!app/main.py"])
    before = checksum(tree, "/", ignore=ignore)
    write(tree, "app/util.py", "hidden change")
    assert checksum(tree, "/", ignore=ignore) == before
    write(tree, "app/main.py", "visible change")
    assert checksum(tree, "/", ignore=ignore) != before
    checksum(tree, "app/main.py", ignore=ignore)


def test_socket_hashes_as_an_empty_regular_file(tmp_path: Path) -> None:
    import socket

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(a / "s"))
        os.chmod(a / "s", 0o644)
        write(b, "s", "", 0o644)
        assert checksum(a, "s") == checksum(b, "s")
    finally:
        sock.close()


def test_large_file_hash_depends_on_every_byte(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as fh:
        fh.write(b"\0" * (3 << 20))
    before = checksum(tmp_path, "big")
    with open(big, "r+b") as fh:
        fh.seek((3 << 20) - 1)
        fh.write(b"\1")
    assert checksum(tmp_path, "big") != before

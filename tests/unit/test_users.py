"""USER resolution against passwd/group texts, following runc's GetExecUser rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.errors import ExecError
from strata.worker.users import (
    GroupEntry,
    PasswdEntry,
    ResolvedUser,
    parse_group,
    parse_passwd,
    resolve_user,
    resolve_user_from,
)

PASSWD = """root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
# a comment
broken line
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""

GROUP = """root:x:0:
staff:x:50:app,other
wheel:x:10:app
app:x:1000:
"""


def test_empty_user_is_root_even_without_passwd() -> None:
    assert resolve_user_from("", None, None) == ResolvedUser(0, 0, (), "/")


def test_empty_user_gets_no_supplementary_groups_even_when_root_is_a_member() -> None:
    # BuildKit's ParseUIDGID fast path returns before /etc/group is read.
    assert resolve_user_from("", PASSWD, GROUP + "wheel2:x:11:root\n").additional_gids == ()


def test_numeric_uid_and_gid_skip_the_files_and_root_means_zero() -> None:
    group = GROUP + "extra:x:77:app\n"
    assert resolve_user_from("1000:1000", PASSWD, group) == ResolvedUser(1000, 1000)
    assert resolve_user_from("root:50", PASSWD, group) == ResolvedUser(0, 50)
    # A uid alone still looks up its primary group and memberships.
    assert resolve_user_from("1000", PASSWD, group).additional_gids == (50, 10, 77)


def test_root_root_needs_no_passwd_file_in_the_root(tmp_path: Path) -> None:
    # Looked up by name, "root" would fail here: the tree has no /etc/passwd.
    assert resolve_user(tmp_path, "root:root") == ResolvedUser(0, 0)
    assert resolve_user(tmp_path, "") == ResolvedUser(0, 0)


def test_numeric_uid_found_in_passwd_takes_its_primary_group() -> None:
    assert resolve_user_from("1000", PASSWD, GROUP).gid == 1000


def test_numeric_uid_without_entry_is_used_with_group_zero() -> None:
    assert resolve_user_from("4242", PASSWD, GROUP) == ResolvedUser(4242, 0, (), "/")


def test_unknown_name_is_an_error_with_runc_wording() -> None:
    with pytest.raises(ExecError) as err:
        resolve_user_from("ghost", PASSWD, GROUP)
    assert err.value.message == "unable to find user ghost: no matching entries in passwd file"


def test_name_fails_when_passwd_is_missing() -> None:
    with pytest.raises(ExecError, match="unable to find user app"):
        resolve_user_from("app", None, None)


def test_explicit_group_by_name_replaces_gid_and_drops_supplementary_groups() -> None:
    assert resolve_user_from("app:staff", PASSWD, GROUP) == ResolvedUser(1000, 50, (), "/home/app")


def test_uid_gid_pair_needs_no_entries() -> None:
    assert resolve_user_from("5:7", None, None) == ResolvedUser(5, 7, (), "/")


def test_unknown_group_name_is_an_error() -> None:
    with pytest.raises(ExecError) as err:
        resolve_user_from("app:nogroup", PASSWD, GROUP)
    assert err.value.message == "unable to find group nogroup: no matching entries in group file"


def test_resolve_user_follows_etc_symlinks_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "passwd").write_text(PASSWD)
    (tmp_path / "etc").mkdir()
    # An absolute link must resolve inside the root file system, not on the host.
    (tmp_path / "etc" / "passwd").symlink_to("/data/passwd")
    assert resolve_user(tmp_path, "app").uid == 1000


def test_passwd_and_group_skip_comments_and_pad_short_lines_and_read_bad_ids_as_zero() -> None:
    # runc's parseLine ignores Atoi errors: a malformed id is 0 and the entry stays.
    passwd = "  # root:x:0:0::/root:/bin/sh\n\nshort:x:7\nbad:x:seven:+8::/:/bin/sh\n"
    assert parse_passwd(passwd) == [PasswdEntry("short", 7, 0, ""), PasswdEntry("bad", 0, 8, "/")]
    group = "#wheel:x:10:app\nnomembers:x:20\nbad:x:1_0:app\nsome:x:30:a,,b\n"
    assert parse_group(group) == [
        GroupEntry("nomembers", 20, ()),
        GroupEntry("bad", 0, ("app",)),
        GroupEntry("some", 30, ("a", "b")),
    ]


def test_non_ascii_digit_user_is_an_unknown_name_not_a_crash() -> None:
    with pytest.raises(ExecError) as err:
        resolve_user_from("²", PASSWD, GROUP)
    assert err.value.message == "unable to find user ²: no matching entries in passwd file"


def test_non_ascii_digit_group_is_an_unknown_group_not_a_crash() -> None:
    with pytest.raises(ExecError) as err:
        resolve_user_from("app:²", PASSWD, GROUP)
    assert err.value.message == "unable to find group ²: no matching entries in group file"


def test_a_symlink_loop_in_etc_is_an_exec_error(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(ExecError, match="too many levels of symbolic links"):
        resolve_user(tmp_path, "app")

"""Resolving `USER` strings against a root file system's /etc/passwd and /etc/group.

The rules are runc's `libcontainer/user.GetExecUser`, which BuildKit calls through
`executor/oci/user.go` (`GetUser`): a name or number, optionally `:group`; a number
without a passwd entry is taken as is (group 0), a name without one is an error;
supplementary groups come from /etc/group membership only when no group was given.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from strata.errors import ExecError, StrataError
from strata.gotext import go_parse_int

MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class ResolvedUser:
    """What the OCI spec's `process.user` needs, plus the home directory."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def _int_or_none(text: str) -> int | None:
    """The number `text` spells in ASCII digits, else None. `str.isdigit` alone also
    accepts digits like "²" that `int` rejects, so ASCII is checked first."""
    if text.isascii() and text.isdigit():
        return int(text)
    return None


def _colon_records(text: str, fields: int) -> Iterator[list[str]]:
    """The fields of each line of a passwd-style file, padded with "" to `fields`;
    blank lines and `#` comments skipped."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        yield parts + [""] * (fields - len(parts))


def parse_passwd(text: str) -> list[PasswdEntry]:
    """Entries of a passwd file. As runc's `ParsePasswdFilter`, a missing or malformed
    id reads as 0 and the line is kept."""
    entries: list[PasswdEntry] = []
    for parts in _colon_records(text, 7):
        # runc's parseLine: strconv.Atoi with the error ignored (0, or clamped to int64).
        uid, gid = go_parse_int(parts[2])[0], go_parse_int(parts[3])[0]
        entries.append(PasswdEntry(parts[0], uid, gid, parts[5]))
    return entries


def parse_group(text: str) -> list[GroupEntry]:
    """Entries of a group file; a missing or malformed gid reads as 0 (runc's
    `ParseGroupFilter`)."""
    entries: list[GroupEntry] = []
    for parts in _colon_records(text, 4):
        gid = go_parse_int(parts[2])[0]  # as above
        members = tuple(m for m in parts[3].split(",") if m)
        entries.append(GroupEntry(parts[0], gid, members))
    return entries


def _check_range(value: int) -> int:
    if value > MAX_ID:
        raise ExecError(f"uid/gid {value} out of range")
    return value


def numeric_user(user: str) -> ResolvedUser | None:
    """BuildKit's fast path (`executor/oci/user.go`, `ParseUIDGID`): an empty user, or
    both a uid and a gid given as numbers (or `root`), resolve without reading
    /etc/passwd or /etc/group, and so without supplementary groups. None otherwise."""
    if user == "":
        return ResolvedUser(0, 0)
    uid_text, sep, gid_text = user.partition(":")
    if not sep:
        return None
    ids = [0 if t == "root" else _int_or_none(t) for t in (uid_text, gid_text)]
    if ids[0] is None or ids[1] is None or max(ids[0], ids[1]) > MAX_ID:
        return None
    return ResolvedUser(ids[0], ids[1])


def resolve_user_from(user: str, passwd: str | None, group: str | None) -> ResolvedUser:
    """Resolve `user` ("", "name", "uid", "name:group", "uid:gid", ...) against the
    texts of /etc/passwd and /etc/group (None when the file does not exist)."""
    fast = numeric_user(user)
    if fast is not None:
        return fast
    user_arg, _, group_arg = user.partition(":")
    uid_arg = _int_or_none(user_arg)
    gid_arg = _int_or_none(group_arg)

    uid, gid, home = 0, 0, "/"
    matched_name = ""
    users = parse_passwd(passwd) if passwd is not None else []
    if uid_arg is not None:
        found = [u for u in users if u.uid == uid_arg]
    else:
        found = [u for u in users if u.name == user_arg]
    if found:
        matched_name = found[0].name
        uid, gid, home = found[0].uid, found[0].gid, found[0].home
    elif uid_arg is None:
        raise ExecError(f"unable to find user {user_arg}: no matching entries in passwd file")
    else:
        uid = _check_range(uid_arg)

    additional: tuple[int, ...] = ()
    if group_arg or matched_name:
        groups = parse_group(group) if group is not None else []
        if group_arg:
            if gid_arg is not None:
                gfound = [g for g in groups if g.gid == gid_arg]
            else:
                gfound = [g for g in groups if g.name == group_arg]
            if gfound:
                gid = gfound[0].gid
            elif gid_arg is None:
                raise ExecError(
                    f"unable to find group {group_arg}: no matching entries in group file"
                )
            else:
                gid = _check_range(gid_arg)
        else:
            additional = tuple(g.gid for g in groups if matched_name in g.members)
    return ResolvedUser(uid, gid, additional, home or "/")


def resolve_user(rootfs: Path, user: str) -> ResolvedUser:
    """Resolve `user` against the files of the root file system at `rootfs`.

    Symlinks in the container's /etc are followed inside `rootfs`, never out of it.
    Numeric users (and root, the default) need no file at all."""
    from strata.worker.context import resolve_in_root

    fast = numeric_user(user)
    if fast is not None:
        return fast

    def read(path: str) -> str | None:
        try:
            return resolve_in_root(rootfs, path).read_text(errors="replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except StrataError as err:  # a symlink loop: the run fails, with exec wording
            raise ExecError(err.message) from None

    return resolve_user_from(user, read("/etc/passwd"), read("/etc/group"))

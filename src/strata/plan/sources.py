"""Remote ADD sources: which words are URLs or git references, and what they name.

BuildKit decides with dfgitutil.ParseGitRef and gitutil.ParseURL
(frontend/dockerfile/dfgitutil/git_ref.go, util/gitutil/git_url.go) over Go's url.Parse:
a `<proto>://` URL with a git protocol (http(s) only when the path ends in `.git`) or a
`user@host:path` word is a repository, another `http(s)://` URL is a file download
(convert_copy.go `isHTTPSource`), and everything else is a context path. A URL Go cannot
parse is not a repository; `https://` ones are then downloads named `__unnamed__`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strata.errors import SourceError
from strata.plan import paths
from strata.plan.urls import parse_go_query, parse_go_url

# gitutil's protoRegexp and sshutil's gitSSHRegex.
_PROTOCOL = re.compile(r"^[a-zA-Z0-9]+://")
_SCP_LIKE = re.compile(r"^([a-zA-Z0-9_-]+)@([a-zA-Z0-9.-]+):(.*?)(?:\?(.*?))?(?:#(.*))?$")
_GIT_PROTOCOLS = ("http", "https", "ssh", "git")
_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class GitRef:
    """A repository an ADD source names.

    `indistinguishable_from_local` marks the deprecated `github.com/<path>` form: it parses
    as a repository (so its query is checked) but ADD copies it from the context.
    """

    remote: str
    ref: str = ""
    subdir: str = ""
    checksum: str = ""
    keep_git_dir: bool | None = None
    indistinguishable_from_local: bool = False


def _parse_bool_query(key: str, values: list[str]) -> bool:
    if not values or values[0] == "":
        return True
    if values[0] in _TRUE:
        return True
    if values[0] in _FALSE:
        return False
    raise SourceError(f'invalid {key} value: "{values[0]}"')


def _apply_values(ref: GitRef, values: dict[str, list[str]]) -> GitRef:
    """The repository's query options applied (git_ref.go `loadQuery`), with its errors."""
    git_ref, subdir, checksum, keep = ref.ref, ref.subdir, ref.checksum, ref.keep_git_dir
    tag = branch = ""
    for key, items in values.items():
        if len(items) > 1:
            raise SourceError(f'query "{key}" has multiple values')
        if (not items or items[0] == "") and key not in (
            "submodules",
            "keep-git-dir",
            "fetch-by-commit",
        ):
            raise SourceError(f'query "{key}" has no value')
        value = items[0] if items else ""
        if key == "ref":
            if git_ref and git_ref != value:
                raise SourceError(f'ref conflicts: "{git_ref}" vs "{value}"')
            git_ref = value
        elif key == "tag":
            tag = value
        elif key == "branch":
            branch = value
        elif key == "subdir":
            if subdir and subdir != value:
                raise SourceError(f'subdir conflicts: "{subdir}" vs "{value}"')
            subdir = value
        elif key in ("checksum", "commit"):
            checksum = value
        elif key == "keep-git-dir":
            keep = _parse_bool_query(key, items)
        elif key in ("submodules", "fetch-by-commit"):
            _parse_bool_query(key, items)
        elif key == "mtime":
            if value not in ("checkout", "commit"):
                raise SourceError(
                    f'invalid mtime value: "{value}" (must be "checkout" or "commit")'
                )
        else:
            raise SourceError(f'unexpected query "{key}"')
    if tag:
        tag = tag if tag.startswith("refs/tags/") else "refs/tags/" + tag
        if git_ref and git_ref != tag:
            raise SourceError(f'ref conflicts: "{git_ref}" vs "{tag}"')
        git_ref = tag
    if branch:
        if tag:
            raise SourceError("branch conflicts with tag")
        branch = branch if branch.startswith("refs/heads/") else "refs/heads/" + branch
        if git_ref and git_ref != branch:
            raise SourceError(f'ref conflicts: "{git_ref}" vs "{branch}"')
        git_ref = branch
    return GitRef(ref.remote, git_ref, subdir, checksum, keep, ref.indistinguishable_from_local)


def _fragment_options(fragment: str) -> tuple[str, str]:
    """`ref:subdir` of a URL fragment, the subdir cleaned (gitutil `parseOpts`)."""
    if fragment == "":
        return "", ""
    ref, _, subdir = fragment.partition(":")
    return ref, paths.join("/", subdir).lstrip("/")


def parse_git_ref(word: str) -> GitRef | None:
    """The repository `word` names, or None when it is a URL download or a local path.

    Raises SourceError only for a word that is a repository with bad options (a query
    BuildKit rejects); a word that fails to parse as a URL is simply not a repository.
    """
    if word.startswith(("./", "../")):
        return None
    if word.startswith("github.com/"):
        parsed = parse_go_url(word)
        if parsed is None:
            return None
        remote = parsed.without_options()
        ref, subdir = _fragment_options(parsed.fragment)
        found = GitRef(remote, ref, subdir, indistinguishable_from_local=True)
        return _apply_values(found, parsed.query())
    if _PROTOCOL.match(word):
        protocol = word.split("://", 1)[0].lower()
        if protocol not in _GIT_PROTOCOLS:
            return None
        parsed = parse_go_url(word)
        if parsed is None:
            return None
        if parsed.scheme in ("http", "https") and not parsed.path.endswith(".git"):
            return None
        ref, subdir = _fragment_options(parsed.fragment)
        return _apply_values(GitRef(parsed.without_options(), ref, subdir), parsed.query())
    match = _SCP_LIKE.match(word)
    if match is None:
        return None
    user, host, path, raw_query, fragment = match.groups()
    values: dict[str, list[str]] = {}
    if raw_query:
        values, ok = parse_go_query(raw_query)
        if not ok:
            return None  # sshutil rejects the whole URL over a bad query
    ref, subdir = _fragment_options(fragment or "")
    return _apply_values(GitRef(f"{user}@{host}:{path}", ref, subdir), values)


def is_git_source(word: str) -> bool:
    """convert_copy.go `isGitSource`: `word` parses as a repository without errors."""
    try:
        return parse_git_ref(word) is not None
    except SourceError:
        return False


def is_http_source(word: str) -> bool:
    """An `http(s)://` word that is not a git repository (convert_copy.go `isHTTPSource`)."""
    if not word.startswith(("http://", "https://")):
        return False
    return not is_git_source(word)


def url_filename(url: str) -> str:
    """The file name ADD gives a download: the decoded URL path's base, or `__unnamed__`."""
    parsed = parse_go_url(url)
    if parsed is None:
        return "__unnamed__"
    base = paths.base_name(parsed.path)
    return base if base not in (".", "/") else "__unnamed__"


def validate_digest(value: str) -> None:
    """Check `algo:hex` as go-digest's Parse does, with its error texts."""
    colon = value.find(":")
    if colon <= 0 or colon + 1 == len(value):
        raise SourceError("invalid checksum digest format")
    algorithm, encoded = value[:colon], value[colon + 1 :]
    length = _HEX_LENGTHS.get(algorithm)
    if length is None:
        # An unknown algorithm is "unsupported" only when the whole digest is well formed.
        if not _DIGEST.match(value):
            raise SourceError("invalid checksum digest format")
        raise SourceError("unsupported digest algorithm")
    if len(encoded.encode()) != length:
        raise SourceError("invalid checksum digest length")
    if not re.fullmatch(r"[a-f0-9]+", encoded):
        raise SourceError("invalid checksum digest format")

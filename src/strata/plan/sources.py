"""Remote ADD sources: which words are URLs or git references, and what they name.

BuildKit decides with dfgitutil.ParseGitRef and gitutil.ParseURL
(frontend/dockerfile/dfgitutil/git_ref.go, util/gitutil/git_url.go): an `http(s)://` URL
whose path ends in `.git`, `ssh://`, `git://` or `user@host:path` is a repository, another
`http(s)://` URL is a file download, and everything else is a context path (a bare
`github.com/...` included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from strata.errors import StrataError

_SCP_LIKE = re.compile(r"^[A-Za-z0-9_.+-]+@[A-Za-z0-9.-]+:(?!//)")
_URL_SCHEMES = ("http", "https", "ssh", "git")
_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class SourceError(StrataError):
    """A git reference or checksum BuildKit rejects; the caller adds the location."""


@dataclass(frozen=True)
class GitRef:
    remote: str
    ref: str = ""
    subdir: str = ""
    checksum: str = ""
    keep_git_dir: bool | None = None


def _parse_bool_query(key: str, values: list[str]) -> bool:
    if not values or values[0] == "":
        return True
    if values[0] in _TRUE:
        return True
    if values[0] in _FALSE:
        return False
    raise SourceError(f'invalid {key} value: "{values[0]}"')


def _apply_query(ref: GitRef, query: str) -> GitRef:
    values = parse_qs(query, keep_blank_values=True)
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
    return GitRef(ref.remote, git_ref, subdir, checksum, keep)


def _split_fragment(text: str) -> tuple[str, str, str]:
    """`remote#ref:subdir` → (remote, ref, subdir)."""
    remote, _, fragment = text.partition("#")
    ref, _, subdir = fragment.partition(":")
    return remote, ref, subdir


def parse_git_ref(word: str) -> GitRef | None:
    """The repository `word` names, or None when it is a URL download or a local path."""
    if word.startswith(("./", "../", "github.com/")):
        return None
    scheme, sep, _ = word.partition("://")
    if sep:
        if scheme not in _URL_SCHEMES:
            return None
        parts = urlsplit(word)
        if scheme in ("http", "https") and not parts.path.endswith(".git"):
            return None
        remote = f"{parts.scheme}://{parts.netloc}{parts.path}"
        ref, _, subdir = parts.fragment.partition(":")
        return _apply_query(GitRef(remote, ref, subdir), parts.query)
    if _SCP_LIKE.match(word):
        base, _, query = word.partition("?")
        remote, ref, subdir = _split_fragment(base)
        if "#" in query:
            query, _, fragment = query.partition("#")
            ref, _, subdir = fragment.partition(":")
        return _apply_query(GitRef(remote, ref, subdir), query)
    return None


def is_http_source(word: str) -> bool:
    """An `http(s)://` word that is not a git repository (convert_copy.go `isHTTPSource`)."""
    if not word.startswith(("http://", "https://")):
        return False
    return parse_git_ref(word) is None


def url_filename(url: str) -> str:
    """The file name ADD gives a download: the URL path's last segment, or `__unnamed__`."""
    path = urlsplit(url).path
    stripped = path.rstrip("/")
    if not stripped:
        return "__unnamed__"
    base = stripped.rsplit("/", 1)[-1]
    return base if base not in ("", ".") else "__unnamed__"


def validate_digest(value: str) -> None:
    """Check `algo:hex` as go-digest's Parse does, with its error texts."""
    algorithm, sep, encoded = value.partition(":")
    if not sep or not algorithm or not encoded:
        raise SourceError("invalid checksum digest format")
    length = _HEX_LENGTHS.get(algorithm)
    if length is None:
        raise SourceError("unsupported digest algorithm")
    if len(encoded) != length:
        raise SourceError("invalid checksum digest length")
    if not re.fullmatch(r"[a-f0-9]+", encoded):
        raise SourceError("invalid checksum digest format")

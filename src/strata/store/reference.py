"""Image references the way Docker reads them: `busybox` is docker.io/library/busybox:latest.

Grammar and normalisation follow github.com/distribution/reference (`regexp.go`,
`normalize.go`: `ParseNormalizedNamed`, `splitDockerDomain`, `FamiliarName`): the
first path component is a registry only if it contains `.` or `:`, is `localhost`,
or has upper-case letters; names on docker.io with one component live under
`library/`; `index.docker.io` is docker.io. The error texts are Docker's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strata.errors import StoreError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_REMAINDER_RE = re.compile(
    rf"^(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")

INVALID = "invalid reference format"


@dataclass(frozen=True)
class Reference:
    """A normalised reference: registry domain, repository path, tag and/or digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository: `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as Docker prints it: `busybox`, `me/app`, `localhost:5000/x`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        rest = self.path.removeprefix(OFFICIAL_REPO_PREFIX)
        return self.path if "/" in rest else rest

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar(self) -> str:
        """`busybox:latest`, as `docker images` and `Untagged:` lines show it."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag is not None else ""
        if self.digest is not None:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise `text`; with `default_tag`, a bare name gets `:latest`."""
    if _IDENTIFIER_RE.match(text):
        raise StoreError(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_domain(text)
    repo_part = remainder.partition("@")[0].partition(":")[0]
    if repo_part.lower() != repo_part:
        raise StoreError(f"{INVALID}: repository name ({repo_part}) must be lowercase")
    if not _DOMAIN_RE.match(domain):
        raise StoreError(INVALID)
    match = _REMAINDER_RE.match(remainder)
    if match is None:
        raise StoreError(INVALID)
    path = match["path"]
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise StoreError(
            f"{INVALID}: repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    digest = match["digest"]
    if digest is not None and not _SHA256_RE.match(digest):
        raise StoreError(f"{INVALID}: unsupported or malformed digest {digest}")
    tag = match["tag"]
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def normalize_name(text: str) -> str:
    """The full stored name of a tagged reference: `docker.io/library/busybox:latest`."""
    return str(parse_reference(text))


def familiar(text: str) -> str:
    """A full reference shortened the way Docker prints it."""
    return parse_reference(text, default_tag=False).familiar()


def _split_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if not slash or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder

"""Syntax check of image references before they are resolved.

BuildKit parses every stage's base name and every `COPY --from` / mount `from=` image
with distribution/reference's ParseNormalizedNamed and fails with
`failed to parse stage name "<name>": <reason>` when it does not parse; the store is never
asked about a malformed name. The reasons below are that library's (normalize.go,
reference.go, regexp.go), including go-digest's for a digest of the wrong shape.
"""

from __future__ import annotations

import re

from strata.errors import ImageReferenceError, SourceError, reraised_as
from strata.gotext import go_lower
from strata.plan.sources import validate_digest

_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}"  # Go's \w is ASCII only
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"({_DOMAIN}/{_PATH}|{_PATH})(?::({_TAG}))?(?:@({_DIGEST}))?")
_NAME = re.compile(rf"(?:({_DOMAIN})/)?({_PATH})")
_HEX_ID = re.compile(r"[a-f0-9]{64}")
_DEFAULT_DOMAIN = "docker.io"
_MAX_PATH = 255


def _split_docker_domain(name: str) -> tuple[str, str]:
    """(domain, remainder) as reference.splitDockerDomain reads a familiar name."""
    first, slash, rest = name.partition("/")
    if not slash:
        return _DEFAULT_DOMAIN, "library/" + name
    if first == "localhost":
        domain, remainder = first, rest
    elif first == "index.docker.io":
        domain, remainder = _DEFAULT_DOMAIN, rest
    elif "." in first or ":" in first or go_lower(first) != first:
        domain, remainder = first, rest
    else:
        domain, remainder = _DEFAULT_DOMAIN, name
    if domain == _DEFAULT_DOMAIN and "/" not in remainder:
        remainder = "library/" + remainder
    return domain, remainder


def check_reference(name: str) -> None:
    """Raise ImageReferenceError with distribution/reference's reason for a malformed name."""
    if _HEX_ID.fullmatch(name):
        raise ImageReferenceError(
            f"invalid repository name ({name}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(name)
    repository = remainder.partition(":")[0]
    if go_lower(repository) != repository:
        raise ImageReferenceError(
            f"invalid reference format: repository name ({repository}) must be lowercase"
        )
    full = f"{domain}/{remainder}"
    match = _REFERENCE.fullmatch(full)
    if match is None:
        if _REFERENCE.fullmatch(go_lower(full)):
            raise ImageReferenceError("repository name must be lowercase")
        raise ImageReferenceError("invalid reference format")
    named = _NAME.fullmatch(match.group(1))
    path = named.group(2) if named is not None else match.group(1)
    if len(path) > _MAX_PATH:
        raise ImageReferenceError(f"repository name must not be more than {_MAX_PATH} characters")
    if match.group(3):
        with reraised_as(ImageReferenceError, SourceError):
            validate_digest(match.group(3))

"""Syntax check of image references before they are resolved.

BuildKit parses a FROM / COPY --from image name with distribution/reference's
ParseNormalizedNamed and fails with `failed to parse stage name "<name>": <reason>` when
it does not parse; the store is never asked about a malformed name.
"""

from __future__ import annotations

import re

from strata.errors import StrataError

_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_HEX_ID = re.compile(r"^[a-f0-9]{64}$")


class ReferenceError(StrataError):
    """An image name that distribution/reference would not parse."""


def check_reference(name: str) -> None:
    """Raise ReferenceError with distribution/reference's reason for a malformed name."""
    if _HEX_ID.match(name):
        raise ReferenceError(
            f"invalid repository name ({name}), cannot specify 64-byte hexadecimal strings"
        )
    if name == "":
        raise ReferenceError("repository name must have at least one component")
    match = _REFERENCE.match(name)
    if match is None:
        lowered = _REFERENCE.match(name.lower())
        if lowered is not None:
            repository = name.split("@", 1)[0]
            last = repository.rsplit("/", 1)[-1]
            if ":" in last:
                repository = repository[: repository.rfind(":")]
            raise ReferenceError(
                f"invalid reference format: repository name ({repository}) must be lowercase"
            )
        raise ReferenceError("invalid reference format")
    if len(match.group(1)) > 255:
        raise ReferenceError("repository name must not be more than 255 characters")

"""`--filter` for image lists and image prune, as Docker's daemon reads them.

`docker images --filter` (daemon/images/images.go `Images`) takes `dangling`,
`reference`, `before`, `since`, `label` and `until`; `docker image prune --filter`
(daemon/images/image_prune.go) takes `dangling`, `label`, `label!` and `until`. Any other
key is `invalid filter '<key>'`, as the daemon's `filters.Validate` says it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from strata.errors import UsageError
from strata.gotext import parse_go_duration

__all__ = ["ImageFilters", "parse_image_filters", "reference_matches"]

LIST_KEYS = ("before", "dangling", "label", "reference", "since", "until")
PRUNE_KEYS = ("dangling", "label", "label!", "until")


@dataclass(frozen=True)
class ImageFilters:
    """Parsed filters; each key's values are alternatives (any may match), keys all
    must match, as the daemon's `filters.Args`."""

    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, key: str) -> tuple[str, ...]:
        return self.values.get(key, ())

    @property
    def needs_labels(self) -> bool:
        return bool(self.get("label") or self.get("label!"))

    def dangling(self) -> bool | None:
        """`dangling=true|false` (both given: refused at parse time); None when unset."""
        given = self.get("dangling")
        return None if not given else given[0].lower() in ("true", "1")

    def until(self, now: float) -> float | None:
        """The `until` cut-off as a Unix time (a Go duration ago, or a timestamp)."""
        given = self.get("until")
        return _timestamp(given[0], now) if given else None


def parse_image_filters(items: Iterable[str], *, keys: tuple[str, ...]) -> ImageFilters:
    values: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError("bad format of filter (expected name=value)", option="--filter")
        key = key.strip().lower()
        if key not in keys:
            raise UsageError(f"invalid filter '{key}'", option="--filter")
        values.setdefault(key, []).append(value)
    for value in values.get("dangling", []):
        if value.lower() not in ("true", "false", "1", "0"):
            raise UsageError(
                f"invalid filter 'dangling={value}': expected true or false", option="--filter"
            )
    if len({v.lower() in ("true", "1") for v in values.get("dangling", [])}) > 1:
        raise UsageError("conflicting dangling filters", option="--filter")
    for value in values.get("until", []):
        _timestamp(value, time.time())
    return ImageFilters({k: tuple(v) for k, v in values.items()})


def _timestamp(value: str, now: float) -> float:
    """docker's `until`: a Go duration before now, a Unix time, or an RFC 3339 time."""
    try:
        return now - parse_go_duration(value) / 1e9
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"invalid filter 'until={value}': expected a duration, Unix time or RFC 3339 time",
            option="--filter",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def labels_match(patterns: Iterable[str], labels: Mapping[str, str]) -> bool:
    """`label=KEY` or `label=KEY=VALUE`: any pattern matching is enough."""
    for pattern in patterns:
        key, sep, value = pattern.partition("=")
        if key in labels and (not sep or labels[key] == value):
            return True
    return False


def _glob(pattern: str) -> re.Pattern[str]:
    """Go's `path.Match` as a regular expression: `*` and `?` stop at `/`."""
    out = []
    for char in pattern:
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out))


def reference_matches(pattern: str, repository: str, tag: str) -> bool:
    """docker's `reference` filter: the pattern matched against the familiar name, or
    against `name:tag` when the pattern has a tag."""
    regex = _glob(pattern)
    if regex.fullmatch(repository):
        return True
    return bool(tag) and regex.fullmatch(f"{repository}:{tag}") is not None


LabelsOf = Callable[[str], Mapping[str, str]]

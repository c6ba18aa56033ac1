"""`(did you mean x?)` hints, picked the way BuildKit picks them (buildkit: util/suggest/error.go).

A hint is offered when some option is within edit distance 2 of what the user typed; an
exact match offers nothing because then the error was not a typo.
"""

from __future__ import annotations

from collections.abc import Iterable

# BuildKit keeps the closest option strictly below this distance (same limit as HCL).
MAX_DISTANCE = 3


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance counted in characters: insertions, deletions, substitutions."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            cost = 0 if char_a == char_b else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1]


def _match_case(option: str, typed: str) -> str:
    if typed == typed.lower():
        return option.lower()
    if typed == typed.upper():
        return option.upper()
    return option


def closest(value: str, options: Iterable[str], *, case_sensitive: bool = True) -> str | None:
    """The option nearest to `value`, or None when none is close or one matches exactly.

    Options are tried in the order given and the first one at a new smallest distance
    wins, so callers pass options in a fixed order to keep hints deterministic.
    """
    wanted = value if case_sensitive else value.lower()
    best: str | None = None
    best_distance = MAX_DISTANCE
    for option in options:
        candidate = option if case_sensitive else option.lower()
        if candidate == wanted:
            return None
        distance = edit_distance(wanted, candidate)
        if distance < best_distance:
            best = candidate if case_sensitive else _match_case(candidate, value)
            best_distance = distance
    return best


def with_suggestion(
    message: str, value: str, options: Iterable[str], *, case_sensitive: bool = True
) -> str:
    """`message` plus ` (did you mean <x>?)` when an option is close to `value`."""
    match = closest(value, options, case_sensitive=case_sensitive)
    return f"{message} (did you mean {match}?)" if match else message

"""Go parsers shared by every layer: durations and memory sizes, with Go's values."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from strata.gotext import (
    GO_SPACE,
    format_rfc3339_nano,
    go_atoi,
    go_parse_int,
    go_path_base,
    go_path_clean,
    go_trim_space,
    parse_go_duration,
    parse_ram_in_bytes,
)


def test_go_duration_is_exact_nanoseconds() -> None:
    assert parse_go_duration("24h") == 86_400 * 10**9
    assert parse_go_duration("1h30m") == 5_400 * 10**9
    assert parse_go_duration("1.5s") == 1_500_000_000
    assert parse_go_duration("-300ms") == -300_000_000
    assert parse_go_duration("0") == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", 'time: missing unit in duration "10"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("h", 'time: invalid duration "h"'),
    ],
)
def test_bad_go_duration_has_gos_error_text(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_go_duration(text)
    assert str(info.value) == message


def test_ram_in_bytes_uses_binary_units() -> None:
    assert parse_ram_in_bytes("100") == 100
    assert parse_ram_in_bytes("64m") == 64 << 20
    assert parse_ram_in_bytes("1.5g") == 3 << 29
    assert parse_ram_in_bytes("512KiB") == 512 << 10


@pytest.mark.parametrize("text", ["", "m", "-1m", "1x", "1mbb"])
def test_bad_ram_size_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ram_in_bytes(text)


# -- the Go helpers that used to be written more than once ----------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", (0, True)),
        ("+7", (7, True)),
        ("-12", (-12, True)),
        ("9223372036854775807", (2**63 - 1, True)),
        ("9223372036854775808", (2**63 - 1, False)),  # range error: clamped, as Go returns it
        ("-9223372036854775809", (-(2**63), False)),
        ("", (0, False)),
        ("+", (0, False)),
        ("1_000", (0, False)),
        (" 1", (0, False)),
        ("²", (0, False)),  # a digit to str.isdigit, not to Go
        ("١", (0, False)),  # Arabic-Indic one: int() would take it
    ],
)
def test_go_parse_int_returns_atois_value_and_error(text: str, expected: tuple[int, bool]) -> None:
    assert go_parse_int(text) == expected
    assert go_atoi(text) == (expected[0] if expected[1] else None)


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("", "."),
        ("/", "/"),
        ("a/./b/", "a/b"),
        ("/../a", "/a"),
        ("a/../../b", "../b"),
        ("//x//", "/x"),
        ("../..", "../.."),
    ],
)
def test_go_path_clean_as_go(path: str, cleaned: str) -> None:
    assert go_path_clean(path) == cleaned


def test_context_clean_path_is_path_clean_of_the_rooted_path() -> None:
    from strata.worker.context import clean_path

    for path in ("", "a/../..", "/x/./y/", "../../etc", "a//b/.."):
        assert clean_path(path) == go_path_clean("/" + path)
    assert clean_path("a/../../b") == "/b"


def test_go_path_base_as_go() -> None:
    assert [go_path_base(p) for p in ("", "///", "a/b/", "c")] == [".", "/", "b", "c"]


def test_go_trim_space_keeps_the_separators_python_strips() -> None:
    assert go_trim_space("\u3000 x\x1c \t") == "x\x1c"
    assert all(ch.isspace() for ch in GO_SPACE)


def _rfc3339_by_datetime(when: float) -> str:
    """The formatting `export.image_store` used before it shared gotext's."""
    stamp = datetime.fromtimestamp(when, UTC)
    fraction = f"{stamp.microsecond:06d}".rstrip("0")
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def test_format_rfc3339_nano_trims_the_fraction() -> None:
    assert format_rfc3339_nano(0) == "1970-01-01T00:00:00Z"
    assert format_rfc3339_nano(1.5) == "1970-01-01T00:00:01.5Z"
    assert format_rfc3339_nano(1.9999996) == "1970-01-01T00:00:02Z"


def test_format_rfc3339_nano_matches_datetime_rounding_on_image_times() -> None:
    rng = random.Random(3339)
    times = [rng.uniform(0, 4e9) for _ in range(20000)]
    times += [rng.randrange(2**32) + (k + 0.5) / 1e6 for k in range(0, 1_000_000, 97)]
    assert [format_rfc3339_nano(t) for t in times] == [_rfc3339_by_datetime(t) for t in times]


def test_each_shared_vocabulary_lists_exactly_its_literal() -> None:
    from typing import get_args

    from strata import modes

    assert get_args(modes.NetworkMode) == modes.NETWORK_MODES
    assert get_args(modes.SecurityMode) == modes.SECURITY_MODES
    assert get_args(modes.Sharing) == modes.SHARING_MODES

"""Go parsers shared by every layer: durations and memory sizes, with Go's values."""

from __future__ import annotations

import pytest

from strata.gotext import parse_go_duration, parse_ram_in_bytes


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

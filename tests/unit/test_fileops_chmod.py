"""--chmod values: octal and chmod(1) symbolic forms, with BuildKit's error texts."""

from __future__ import annotations

import pytest

from strata.errors import ChmodSyntaxError
from strata.worker.chmod import parse_chmod


@pytest.mark.parametrize(
    ("value", "mode", "is_dir", "expected"),
    [
        ("755", 0o600, False, 0o755),
        ("0", 0o777, True, 0o000),
        ("4755", 0o600, False, 0o4755),
        ("07777", 0o000, False, 0o7777),
        ("u+x", 0o644, False, 0o744),
        ("+x", 0o644, False, 0o755),
        ("go-w", 0o666, False, 0o644),
        ("a+X", 0o644, False, 0o644),
        ("a+X", 0o744, False, 0o755),
        ("a+X", 0o700, True, 0o711),
        ("u=rwX,go=rX", 0o600, False, 0o644),
        # BSD setmode (and so BuildKit) honours X only with '+': `=rX` means `=r`.
        ("u=rwX,go=rX", 0o700, False, 0o644),
        ("u=rwX,go=rX", 0o000, True, 0o644),
        ("=rw,+X", 0o766, False, 0o777),
        ("=rw,+X", 0o000, True, 0o777),
        ("go=", 0o777, False, 0o700),
        ("g=u", 0o640, False, 0o660),
        ("go=u-w", 0o755, False, 0o755),
        ("u+s", 0o755, False, 0o4755),
        ("g+s", 0o755, True, 0o2755),
        ("+t", 0o777, True, 0o1777),
        ("o+t", 0o777, True, 0o777),
        ("u+r-w", 0o644, False, 0o444),
        ("a=r,u+w", 0o777, False, 0o644),
        ("=", 0o4755, False, 0o000),
    ],
)
def test_modes(value: str, mode: int, is_dir: bool, expected: int) -> None:
    assert oct(parse_chmod(value).apply(mode, is_dir=is_dir)) == oct(expected)


@pytest.mark.parametrize("value", ["10000", "77777", "0999", "8", "12a", "99999999999"])
def test_numeric_looking_bad_values_give_the_octal_error(value: str) -> None:
    with pytest.raises(ChmodSyntaxError) as info:
        parse_chmod(value)
    assert str(info.value) == (
        f"invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777"
    )


@pytest.mark.parametrize("value", ["", "u", "u+q", "x+u", "u+x,", "-1", "a+r;"])
def test_malformed_symbolic_values_give_invalid_syntax(value: str) -> None:
    with pytest.raises(ChmodSyntaxError, match=r"^invalid syntax$"):
        parse_chmod(value)


def test_parent_mode_is_octal_permission_bits_or_0755() -> None:
    assert parse_chmod("4750").parent_mode == 0o750
    assert parse_chmod("u+x").parent_mode == 0o755

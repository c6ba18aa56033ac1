"""The shell-word lexer takes nesting as deep as BuildKit's does and bounds what one
word may grow to, so hostile Dockerfiles end in one ShellError, never a
RecursionError or a hang."""

from __future__ import annotations

import sys

import pytest

from strata.dockerfile.shell import MAX_EXPANDED_CHARS, MAX_NESTING, ShellError, expand


def nested(depth: int, inner: str = "x") -> str:
    return "${A:-" * depth + inner + "}" * depth


def test_ten_thousand_deep_nesting_expands_as_buildkit_does() -> None:
    before = sys.getrecursionlimit()
    assert expand(nested(10_000, "deep"), {}) == "deep"
    assert expand(f'"{nested(10_000, "q")}"', {}) == "q"
    assert sys.getrecursionlimit() == before  # raised only while it expanded


def test_nesting_beyond_the_bound_is_one_short_shell_error() -> None:
    with pytest.raises(ShellError) as caught:
        expand(nested(MAX_NESTING + 1), {})
    message = str(caught.value)
    assert message.endswith(f"variable references nested more than {MAX_NESTING} deep")
    assert len(message) < 200


def test_an_unterminated_deep_word_is_buildkits_missing_brace() -> None:
    with pytest.raises(ShellError, match="syntax error: missing '}'"):
        expand("${A:-" * 5_000, {})


def test_doubling_variables_stop_at_one_mebibyte() -> None:
    env = {"A0": "ab"}
    with pytest.raises(ShellError) as caught:
        for i in range(1, 24):  # 2 ** 24 characters if unbounded: fails fast, not hangs
            env[f"A{i}"] = expand(f"${{A{i - 1}}}${{A{i - 1}}}", env)
    assert "expanded word is longer than 1048576 characters (1 MiB)" in str(caught.value)
    assert max(len(v) for v in env.values()) <= MAX_EXPANDED_CHARS


def test_replace_all_and_quoted_growth_are_bounded_too() -> None:
    env = {"B": "x" * 5_000, "C": "y" * 1_000, "D": "z" * 600_000}
    with pytest.raises(ShellError, match="1 MiB"):
        expand("${B//?/$C}", env)
    with pytest.raises(ShellError, match="1 MiB"):
        expand('"${D}${D}"', env)
    assert expand('"${D}"', env) == env["D"]

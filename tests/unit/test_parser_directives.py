"""Parser directives: only the leading comment block, once each, and what `escape` changes."""

from __future__ import annotations

import pytest

from strata.dockerfile.directives import find_directive
from strata.dockerfile.parser import parse
from strata.errors import DockerfileError


def test_escape_directive_makes_backtick_the_continuation_character() -> None:
    dockerfile = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  /b\n")
    assert dockerfile.escape == "`"
    assert dockerfile.directives == {"escape": "`"}
    assert dockerfile.children[1].args == ["dir c:\\   /b"]


def test_backslash_is_plain_text_under_a_backtick_escape() -> None:
    dockerfile = parse("# escape=`\nFROM a\nRUN echo \\\nRUN next\n")
    assert [n.args for n in dockerfile.children[1:]] == [["echo \\"], ["next"]]


def test_directive_keys_ignore_case_and_blanks_around_equals() -> None:
    dockerfile = parse("#  ESCAPE  =  `  \n# Syntax = docker/dockerfile:1\nFROM a\n")
    assert dockerfile.escape == "`"
    assert dockerfile.directives == {"escape": "`", "syntax": "docker/dockerfile:1"}


def test_all_three_directives_are_recorded_as_written() -> None:
    text = "# syntax=docker/dockerfile:1.7 extra\n# check=skip=JSONArgsRecommended;error=true\n"
    text += "# escape=\\\nFROM a\n"
    assert parse(text).directives == {
        "syntax": "docker/dockerfile:1.7 extra",
        "check": "skip=JSONArgsRecommended;error=true",
        "escape": "\\",
    }


@pytest.mark.parametrize(
    "before",
    ["\n", "# a plain comment\n", "# unknown=directive\n", "FROM a\n"],
)
def test_directive_block_ends_at_the_first_other_line(before: str) -> None:
    dockerfile = parse(f"{before}# escape=`\nFROM b\nRUN x `\nRUN y\n")
    assert dockerfile.escape == "\\"
    assert "escape" not in dockerfile.directives
    assert dockerfile.children[-2].args == ["x `"]


def test_repeated_directive_is_refused_on_its_line() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse("# syntax=a\n# SYNTAX=b\nFROM x\n")
    assert caught.value.message == "only one syntax parser directive can be used"
    assert caught.value.line == 2


def test_invalid_escape_token_is_refused() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse("# escape=$\nFROM x\n")
    assert caught.value.message == "invalid escape token '$' does not match ` or \\"
    assert caught.value.line == 1


def test_directive_after_byte_order_mark_counts() -> None:
    assert parse("\ufeff# escape=`\nFROM a\n").escape == "`"


def test_directives_are_not_taken_as_description_comments() -> None:
    node = parse("# syntax=docker/dockerfile:1\n# the base\nFROM a\n").children[0]
    assert node.comments == ["the base"]


def test_shebang_line_is_skipped_for_syntax_but_ends_the_block_for_the_parser() -> None:
    dockerfile = parse("#!/usr/bin/env buildctl\n# syntax=example/frontend\n# escape=`\nFROM a\n")
    assert dockerfile.directives == {"syntax": "example/frontend"}
    assert dockerfile.escape == "\\"


def test_find_directive_reads_check_like_buildkit_linter() -> None:
    assert find_directive("#check = skip=all // opts\nFROM busybox\n", "check") == (
        "skip=all // opts"
    )
    assert find_directive("#!/bin/sh\n\n# check = skip=all\n", "check") is None
    assert find_directive("FROM busybox\n# check=skip=all\n", "check") is None

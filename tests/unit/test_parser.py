"""The parser's reading of lines: comments, continuations, line numbers, line endings, errors."""

from __future__ import annotations

import pytest

from strata.dockerfile.ast import Dockerfile, Node
from strata.dockerfile.parser import MAX_LINE_BYTES, parse
from strata.errors import DockerfileError


def only(dockerfile: Dockerfile) -> Node:
    assert len(dockerfile.children) == 1
    return dockerfile.children[0]


def test_instruction_keyword_is_case_insensitive_and_kept_as_typed() -> None:
    node = only(parse("rUn echo hi\n"))
    assert node.value == "run"
    assert node.keyword == "rUn"
    assert node.args == ["echo hi"]


def test_result_keeps_filename_source_and_default_escape() -> None:
    text = "FROM scratch\n"
    dockerfile = parse(text, filename="app.Dockerfile")
    assert dockerfile.filename == "app.Dockerfile"
    assert dockerfile.source == text
    assert dockerfile.escape == "\\"
    assert dockerfile.directives == {}
    assert dockerfile.warnings == []


def test_blank_lines_and_comment_lines_are_skipped_and_lines_counted() -> None:
    dockerfile = parse("\n# a comment\n   \nFROM a\n\n  # indented\nRUN b\n")
    assert [(n.value, n.start_line, n.end_line) for n in dockerfile.children] == [
        ("from", 4, 4),
        ("run", 7, 7),
    ]


def test_hash_after_text_is_part_of_the_arguments() -> None:
    assert only(parse("RUN echo hi # not a comment\n")).args == ["echo hi # not a comment"]


def test_continuation_joins_lines_keeping_their_indentation() -> None:
    node = only(parse("RUN apt-get update \\\n    && apt-get install -y x\n"))
    assert node.args == ["apt-get update     && apt-get install -y x"]
    assert node.original == "RUN apt-get update     && apt-get install -y x"
    assert (node.start_line, node.end_line) == (1, 2)


def test_continuation_allows_blanks_after_the_escape_character() -> None:
    node = only(parse("RUN a \\  \t\nb\n"))
    assert node.args == ["a b"]


def test_escaped_escape_at_line_end_does_not_continue() -> None:
    dockerfile = parse("RUN echo \\\\\nRUN next\n")
    assert [n.args for n in dockerfile.children] == [["echo \\\\"], ["next"]]


def test_comment_lines_inside_a_continuation_are_dropped_without_warning() -> None:
    dockerfile = parse("RUN a \\\n# between\n    # indented too\n  b\n")
    assert only(dockerfile).args == ["a   b"]
    assert dockerfile.warnings == []


def test_blank_line_inside_a_continuation_warns_with_the_joined_line() -> None:
    dockerfile = parse("FROM x\nRUN something \\\n\n    following \\\n \t\n    more\n")
    node = dockerfile.children[1]
    assert node.args == ["something     following     more"]
    assert (node.start_line, node.end_line) == (2, 6)
    assert len(dockerfile.warnings) == 1
    warning = dockerfile.warnings[0]
    assert warning.rule == "NoEmptyContinuation"
    assert (
        warning.message == "Empty continuation line found in: RUN something     following     more"
    )
    assert warning.line == 6


def test_line_of_only_the_escape_character_contributes_nothing() -> None:
    assert only(parse("RUN a \\\n\\\nb\n")).args == ["a b"]


def test_continuation_at_end_of_file_ends_the_instruction() -> None:
    dockerfile = parse("FROM a\nRUN something \\")
    assert dockerfile.children[1].args == ["something"]
    assert dockerfile.children[1].end_line == 2


def test_instruction_may_start_with_a_continuation_line() -> None:
    node = only(parse("\\\nFROM a\n"))
    assert (node.value, node.args, node.start_line, node.end_line) == ("from", ["a"], 1, 2)


def test_comments_directly_above_an_instruction_become_its_comments() -> None:
    dockerfile = parse("# build stage\n# compiles things\n\nFROM a AS build\nRUN x\n")
    assert dockerfile.children[0].comments == ["build stage", "compiles things"]
    assert dockerfile.children[1].comments == []


def test_empty_comment_line_resets_the_collected_comments() -> None:
    node = only(parse("# old\n#\n# fresh\nFROM a\n"))
    assert node.comments == ["fresh"]


def test_indented_comment_keeps_its_hash_as_buildkit_does() -> None:
    # BuildKit slices off the first byte of the raw line, not the `#`.
    node = only(parse("  # described\nFROM a\n"))
    assert node.comments == ["# described"]


def test_crlf_input_parses_like_lf_input() -> None:
    text = 'FROM a\nRUN b \\\n  c\nENV k=v\nCMD ["x"]\n'
    crlf = parse(text.replace("\n", "\r\n"))
    assert crlf.dump() == parse(text).dump()
    assert [n.end_line for n in crlf.children] == [1, 3, 4, 5]


def test_continuation_works_with_crlf_line_endings() -> None:
    assert only(parse("RUN a \\\r\n  b\r\n")).args == ["a   b"]


def test_byte_order_mark_is_ignored() -> None:
    node = only(parse("\ufeffFROM a\n"))
    assert (node.keyword, node.args) == ("FROM", ["a"])


def test_empty_text_is_refused_as_empty() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse("", filename="Dockerfile.dev")
    assert caught.value.message == "the Dockerfile cannot be empty"
    assert (caught.value.file, caught.value.line) == ("Dockerfile.dev", 0)


@pytest.mark.parametrize(
    ("text", "last_line"),
    [("\n", 1), ("   \n\t\n", 2), ("# just a comment\n\n# another\n", 3), ("\ufeff", 1)],
)
def test_text_without_instructions_is_refused_at_its_last_line(text: str, last_line: int) -> None:
    # BuildKit locates the error at the last line it read (parser.go, end of Parse).
    with pytest.raises(DockerfileError) as caught:
        parse(text)
    assert caught.value.message == "file with no instructions"
    assert caught.value.line == last_line
    assert caught.value.source == text


def test_line_at_the_size_limit_is_accepted() -> None:
    label = "a" * (MAX_LINE_BYTES - len("LABEL k="))
    node = parse(f"FROM x\nLABEL k={label}\n").children[1]
    assert node.args == ["k", label, "="]


def test_line_over_the_size_limit_is_refused_counting_utf8_bytes() -> None:
    # 'é' is two bytes: the character count stays under the limit, the byte count does not.
    label = "é" * ((MAX_LINE_BYTES - len("LABEL k=")) // 2 + 1)
    with pytest.raises(DockerfileError) as caught:
        parse(f"FROM x\nLABEL k={label}\nRUN y\n")
    assert caught.value.message == "dockerfile line greater than max allowed size of 65535"
    assert caught.value.line == 2


def test_too_long_line_before_any_instruction_reports_no_instructions() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse("# short\n#" + "a" * MAX_LINE_BYTES + "\nFROM x\n")
    assert caught.value.message == "file with no instructions"
    assert caught.value.line == 1  # the scanner stopped after the first line


def test_unknown_instruction_is_kept_for_the_instruction_layer_to_refuse() -> None:
    # BuildKit's parser accepts any word; instructions/parse.go refuses it later. Its
    # parseIgnore leaves one empty argument, whatever followed the word.
    node = only(parse("FOOBAR some args\n"))
    assert (node.value, node.keyword, node.args) == ("foobar", "FOOBAR", [""])


def test_errors_carry_file_lines_and_source() -> None:
    text = "FROM a\nENV \\\n  ONLYKEY\n"
    with pytest.raises(DockerfileError) as caught:
        parse(text, filename="ctx/Dockerfile")
    error = caught.value
    assert error.message == "ENV must have two arguments"
    assert (error.file, error.line, error.end_line, error.source) == ("ctx/Dockerfile", 2, 3, text)

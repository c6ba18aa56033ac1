"""Instruction flags: the BFlags rules every instruction shares, and how errors are placed."""

from __future__ import annotations

import pytest

from strata.dockerfile.flags import FlagSet
from strata.dockerfile.instructions import CopyInstruction, parse_instruction
from strata.dockerfile.parser import parse
from strata.dockerfile.suggest import closest, edit_distance, with_suggestion
from strata.errors import DockerfileError, InstructionError


def _copy_flags() -> FlagSet:
    return FlagSet().add_string("from").add_bool("link").add_strings("exclude")


def _second(text: str) -> CopyInstruction:
    df = parse("FROM scratch\n" + text)
    instruction = parse_instruction(df.children[1], file=df.filename, source=df.source)
    assert isinstance(instruction, CopyInstruction)
    return instruction


def _error(text: str) -> DockerfileError:
    df = parse("FROM scratch\n" + text)
    with pytest.raises(DockerfileError) as caught:
        parse_instruction(df.children[1], file=df.filename, source=df.source)
    return caught.value


def _flag_error(*words: str) -> str:
    with pytest.raises(InstructionError) as caught:
        _copy_flags().parse(list(words))
    return caught.value.message


def test_bool_flag_without_value_is_true() -> None:
    assert _copy_flags().parse(["--link"]).is_true("link")


@pytest.mark.parametrize(("word", "expected"), [("--link=TRUE", True), ("--link=False", False)])
def test_bool_flag_accepts_true_and_false_in_any_case(word: str, expected: bool) -> None:
    assert _copy_flags().parse([word]).is_true("link") is expected


def test_bool_flag_defaults_to_false_when_absent() -> None:
    parsed = _copy_flags().parse([])
    assert parsed.is_true("link") is False
    assert not parsed.is_used("link")


def test_bool_flag_with_empty_value_is_missing_a_value() -> None:
    assert _flag_error("--link=") == "missing a value on flag: --link"


def test_bool_flag_with_other_word_is_rejected() -> None:
    assert _flag_error("--link=yes") == "expecting boolean value for flag --link, not: yes"


def test_string_flag_needs_an_equals_sign() -> None:
    assert _flag_error("--from") == "missing a value on flag: --from"


def test_string_flag_may_be_empty_after_equals() -> None:
    assert _copy_flags().parse(["--from="]).value("from") == ""


def test_string_flag_given_twice_is_a_duplicate() -> None:
    assert _flag_error("--from=a", "--from=b") == "duplicate flag specified: --from"


def test_bool_flag_given_twice_is_a_duplicate() -> None:
    assert _flag_error("--link", "--link=false") == "duplicate flag specified: --link"


def test_repeatable_flag_collects_values_in_order() -> None:
    parsed = _copy_flags().parse(["--exclude=*.md", "--exclude=tmp/"])
    assert parsed.values("exclude") == ("*.md", "tmp/")


def test_repeatable_flag_still_needs_a_value() -> None:
    assert _flag_error("--exclude") == "missing a value on flag: --exclude"


def test_unknown_flag_gets_a_hint_when_close() -> None:
    assert _flag_error("--lnk") == "unknown flag: --lnk (did you mean link?)"


def test_unknown_flag_without_close_option_has_no_hint() -> None:
    assert _flag_error("--parallel=3") == "unknown flag: --parallel"


def test_double_dash_ends_flag_parsing() -> None:
    parsed = _copy_flags().parse(["--link", "--", "--bogus"])
    assert parsed.is_true("link")


def test_word_without_double_dash_is_rejected() -> None:
    assert _flag_error("-link") == "arg should start with -- : -link"


def test_flag_values_keep_equals_signs_after_the_first() -> None:
    assert _copy_flags().parse(["--from=a=b"]).value("from") == "a=b"


def test_copy_reads_quoted_flag_values_from_the_parser() -> None:
    copy = _second('COPY --exclude="a b" --from=build src /dst\n')
    assert copy.excludes == ("a b",)
    assert copy.from_ == "build"


def test_flag_error_is_a_parse_error_on_the_instruction_line() -> None:
    error = _error("COPY --form=build a b\n")
    assert error.message == (
        "dockerfile parse error on line 2: unknown flag: --form (did you mean from?)"
    )
    assert (error.line, error.end_line, error.file) == (2, 2, "Dockerfile")
    assert error.source is not None and "COPY --form" in error.source


def test_flag_error_covers_every_line_of_a_continued_instruction() -> None:
    error = _error("COPY \\\n  --chown \\\n  a b\n")
    assert error.message == "dockerfile parse error on line 2: missing a value on flag: --chown"
    assert (error.line, error.end_line) == (2, 4)


def test_instructions_without_flags_reject_any_flag() -> None:
    error = _error("WORKDIR --mode=1 /app\n")
    assert error.message == "dockerfile parse error on line 2: unknown flag: --mode"


def test_edit_distance_counts_single_edits() -> None:
    assert edit_distance("mount", "mont") == 1
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3


def test_closest_prefers_the_first_option_at_the_smallest_distance() -> None:
    assert closest("nework", ["network", "mount"]) == "network"
    assert closest("abcd", ["abcx", "abcy"]) == "abcx"


def test_exact_match_gives_no_hint() -> None:
    assert closest("link", ["link", "lint"]) is None


def test_case_insensitive_hint_follows_the_typed_case() -> None:
    assert closest("FRM", ["from", "run"], case_sensitive=False) == "FROM"
    assert closest("frm", ["FROM", "RUN"], case_sensitive=False) == "from"


def test_with_suggestion_leaves_message_alone_when_nothing_is_close() -> None:
    assert with_suggestion("bad", "zzzzzz", ["alpha"]) == "bad"

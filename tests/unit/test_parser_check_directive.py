"""`# check=` options: parsed and refused with BuildKit's words, read before the file is parsed.

Expected messages come from BuildKit's linter.ParseLintOptions and were confirmed against
BuildKit itself on the same inputs.
"""

from __future__ import annotations

import pytest

from strata.dockerfile.directives import (
    CheckOptions,
    DirectiveProblem,
    check_options_for,
    parse_check_directive,
    parse_check_options,
    read_check_options,
)
from strata.errors import DockerfileError


def test_absent_directive_means_every_stable_rule_warns_and_nothing_fails() -> None:
    options = read_check_options("FROM scratch\n")
    assert options == CheckOptions()
    assert options.runs("JSONArgsRecommended")
    assert not options.runs("InvalidDefinitionDescription", experimental=True)


def test_skip_error_and_experimental_are_read_with_blanks_trimmed() -> None:
    # Blanks can only come from the build-arg: a directive value ends at its first space.
    options = parse_check_options(
        " skip = JSONArgsRecommended , FromAsCasing ;error= True;"
        "experimental=InvalidDefinitionDescription"
    )
    assert options == CheckOptions(
        skip=("JSONArgsRecommended", "FromAsCasing"),
        error=True,
        experimental=("InvalidDefinitionDescription",),
    )
    assert not options.runs("FromAsCasing")
    assert options.runs("StageNameCasing")
    assert options.runs("InvalidDefinitionDescription", experimental=True)


def test_all_skips_every_rule_but_not_an_enabled_experimental_one() -> None:
    options = parse_check_directive("skip=all;experimental=all")
    assert (options.skip_all, options.experimental_all) == (True, True)
    assert not options.runs("JSONArgsRecommended")
    assert options.runs("InvalidDefinitionDescription", experimental=True)


@pytest.mark.parametrize(("word", "value"), [("1", True), ("T", True), ("False", False)])
def test_error_takes_go_boolean_spellings(word: str, value: bool) -> None:
    assert parse_check_directive(f"error={word}").error is value


def test_only_the_text_before_the_first_space_is_the_directive_value() -> None:
    # BuildKit's ParseDirective cuts the value at a space; the rest is ignored.
    assert parse_check_directive("error=true this is ignored") == CheckOptions(error=True)


def test_a_fourth_option_stays_inside_the_third_value() -> None:
    # strings.SplitN(..., ";", 3): no error for `foo=bar`, it is part of a rule name.
    options = parse_check_options("skip=A;error=false;experimental=B;foo=bar")
    assert options.experimental == ("B;foo=bar",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("skip", 'invalid check option "skip"'),
        ("error=true;", 'invalid check option ""'),
        ("foo=bar", 'invalid check option "foo"'),
        ("warn=x", 'invalid check option "warn"'),
        (
            "error=maybe",
            'failed to parse check option "error=maybe": '
            'strconv.ParseBool: parsing "maybe": invalid syntax',
        ),
        (
            "error=tru\\e",
            'failed to parse check option "error=tru\\\\e": '
            'strconv.ParseBool: parsing "tru\\\\e": invalid syntax',
        ),
    ],
)
def test_bad_options_are_refused_in_buildkit_words(value: str, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        parse_check_directive(value)
    assert caught.value.message == "failed to parse check options: " + message
    with pytest.raises(DirectiveProblem) as bare:
        parse_check_options(value)
    assert str(bare.value) == message


def test_blanks_around_an_unknown_key_are_trimmed_in_the_message() -> None:
    with pytest.raises(DirectiveProblem) as caught:
        parse_check_options(" warn = x")
    assert str(caught.value) == 'invalid check option "warn"'


def test_bad_directive_is_reported_on_its_line_before_any_parse_error() -> None:
    text = "#!/usr/bin/env strata\n# syntax=docker/dockerfile:1\n# check=skip\nBADCMD\n"
    with pytest.raises(DockerfileError) as caught:
        read_check_options(text, filename="app.Dockerfile")
    error = caught.value
    assert error.message == 'failed to parse check options: invalid check option "skip"'
    assert (error.file, error.line, error.source) == ("app.Dockerfile", 3, text)


def test_build_arg_replaces_the_directive_without_reading_it() -> None:
    text = "# check=not valid\nFROM scratch\n"
    assert read_check_options(text, build_arg="skip=all") == CheckOptions(skip_all=True)
    assert read_check_options(text, build_arg="") == CheckOptions()
    with pytest.raises(DockerfileError) as caught:
        read_check_options("FROM scratch\n", build_arg="error=nope")
    assert caught.value.message.startswith(
        'failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: failed to parse check option "error=nope"'
    )


def test_check_line_after_the_directive_block_is_a_comment_not_options() -> None:
    assert read_check_options("FROM scratch\n# check=skip\n") == CheckOptions()


def test_check_comment_above_an_instruction_widens_the_options_there() -> None:
    base = CheckOptions(skip=("A",), error=True)
    widened = check_options_for(base, ["why this step", "check=skip=B;experimental=all"])
    assert widened == CheckOptions(skip=("A", "B"), error=True, experimental_all=True)
    # `error` is not taken from the comment, and a bad comment changes nothing.
    assert check_options_for(CheckOptions(), ["check=error=true"]) == CheckOptions()
    assert check_options_for(base, ["check=bogus"]) == base
    assert check_options_for(base, ["a plain comment", "syntax=x"]) == base

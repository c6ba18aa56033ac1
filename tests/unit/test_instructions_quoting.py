"""Words in instruction errors are quoted, and cased, the way BuildKit's Go code does it.

BuildKit builds these messages with `%q` (strconv.Quote), `%#v`, or the time package's own
quoting; a backslash or quote in the user's word comes back escaped, not verbatim. Its
ToLower/ToUpper/EqualFold map one code point to one, unlike Python's lower()/upper().
"""

from __future__ import annotations

import pytest

from strata.dockerfile.instructions import (
    FromInstruction,
    go_time_quote,
    go_upper,
    parse_go_duration,
    parse_instruction,
)
from strata.dockerfile.mounts import CacheMount, parse_mount
from strata.dockerfile.parser import parse
from strata.errors import DockerfileError


def _error(text: str) -> DockerfileError:
    """The error of the last instruction of `text`."""
    df = parse(text)
    with pytest.raises(DockerfileError) as caught:
        for node in df.children:
            parse_instruction(node, file=df.filename, source=df.source)
    return caught.value


def test_stage_name_with_backslash_is_go_quoted() -> None:
    error = _error("FROM scratch AS f\\oo\n")
    assert error.message == (
        "dockerfile parse error on line 1: invalid name for build stage: "
        '"f\\\\oo", name can\'t start with a number or contain symbols'
    )


def test_healthcheck_type_with_quotes_is_go_quoted() -> None:
    error = _error('FROM x\nHEALTHCHECK "x"\n')
    assert error.message == (
        'dockerfile parse error on line 2: Unknown type "\\"X\\"" in HEALTHCHECK (try CMD)'
    )


def test_network_mode_with_trailing_backslash_is_go_quoted() -> None:
    error = _error("FROM x\nRUN --network=none\\\\ true\n")
    assert error.message == 'dockerfile parse error on line 2: invalid network mode "none\\\\"'


def test_security_mode_with_tab_is_go_quoted() -> None:
    error = _error('FROM x\nRUN --security="a\tb" true\n')
    assert error.message.endswith('security "a\\tb" is not valid')


def test_retries_parse_error_quotes_the_value() -> None:
    error = _error('FROM x\nHEALTHCHECK --retries="1\\"" CMD true\n')
    assert error.message.endswith('strconv.ParseInt: parsing "1\\"": invalid syntax')


def test_retries_takes_no_digit_separators() -> None:
    error = _error("FROM x\nHEALTHCHECK --retries=1_000 CMD true\n")
    assert error.message.endswith('strconv.ParseInt: parsing "1_000": invalid syntax')


def test_unknown_instruction_keeps_keyword_with_unicode_space_as_typed() -> None:
    error = _error("F\u00a0ROM x\n")
    assert error.message == (
        "dockerfile parse error on line 1: unknown instruction: F\u00a0ROM (did you mean FROM?)"
    )


def test_time_quote_escapes_every_byte_outside_printable_ascii() -> None:
    assert go_time_quote('1"s\\') == '"1\\"s\\\\"'
    assert go_time_quote("5\u00e9\t") == '"5\\xc3\\xa9\\x09"'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5\u00e9", 'time: unknown unit "\\xc3\\xa9" in duration "5\\xc3\\xa9"'),
        ("\u0661s", 'time: invalid duration "\\xd9\\xa1s"'),
        ("1.5", 'time: missing unit in duration "1.5"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
    ],
)
def test_duration_errors_use_the_time_package_wording(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_go_duration(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("9223372036854775807ns", 2**63 - 1),
        ("-9223372036854775808ns", -(2**63)),
        ("2562047h47m16.854775807s", 2**63 - 1),
        ("0.3s", 300_000_000),
        ("1.0000000000000000000000001s", 1_000_000_000),
        ("0.0000000001s", 0),
    ],
)
def test_duration_values_follow_go_integer_arithmetic(text: str, nanoseconds: int) -> None:
    assert parse_go_duration(text) == nanoseconds


# -- Go's case rules ------------------------------------------------------------


def test_from_as_word_matches_under_go_case_folding() -> None:
    # strings.EqualFold folds the long s into s; Python's lower() does not.
    df = parse("FROM x a\u017f y\n")
    stage = parse_instruction(df.children[0], file=df.filename, source=df.source)
    assert isinstance(stage, FromInstruction) and stage.stage_name == "y"


def test_stage_name_is_lower_cased_one_code_point_for_one() -> None:
    # strings.ToLower turns the dotted capital I into a plain i, a valid name.
    df = parse("FROM x AS \u0130\n")
    stage = parse_instruction(df.children[0], file=df.filename, source=df.source)
    assert isinstance(stage, FromInstruction) and stage.stage_name == "i"


def test_healthcheck_type_is_upper_cased_one_code_point_for_one() -> None:
    error = _error("FROM x\nHEALTHCHECK stra\u00dfe\n")
    assert error.message.endswith('Unknown type "STRA\u00dfE" in HEALTHCHECK (try CMD)')


def test_go_upper_keeps_characters_without_a_single_upper_case() -> None:
    assert go_upper("a\u00df\ufb01\u0131") == "A\u00df\ufb01I"


def test_mount_type_and_keys_are_lower_cased_as_go_does() -> None:
    mount = parse_mount("type=CACHE,\u0130D=x,target=/c", expand=lambda word: word)
    assert isinstance(mount, CacheMount) and mount.id == "x"

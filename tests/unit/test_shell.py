"""Shell-word expansion: each quoting rule and `${}` modifier, in our own cases."""

from __future__ import annotations

import pytest

from strata.dockerfile.shell import ShellLex, expand, expand_words, go_quote
from strata.errors import ShellError, StrataError

ENV = {"NAME": "world", "EMPTY": "", "PATHV": "/usr/local/bin", "FILE": "archive.tar.gz"}


def _error(word: str, env: dict[str, str] | None = None, *, escape: str = "\\") -> ShellError:
    with pytest.raises(ShellError) as caught:
        expand(word, ENV if env is None else env, escape=escape)
    return caught.value


# -- quoting and escapes -----------------------------------------------------


def test_plain_word_is_unchanged() -> None:
    assert expand("plain-word_1.0", ENV) == "plain-word_1.0"


def test_single_quotes_are_removed_and_keep_everything_literal() -> None:
    assert expand("'$NAME \\n \"x\"'", ENV) == '$NAME \\n "x"'


def test_double_quotes_expand_variables_and_keep_single_quotes() -> None:
    assert expand("\"hi '$NAME'\"", ENV) == "hi 'world'"


def test_backslash_in_double_quotes_escapes_only_quote_dollar_and_itself() -> None:
    assert expand('"a\\"b\\$NAME\\\\c\\d"', ENV) == 'a"b$NAME\\c\\d'


def test_backslash_outside_quotes_escapes_any_character() -> None:
    assert expand("a\\ b\\$NAME\\'\\x", ENV) == "a b$NAME'x"


def test_trailing_escape_is_dropped() -> None:
    assert expand("abc\\", ENV) == "abc"


def test_backtick_escape_token_replaces_backslash() -> None:
    assert expand("C:\\dir`$NAME", ENV, escape="`") == "C:\\dir$NAME"
    assert expand('"a`"b"', ENV, escape="`") == 'a"b'


def test_backslash_is_ordinary_when_escape_is_backtick() -> None:
    assert expand("\\$NAME", ENV, escape="`") == "\\world"


def test_unterminated_single_quote_is_an_error() -> None:
    assert _error("'abc").reason == (
        "unexpected end of statement while looking for matching single-quote"
    )


def test_unterminated_double_quote_is_an_error_even_after_an_escape() -> None:
    assert _error('"abc\\').reason == (
        "unexpected end of statement while looking for matching double-quote"
    )


def test_shell_error_is_a_strata_error_with_buildkit_wrapping() -> None:
    error = _error("x${MISSING:?}")
    assert isinstance(error, StrataError)
    assert error.word == "x${MISSING:?}"
    assert error.reason == "MISSING: is not allowed to be unset"
    assert str(error) == 'failed to process "x${MISSING:?}": MISSING: is not allowed to be unset'


# -- plain variables ---------------------------------------------------------


def test_dollar_name_and_braced_name_expand() -> None:
    assert expand("hello $NAME and ${NAME}!", ENV) == "hello world and world!"


def test_unset_variable_expands_to_empty() -> None:
    assert expand("a${NOPE}b$NOPE", ENV) == "ab"


def test_variable_name_stops_at_first_non_name_character() -> None:
    assert expand("$NAME.txt $NAME-x", ENV) == "world.txt world-x"


def test_lone_dollar_and_dollar_before_punctuation_stay_literal() -> None:
    assert expand("$ $. a$", ENV) == "$ $. a$"


def test_positional_and_special_parameters_are_never_set() -> None:
    assert expand("[$1][$12x][$@][$$][$#][$?]", ENV) == "[][x][][][][]"


def test_names_are_case_sensitive() -> None:
    assert expand("$name", ENV) == ""


def test_empty_braces_are_a_bad_substitution() -> None:
    assert _error("${}").reason == "syntax error: bad substitution"
    assert _error("${:-x}").reason == "syntax error: bad substitution"


def test_unclosed_brace_is_missing_brace() -> None:
    assert _error("${").reason == "syntax error: missing '}'"
    assert _error("${NAME:-abc").reason == "syntax error: missing '}'"


def test_unknown_modifier_is_reported_with_its_text() -> None:
    assert _error("${NAME:=x}").reason == "unsupported modifier (:=) in substitution"
    assert _error("${NAME.x}").reason == "unsupported modifier (.) in substitution"


# -- default / alternative / required ----------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("${NOPE:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${NAME:-dflt}", "world"),
        ("${NOPE-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${NAME-dflt}", "world"),
        ("${NOPE:+alt}", ""),
        ("${EMPTY:+alt}", ""),
        ("${NAME:+alt}", "alt"),
        ("${NOPE+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${NAME+alt}", "alt"),
        ("${NAME:?}", "world"),
        ("${EMPTY?}", ""),
    ],
)
def test_default_alternative_and_required_modifiers(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


def test_modifier_word_is_itself_expanded_and_unquoted() -> None:
    assert expand('${NOPE:-"$NAME x"/${EMPTY:-e}}', ENV) == "world x/e"


def test_required_modifier_messages() -> None:
    assert _error("${NOPE?}").reason == "NOPE: is not allowed to be unset"
    assert _error("${EMPTY:?}").reason == "EMPTY: is not allowed to be empty"
    assert _error("${NOPE:?set NOPE to $NAME}").reason == "NOPE: set NOPE to world"


# -- prefix / suffix trimming and substitution -------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("${FILE#*.}", "tar.gz"),
        ("${FILE##*.}", "gz"),
        ("${FILE%.*}", "archive.tar"),
        ("${FILE%%.*}", "archive"),
        ("${FILE#nomatch}", "archive.tar.gz"),
        ("${FILE%?z}", "archive.tar."),
        ("${PATHV#/usr}", "/local/bin"),
        ("${NOPE#x}", ""),
        ("${FILE#}", "archive.tar.gz"),
    ],
)
def test_prefix_and_suffix_trimming(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


def test_trim_pattern_escapes_make_glob_characters_literal() -> None:
    env = {"V": "**a*b*"}
    assert expand("${V#\\*\\*}", env) == "a*b*"
    assert expand("${V%\\**}", env) == "**a*b"


def test_trim_pattern_brackets_and_dots_are_literal() -> None:
    env = {"V": "[ab].x"}
    assert expand("${V#[ab]}", env) == ".x"
    assert expand("${V#[ab]?}", env) == "x"


def test_trim_pattern_from_a_variable_is_a_pattern() -> None:
    assert expand("${FILE##$GLOB}", {**ENV, "GLOB": "*."}) == "gz"


def test_trim_pattern_with_unknown_escape_is_an_error() -> None:
    assert (
        _error("${FILE#\\a}").reason
        == "invalid pattern (\\a) in substitution: invalid escape '\\a'"
    )


def test_colon_before_trim_modifier_is_refused() -> None:
    assert _error("${FILE:#x}").reason == "unsupported modifier (:#) in substitution"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("${PATHV/\\//:}", ":usr/local/bin"),
        ("${PATHV//\\//:}", ":usr:local:bin"),
        ("${PATHV/lo*/X}", "/usr/X"),
        ("${PATHV//?o/_}", "/usr/_cal/bin"),
        ("${PATHV/zzz/X}", "/usr/local/bin"),
        ("${NOPE//a/b}", ""),
    ],
)
def test_pattern_substitution(word: str, expected: str) -> None:
    assert expand(word, ENV) == expected


def test_replace_all_with_empty_pattern_inserts_between_every_character() -> None:
    assert expand("${V//$E/-}", {"V": "abc", "E": ""}) == "-a-b-c-"


def test_replace_all_skips_empty_match_right_after_a_match_like_go() -> None:
    # `*` matches the whole value, then the empty end; Go's ReplaceAllString
    # does not replace that second, empty match (Python's re.sub would: "--").
    assert expand("${V//*/-}", {"V": "abxd"}) == "-"


def test_replace_all_treats_dollar_in_replacement_as_go_template() -> None:
    env = {"V": "a.b", "R": "<$0>", "S": "[$1$$]"}
    assert expand("${V//./$R}", env) == "a<.>b"
    assert expand("${V//./$S}", env) == "a[$]b"


def test_single_replacement_inserts_text_literally() -> None:
    assert expand("${V/./$R}", {"V": "a.b", "R": "<$0>"}) == "a<$0>b"


def test_substitution_without_second_slash_is_an_error() -> None:
    assert _error("${PATHV/abc}").reason == "syntax error: missing '/' in ${}"


# -- word splitting ----------------------------------------------------------


def test_words_split_on_unquoted_whitespace_only() -> None:
    assert expand_words("a  b\t'c d' \"e f\"g", {}) == ["a", "b", "c d", "e fg"]


def test_unquoted_expansion_is_split_quoted_is_not() -> None:
    env = {"V": " x  y "}
    assert expand_words("a$V b", env) == ["a", "x", "y", "b"]
    assert expand_words('a"$V"b', env) == ["a x  y b"]


def test_empty_expansions_produce_no_words() -> None:
    assert expand_words("$NOPE ${EMPTY} x", ENV) == ["x"]


def test_escaped_space_joins_words() -> None:
    assert expand_words("a\\ b c", {}) == ["a b", "c"]


def test_split_words_lose_text_before_a_modifier_expansion_like_buildkit() -> None:
    # lex.go shares one word buffer across nesting levels and resets it, so
    # "80" is dropped from the words though the expanded value keeps it.
    lex = ShellLex()
    result = lex.process_word("x 80${P:-/tcp}", {})
    assert result.value == "x 80/tcp"
    assert list(result.words) == ["x", "/tcp"]


def test_heredoc_marker_keeps_following_blanks_in_one_word() -> None:
    assert expand_words("cat << EOF > f", {}) == ["cat", "<< EOF", ">", "f"]


# -- the lower-level lexer ---------------------------------------------------


def test_matched_and_unmatched_names_are_reported() -> None:
    result = ShellLex().process_word("$NAME ${NOPE:-$EMPTY} ${OTHER#x}", ENV)
    assert result.matched == frozenset({"NAME", "EMPTY"})
    assert result.unmatched == frozenset({"NOPE", "OTHER"})


def test_keep_quotes_leaves_quote_characters() -> None:
    result = ShellLex().process_word("echo \"$NAME\" '$x'", ENV, keep_quotes=True)
    assert result.value == "echo \"world\" '$x'"


def test_skip_unset_leaves_unset_references_as_written() -> None:
    result = ShellLex().process_word(
        "$NOPE ${NOPE} ${NOPE:-d} ${NOPE/a/b} $NAME", ENV, skip_unset=True
    )
    assert result.value == "$NOPE ${NOPE} ${NOPE:-d} ${NOPE/a/b} world"


def test_skip_unset_does_not_raise_for_required_unset_variable() -> None:
    result = ShellLex().process_word("${NOPE:?must}", ENV, skip_unset=True)
    assert result.value == "${NOPE:?must}"


def test_run_step_names_keep_quotes_and_unset_variables() -> None:
    result = ShellLex().process_word(
        "echo '$HOME' \"$NAME\" $UNDEF", ENV, keep_quotes=True, skip_unset=True
    )
    assert result.value == "echo '$HOME' \"world\" $UNDEF"


def test_skip_quotes_treats_quotes_as_text_but_still_expands() -> None:
    result = ShellLex().process_word("'$NAME' \"x\"", ENV, skip_quotes=True)
    assert result.value == "'world' \"x\""


def test_keep_escapes_leaves_escape_tokens_in_place() -> None:
    result = ShellLex().process_word("a\\ b\\$NAME", ENV, keep_escapes=True)
    assert result.value == "a\\ b\\$NAME"


def test_lexer_refuses_a_multi_character_escape_token() -> None:
    with pytest.raises(ValueError):
        ShellLex("\\\\")


def test_leading_byte_order_mark_is_skipped() -> None:
    assert expand("\ufeff$NAME", ENV) == "world"


def test_go_quote_escapes_like_go() -> None:
    assert go_quote('a"b\\c\n\x01é\u00a0') == '"a\\"b\\\\c\\n\\x01é\\u00a0"'


def test_quoted_empty_strings_make_no_words() -> None:
    assert expand_words('a "" b', {}) == ["a", "b"]
    assert expand_words("''", {}) == []

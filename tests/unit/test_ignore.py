""".dockerignore reading and matching, one rule per test, in our own cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.dockerfile.ignore import (
    IgnorePatternError,
    MatchInfo,
    PatternMatcher,
    find_ignore_file,
    read_ignore_patterns,
)
from strata.errors import StrataError
from strata.gotext import go_path_clean as go_clean_path


def excluded(patterns: list[str], path: str) -> bool:
    return PatternMatcher(patterns).matches(path)


# -- reading the file --------------------------------------------------------


def test_comment_only_in_first_column() -> None:
    assert read_ignore_patterns("# note\n  # not a comment\n") == ["# not a comment"]


def test_lines_are_trimmed_and_blank_lines_skipped() -> None:
    assert read_ignore_patterns("\n  build  \n\t\n\tdist\t\n") == ["build", "dist"]


def test_crlf_line_endings_and_byte_order_mark_are_ignored() -> None:
    assert read_ignore_patterns("\ufeff#c\r\nlogs\r\n") == ["logs"]


def test_patterns_are_cleaned_like_go_filepath_clean() -> None:
    text = "./src/\n/abs/path\na//b/./c\nx/../y\n../up\n/\n."
    assert read_ignore_patterns(text) == ["src", "abs/path", "a/b/c", "y", "../up", "/", "."]


def test_exception_marker_is_kept_and_its_pattern_cleaned() -> None:
    assert read_ignore_patterns("!  ./keep/me/\n!/root") == ["!keep/me", "!root"]


def test_bare_exclamation_mark_is_refused() -> None:
    with pytest.raises(IgnorePatternError) as caught:
        read_ignore_patterns("a\n  !  \n")
    assert str(caught.value) == 'illegal exclusion pattern: "!"'
    assert isinstance(caught.value, StrataError)


def test_go_clean_path_edge_cases() -> None:
    assert go_clean_path("") == "."
    assert go_clean_path("/../a") == "/a"
    assert go_clean_path("a/../../b") == "../b"
    assert go_clean_path("//x//") == "/x"


# -- finding the file --------------------------------------------------------


def test_context_dockerignore_is_used_by_default(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("x\n")
    assert find_ignore_file(tmp_path, tmp_path / "Dockerfile") == tmp_path / ".dockerignore"


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    elsewhere = tmp_path / "docker"
    elsewhere.mkdir()
    (tmp_path / ".dockerignore").write_text("x\n")
    specific = elsewhere / "app.Dockerfile.dockerignore"
    specific.write_text("y\n")
    assert find_ignore_file(tmp_path, elsewhere / "app.Dockerfile") == specific


def test_no_ignore_file_gives_none(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").mkdir()
    assert find_ignore_file(tmp_path, None) is None


# -- matching ----------------------------------------------------------------


def test_plain_name_matches_only_at_the_root() -> None:
    assert excluded(["secret.txt"], "secret.txt")
    assert not excluded(["secret.txt"], "sub/secret.txt")


def test_star_and_question_mark_stay_within_one_segment() -> None:
    assert excluded(["*.log"], "debug.log")
    assert not excluded(["*.log"], "logs/debug.log")
    assert excluded(["v?.txt"], "v1.txt")
    assert not excluded(["a?b"], "a/b")


def test_double_star_spans_any_number_of_segments() -> None:
    assert excluded(["**/*.pyc"], "x.pyc")
    assert excluded(["**/*.pyc"], "a/b/c/x.pyc")
    assert excluded(["docs/**/draft"], "docs/draft")
    assert excluded(["docs/**/draft"], "docs/2024/q1/draft")
    assert not excluded(["docs/**/draft"], "other/draft")


def test_trailing_double_star_matches_contents_not_the_directory() -> None:
    assert excluded(["cache/**"], "cache/a/b")
    assert not excluded(["cache/**"], "cache")


def test_double_star_alone_matches_everything() -> None:
    assert excluded(["**"], "any/where/file")


def test_leading_double_star_slash_matches_at_any_depth_but_whole_names() -> None:
    assert excluded(["**/node_modules"], "node_modules")
    assert excluded(["**/node_modules"], "web/node_modules/pkg/index.js")
    assert not excluded(["**/node_modules"], "web/my_node_modules")


def test_character_classes_and_ranges() -> None:
    assert excluded(["file[0-9].txt"], "file7.txt")
    assert not excluded(["file[0-9].txt"], "fileA.txt")
    assert excluded(["[^x]y"], "ay")
    assert not excluded(["[^x]y"], "xy")


def test_exclamation_inside_brackets_is_a_literal_not_negation() -> None:
    # The class goes to Go's regex engine, where only `^` negates.
    assert excluded(["[!a]b"], "!b")
    assert not excluded(["[!a]b"], "cb")


def test_backslash_escapes_a_glob_character() -> None:
    assert excluded(["what\\?"], "what?")
    assert not excluded(["what\\?"], "whatx")


def test_backslash_letter_means_what_it_means_to_go_regex() -> None:
    # patternmatcher hands `\d` to the regex engine, where it is a digit.
    assert excluded(["v\\d"], "v7")
    assert not excluded(["v\\d"], "vd")


def test_regex_metacharacters_in_names_are_literal() -> None:
    assert excluded(["a+b(c).txt*"], "a+b(c).txt.bak")
    assert not excluded(["a.c*"], "abc")


def test_excluding_a_directory_excludes_its_subtree() -> None:
    assert excluded(["build"], "build/out/app.bin")
    assert excluded(["src/*/gen"], "src/pkg/gen/x.go")


def test_last_matching_pattern_wins() -> None:
    assert not excluded(["*.md", "!README.md"], "README.md")
    assert excluded(["*.md", "!README.md", "README*"], "README.md")


def test_exception_reincludes_a_path_inside_an_excluded_directory() -> None:
    patterns = ["vendor", "!vendor/keep"]
    assert not excluded(patterns, "vendor/keep/a.go")
    assert excluded(patterns, "vendor/drop/a.go")


def test_exception_before_any_inclusion_has_no_effect() -> None:
    assert not excluded(["!a", "b"], "a")
    assert excluded(["!a", "a"], "a")


def test_trailing_newline_in_a_name_is_not_ignored_by_the_end_anchor() -> None:
    assert not excluded(["*.txt"], "a.txt\n")


def test_unclean_path_checks_go_parent_directories() -> None:
    assert excluded(["a/b"], "a//b/c")


def test_patterns_given_to_the_matcher_are_trimmed_and_cleaned() -> None:
    matcher = PatternMatcher(["  ./a/  ", "", "!b/"])
    assert matcher.patterns == ("a", "!b")
    assert matcher.has_exclusions


def test_matcher_without_exceptions_reports_none() -> None:
    assert not PatternMatcher(["a", "b"]).has_exclusions


@pytest.mark.parametrize("pattern", ["[", "a[b", "[]", "[z-]", "[^]", "tail\\", "[a-\\"])
def test_invalid_patterns_are_refused_with_the_go_message(pattern: str) -> None:
    with pytest.raises(IgnorePatternError) as caught:
        PatternMatcher([pattern])
    assert str(caught.value) == "syntax error in pattern"
    assert caught.value.pattern == pattern


def test_pattern_invalid_only_for_the_regex_engine_fails_when_used() -> None:
    # filepath.Match accepts `\y`; Go's regexp does not, so BuildKit fails
    # when the pattern is first applied, not when it is read.
    matcher = PatternMatcher(["a\\y"])
    with pytest.raises(IgnorePatternError):
        matcher.matches("a")


def test_bare_exclamation_mark_is_refused_by_the_matcher() -> None:
    with pytest.raises(IgnorePatternError):
        PatternMatcher(["!"])


# -- walking -----------------------------------------------------------------


def _walk(matcher: PatternMatcher, paths: list[str]) -> set[str]:
    """Excluded paths of a pre-ordered tree, the way a context walker asks."""
    infos: dict[str, MatchInfo] = {}
    result = set()
    for path in paths:
        parent = infos.get(path.rpartition("/")[0])
        hit, info = matcher.match_with_parent(path, parent)
        infos[path] = info
        if hit:
            result.add(path)
    return result


def test_walk_matching_agrees_with_single_path_matching_in_plain_cases() -> None:
    matcher = PatternMatcher(["docs", "!docs/api", "*.tmp", "**/cache"])
    tree = ["docs", "docs/api", "docs/api/x", "docs/old", "a.tmp", "b", "b/cache", "b/cache/z"]
    assert _walk(matcher, tree) == {p for p in tree if matcher.matches(p)}
    assert _walk(matcher, tree) == {"docs", "docs/old", "a.tmp", "b/cache", "b/cache/z"}


def test_walk_matching_keeps_buildkit_order_quirk() -> None:
    # The exception `!d` is skipped for `d` (nothing matched yet) and the
    # walker never rechecks it against the parent, so `d/f` stays excluded;
    # checked alone, the parent `d` re-includes it.
    matcher = PatternMatcher(["d/f", "!d"])
    assert _walk(matcher, ["d", "d/f"]) == {"d/f"}
    assert not matcher.matches("d/f")


def test_walk_without_parent_information_checks_parents_itself() -> None:
    hit, info = PatternMatcher(["a", "!a/b"]).match_with_parent("a/c", None)
    assert hit
    assert info == (True, False)


def test_walk_refuses_parent_information_of_the_wrong_size() -> None:
    with pytest.raises(ValueError):
        PatternMatcher(["a"]).match_with_parent("a/b", (True, False))


def test_excluded_directory_without_exceptions_may_be_skipped() -> None:
    matcher = PatternMatcher(["node_modules", "*.log"])
    assert matcher.may_skip_directory("node_modules")
    assert not matcher.may_skip_directory("src")


def test_directory_containing_an_exception_may_not_be_skipped() -> None:
    matcher = PatternMatcher(["vendor", "!vendor/keep/**", "build"])
    assert not matcher.may_skip_directory("vendor")
    assert matcher.may_skip_directory("build")


def test_exception_with_glob_characters_prevents_any_skipping() -> None:
    matcher = PatternMatcher(["build", "!**/*.keep"])
    assert matcher.matches("build")
    assert not matcher.may_skip_directory("build")

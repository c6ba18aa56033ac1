"""`# check=` and BUILDKIT_DOCKERFILE_CHECK decide which lint findings a build reports.

BuildKit's linter skips rules named in `skip=` (or all), fails the build after conversion
with `lint violation found for rules: ...` under `error=true`, lets the build-arg replace
the directive, and lets a `# check=` comment above one instruction widen the options for
that instruction's own findings (but never turn on `error`).
"""

from __future__ import annotations

import pytest

from strata.errors import DockerfileError, LintViolation
from tests.unit.test_plan_support import plan

TWO_RULES = "FROM busybox\nCMD echo hi\nENV name value\n"


def _rules(text: str, **options: object) -> list[str]:
    return [w.rule for w in plan(text, **options).warnings]


def test_without_check_options_every_finding_is_reported() -> None:
    assert _rules(TWO_RULES) == ["JSONArgsRecommended", "LegacyKeyValueFormat"]


def test_skipped_rule_is_not_reported() -> None:
    text = "# check=skip=JSONArgsRecommended\n" + TWO_RULES
    assert _rules(text) == ["LegacyKeyValueFormat"]


def test_skip_all_reports_nothing_even_parser_findings() -> None:
    text = "# check=skip=all\nFROM busybox\nRUN echo \\\n\n  hi\nCMD echo\n"
    assert _rules(text) == []
    assert "NoEmptyContinuation" in _rules(text.replace("# check=skip=all\n", ""))


def test_error_true_fails_naming_each_rule_once_in_reporting_order() -> None:
    text = "# check=error=true\n" + TWO_RULES + "ENV other thing\n"
    with pytest.raises(DockerfileError) as caught:
        plan(text)
    assert caught.value.message == (
        "lint violation found for rules: JSONArgsRecommended, LegacyKeyValueFormat"
    )


def test_lint_violation_carries_the_findings_it_names() -> None:
    with pytest.raises(LintViolation) as caught:
        plan("# check=error=true\n" + TWO_RULES)
    assert [(w.rule, w.line) for w in caught.value.warnings] == [
        ("JSONArgsRecommended", 3),
        ("LegacyKeyValueFormat", 4),
    ]


def test_error_true_without_findings_builds() -> None:
    result = plan('# check=error=true\nFROM busybox\nCMD ["echo", "hi"]\n')
    assert result.warnings == []


def test_error_true_ignores_skipped_rules() -> None:
    text = "# check=skip=JSONArgsRecommended,LegacyKeyValueFormat;error=true\n" + TWO_RULES
    assert _rules(text) == []


def test_dispatch_errors_win_over_lint_violations() -> None:
    text = "# check=error=true\nFROM busybox\nCMD echo\nSTOPSIGNAL NOPE\n"
    with pytest.raises(DockerfileError) as caught:
        plan(text)
    assert (caught.value.message, caught.value.line) == ("invalid signal: NOPE", 4)


def test_build_arg_replaces_the_directive() -> None:
    text = "# check=error=true\n" + TWO_RULES
    relaxed = _rules(text, build_args={"BUILDKIT_DOCKERFILE_CHECK": "skip=LegacyKeyValueFormat"})
    assert relaxed == ["JSONArgsRecommended"]
    # Even an empty value replaces it: no error, nothing skipped.
    assert len(_rules(text, build_args={"BUILDKIT_DOCKERFILE_CHECK": ""})) == 2
    with pytest.raises(DockerfileError) as caught:
        plan(TWO_RULES, build_args={"BUILDKIT_DOCKERFILE_CHECK": "error=true"})
    assert caught.value.message.startswith("lint violation found for rules: ")


def test_bad_check_options_fail() -> None:
    with pytest.raises(DockerfileError) as caught:
        plan("# check=error=maybe\nFROM busybox\n")
    assert caught.value.message == (
        'failed to parse check options: failed to parse check option "error=maybe": '
        'strconv.ParseBool: parsing "maybe": invalid syntax'
    )
    with pytest.raises(DockerfileError) as caught:
        plan("FROM busybox\n", build_args={"BUILDKIT_DOCKERFILE_CHECK": "nope"})
    assert caught.value.message == (
        'failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: invalid check option "nope"'
    )


def test_comment_above_an_instruction_skips_its_own_findings_only() -> None:
    text = "FROM busybox\n# check=skip=JSONArgsRecommended\nCMD echo one\nENTRYPOINT echo two\n"
    result = plan(text)
    assert [(w.rule, w.line) for w in result.warnings] == [("JSONArgsRecommended", 4)]


def test_comment_above_the_later_instruction_governs_the_repeated_instruction_finding() -> None:
    # MultipleInstructionsDisallowed points at the earlier CMD but is reported while the
    # later one is dispatched, with that one's options (validations.go validateUsedOnce).
    text = 'FROM busybox\nCMD ["a"]\n# check=skip=MultipleInstructionsDisallowed\nCMD ["b"]\n'
    assert _rules(text) == []
    assert _rules(text.replace("# check=skip=MultipleInstructionsDisallowed\n", "")) == [
        "MultipleInstructionsDisallowed"
    ]


def test_comment_above_an_instruction_cannot_turn_on_errors() -> None:
    text = "FROM busybox\n# check=error=true\nCMD echo one\n"
    assert _rules(text) == ["JSONArgsRecommended"]


def test_comment_above_maintainer_skips_the_parse_time_finding() -> None:
    text = "FROM busybox\n# check=skip=MaintainerDeprecated\nMAINTAINER me\nMAINTAINER you\n"
    result = plan(text)
    assert [(w.rule, w.line) for w in result.warnings] == [("MaintainerDeprecated", 4)]

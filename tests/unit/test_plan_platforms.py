"""`FROM --platform` values are read and refused as containerd and BuildKit do."""

from __future__ import annotations

import pytest

from strata.errors import DockerfileError, PlatformError
from strata.plan.ops import Platform
from strata.plan.platforms import parse_platform
from tests.unit.test_plan_support import plan

OS_RULE = '"^([A-Za-z0-9_-]+)(?:\\\\(([A-Za-z0-9_.%-]*)((?:\\\\+[A-Za-z0-9_.%-]+)*)\\\\))?$"'
COMPONENT_RULE = '"^[A-Za-z0-9_.-]+$"'


def _failure(text: str) -> str:
    with pytest.raises(DockerfileError) as caught:
        plan(text)
    assert caught.value.line == text.count("\n")
    return caught.value.message


def test_bad_os_component_names_the_pattern_it_must_match() -> None:
    assert _failure("FROM --platform=lin[ux busybox\n") == (
        'failed to parse platform lin[ux: "lin[ux" is an invalid OS component of "lin[ux": '
        f"OSAndVersion specifier component must match {OS_RULE}: invalid argument"
    )


def test_bad_other_component_names_the_pattern_it_must_match() -> None:
    assert _failure("FROM --platform=linux/a[md64 busybox\n") == (
        'failed to parse platform linux/a[md64: "a[md64" is an invalid component of '
        f'"linux/a[md64": platform specifier component must match {COMPONENT_RULE}: '
        "invalid argument"
    )


def test_empty_platform_hints_at_the_predefined_arg_probably_meant() -> None:
    assert _failure("FROM --platform=$BUIDPLATFORM busybox\n") == (
        "empty platform value from expression $BUIDPLATFORM (did you mean BUILDPLATFORM?)"
    )


def test_empty_platform_hints_at_a_global_arg() -> None:
    assert _failure("ARG MYPLAT=linux/amd64\nFROM --platform=${MYPLATT} busybox\n") == (
        "empty platform value from expression ${MYPLATT} (did you mean MYPLAT?)"
    )


def test_unparsable_platform_from_a_misspelt_arg_gets_the_hint_after_the_reason() -> None:
    assert _failure("FROM --platform=linux/$BUIDARCH busybox\n") == (
        'failed to parse platform linux/$BUIDARCH: "" is an invalid component of "linux/": '
        f"platform specifier component must match {COMPONENT_RULE}: invalid argument "
        "(did you mean BUILDARCH?)"
    )


def test_failed_expansion_prints_the_empty_result_as_buildkit() -> None:
    assert _failure("FROM --platform=${X:?boom} busybox\n") == (
        'failed to process arguments for platform : failed to process "${X:?boom}": X: boom'
    )


def test_os_version_and_features_are_accepted() -> None:
    assert parse_platform("windows(10.0.17763+win32k)/amd64") == Platform("windows", "amd64")
    result = plan("FROM --platform=linux(5.1)/arm64 busybox\n")
    assert result.stages[0].platform == Platform("linux", "arm64")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "windows(10%zz)",
            '"windows(10%zz)" has an invalid OS version "10%zz": invalid URL escape "%zz"',
        ),
        (
            "windows(10+%zz)",
            '"windows(10+%zz)" has invalid OS features: invalid os feature "%zz": '
            'invalid URL escape "%zz"',
        ),
        ("wasip1", '"wasip1": unknown operating system or architecture: invalid argument'),
        ("linux\n", None),
    ],
)
def test_containerd_refusals(spec: str, message: str | None) -> None:
    with pytest.raises(PlatformError) as caught:
        parse_platform(spec)
    if message is not None:
        assert caught.value.message == message


def test_architectures_containerd_knows_stand_alone() -> None:
    assert parse_platform("sparc64") == Platform("linux", "sparc64")

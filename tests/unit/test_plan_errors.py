"""Every Dockerfile mistake the planner finds is a DockerfileError at the right line."""

from __future__ import annotations

import pytest

from strata.errors import DockerfileError
from tests.unit.test_plan_support import plan


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("ARG E\nFROM $E\n", "base name ($E) should not be blank", 2),
        ("FROM --platform=$NOPE busybox\n", "empty platform value from expression $NOPE", 1),
        (
            "FROM Busybox\n",
            'failed to parse stage name "Busybox": invalid reference format: '
            "repository name (library/Busybox) must be lowercase",
            1,
        ),
        ("FROM bad^name\n", 'failed to parse stage name "bad^name": invalid reference format', 1),
        ("FROM busybox\nRUN --mount=type=tmpfs,target=/ true\n", 'invalid mount target "/"', 2),
        ("FROM busybox\nRUN --mount=type=bind true\n", 'invalid mount target "/"', 2),
        (
            "FROM busybox\nENV A=${X:?required}\n",
            'failed to process "${X:?required}": X: required',
            2,
        ),
        ("FROM busybox\nSTOPSIGNAL SIGFOO\n", "invalid signal: SIGFOO", 2),
        ("FROM busybox\nSTOPSIGNAL 0\n", "invalid signal: 0", 2),
        ("FROM busybox\nEXPOSE 80/xyz\n", 'invalid port: "80/xyz": invalid proto: xyz', 2),
        ("FROM busybox\nEXPOSE abc\n", "invalid containerPort: abc", 2),
        ("FROM busybox\nEXPOSE 70000\n", "invalid containerPort: 70000", 2),
        ('FROM busybox\nVOLUME ["$EMPTY"]\n', "VOLUME specified can not be an empty string", 2),
        (
            "FROM busybox\nRUN --mount=type=cache,target=/c,uid=x true\n",
            "invalid value x for uid",
            2,
        ),
        (
            "FROM busybox\nCOPY <<EOF /x\n${A:?nope}\nEOF\n",
            'failed to process "${A:?nope}\\n": A: nope',
            2,
        ),
        ("FROM busybox\nWORKDIR ${A:?unset}\n", 'failed to process "${A:?unset}": A: unset', 2),
        (
            "FROM busybox\nCOPY --chown=${U:?who} a /a\n",
            'failed to process "${U:?who}": U: who',
            2,
        ),
    ],
)
def test_dispatch_errors_carry_message_and_line(text: str, message: str, line: int) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan(text)
    assert caught.value.message == message
    assert caught.value.line == line
    assert caught.value.file == "Dockerfile"
    assert caught.value.source is not None and caught.value.source.startswith(text.split("\n")[0])


def test_invalid_platform_names_the_expression() -> None:
    with pytest.raises(DockerfileError) as caught:
        plan("FROM --platform=linux/a^b busybox\n")
    assert caught.value.message.startswith("failed to parse platform linux/a^b: ")


def test_no_stages_fails() -> None:
    with pytest.raises(DockerfileError) as caught:
        plan("ARG A=1\n")
    assert caught.value.message == "dockerfile contains no stages to build"


def test_invalid_source_date_epoch_fails() -> None:
    with pytest.raises(DockerfileError) as caught:
        plan("FROM busybox\n", build_args={"SOURCE_DATE_EPOCH": "yesterday"})
    assert caught.value.message == "invalid SOURCE_DATE_EPOCH: yesterday"


def test_errors_in_stages_not_needed_for_the_target_are_not_reported() -> None:
    result = plan("FROM busybox AS broken\nSTOPSIGNAL NOPE\nFROM busybox AS ok\n", target="ok")
    assert result.target is not None


def test_run_device_is_refused_as_labs_only() -> None:
    with pytest.raises(DockerfileError) as caught:
        plan("FROM busybox\nRUN --device=nvidia.com/gpu=all true\n")
    assert caught.value.message == (
        "device feature is only supported in Dockerfile frontend 1.14.0-labs or later"
    )
    assert caught.value.line == 2


def test_undefined_expansion_in_run_name_is_shown_as_written() -> None:
    result = plan("FROM busybox\nRUN echo ${X:?unset}\n")
    assert result.target is not None
    assert result.target.name == "[2/2] RUN echo ${X:?unset}"


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("ARG A=${B:?err}\nFROM busybox\n", 'failed to process "${B:?err}": B: err', 1),
        ("FROM --platform=$NOPE busybox\n", "empty platform value from expression $NOPE", 1),
        ("ARG E\nFROM $E\n", "base name ($E) should not be blank", 2),
    ],
)
def test_global_arg_and_from_errors_come_before_an_unknown_target(
    text: str, message: str, line: int
) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan(text, target="nope")
    assert (caught.value.message, caught.value.line) == (message, line)


def test_unknown_target_is_reported_when_the_from_lines_are_fine() -> None:
    with pytest.raises(DockerfileError) as caught:
        plan("FROM busybox AS build\n", target="biuld")
    assert caught.value.message == 'target stage "biuld" could not be found (did you mean build?)'


@pytest.mark.parametrize(
    ("word", "message"),
    [
        # BuildKit splits on ":" before it looks for brackets, so `[::1]:80` leaves `[:`
        # as the IP (convert_expose.go `splitParts`, net.SplitHostPort).
        ("[::1]:80", "invalid IP address [:: address [::: missing ']' in address"),
        ("[::1]", "invalid IP address [: address [:: missing ']' in address"),
        ("::1:80", "invalid IP address: :"),
    ],
)
def test_expose_with_an_ipv6_address_fails_as_buildkit_splits_it(word: str, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan(f"FROM busybox\nEXPOSE {word}\n")
    assert (caught.value.message, caught.value.line) == (message, 2)

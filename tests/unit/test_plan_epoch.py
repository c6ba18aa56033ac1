"""SOURCE_DATE_EPOCH may be seconds or name a stage whose single remote ADD dates the build."""

from __future__ import annotations

import pytest

from strata.errors import DockerfileError
from strata.plan.ops import GitSource, HttpSource
from strata.plan.result import BuildPlan
from tests.unit.test_plan_support import plan

SOURCE_STAGE = (
    "ARG SOURCE_DATE_EPOCH=src\n"
    "FROM scratch AS src\n"
    "ARG VERSION=1.2\n"
    "ADD https://example.com/releases/v$VERSION/app.tgz /\n"
    "FROM busybox\n"
    "ARG SOURCE_DATE_EPOCH\n"
    "ENV SEEN=$SOURCE_DATE_EPOCH\n"
)


def _env(result: BuildPlan) -> list[str]:
    return list(result.config["config"]["Env"])


def test_stage_source_is_dated_by_the_resolver_and_stages_see_the_seconds() -> None:
    asked: list[object] = []

    def resolve(source: HttpSource | GitSource) -> int | None:
        asked.append(source)
        return 1700000000

    result = plan(SOURCE_STAGE, resolve_source_epoch=resolve)
    assert asked == [
        HttpSource(url="https://example.com/releases/v1.2/app.tgz", filename="app.tgz")
    ]
    assert result.source_date_epoch == 1700000000
    assert "SEEN=1700000000" in _env(result)


def test_without_a_resolver_the_stage_is_checked_and_the_epoch_stays_unset() -> None:
    result = plan(SOURCE_STAGE)
    assert result.source_date_epoch is None
    assert "SEEN=" in _env(result)


def test_git_source_is_described_with_its_options() -> None:
    asked: list[object] = []

    def resolve(source: HttpSource | GitSource) -> int | None:
        asked.append(source)
        return None

    text = "ARG SOURCE_DATE_EPOCH=Src\nFROM scratch AS src\nADD git@host:o/r.git#v1:docs /\nFROM busybox\n"
    assert plan(text, resolve_source_epoch=resolve).source_date_epoch is None
    assert asked == [GitSource(remote="git@host:o/r.git", ref="v1", subdir="docs")]


@pytest.mark.parametrize(("value", "epoch"), [("+5", 5), ("-5", -5), ("context", None)])
def test_numbers_parse_as_go_and_context_has_no_time(value: str, epoch: int | None) -> None:
    result = plan(f"ARG SOURCE_DATE_EPOCH={value}\nFROM busybox\n")
    assert result.source_date_epoch == epoch


def test_an_empty_build_arg_overrides_the_global_arg() -> None:
    text = "ARG SOURCE_DATE_EPOCH=5\nFROM busybox\n"
    assert plan(text, build_args={"SOURCE_DATE_EPOCH": ""}).source_date_epoch is None


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("FROM scratch AS src\nrun true\n", "unsupported run instruction"),
        ("FROM busybox AS src\n", "SOURCE_DATE_EPOCH stage must use FROM scratch"),
        ("FROM scratch AS src\n", "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD"),
        (
            "FROM scratch AS src\nADD https://e.com/a /\nADD https://e.com/b /\n",
            "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD",
        ),
        (
            "FROM scratch AS src\nADD a b /\n",
            "SOURCE_DATE_EPOCH stage must contain exactly one remote ADD source",
        ),
        (
            "FROM scratch AS src\nADD local /\n",
            "SOURCE_DATE_EPOCH stage source must be a single HTTP(S) or Git ADD",
        ),
        (
            "FROM scratch AS src\nADD --checksum=md5:00 https://e.com/a /\n",
            "unsupported digest algorithm",
        ),
        ("FROM scratch AS src\nADD git@h:r?x=1 /\n", 'unexpected query "x"'),
        (
            "FROM ${B:?nob} AS src\n",
            'failed to process source stage base name "${B:?nob}": failed to process '
            '"${B:?nob}": B: nob',
        ),
    ],
)
def test_stages_that_do_not_qualify_fail_at_their_from(stage: str, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan(f"ARG SOURCE_DATE_EPOCH=src\n{stage}FROM busybox\n")
    assert caught.value.message.endswith(message)
    assert caught.value.line == 2


def test_value_that_names_nothing_is_invalid() -> None:
    with pytest.raises(DockerfileError) as caught:
        plan("ARG SOURCE_DATE_EPOCH=99999999999999999999\nFROM busybox\n")
    assert caught.value.message == "invalid SOURCE_DATE_EPOCH: 99999999999999999999"

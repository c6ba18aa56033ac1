"""Stages: grouping under FROM, names, targets, global ARGs and the stage graph."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from strata.dockerfile.instructions import CopyInstruction, RunInstruction
from strata.dockerfile.outline import build_outline
from strata.dockerfile.parser import parse
from strata.dockerfile.stages import BuildDefinition, Stage, parse_stages, predefined_args
from strata.errors import DockerfileError, UnknownTargetError


def _definition(text: str) -> BuildDefinition:
    return parse_stages(parse(text))


def _names(stages: Sequence[Stage]) -> list[str]:
    return [s.display_name for s in stages]


MULTI = """\
ARG BASE=alpine
FROM ${BASE} AS deps
RUN echo deps

FROM deps AS build
COPY --from=tools /bin/x /x

FROM alpine AS tools
RUN true

FROM alpine AS unrelated
RUN true

FROM build AS final
RUN --mount=type=cache,from=tools,target=/t true
"""


# -- grouping -----------------------------------------------------------------


def test_args_before_first_from_are_global() -> None:
    definition = _definition("ARG A=1\nARG B\nFROM scratch\nARG C\n")
    assert [a.args[0].name for a in definition.meta_args] == ["A", "B"]
    assert [type(c).__name__ for c in definition.stages[0].commands] == ["ArgInstruction"]


def test_instruction_before_from_has_no_stage() -> None:
    with pytest.raises(DockerfileError) as caught:
        _definition("ARG A\nRUN true\nFROM scratch\n")
    assert caught.value.message == "no build stage in current context"
    assert caught.value.line == 2


def test_first_bad_instruction_is_reported() -> None:
    with pytest.raises(DockerfileError) as caught:
        _definition("FROM scratch\nCOPY only\nRUN --bad true\n")
    assert caught.value.line == 2


def test_stage_fields() -> None:
    text = "# builder compiles things\nFROM --platform=$BUILDPLATFORM golang AS Builder\nRUN go\n"
    stage = _definition(text).stages[0]
    assert (stage.index, stage.name, stage.base_name) == (0, "builder", "golang")
    assert (stage.platform, stage.description) == ("$BUILDPLATFORM", "compiles things")
    assert (stage.location.start_line, stage.location.end_line) == (2, 2)
    assert isinstance(stage.commands[0], RunInstruction)


def test_unnamed_stage_is_called_by_its_index() -> None:
    definition = _definition("FROM a\nFROM b AS named\nFROM c\n")
    assert _names(definition.stages) == ["stage-0", "named", "stage-2"]


# -- targets ------------------------------------------------------------------


def test_default_target_is_the_last_stage() -> None:
    assert _definition(MULTI).resolve_target(None).name == "final"


def test_target_is_found_case_insensitively() -> None:
    assert _definition(MULTI).resolve_target("TOOLS").name == "tools"


def test_later_duplicate_name_wins_for_target() -> None:
    definition = _definition("FROM a AS x\nFROM b AS x\nFROM c\n")
    assert definition.resolve_target("x").index == 1


def test_unknown_target_suggests_a_close_name() -> None:
    with pytest.raises(UnknownTargetError) as caught:
        _definition(MULTI).resolve_target("tool")
    assert caught.value.message == 'target stage "tool" could not be found (did you mean tools?)'
    assert caught.value.stages == ("deps", "build", "tools", "unrelated", "final")


def test_unknown_target_without_close_name() -> None:
    with pytest.raises(UnknownTargetError) as caught:
        _definition(MULTI).resolve_target("production")
    assert caught.value.message == 'target stage "production" could not be found'


def test_unknown_target_is_go_quoted() -> None:
    with pytest.raises(UnknownTargetError) as caught:
        _definition(MULTI).resolve_target('a"b')
    assert caught.value.message == 'target stage "a\\"b" could not be found'


def test_later_stage_names_in_messages_are_go_quoted() -> None:
    text = 'FROM a AS first\nRUN --mount="from=Later,target=/m\t" true\nFROM b AS later\n'
    with pytest.raises(DockerfileError) as caught:
        _definition(text).stages_needed("first")
    assert caught.value.message.startswith(r'cannot mount from stage "Later" to "/m\t", ')


def test_file_with_only_args_has_no_stages_to_build() -> None:
    definition = _definition("ARG A=1\n")
    with pytest.raises(DockerfileError, match="dockerfile contains no stages to build"):
        definition.resolve_target(None)


# -- global args ----------------------------------------------------------------


def test_global_args_take_build_args_then_expanded_defaults() -> None:
    definition = _definition("ARG A=1\nARG B=${A}2\nARG C\nARG D=$C-x\nFROM scratch\n")
    resolved = definition.global_args({"A": "9"})
    assert resolved.env == {"A": "9", "B": "92", "D": "-x"}
    assert resolved.args["C"].value is None
    assert resolved.args["B"].uses == frozenset({"A"})


def test_global_arg_default_can_read_predefined_args() -> None:
    definition = _definition("ARG PLATFORM=$TARGETPLATFORM\nFROM scratch\n")
    resolved = definition.global_args({}, predefined_args(None, target_platform="linux/s390x"))
    assert resolved.env["PLATFORM"] == "linux/s390x"


def test_predefined_args_describe_platforms_and_target() -> None:
    args = predefined_args("final", build_platform="linux/amd64", target_platform="linux/arm/v7")
    assert (args["BUILDOS"], args["BUILDARCH"], args["BUILDVARIANT"]) == ("linux", "amd64", "")
    assert (args["TARGETARCH"], args["TARGETVARIANT"], args["TARGETSTAGE"]) == (
        "arm",
        "v7",
        "final",
    )


def test_predefined_args_default_target_stage_and_overrides() -> None:
    args = predefined_args(None, build_platform="linux/amd64", overrides={"TARGETOS": "freebsd"})
    assert (args["TARGETSTAGE"], args["TARGETOS"], args["TARGETPLATFORM"]) == (
        "default",
        "freebsd",
        "linux/amd64",
    )


def test_base_name_expanding_to_nothing_is_an_error() -> None:
    definition = _definition("ARG IMAGE\nFROM ${IMAGE}\n")
    with pytest.raises(DockerfileError) as caught:
        definition.stages_needed(None, env=definition.global_args().env)
    assert caught.value.message == "base name (${IMAGE}) should not be blank"
    assert caught.value.line == 2


# -- the stage graph ------------------------------------------------------------


def test_stages_needed_follows_base_copy_and_mount_edges_in_file_order() -> None:
    text = MULTI.replace("COPY --from=tools", "COPY --from=deps")
    definition = _definition(text)
    env = definition.global_args().env
    assert _names(definition.stages_needed(None, env=env)) == ["deps", "build", "tools", "final"]


def test_from_links_to_stage_through_a_global_arg() -> None:
    text = "ARG BASE=builder\nFROM alpine AS builder\nFROM alpine AS other\nFROM ${BASE}\n"
    definition = _definition(text)
    env = definition.global_args().env
    assert _names(definition.stages_needed(None, env=env)) == ["builder", "stage-2"]
    env = definition.global_args({"BASE": "other"}).env
    assert _names(definition.stages_needed(None, env=env)) == ["other", "stage-2"]


def test_from_matches_stage_names_case_sensitively_after_lowercasing() -> None:
    definition = _definition("FROM alpine AS base\nFROM Base\n")
    assert _names(definition.stages_needed(None)) == ["stage-1"]


def test_from_a_later_stage_name_is_an_image() -> None:
    definition = _definition("FROM later AS first\nFROM alpine AS later\n")
    assert _names(definition.stages_needed("first")) == ["first"]


def test_copy_from_stage_index() -> None:
    definition = _definition("FROM a\nFROM b\nCOPY --from=0 /x /x\n")
    assert _names(definition.stages_needed(None)) == ["stage-0", "stage-1"]


def test_copy_from_unknown_name_is_an_image_not_a_dependency() -> None:
    definition = _definition("FROM a AS one\nFROM b\nCOPY --from=nginx:latest /x /x\n")
    assert _names(definition.stages_needed(None)) == ["stage-1"]


def test_copy_from_matches_stage_names_case_insensitively() -> None:
    definition = _definition("FROM a AS one\nFROM b\nCOPY --from=ONE /x /x\n")
    assert _names(definition.stages_needed(None)) == ["one", "stage-1"]


def test_dependencies_name_the_instruction() -> None:
    definition = _definition(MULTI)
    final = definition.stages[-1]
    [edge] = definition.dependencies(final)
    assert edge.source.name == "tools"
    assert isinstance(edge.instruction, RunInstruction)
    assert edge.mount_target == "/t"


def test_copy_from_a_later_stage_fails_when_needed() -> None:
    definition = _definition(MULTI)
    with pytest.raises(DockerfileError) as caught:
        definition.stages_needed(None, env=definition.global_args().env)
    assert caught.value.message == (
        'cannot copy from stage "tools", it needs to be defined before current stage "build"'
    )
    assert caught.value.line == 6


def test_later_stage_reference_is_harmless_when_not_needed() -> None:
    definition = _definition(MULTI)
    assert _names(definition.stages_needed("tools")) == ["tools"]


def test_mount_from_a_later_stage_fails_when_needed() -> None:
    text = "FROM a AS first\nRUN --mount=from=Later,target=/m true\nFROM b AS later\n"
    with pytest.raises(DockerfileError) as caught:
        _definition(text).stages_needed("first")
    assert caught.value.message == (
        'cannot mount from stage "Later" to "/m", stage needs to be defined before current command'
    )
    assert caught.value.line == 2


def test_cycle_between_stages_is_detected() -> None:
    text = "FROM a AS one\nCOPY --from=two /x /x\nFROM b AS two\nCOPY --from=one /y /y\nFROM c\n"
    with pytest.raises(DockerfileError) as caught:
        _definition(text).stages_needed(None)
    assert caught.value.message == "circular dependency detected on stage: one"
    assert caught.value.line == 2


def test_stage_copying_from_itself_is_a_cycle() -> None:
    with pytest.raises(DockerfileError, match="circular dependency detected on stage: me"):
        _definition("FROM a AS me\nCOPY --from=me /x /y\n").stages_needed(None)


def test_cycle_is_found_even_outside_the_target() -> None:
    text = "FROM a AS one\nCOPY --from=two /x /x\nFROM b AS two\nCOPY --from=one /y /y\nFROM c\n"
    with pytest.raises(DockerfileError, match="circular dependency"):
        _definition(text).stages_needed("two")


def test_copy_from_index_out_of_range() -> None:
    with pytest.raises(DockerfileError, match=r"^invalid stage index 3$") as caught:
        _definition("FROM a\nCOPY --from=3 /x /y\n").stages_needed(None)
    assert caught.value.line == 2


def test_copy_from_with_variable_is_refused() -> None:
    with pytest.raises(DockerfileError) as caught:
        _definition("FROM a\nCOPY --from=${STAGE} /x /y\n").stages_needed(None)
    assert caught.value.message == (
        "variable expansion is not supported for --from, define a new stage with FROM "
        "using ARG from global scope as a workaround"
    )


def test_copy_from_variable_error_points_at_the_copy() -> None:
    with pytest.raises(DockerfileError) as caught:
        _definition("FROM scratch\nRUN true\nCOPY --from=$FOO . .\n").stages_needed(None)
    assert (caught.value.line, caught.value.end_line) == (3, 3)


def test_cycle_error_points_at_the_last_copy_naming_the_stage() -> None:
    text = "FROM busybox AS base\nCOPY --from=base /a /\nCOPY --from=base /b /\n"
    with pytest.raises(DockerfileError) as caught:
        _definition(text).stages_needed(None)
    assert caught.value.message == "circular dependency detected on stage: base"
    assert caught.value.line == 3


def test_onbuild_copy_from_of_a_base_stage_is_an_edge_of_the_stage_built_on_it() -> None:
    text = (
        "FROM busybox AS dep\nFROM busybox AS base\nONBUILD COPY --from=dep /a /\n"
        "FROM base AS child\n"
    )
    definition = _definition(text)
    assert _names(definition.stages_needed("child")) == ["dep", "base", "child"]
    assert _names(definition.stages_needed("base")) == ["base"]


def test_onbuild_edges_need_the_base_stage_found_through_the_expanded_from() -> None:
    text = (
        "ARG B=base\nFROM busybox AS dep\nFROM busybox AS base\n"
        "ONBUILD RUN --mount=from=dep,target=/d true\nFROM ${B}\n"
    )
    definition = _definition(text)
    env = definition.global_args().env
    assert _names(definition.stages_needed(None, env=env)) == ["dep", "base", "stage-2"]
    env = definition.global_args({"B": "busybox"}).env
    assert _names(definition.stages_needed(None, env=env)) == ["stage-2"]


def test_onbuild_edge_to_a_later_stage_fails_at_the_inheriting_from() -> None:
    text = (
        "FROM busybox AS base\nONBUILD COPY --from=later /a /\nFROM base AS t\n"
        "FROM busybox AS later\nFROM t\n"
    )
    with pytest.raises(DockerfileError) as caught:
        _definition(text).stages_needed(None)
    assert caught.value.message == (
        'cannot copy from stage "later", it needs to be defined before current stage "t"'
    )
    assert caught.value.line == 3


def test_onbuild_trigger_may_copy_from_the_stage_running_it() -> None:
    definition = _definition("FROM busybox AS base\nONBUILD COPY --from=t /a /\nFROM base AS t\n")
    assert _names(definition.stages_needed(None)) == ["base", "t"]


def test_onbuild_trigger_error_has_no_parse_prefix_and_points_at_the_from() -> None:
    text = "FROM busybox AS base\nONBUILD COPY --x /a /\n\nFROM base\n"
    with pytest.raises(DockerfileError) as caught:
        _definition(text).stages_needed(None)
    assert caught.value.message == "unknown flag: --x"
    assert caught.value.line == 4


def test_onbuild_triggers_are_typed_in_order_for_the_inheriting_stage() -> None:
    text = "FROM busybox AS base\nONBUILD RUN one\nONBUILD COPY a b\nFROM base\n"
    definition = _definition(text)
    bases = definition.base_stages()
    triggers = definition.onbuild_triggers(definition.stages[1], bases)
    assert [t.original for t in triggers] == ["RUN one", "COPY a b"]
    assert {t.location.start_line for t in triggers} == {4}
    assert definition.onbuild_triggers(definition.stages[0], bases) == ()


def test_outline_replays_inherited_onbuild_triggers_first() -> None:
    text = (
        "FROM busybox AS base\nONBUILD RUN --mount=type=secret,id=tok true\n"
        "ONBUILD ARG TRIG=1\nFROM base AS t\nRUN --mount=type=secret,id=own true\n"
    )
    outline = build_outline(_definition(text))
    assert [(a.name, a.value, a.location.start_line) for a in outline.args] == [("TRIG", "1", 4)]
    assert [(s.name, s.location.start_line) for s in outline.secrets] == [("tok", 4), ("own", 5)]


def test_outline_expands_arg_defaults_with_the_path_of_scratch() -> None:
    outline = build_outline(_definition("FROM scratch\nARG P=$PATH\n"))
    assert [(a.name, a.value) for a in outline.args] == [
        ("P", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    ]


def test_outline_reads_base_image_environment_through_the_caller() -> None:
    text = (
        "ARG TAG=3\nFROM --platform=linux/arm64 py:${TAG} AS base\nENV E=1\nFROM base\n"
        "ARG X=$HOME:$E:$PATH\nRUN --mount=type=secret,id=${SECRET_ID} true\n"
    )
    asked: list[tuple[str, str | None]] = []

    def image_env(name: str, platform: str | None) -> dict[str, str]:
        asked.append((name, platform))
        return {"HOME": "/root", "SECRET_ID": "tok"}

    outline = build_outline(_definition(text), image_env=image_env)
    assert asked == [("py:3", "linux/arm64")]
    default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert [(a.name, a.value) for a in outline.args if a.name == "X"] == [
        ("X", "/root:1:" + default_path)
    ]
    assert [s.name for s in outline.secrets] == ["tok"]


def test_outline_empty_platform_hints_at_a_misspelled_arg() -> None:
    text = "ARG MYPLAT=linux/amd64\nFROM --platform=${MYPLATT} busybox\n"
    with pytest.raises(DockerfileError) as caught:
        build_outline(_definition(text))
    assert caught.value.message == (
        "empty platform value from expression ${MYPLATT} (did you mean MYPLAT?)"
    )
    assert caught.value.line == 2


def test_onbuild_copy_from_is_not_an_edge_here() -> None:
    definition = _definition("FROM a AS one\nFROM b\nONBUILD COPY --from=one /x /y\n")
    assert _names(definition.stages_needed(None)) == ["stage-1"]


def test_from_platform_is_passed_through_unparsed() -> None:
    text = "FROM --platform=$BUILDPLATFORM alpine AS a\nFROM --platform=not/a/valid/one b\n"
    definition = _definition(text)
    assert [s.platform for s in definition.stages] == ["$BUILDPLATFORM", "not/a/valid/one"]
    assert _names(definition.stages_needed(None)) == ["stage-1"]


def test_copy_instruction_keeps_its_from_for_the_planner() -> None:
    definition = _definition("FROM a AS one\nFROM b\nCOPY --from=one /x /y\n")
    copy = definition.stages[1].commands[0]
    assert isinstance(copy, CopyInstruction) and copy.from_ == "one"


# -- lint ---------------------------------------------------------------------


def _rules(text: str) -> list[tuple[str, str, int]]:
    return [(w.rule, w.message, w.line) for w in _definition(text).warnings]


def test_reserved_stage_names_are_linted() -> None:
    assert _rules("FROM a AS scratch\nFROM b AS context\n") == [
        (
            "ReservedStageName",
            'Stage name should not use the same name as reserved stage "scratch"',
            1,
        ),
        (
            "ReservedStageName",
            'Stage name should not use the same name as reserved stage "context"',
            2,
        ),
    ]


def test_duplicate_stage_names_are_linted() -> None:
    assert _rules("FROM a AS x\nFROM b AS X\n") == [
        ("StageNameCasing", "Stage name 'X' should be lowercase", 2),
        ("DuplicateStageName", 'Duplicate stage name "x", stage names should be unique', 2),
    ]


def test_from_and_as_casing_must_match() -> None:
    assert _rules("FROM a as b\n") == [
        ("FromAsCasing", "'as' and 'FROM' keywords' casing do not match", 1)
    ]
    assert _rules("from a AS b\n") == [
        ("FromAsCasing", "'AS' and 'from' keywords' casing do not match", 1)
    ]
    assert _rules("From a as b\n") == []


def test_maintainer_is_linted_as_deprecated() -> None:
    assert _rules("FROM a\nMAINTAINER me\n") == [
        ("MaintainerDeprecated", "Maintainer instruction is deprecated in favor of using label", 2)
    ]


def test_frontend_package_exposes_the_whole_pipeline() -> None:
    import strata.dockerfile as frontend

    definition = frontend.parse_stages(frontend.parse("FROM a AS x\nRUN --mount=type=tmpfs true\n"))
    [run] = definition.stages[0].commands
    assert isinstance(run, frontend.RunInstruction)
    assert run.mounts(lambda w: frontend.expand(w, {})) == (frontend.TmpfsMount(),)
    assert frontend.PatternMatcher(["*.md"]).matches("README.md")


def test_copy_from_an_index_beyond_int64_is_a_name_as_in_the_build_plan() -> None:
    # strconv.Atoi fails with a range error, so BuildKit (and the plan) read the word as
    # an image name; the stage graph agrees: no edge, no "invalid stage index".
    definition = parse_stages(parse("FROM scratch\nCOPY --from=99999999999999999999 /x /y\n"))
    assert definition.dependencies(definition.stages[0]) == []

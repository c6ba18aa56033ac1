"""Stage selection, multi-stage dependencies and ONBUILD triggers."""

from __future__ import annotations

import pytest

from strata.errors import DockerfileError, StoreError
from tests.unit.test_plan_support import FakeImages, created_by, image_config, last_exec, plan

MULTI = """
FROM busybox AS base
RUN base
FROM base AS build
RUN build
FROM busybox AS unused
RUN unused
FROM scratch AS final
COPY --from=build /out /out
"""


def test_default_target_is_the_last_stage_and_only_needed_stages_convert() -> None:
    images = FakeImages()
    result = plan(MULTI, images)
    assert [s.name for s in result.stages] == ["base", "build", "final"]
    assert all("unused" not in v.name for v in result.all_vertices())


def test_target_selects_a_stage_case_insensitively() -> None:
    result = plan(MULTI, target="BUILD")
    assert [s.name for s in result.stages] == ["base", "build"]
    assert result.target is not None and result.target.name == "[build 1/1] RUN build"


def test_unknown_target_fails_with_suggestion() -> None:
    with pytest.raises(DockerfileError) as caught:
        plan(MULTI, target="biuld")
    assert caught.value.message == 'target stage "biuld" could not be found (did you mean build?)'


def test_unneeded_stage_images_are_not_resolved() -> None:
    images = FakeImages()
    plan("FROM missing-image AS other\nFROM busybox\nRUN x\n", images)
    assert [ref for ref, _ in images.calls] == ["busybox"]


def test_missing_base_image_error_comes_from_the_resolver() -> None:
    with pytest.raises(StoreError):
        plan("FROM nosuch:1\n")


def test_from_expands_global_args_and_build_args() -> None:
    images = FakeImages()
    plan("ARG TAG=1.0\nARG IMG=alpine\nFROM ${IMG}:${TAG}\n", images, build_args={"TAG": "2.0"})
    assert [ref for ref, _ in images.calls] == ["alpine:2.0"]


def test_from_names_an_earlier_stage_only_by_lowercased_name() -> None:
    result = plan("FROM busybox AS base\nRUN a\nFROM base\nRUN b\n")
    assert result.target is not None
    assert result.target.inputs[0].name == "[base 2/2] RUN a"


def test_from_platform_is_expanded_with_global_args() -> None:
    images = FakeImages()
    plan("ARG P=linux/arm64\nFROM --platform=$P busybox\n", images)
    assert str(images.calls[0][1]) == "linux/arm64"


def test_from_platform_buildplatform_is_predefined() -> None:
    images = FakeImages()
    plan("FROM --platform=$BUILDPLATFORM busybox\n", images)
    assert images.calls[0][1].os == "linux"


def test_scratch_like_base_image_has_no_source_vertex() -> None:
    images = FakeImages({"empty": image_config(layers=0)})
    result = plan("FROM empty\nRUN x\n", images)
    op = last_exec(result)
    assert op.mounts[0].input is None


def test_onbuild_triggers_of_base_image_run_first_and_are_not_inherited() -> None:
    images = FakeImages({"parent": image_config(onbuild=["ENV FROM_TRIGGER=1", "RUN trig"])})
    result = plan("FROM parent\nRUN own\n", images)
    assert created_by(result) == [
        "ENV FROM_TRIGGER=1",
        "RUN /bin/sh -c trig # buildkit",
        "RUN /bin/sh -c own # buildkit",
    ]
    assert "OnBuild" not in result.config["config"]


def test_onbuild_triggers_of_a_base_stage_run_in_the_child() -> None:
    result = plan("FROM busybox AS p\nONBUILD RUN trig\nRUN p\nFROM p\nRUN child\n")
    assert created_by(result) == [
        "RUN /bin/sh -c p # buildkit",
        "RUN /bin/sh -c trig # buildkit",
        "RUN /bin/sh -c child # buildkit",
    ]
    assert "OnBuild" not in result.config["config"]


def test_onbuild_copy_from_refers_to_downstream_stages() -> None:
    images = FakeImages({"parent": image_config(onbuild=["COPY --from=helper /h /h"])})
    result = plan("FROM busybox AS helper\nRUN make\nFROM parent\n", images)
    assert [s.name for s in result.stages] == ["helper", "stage-1"]


def test_onbuild_trigger_errors_point_at_the_from_line() -> None:
    images = FakeImages({"parent": image_config(onbuild=["FROBNICATE x"])})
    with pytest.raises(DockerfileError) as caught:
        plan("FROM busybox AS a\n\nFROM parent\n", images)
    assert caught.value.line == 3
    assert "unknown instruction: FROBNICATE" in caught.value.message


def test_circular_dependency_is_detected() -> None:
    text = "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n"
    with pytest.raises(DockerfileError) as caught:
        plan(text)
    assert caught.value.message == "circular dependency detected on stage: a"


def test_mount_from_later_stage_fails() -> None:
    text = "FROM busybox AS a\nRUN --mount=from=b,target=/b true\nFROM busybox AS b\n"
    with pytest.raises(DockerfileError) as caught:
        plan(text, target="a")
    assert caught.value.message == (
        'cannot mount from stage "b" to "/b", stage needs to be defined before current command'
    )


def test_stages_of_plan_list_vertices_and_platform() -> None:
    result = plan(MULTI)
    build = next(s for s in result.stages if s.name == "build")
    assert [v.name for v in build.vertices] == ["[build 1/1] RUN build"]
    assert build.state is not None and build.state.digest == build.vertices[-1].digest


def test_base_image_of_plan_follows_the_stage_chain() -> None:
    result = plan(MULTI, target="build")
    assert result.base_image is not None
    assert result.base_image.ref == "docker.io/library/busybox:latest"
    assert plan(MULTI).base_image is None


def test_resolver_build_errors_get_the_line_of_the_from() -> None:
    from strata.errors import BuildError
    from strata.plan.ops import Platform
    from strata.plan.result import ResolvedImage

    def missing(ref: str, platform: Platform) -> ResolvedImage:
        raise BuildError(f"{ref}: not found")

    with pytest.raises(BuildError) as caught:
        plan("FROM scratch AS a\n\nFROM nosuch:1\n", missing)
    assert (caught.value.message, caught.value.line) == ("nosuch:1: not found", 3)


def test_bad_inherited_trigger_fails_at_the_from_without_the_parse_prefix() -> None:
    # BuildKit types the trigger when the child stage starts, and reports its error at
    # that FROM as a build error, not as a parse error of the Dockerfile.
    with pytest.raises(DockerfileError) as caught:
        plan("FROM busybox AS base\nONBUILD COPY --x /a /\nFROM base\n")
    assert (caught.value.message, caught.value.line) == ("unknown flag: --x", 3)

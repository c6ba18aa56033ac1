"""Which steps an edit re-runs: the op identities BuildKit's cache keys start from.

A step's own definition (its op, without inputs) is what an edit can change; a changed
step then changes every later vertex through its inputs, and content-based checksums in
the solver decide the rest. These tests edit one thing and check, step by step, whose own
op changed, as BuildKit's LLB would (§4.6 of buildkit-semantics.md; convert.go: ENV,
ARG, USER, WORKDIR and SHELL become exec metadata, the other metadata only config).
"""

from __future__ import annotations

from typing import Any

from strata.plan.ops import ExecOp, op_json
from strata.plan.result import BuildPlan
from tests.unit.test_plan_support import FakeImages, image_config, last_exec, plan


def step_ops(result: BuildPlan) -> list[tuple[str, str]]:
    """(step name without prefix, op identity) of the target stage, in build order."""
    stage = result.stages[-1]
    out: list[tuple[str, str]] = []
    for vertex in stage.vertices:
        name = vertex.name.split("] ", 1)[-1]
        out.append((name, repr(op_json(vertex.op))))
    return out


def changed_steps(
    before: str, after: str, *, after_options: dict[str, Any] | None = None
) -> list[str]:
    """Names (from `before`) of the steps whose own op differs after the edit; the
    second plan gets `after_options` (build args, ...)."""
    one = step_ops(plan(before))
    two = step_ops(plan(after, **(after_options or {})))
    assert len(one) == len(two), (one, two)
    return [name for (name, a), (_, b) in zip(one, two, strict=True) if a != b]


def target_digest(text: str, **options: Any) -> str:
    result = plan(text, **options)
    assert result.target is not None
    return result.target.digest


STAGE = """\
FROM busybox
RUN first
{edit}
COPY app /app
WORKDIR /work
RUN second
RUN ["exec", "form"]
"""


def test_config_only_instructions_change_no_step() -> None:
    plain = STAGE.format(edit="")
    for edit in (
        "LABEL a=b",
        "EXPOSE 80/udp",
        "VOLUME /data",
        "STOPSIGNAL SIGINT",
        "HEALTHCHECK CMD true",
        'CMD ["x"]',
        'ENTRYPOINT ["/nosuchcmd"]',
        "MAINTAINER me",
        "ONBUILD RUN later",
    ):
        edited = STAGE.format(edit=edit)
        assert target_digest(edited) == target_digest(plain), edit
        assert plan(edited).config != plan(plain).config, edit


def test_entrypoint_is_not_applied_to_run() -> None:
    # dockerfile_test.go testIgnoreEntrypoint
    assert last_exec(plan('FROM busybox\nENTRYPOINT ["/nosuchcmd"]\nRUN ["ls"]\n')).args == ("ls",)


def test_env_edit_changes_every_later_run_but_not_copy_or_workdir() -> None:
    assert changed_steps(STAGE.format(edit="ENV A=1"), STAGE.format(edit="ENV A=2")) == [
        "RUN second",
        'RUN ["exec", "form"]',
    ]


def test_env_order_within_one_instruction_is_part_of_later_runs() -> None:
    assert changed_steps(STAGE.format(edit="ENV A=1 B=2"), STAGE.format(edit="ENV B=2 A=1")) == [
        "RUN second",
        'RUN ["exec", "form"]',
    ]


def test_spacing_of_metadata_lines_and_comments_change_nothing() -> None:
    tidy = STAGE.format(edit="ENV A=1")
    messy = STAGE.format(edit="# why\nenv   A=1\n\n")
    assert target_digest(tidy) == target_digest(messy)


def test_user_edit_changes_workdir_creation_and_runs_but_not_copy() -> None:
    assert changed_steps(STAGE.format(edit="USER app"), STAGE.format(edit="USER nobody")) == [
        "WORKDIR /work",
        "RUN second",
        'RUN ["exec", "form"]',
    ]


def test_shell_edit_changes_only_later_shell_form_runs() -> None:
    assert changed_steps(
        STAGE.format(edit='SHELL ["/bin/sh", "-c"]'),
        STAGE.format(edit='SHELL ["/bin/sh", "-ec"]'),
    ) == ["RUN second"]


def test_workdir_edit_changes_relative_copies_and_runs() -> None:
    text = "FROM busybox\nWORKDIR {wd}\nCOPY a rel/\nCOPY b /abs/\nRUN pwd\n"
    assert changed_steps(text.format(wd="/one"), text.format(wd="/two")) == [
        "WORKDIR /one",
        "COPY a rel/",
        "RUN pwd",
    ]


def test_build_arg_of_a_declared_arg_changes_runs_after_the_arg_only() -> None:
    text = "FROM busybox\nRUN before\nARG V=1\nCOPY app /app\nRUN unrelated\n"
    assert changed_steps(text, text, after_options={"build_args": {"V": "2"}}) == ["RUN unrelated"]


def test_build_arg_for_a_valueless_arg_changes_later_runs() -> None:
    text = "FROM busybox\nARG V\nRUN x\n"
    assert changed_steps(text, text, after_options={"build_args": {"V": ""}}) == ["RUN x"]


def test_global_arg_changes_only_stages_that_redeclare_or_use_it_in_from() -> None:
    text = (
        "ARG V=1\nARG TAG=1\nFROM busybox AS plain\nRUN p\nFROM busybox AS declares\nARG V\n"
        "RUN d\nFROM scratch\nCOPY --from=plain /p /p\nCOPY --from=declares /d /d\n"
    )
    one = plan(text)
    two = plan(text, build_args={"V": "2"})
    by_stage_one = {s.name: s.state for s in one.stages}
    by_stage_two = {s.name: s.state for s in two.stages}
    assert by_stage_one["plain"] == by_stage_two["plain"]
    assert by_stage_one["declares"] != by_stage_two["declares"]


def test_undeclared_and_proxy_build_args_change_no_step() -> None:
    text = STAGE.format(edit="ARG USED=1")
    for extra in ({"UNUSED": "1"}, {"HTTP_PROXY": "http://p:3128"}, {"TARGETARCH": "arm64"}):
        assert target_digest(text, build_args=extra) == target_digest(text), extra


def test_predefined_arg_changes_runs_once_redeclared() -> None:
    text = "FROM busybox\nRUN a\nARG TARGETARCH\nRUN b\n"
    assert changed_steps(text, text, after_options={"build_args": {"TARGETARCH": "s390x"}}) == [
        "RUN b"
    ]


def test_env_of_a_base_stage_reaches_runs_of_its_children_only() -> None:
    text = (
        "FROM busybox AS base\nENV V={v}\nFROM base AS child\nRUN c\n"
        "FROM busybox AS sibling\nRUN s\nFROM scratch\nCOPY --from=child /c /c\n"
        "COPY --from=sibling /s /s\n"
    )
    one, two = plan(text.format(v=1)), plan(text.format(v=2))
    states_one = {s.name: s.state for s in one.stages}
    states_two = {s.name: s.state for s in two.stages}
    assert states_one["child"] != states_two["child"]
    assert states_one["sibling"] == states_two["sibling"]


def test_base_image_env_is_part_of_every_run() -> None:
    text = "FROM b\nRUN x\n"
    one = plan(text, FakeImages({"b": image_config(env=["PATH=/bin", "A=1"])}))
    two = plan(text, FakeImages({"b": image_config(env=["PATH=/bin", "A=2"])}))
    assert isinstance(one.target.op if one.target else None, ExecOp)
    assert one.target is not None and two.target is not None
    assert one.target.op != two.target.op


def test_onbuild_trigger_edit_in_a_parent_stage_changes_the_child_only() -> None:
    text = "FROM busybox AS p\nONBUILD RUN {t}\nRUN p\nFROM p\nRUN c\n"
    one, two = plan(text.format(t="one")), plan(text.format(t="two"))
    assert one.stages[0].state == two.stages[0].state
    assert one.target is not None and two.target is not None
    assert one.target.digest != two.target.digest

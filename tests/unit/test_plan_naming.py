"""Vertex names and `[stage i/n]` step prefixes, as BuildKit prints them."""

from __future__ import annotations

from tests.unit.test_plan_support import DIGEST, FakeImages, image_config, names, plan

FROM_BUSYBOX = f"FROM docker.io/library/busybox:latest@{DIGEST}"


def test_single_stage_has_no_stage_name_in_prefix() -> None:
    result = plan("FROM busybox\nCOPY app.sh /app/\nRUN /app/app.sh\n")
    assert names(result) == [
        f"[1/3] {FROM_BUSYBOX}",
        "[2/3] COPY app.sh /app/",
        "[3/3] RUN /app/app.sh",
    ]


def test_named_stages_use_their_lowercased_names() -> None:
    result = plan("FROM busybox AS Base\nRUN a\nFROM base\nRUN b\n")
    assert names(result) == [
        f"[base 1/2] {FROM_BUSYBOX}",
        "[base 2/2] RUN a",
        "[stage-1 1/1] RUN b",
    ]


def test_any_run_mount_makes_a_single_stage_show_stage_0() -> None:
    result = plan("FROM busybox\nRUN --mount=type=tmpfs,target=/t true\n")
    assert names(result) == [
        f"[stage-0 1/2] {FROM_BUSYBOX}",
        "[stage-0 2/2] RUN --mount=type=tmpfs,target=/t true",
    ]


def test_copy_from_image_makes_a_single_stage_show_stage_0_and_image_has_no_prefix() -> None:
    result = plan("FROM scratch\nCOPY --from=busybox /bin/sh /sh\n")
    assert names(result) == [FROM_BUSYBOX, "[stage-0 1/1] COPY --from=busybox /bin/sh /sh"]


def test_index_is_right_aligned_to_the_width_of_total() -> None:
    body = "".join(f"RUN step{i}\n" for i in range(11))
    result = plan("FROM busybox\n" + body)
    got = names(result)
    assert got[0] == f"[ 1/12] {FROM_BUSYBOX}"
    assert got[1] == "[ 2/12] RUN step0"
    assert got[-1] == "[12/12] RUN step10"


def test_workdir_root_counts_in_total_but_is_never_shown() -> None:
    result = plan("FROM busybox\nWORKDIR /\nRUN a\n")
    assert names(result) == [f"[1/3] {FROM_BUSYBOX}", "[2/3] RUN a"]


def test_scratch_stage_counts_no_from_step() -> None:
    result = plan("FROM scratch\nCOPY a /a\nWORKDIR /w\n")
    assert names(result) == ["[1/2] COPY a /a", "[2/2] WORKDIR /w"]


def test_first_word_is_uppercased_and_flags_are_kept() -> None:
    result = plan("from busybox\nrun  --network=none echo hi\n")
    assert names(result)[-1] == "[2/2] RUN  --network=none echo hi"


def test_run_name_keeps_quotes_and_leaves_unset_variables_literal() -> None:
    result = plan('FROM busybox\nARG SET=value\nRUN echo "$SET" $UNSET ${OTHER:-x}\n')
    assert names(result)[-1] == '[2/2] RUN echo "value" $UNSET ${OTHER:-x}'


def test_run_name_masks_env_secrets() -> None:
    result = plan(
        "FROM busybox\nENV TOKEN=plain\nRUN --mount=type=secret,id=tok,env=TOKEN echo $TOKEN\n"
    )
    assert names(result)[-1] == ("[stage-0 2/2] RUN --mount=type=secret,id=tok,env=TOKEN echo ****")


def test_copy_and_workdir_names_are_fully_expanded() -> None:
    result = plan("FROM busybox\nARG D=/dst\nCOPY 'a'$D $D/$UNSET\nWORKDIR ${D}/w\n")
    assert names(result)[-2:] == ["[2/3] COPY a/dst /dst/", "[3/3] WORKDIR /dst/w"]


def test_run_single_heredoc_shows_first_line_and_ellipsis() -> None:
    result = plan(
        "FROM busybox\nRUN <<EOF\n  apt-get update\n  apt-get install\nEOF\nRUN <<X\none\nX\n"
    )
    assert names(result)[-2:] == [
        "[2/3] RUN <<EOF (apt-get update...)",
        "[3/3] RUN <<X (one)",
    ]


def test_run_with_heredoc_argument_shows_no_body() -> None:
    result = plan("FROM busybox\nRUN python3 <<EOF\nprint(1)\nEOF\n")
    assert names(result)[-1] == "[2/2] RUN python3 <<EOF"


def test_copy_link_names_copy_and_merge_with_the_same_step() -> None:
    result = plan("FROM busybox\nCOPY --link a /a\n")
    assert names(result)[-2:] == ["[2/2] COPY --link a /a", "[2/2] LINK COPY --link a /a"]


def test_onbuild_triggers_are_numbered_and_marked() -> None:
    images = FakeImages({"parent": image_config(onbuild=["RUN echo from-parent", "ENV X=1"])})
    result = plan("FROM parent\nRUN own\n", images)
    assert names(result) == [
        f"[1/2] FROM docker.io/library/parent:latest@{DIGEST}",
        "[2/4] ONBUILD RUN echo from-parent",
        "[3/4] RUN own",
    ]


def test_heredoc_inline_document_has_internal_name() -> None:
    result = plan("FROM busybox\nRUN <<EOF\n#!/bin/sh\necho hi\nEOF\n")
    all_names = [v.name for v in result.all_vertices()]
    assert "[internal] preparing inline document" in all_names


def test_context_vertex_is_named_load_build_context() -> None:
    result = plan("FROM scratch\nCOPY a /a\n")
    assert "[internal] load build context" in [v.name for v in result.all_vertices()]

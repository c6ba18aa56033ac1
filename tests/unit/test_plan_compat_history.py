"""History `created_by` strings and step names, exactly as BuildKit writes and prints them.

Expected texts come from dockerfile2llb (commitToHistory, runCommandString,
prefixCommand, processCmdEnv, summarizeHeredoc, convert_copy.go) and the history tests
of moby/buildkit (dockerfile_test.go testExportedHistory, testExportedHistoryFlattenArgs).
"""

from __future__ import annotations

from strata.plan.result import BuildPlan
from tests.unit.test_plan_support import DIGEST, FakeImages, image_config, names, plan

FROM_BUSYBOX = f"FROM docker.io/library/busybox:latest@{DIGEST}"


def entries(result: BuildPlan) -> list[tuple[str, bool]]:
    """(created_by, empty_layer) of the entries this build added."""
    return [(h.created_by, h.empty_layer) for h in result.history if h.comment]


def steps(result: BuildPlan) -> list[str]:
    """Step names without the FROM line."""
    return [n for n in names(result) if "FROM docker.io" not in n]


# -- history -------------------------------------------------------------------------------


def test_history_of_a_mixed_stage_with_layer_flags() -> None:
    # dockerfile_test.go testExportedHistory, as a single stage
    result = plan(
        """
        FROM busybox AS base
        ENV foo=bar
        COPY foo /foo2
        FROM busybox
        LABEL lbl=val
        COPY --from=base foo2 foo3
        WORKDIR /
        RUN echo bar > foo4
        RUN ["ls"]
        EXPOSE 2375 5000 1234/udp
        """
    )
    assert entries(result) == [
        ("LABEL lbl=val", True),
        ("COPY foo2 foo3 # buildkit", False),
        ("WORKDIR /", True),
        ("RUN /bin/sh -c echo bar > foo4 # buildkit", False),
        ("RUN ls # buildkit", False),
        ("EXPOSE [1234/udp 2375/tcp 5000/tcp]", True),
    ]
    assert [h.created_by for h in result.history[:1]] == ["base layer 0"]


def test_run_history_lists_each_declared_arg_once_with_its_latest_value() -> None:
    # dockerfile_test.go testExportedHistoryFlattenArgs
    result = plan("FROM busybox\nARG foo=bar\nARG bar=123\nARG foo=bar2\nRUN ls /etc/\n")
    assert entries(result) == [
        ("ARG foo=bar", True),
        ("ARG bar=123", True),
        ("ARG foo=bar2", True),
        ("RUN |2 foo=bar2 bar=123 /bin/sh -c ls /etc/ # buildkit", False),
    ]


def test_exec_form_run_history_has_no_shell_but_keeps_the_arg_prefix() -> None:
    result = plan('FROM busybox\nARG A=1\nRUN ["echo", "$A", "two words"]\n')
    assert entries(result)[-1] == ("RUN |1 A=1 echo $A two words # buildkit", False)


def test_run_flags_are_not_part_of_the_history() -> None:
    result = plan(
        "FROM busybox\nRUN --network=none --mount=type=cache,target=/c --security=sandbox make\n"
    )
    assert entries(result) == [("RUN /bin/sh -c make # buildkit", False)]


def test_heredoc_runs_record_the_script_they_execute() -> None:
    result = plan(
        "FROM busybox\nRUN <<EOF\necho hi\nEOF\nRUN <<-EOF\n\techo tab\n\tEOF\n"
        "RUN <<EOF\n#!/bin/sh\necho shebang\nEOF\nRUN python3 <<PY\nprint(1)\nPY\n"
    )
    assert entries(result) == [
        ("RUN /bin/sh -c echo hi\n # buildkit", False),
        ("RUN /bin/sh -c echo tab\n # buildkit", False),
        ("RUN /bin/sh -c /dev/pipes/EOF # buildkit", False),
        ("RUN /bin/sh -c python3 <<PY\nprint(1)\nPY # buildkit", False),
    ]


def test_copy_and_add_history_expand_flags_and_sources_but_drop_from_link_exclude() -> None:
    result = plan(
        "FROM busybox\nARG U=1000\n"
        "COPY --chown=$U:$U --chmod=0755 --link --exclude=*.tmp a $U /dst/\n"
        "ADD --chown=1 --checksum=sha256:" + "a" * 64 + " http://example.com/f /f\n"
        "ADD --keep-git-dir=true https://github.com/a/b.git /src\n"
        'COPY <<EOF <<"B" /docs/\nhi $U\nEOF\nb\nB\n'
    )
    assert entries(result)[1:] == [
        ("COPY --chown=1000:1000 --chmod=0755 a 1000 /dst/ # buildkit", False),
        ("ADD --chown=1 http://example.com/f /f # buildkit", False),
        ("ADD https://github.com/a/b.git /src # buildkit", False),
        ("COPY <<EOF <<B /docs/ # buildkit", False),
    ]


def test_metadata_history_texts_use_go_formatting() -> None:
    result = plan(
        """
        FROM scratch
        MAINTAINER someone
        USER app:app
        SHELL ["/bin/sh", "-ec"]
        VOLUME /v1 /v2
        STOPSIGNAL SIGINT
        HEALTHCHECK --interval=30s CMD ["true"]
        ENTRYPOINT ["tini", "--"]
        CMD exec "$@"
        ONBUILD RUN never-in-history
        """
    )
    assert entries(result) == [
        ("MAINTAINER someone", True),
        ("USER app:app", True),
        ("SHELL [/bin/sh -ec]", True),
        ("VOLUME [/v1 /v2]", True),
        ("STOPSIGNAL SIGINT", True),
        (
            "HEALTHCHECK {Test:[CMD true] Interval:30s Timeout:0s StartPeriod:0s "
            "StartInterval:0s Retries:0}",
            True,
        ),
        ('ENTRYPOINT ["tini" "--"]', True),
        ('CMD ["/bin/sh" "-ec" "exec \\"$@\\""]', True),
    ]


def test_workdir_history_has_no_buildkit_suffix_even_with_a_layer() -> None:
    result = plan("FROM busybox\nWORKDIR /app\nWORKDIR /\nWORKDIR sub\n")
    assert entries(result) == [
        ("WORKDIR /app", False),
        ("WORKDIR /", True),
        ("WORKDIR /sub", False),
    ]


def test_base_history_is_kept_as_it_was() -> None:
    config = image_config(layers=2)
    config["history"] = [
        {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD x", "author": "a"},
        {"created": "2024-01-02T00:00:00Z", "created_by": "", "empty_layer": True, "comment": "c"},
        {"created": "2024-01-03T00:00:00Z", "created_by": "RUN y"},
    ]
    result = plan("FROM b\nENV A=1\n", FakeImages({"b": config}))
    kept = [(h.created_by, h.empty_layer, h.comment, h.created, h.author) for h in result.history]
    assert kept == [
        ("/bin/sh -c #(nop) ADD x", False, "", "2024-01-01T00:00:00Z", "a"),
        ("", True, "c", "2024-01-02T00:00:00Z", ""),
        ("RUN y", False, "", "2024-01-03T00:00:00Z", ""),
        ("ENV A=1", True, "buildkit.dockerfile.v0", None, ""),
    ]


def test_onbuild_triggers_write_history_in_the_child_image() -> None:
    images = FakeImages({"p": image_config(onbuild=["ARG V=1", "RUN echo $V", "COPY a /a"])})
    result = plan("FROM p\nRUN own\n", images)
    assert entries(result) == [
        ("ARG V=1", True),
        ("RUN |1 V=1 /bin/sh -c echo $V # buildkit", False),
        ("COPY a /a # buildkit", False),
        ("RUN |1 V=1 /bin/sh -c own # buildkit", False),
    ]


# -- step names ----------------------------------------------------------------------------


def test_unnamed_stages_are_numbered_among_from_stages_only() -> None:
    result = plan(
        "FROM busybox\nRUN --mount=type=tmpfs,target=/t a\nFROM busybox\nCOPY --from=0 /a /a\n"
    )
    # the hidden scratch state of the mount is no stage: the second FROM is stage-1
    assert [v.name for stage in result.stages for v in stage.vertices] == [
        f"[stage-0 1/2] {FROM_BUSYBOX}",
        "[stage-0 2/2] RUN --mount=type=tmpfs,target=/t a",
        f"[stage-1 1/2] {FROM_BUSYBOX}",
        "[stage-1 2/2] COPY --from=0 /a /a",
    ]


def test_single_stage_without_mounts_or_image_copies_has_no_stage_name() -> None:
    result = plan("FROM busybox\nWORKDIR /app\nCOPY . .\nRUN make\n")
    assert steps(result) == ["[2/4] WORKDIR /app", "[3/4] COPY . .", "[4/4] RUN make"]


def test_a_cache_mount_alone_makes_the_single_stage_show_its_name() -> None:
    result = plan("FROM busybox\nRUN --mount=type=cache,target=/root/.cache pip install x\n")
    assert steps(result) == [
        "[stage-0 2/2] RUN --mount=type=cache,target=/root/.cache pip install x"
    ]


def test_run_name_expands_build_env_keeps_quotes_and_unset_variables() -> None:
    result = plan(
        "FROM busybox\nENV HOME=/root\nARG V=1.2\n"
        "RUN echo \"$HOME\" '$V' ${V%.*} $UNDECLARED ${NOPE:-dflt} \\$V\n",
        build_args={"UNDECLARED": "x"},
    )
    # quotes stay, single quotes still protect their content
    assert steps(result) == ["[2/2] RUN echo \"/root\" '$V' 1 $UNDECLARED ${NOPE:-dflt} $V"]


def test_exec_form_run_name_keeps_its_json_text_with_variables_expanded() -> None:
    result = plan('FROM busybox\nRUN ["echo", "$HOME", "$PATH"]\n')
    assert steps(result) == ['[2/2] RUN ["echo", "$HOME", "/usr/bin:/bin"]']


def test_run_name_uses_the_escape_directive_and_drops_escape_characters() -> None:
    result = plan("# escape=`\nFROM busybox\nENV A=x\nRUN echo `$A $A\n")
    assert steps(result) == ["[2/2] RUN echo $A x"]


def test_run_name_joins_continuation_lines_keeping_their_indentation() -> None:
    result = plan("FROM busybox\nrun echo a \\\n    && echo b\n")
    assert steps(result) == ["[2/2] RUN echo a     && echo b"]


def test_run_name_masks_secret_env_even_when_the_variable_is_unset_otherwise() -> None:
    result = plan(
        'FROM busybox\nRUN --mount=type=secret,id=api,env=API_KEY curl -H "$API_KEY" $OTHER\n'
    )
    assert steps(result) == [
        '[stage-0 2/2] RUN --mount=type=secret,id=api,env=API_KEY curl -H "****" $OTHER'
    ]


def test_heredoc_run_name_shows_the_expanded_first_line() -> None:
    result = plan(
        "FROM busybox\nENV NAME=world\nRUN <<EOF\n\n  echo $NAME\nmore\nEOF\n"
        "RUN <<-EOF\n\tsingle\n\tEOF\nRUN <<EOF\n#!/bin/sh\necho\nEOF\n"
    )
    assert steps(result) == [
        "[2/4] RUN <<EOF (echo world...)",
        "[3/4] RUN <<-EOF (single)",
        "[4/4] RUN <<EOF (#!/bin/sh...)",
    ]


def test_copy_add_workdir_names_are_expanded_fully_with_flags() -> None:
    result = plan(
        "FROM busybox\nARG D=/dst\nCOPY --chown=$D 'a'\"$D\" $D/\nadd --link ${D}.tar $UNSET/x\n"
        'WORKDIR "$D"/w\n'
    )
    assert steps(result) == [
        "[2/4] COPY --chown=/dst a/dst /dst/",
        "[3/4] ADD --link /dst.tar /x",
        "[3/4] LINK ADD --link /dst.tar /x",
        "[4/4] WORKDIR /dst/w",
    ]


def test_step_total_counts_workdir_root_and_a_phantom_from_for_an_empty_base() -> None:
    images = FakeImages({"empty": image_config(layers=0)})
    result = plan("FROM empty\nWORKDIR /\nRUN x\n", images)
    assert names(result) == ["[1/3] RUN x"]


def test_image_trigger_steps_are_numbered_after_the_from_step() -> None:
    images = FakeImages(
        {
            "onb": image_config(
                onbuild=["COPY a /a", "ENV X=1", "WORKDIR /", "WORKDIR /w", "RUN echo $X"]
            )
        }
    )
    result = plan("FROM onb\nRUN own\n", images)
    assert names(result) == [
        f"[1/2] FROM docker.io/library/onb:latest@{DIGEST}",
        "[2/7] ONBUILD COPY a /a",
        "[3/7] ONBUILD WORKDIR /w",
        "[4/7] ONBUILD RUN echo 1",
        "[5/7] RUN own",
    ]


def test_image_trigger_mounts_and_copies_do_not_add_a_stage_name() -> None:
    # the single-stage check runs before triggers are read (convert.go
    # buildStageDependencyGraph), so their hidden states come too late to show stage-0
    images = FakeImages(
        {
            "onb": image_config(
                onbuild=[
                    "RUN --mount=type=cache,target=/cache echo 42 >> /cache/foo",
                    "COPY --from=alpine /etc/alpine-release /out/r",
                ]
            )
        }
    )
    result = plan("FROM onb\nRUN own\n", images)
    assert f"FROM docker.io/library/alpine:latest@{DIGEST}" in names(result)
    assert steps(result) == [
        "[2/4] ONBUILD RUN --mount=type=cache,target=/cache echo 42 >> /cache/foo",
        "[3/4] ONBUILD COPY --from=alpine /etc/alpine-release /out/r",
        "[4/4] RUN own",
    ]


def test_stage_trigger_steps_carry_the_child_stage_name() -> None:
    result = plan("FROM busybox AS Parent\nONBUILD RUN trig\nRUN p\nFROM parent\nRUN child\n")
    assert names(result) == [
        f"[parent 1/2] {FROM_BUSYBOX}",
        "[parent 2/2] RUN p",
        "[stage-1 1/2] ONBUILD RUN trig",
        "[stage-1 2/2] RUN child",
    ]


def test_only_steps_of_needed_stages_are_named() -> None:
    result = plan(
        "FROM busybox AS unused\nRUN never\nFROM busybox AS dep\nRUN dep\n"
        "FROM scratch\nCOPY --from=dep /x /x\n"
    )
    assert names(result) == [
        f"[dep 1/2] {FROM_BUSYBOX}",
        "[dep 2/2] RUN dep",
        "[stage-2 1/1] COPY --from=dep /x /x",
    ]

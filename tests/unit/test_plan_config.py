"""The image config and history the planner produces, instruction by instruction."""

from __future__ import annotations

from strata.plan.ops import Platform
from tests.unit.test_plan_support import FakeImages, created_by, image_config, plan


def test_scratch_config_has_default_path_and_root_workdir() -> None:
    result = plan("FROM scratch\nCOPY a /a\n", platform=Platform("linux", "arm64"))
    assert result.config["architecture"] == "arm64"
    assert result.config["os"] == "linux"
    assert result.config["config"]["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ]
    assert result.config["config"]["WorkingDir"] == "/"
    assert result.base_image is None


def test_base_config_is_copied_without_created_rootfs_and_history() -> None:
    images = FakeImages({"base:1": image_config(cmd=["/bin/sh"], user="app")})
    result = plan("FROM base:1\n", images)
    assert "created" not in result.config
    assert "rootfs" not in result.config
    assert "history" not in result.config
    assert result.config["config"]["Cmd"] == ["/bin/sh"]
    assert result.config["config"]["User"] == "app"
    assert result.base_image is not None
    assert result.base_image.ref == "docker.io/library/base:1"


def test_base_without_path_gets_default_path_appended() -> None:
    images = FakeImages({"nopath": image_config(env=["A=1"])})
    result = plan("FROM nopath\n", images)
    assert result.config["config"]["Env"] == [
        "A=1",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]


def test_env_replaces_in_place_and_appends_new_keys() -> None:
    images = FakeImages({"b": image_config(env=["PATH=/bin", "A=0", "Z=z"])})
    result = plan("FROM b\nENV A=1 NEW=2\n", images)
    assert result.config["config"]["Env"] == ["PATH=/bin", "A=1", "Z=z", "NEW=2"]
    assert created_by(result) == ["ENV A=1 NEW=2"]


def test_env_words_see_the_environment_before_the_instruction() -> None:
    result = plan("FROM scratch\nENV a=1\nENV a=2 b=$a\n")
    env = result.config["config"]["Env"]
    assert "a=2" in env
    assert "b=1" in env


def test_legacy_env_form_keeps_the_rest_of_the_line() -> None:
    result = plan("FROM scratch\nENV GREETING hello world\n")
    assert "GREETING=hello world" in result.config["config"]["Env"]


def test_arg_never_enters_config_env_but_is_in_history() -> None:
    result = plan("FROM scratch\nARG A=1\nARG B\n", build_args={"B": "two"})
    assert not any(e.startswith(("A=", "B=")) for e in result.config["config"]["Env"])
    assert created_by(result) == ["ARG A=1", "ARG B=two"]


def test_arg_without_value_is_listed_bare_in_history() -> None:
    result = plan("FROM scratch\nARG NOTSET\n")
    assert created_by(result) == ["ARG NOTSET"]


def test_labels_merge_with_later_values_winning_and_cli_labels_last() -> None:
    images = FakeImages({"b": image_config(extra={"Labels": {"from": "base", "x": "0"}})})
    result = plan(
        'FROM b\nLABEL x=1 y="two words"\nLABEL x=3\n',
        images,
        labels={"y": "cli", "z": "9"},
    )
    assert result.config["config"]["Labels"] == {"from": "base", "x": "3", "y": "cli", "z": "9"}
    assert created_by(result) == ["LABEL x=1 y=two words", "LABEL x=3"]


def test_expose_sorts_expands_ranges_and_lowercases_protocols() -> None:
    result = plan("FROM scratch\nARG P=90\nEXPOSE 8000-8002 $P/UDP 443/tcp\n")
    assert result.config["config"]["ExposedPorts"] == {
        "443/tcp": {},
        "8000/tcp": {},
        "8001/tcp": {},
        "8002/tcp": {},
        "90/udp": {},
    }
    # raw words sorted as strings first: "$P/UDP" < "443/tcp" < "8000-8002"
    assert created_by(result)[-1] == "EXPOSE [90/udp 443/tcp 8000/tcp 8001/tcp 8002/tcp]"


def test_expose_keeps_only_the_container_part_of_ip_and_host_forms() -> None:
    result = plan("FROM scratch\nEXPOSE 127.0.0.1:8080:80\n")
    assert result.config["config"]["ExposedPorts"] == {"80/tcp": {}}


def test_volume_adds_expanded_paths() -> None:
    result = plan('FROM scratch\nENV D=/data\nVOLUME $D /logs\nVOLUME ["/b", "/a"]\n')
    assert result.config["config"]["Volumes"] == {"/a": {}, "/b": {}, "/data": {}, "/logs": {}}
    assert created_by(result)[-1] == "VOLUME [/b /a]"


def test_stopsignal_is_stored_as_written() -> None:
    result = plan("FROM scratch\nSTOPSIGNAL SIGKILL\nSTOPSIGNAL 9\n")
    assert result.config["config"]["StopSignal"] == "9"
    assert created_by(result) == ["STOPSIGNAL SIGKILL", "STOPSIGNAL 9"]


def test_user_is_expanded_into_config_and_history() -> None:
    result = plan("FROM scratch\nARG U=app\nUSER ${U}:staff\n")
    assert result.config["config"]["User"] == "app:staff"
    assert created_by(result)[-1] == "USER app:staff"


def test_workdir_relative_joins_previous_and_is_absolute_in_config() -> None:
    result = plan("FROM scratch\nWORKDIR /a\nWORKDIR b/../c\n")
    assert result.config["config"]["WorkingDir"] == "/a/c"
    assert created_by(result) == ["WORKDIR /a", "WORKDIR /a/c"]


def test_workdir_with_unset_variable_drops_it_and_keeps_absolute_path_as_written() -> None:
    # util/system/path.go NormalizePath leaves an absolute path uncleaned.
    result = plan("FROM scratch\nENV A=/a\nWORKDIR $A/$UNSET\n")
    assert result.config["config"]["WorkingDir"] == "/a/"


def test_workdir_root_is_config_only_without_layer() -> None:
    result = plan("FROM busybox\nWORKDIR /\n")
    assert result.history[-1].created_by == "WORKDIR /"
    assert result.history[-1].empty_layer is True


def test_cmd_shell_form_uses_shell_and_sets_args_escaped() -> None:
    result = plan('FROM scratch\nSHELL ["/bin/bash", "-c"]\nCMD echo "hi there"\n')
    assert result.config["config"]["Cmd"] == ["/bin/bash", "-c", 'echo "hi there"']
    assert result.config["config"]["ArgsEscaped"] is True
    assert result.config["config"]["Shell"] == ["/bin/bash", "-c"]
    assert created_by(result) == [
        "SHELL [/bin/bash -c]",
        'CMD ["/bin/bash" "-c" "echo \\"hi there\\""]',
    ]


def test_entrypoint_clears_inherited_cmd_but_not_one_set_in_the_stage() -> None:
    images = FakeImages({"b": image_config(cmd=["inherited"])})
    cleared = plan('FROM b\nENTRYPOINT ["/app"]\n', images)
    assert "Cmd" not in cleared.config["config"]
    assert cleared.config["config"]["Entrypoint"] == ["/app"]
    kept = plan('FROM b\nCMD ["own"]\nENTRYPOINT ["/app"]\n', images)
    assert kept.config["config"]["Cmd"] == ["own"]


def test_entrypoint_in_child_stage_clears_cmd_of_parent_stage() -> None:
    result = plan('FROM scratch AS a\nCMD ["x"]\nFROM a\nENTRYPOINT ["/e"]\n')
    assert "Cmd" not in result.config["config"]


def test_empty_exec_entrypoint_removes_it() -> None:
    images = FakeImages({"b": image_config(extra={"Entrypoint": ["/old"]})})
    result = plan("FROM b\nENTRYPOINT []\n", images)
    assert "Entrypoint" not in result.config["config"]
    assert created_by(result) == ["ENTRYPOINT []"]


def test_healthcheck_durations_are_nanoseconds_and_zeros_omitted() -> None:
    result = plan(
        "FROM scratch\nHEALTHCHECK --interval=5m --timeout=3s --retries=2 CMD curl -f http://x/\n"
    )
    assert result.config["config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f http://x/"],
        "Interval": 300_000_000_000,
        "Timeout": 3_000_000_000,
        "Retries": 2,
    }
    assert created_by(result) == [
        "HEALTHCHECK {Test:[CMD-SHELL curl -f http://x/] Interval:5m0s Timeout:3s "
        "StartPeriod:0s StartInterval:0s Retries:2}"
    ]


def test_healthcheck_none_and_exec_form() -> None:
    none = plan("FROM scratch\nHEALTHCHECK NONE\n")
    assert none.config["config"]["Healthcheck"] == {"Test": ["NONE"]}
    exec_form = plan('FROM scratch\nHEALTHCHECK CMD ["/bin/check", "-q"]\n')
    assert exec_form.config["config"]["Healthcheck"]["Test"] == ["CMD", "/bin/check", "-q"]


def test_onbuild_is_stored_unexpanded_without_history() -> None:
    result = plan("FROM scratch\nONBUILD RUN echo $HOME\nONBUILD COPY a /b\n")
    assert result.config["config"]["OnBuild"] == ["RUN echo $HOME", "COPY a /b"]
    assert created_by(result) == []


def test_maintainer_sets_author() -> None:
    result = plan("FROM scratch\nMAINTAINER Jane Doe <jane@example.com>\n")
    assert result.config["author"] == "Jane Doe <jane@example.com>"
    assert created_by(result) == ["MAINTAINER Jane Doe <jane@example.com>"]


def test_history_marks_layers_only_for_run_copy_add_workdir() -> None:
    result = plan(
        """
        FROM busybox
        ENV A=1
        RUN true
        COPY a /a
        ADD b /b
        WORKDIR /w
        LABEL l=1
        """
    )
    new = [h for h in result.history if h.comment]
    assert [(h.created_by.split()[0], h.empty_layer) for h in new] == [
        ("ENV", True),
        ("RUN", False),
        ("COPY", False),
        ("ADD", False),
        ("WORKDIR", False),
        ("LABEL", True),
    ]
    assert result.history[0].created_by == "base layer 0"
    assert result.history[0].comment == ""


def test_run_history_lists_declared_args_with_current_values() -> None:
    result = plan(
        "FROM scratch\nARG A=1\nARG B\nENV A=override\nRUN echo hi\n",
        build_args={"B": "2"},
    )
    assert created_by(result)[-1] == "RUN |2 A=override B=2 /bin/sh -c echo hi # buildkit"


def test_copy_history_includes_flags_sources_heredocs_and_dest() -> None:
    result = plan(
        """
        FROM scratch
        ARG D=/dst
        COPY --chown=1:2 --chmod=644 --link --from=busybox a* b <<EOF $D/
        hi
        EOF
        """
    )
    assert created_by(result)[-1] == "COPY --chown=1:2 --chmod=644 a* b <<EOF /dst/ # buildkit"


def test_copy_parents_is_recorded_in_history() -> None:
    result = plan("FROM scratch\nCOPY --parents a/./b /x/\n")
    assert created_by(result)[-1] == "COPY --parents a/./b /x/ # buildkit"


def test_source_date_epoch_pins_new_history_entries() -> None:
    result = plan("FROM busybox\nRUN true\nENV A=1\n", build_args={"SOURCE_DATE_EPOCH": "86400"})
    new = [h for h in result.history if h.comment]
    assert [h.created for h in new] == ["1970-01-02T00:00:00Z"] * 2
    assert result.history[0].created == "2024-01-01T00:00:00Z"
    assert result.source_date_epoch == 86400


def test_explicit_platform_overrides_base_os_and_architecture() -> None:
    images = FakeImages({"b": image_config(arch="arm64")})
    implicit = plan("FROM b\n", images)
    assert implicit.config["architecture"] == "arm64"
    explicit = plan("FROM b\n", images, platform=Platform("linux", "arm", "v7"))
    assert explicit.config["architecture"] == "arm"
    assert explicit.config["variant"] == "v7"


def test_only_target_config_is_produced_in_multi_stage() -> None:
    result = plan(
        """
        FROM scratch AS a
        LABEL stage=a
        FROM scratch AS b
        LABEL stage=b
        """,
        target="a",
    )
    assert result.config["config"]["Labels"] == {"stage": "a"}


def test_child_stage_inherits_config_and_history_of_parent_stage() -> None:
    result = plan("FROM busybox AS base\nENV A=1\nFROM base\nENV B=2\n")
    env = result.config["config"]["Env"]
    assert "A=1" in env and "B=2" in env
    assert created_by(result) == ["ENV A=1", "ENV B=2"]


def test_base_config_keeps_only_fields_of_the_image_spec() -> None:
    config = image_config(extra={"Hostname": "abc", "Labels": {"a": "b"}, "Image": "sha256:x"})
    config["container_config"] = {"Cmd": ["old"]}
    config["docker_version"] = "20.10"
    result = plan("FROM b\n", FakeImages({"b": config}))
    assert set(result.config) == {"architecture", "os", "config"}
    assert "Hostname" not in result.config["config"]
    assert "Image" not in result.config["config"]
    assert result.config["config"]["Labels"] == {"a": "b"}


def test_undefined_variable_warns_with_a_suggestion_but_not_for_declared_args() -> None:
    result = plan("FROM scratch\nENV VERSION=1\nARG EMPTY\nCOPY a /$VERSON/$EMPTY\n")
    assert [(w.rule, w.message, w.line) for w in result.warnings] == [
        ("UndefinedVar", "Usage of undefined variable '$VERSON' (did you mean $VERSION?)", 4)
    ]


def test_json_args_warning_uses_the_keyword_as_typed() -> None:
    result = plan("FROM scratch\ncmd echo hi\n")
    assert [str(w) for w in result.warnings] == [
        "JSONArgsRecommended: JSON arguments recommended for cmd to prevent unintended "
        "behavior related to OS signals (line 2)"
    ]


def test_lint_warnings_for_secrets_expose_format_and_repeated_cmd() -> None:
    result = plan(
        """
        FROM scratch
        ARG GITHUB_TOKEN
        ENV PUBLIC_KEY=x APP_VERSION=1
        EXPOSE 8080:80/TCP
        CMD ["a"]
        CMD ["b"]
        """
    )
    assert [(w.rule, w.line) for w in result.warnings] == [
        ("SecretsUsedInArgOrEnv", 2),
        ("ExposeProtoCasing", 4),
        ("ExposeInvalidFormat", 4),
        ("MultipleInstructionsDisallowed", 5),
    ]
    assert result.warnings[0].message == (
        'Do not use ARG or ENV instructions for sensitive data (ARG "GITHUB_TOKEN")'
    )

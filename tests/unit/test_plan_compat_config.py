"""The image config BuildKit produces, pinned instruction by instruction.

Every expected value here was read off moby/buildkit's dockerfile2llb (`dispatch*` in
convert.go, convert_expose.go, image.go, platform.go), its instruction parser and its
integration tests (dockerfile_test.go, dockerfile_cmd_test.go, ...), not off strata's
output. Each test builds one small Dockerfile and compares the whole runtime config
(or the part the scenario is about) with what BuildKit writes.
"""

from __future__ import annotations

from typing import Any

import pytest

from strata.errors import DockerfileError
from strata.plan.ops import Platform
from strata.plan.platforms import format_platform, native_platform
from strata.plan.result import BuildPlan
from tests.unit.test_plan_support import FakeImages, created_by, last_exec, plan

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
AMD64 = Platform("linux", "amd64")


def runtime(result: BuildPlan) -> dict[str, Any]:
    """The `config` object of the image config (Env, Cmd, ...)."""
    value = result.config["config"]
    assert isinstance(value, dict)
    return value


def rules(result: BuildPlan) -> list[tuple[str, int]]:
    return [(w.rule, w.line) for w in result.warnings]


def base_image(runtime_config: dict[str, Any], **top: Any) -> dict[str, Any]:
    """An image config with one layer and exactly the given runtime config."""
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": runtime_config,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "base"}],
    }
    config.update(top)
    return config


def fails(text: str, **options: Any) -> str:
    with pytest.raises(DockerfileError) as caught:
        plan(text, **options)
    return caught.value.message


# -- FROM scratch and base images ----------------------------------------------------------


def test_scratch_config_is_exactly_the_empty_image_of_the_target_platform() -> None:
    result = plan("FROM scratch\n", platform=Platform("linux", "arm", "v7"))
    assert result.config == {
        "architecture": "arm",
        "os": "linux",
        "variant": "v7",
        "config": {"Env": [DEFAULT_PATH], "WorkingDir": "/"},
    }
    assert result.history == []


def test_base_config_fields_are_inherited_and_default_path_appended_last() -> None:
    images = FakeImages(
        {
            "rich": base_image(
                {
                    "Env": ["LANG=C.UTF-8"],
                    "Entrypoint": ["/entry"],
                    "Cmd": ["serve"],
                    "User": "app",
                    "WorkingDir": "/srv",
                    "ExposedPorts": {"22/tcp": {}},
                    "Volumes": {"/data": {}},
                    "Labels": {"a": "1"},
                    "StopSignal": "SIGQUIT",
                    "Shell": ["/bin/bash", "-c"],
                    "ArgsEscaped": True,
                    "Healthcheck": {"Test": ["CMD", "check"], "Interval": 10_000_000_000},
                },
                author="Base Author",
            )
        }
    )
    result = plan("FROM rich\n", images)
    assert result.config == {
        "architecture": "amd64",
        "os": "linux",
        "author": "Base Author",
        "config": {
            "Env": ["LANG=C.UTF-8", DEFAULT_PATH],
            "Entrypoint": ["/entry"],
            "Cmd": ["serve"],
            "User": "app",
            "WorkingDir": "/srv",
            "ExposedPorts": {"22/tcp": {}},
            "Volumes": {"/data": {}},
            "Labels": {"a": "1"},
            "StopSignal": "SIGQUIT",
            "Shell": ["/bin/bash", "-c"],
            "ArgsEscaped": True,
            "Healthcheck": {"Test": ["CMD", "check"], "Interval": 10_000_000_000},
        },
    }


def test_base_without_env_gets_only_the_default_path() -> None:
    images = FakeImages({"bare": base_image({"Cmd": ["sh"]})})
    assert runtime(plan("FROM bare\n", images))["Env"] == [DEFAULT_PATH]


def test_base_path_is_kept_and_not_duplicated() -> None:
    images = FakeImages({"b": base_image({"Env": ["PATH=/opt/bin", "X=1"]})})
    assert runtime(plan("FROM b\n", images))["Env"] == ["PATH=/opt/bin", "X=1"]


def test_base_image_onbuild_triggers_are_not_carried_into_the_result() -> None:
    images = FakeImages({"b": base_image({"OnBuild": ["LABEL from=trigger"]})})
    result = plan("FROM b\n", images)
    assert "OnBuild" not in runtime(result)
    assert runtime(result)["Labels"] == {"from": "trigger"}


def test_base_architecture_is_normalized_like_containerd() -> None:
    images = FakeImages(
        {
            "old": base_image({}, architecture="x86_64", variant="v1"),
            "arm": base_image({}, architecture="aarch64", variant="v8"),
        }
    )
    old = plan("FROM old\n", images).config
    assert (old["architecture"], "variant" in old) == ("amd64", False)
    arm = plan("FROM arm\n", images).config
    assert (arm["architecture"], "variant" in arm) == ("arm64", False)


def test_explicit_platform_replaces_base_os_arch_and_drops_foreign_os_version() -> None:
    images = FakeImages(
        {"win": base_image({}, os="windows", architecture="amd64", **{"os.version": "10.0"})}
    )
    result = plan("FROM win\n", images, platform=AMD64)
    assert (result.config["os"], result.config["architecture"]) == ("linux", "amd64")
    assert "os.version" not in result.config
    implicit = plan("FROM win\n", images)
    assert implicit.config["os.version"] == "10.0"


def test_base_workdir_is_normalized_even_without_a_workdir_instruction() -> None:
    # dispatchStages runs dispatchWorkdir(image WorkingDir) against itself: a relative
    # "app" joins "/app" and becomes "/app/app" (util/system NormalizePath).
    images = FakeImages({"rel": base_image({"WorkingDir": "app"})})
    result = plan("FROM rel\nRUN pwd\n", images)
    assert runtime(result)["WorkingDir"] == "/app/app"
    assert last_exec(result).cwd == "/app/app"


# -- ENV -----------------------------------------------------------------------------------


def test_env_replaces_existing_keys_in_place_and_appends_new_ones() -> None:
    images = FakeImages({"b": base_image({"Env": ["PATH=/bin", "LANG=C", "HOME=/root"]})})
    result = plan("FROM b\nENV HOME=/home/app NEW=1\nENV LANG=C.UTF-8\nRUN env\n", images)
    assert runtime(result)["Env"] == ["PATH=/bin", "LANG=C.UTF-8", "HOME=/home/app", "NEW=1"]
    # the RUN environment lists keys in order of their last assignment instead
    assert last_exec(result).env == ("PATH=/bin", "HOME=/home/app", "NEW=1", "LANG=C.UTF-8")
    assert created_by(result)[:2] == ["ENV HOME=/home/app NEW=1", "ENV LANG=C.UTF-8"]


def test_env_legacy_form_takes_the_rest_of_the_line_with_quotes_processed() -> None:
    result = plan('FROM scratch\nENV A "hello world"\nENV B  two   spaced  words\n')
    assert runtime(result)["Env"][1:] == ["A=hello world", "B=two   spaced  words"]
    assert created_by(result) == ["ENV A=hello world", "ENV B=two   spaced  words"]


def test_env_legacy_form_warns_with_the_keyword_as_typed() -> None:
    result = plan("FROM scratch\nenv A b\nENV C=d\n")
    assert [str(w) for w in result.warnings] == [
        'LegacyKeyValueFormat: "env key=value" should be used instead of legacy '
        '"env key value" format (line 2)'
    ]


def test_env_words_of_one_instruction_see_the_values_before_it() -> None:
    result = plan("FROM scratch\nENV a=1\nENV a=2 b=$a c=${a}x\n")
    assert runtime(result)["Env"][1:] == ["a=2", "b=1", "c=1x"]
    assert created_by(result)[-1] == "ENV a=2 b=1 c=1x"


def test_env_quotes_escapes_and_single_quotes_are_processed_like_a_shell_word() -> None:
    result = plan("FROM scratch\nENV H=/root\nENV A=\\$H B='$H' C=\"$H x\" D=a\\ b E=\n")
    assert runtime(result)["Env"][2:] == ["A=$H", "B=$H", "C=/root x", "D=a b", "E="]


def test_env_expands_base_image_variables_and_modifiers() -> None:
    images = FakeImages({"b": base_image({"Env": ["PATH=/bin", "VER=1.2.3"]})})
    result = plan("FROM b\nENV MAJOR=${VER%%.*} NEXT=${MISSING:-fallback}\n", images)
    assert runtime(result)["Env"] == ["PATH=/bin", "VER=1.2.3", "MAJOR=1", "NEXT=fallback"]


def test_env_of_a_base_stage_is_inherited_by_the_child_stage() -> None:
    result = plan("FROM scratch AS base\nENV A=1\nFROM base\nENV A=2 B=$A\n")
    assert runtime(result)["Env"] == [DEFAULT_PATH, "A=2", "B=1"]


# -- ARG -----------------------------------------------------------------------------------


def test_arg_values_never_reach_the_config_env() -> None:
    result = plan("ARG G=1\nFROM scratch\nARG G\nARG S=2\nARG T\n", build_args={"T": "3", "X": "4"})
    assert runtime(result)["Env"] == [DEFAULT_PATH]
    assert created_by(result) == ["ARG G=1", "ARG S=2", "ARG T=3"]


def test_global_arg_is_invisible_in_a_stage_until_redeclared() -> None:
    result = plan("ARG G=global\nFROM busybox\nENV BEFORE=$G\nARG G\nENV AFTER=$G\n")
    assert runtime(result)["Env"][-2:] == ["BEFORE=", "AFTER=global"]


def test_build_arg_overrides_global_default_and_stage_default() -> None:
    text = "ARG G=global\nFROM scratch\nARG G\nARG S=stage\nENV OUT=$G/$S\n"
    assert runtime(plan(text))["Env"][-1] == "OUT=global/stage"
    overridden = plan(text, build_args={"G": "cli-g", "S": "cli-s"})
    assert runtime(overridden)["Env"][-1] == "OUT=cli-g/cli-s"
    assert created_by(overridden)[:2] == ["ARG G=cli-g", "ARG S=cli-s"]


def test_stage_default_wins_over_the_global_value_of_the_same_name() -> None:
    result = plan("ARG V=global\nFROM scratch\nARG V=stage\nENV OUT=$V\n")
    assert runtime(result)["Env"][-1] == "OUT=stage"


def test_arg_after_env_overrides_the_build_environment_but_not_config_env() -> None:
    result = plan("FROM busybox\nENV V=env\nARG V=arg\nRUN echo $V\nENV W=$V\n")
    assert runtime(result)["Env"] == ["PATH=/usr/bin:/bin", "V=env", "W=arg"]
    assert "V=arg" in last_exec(plan("FROM busybox\nENV V=env\nARG V=arg\nRUN x\n")).env


def test_env_after_arg_wins_everywhere() -> None:
    result = plan("FROM busybox\nARG V=arg\nENV V=env\nRUN echo $V\n", build_args={"V": "cli"})
    assert "V=env" in last_exec(result).env
    assert created_by(result) == [
        "ARG V=cli",
        "ENV V=env",
        "RUN |1 V=env /bin/sh -c echo $V # buildkit",
    ]


def test_undeclared_build_args_change_nothing() -> None:
    text = "ARG G=1\nFROM busybox\nARG S=1\nENV E=$S\nRUN echo $UNDECLARED\nLABEL l=$UNDECLARED\n"
    plain = plan(text)
    extra = plan(text, build_args={"UNDECLARED": "x", "OTHER": "y"})
    assert extra.config == plain.config
    assert [h.created_by for h in extra.history] == [h.created_by for h in plain.history]
    assert extra.target is not None and plain.target is not None
    assert extra.target.digest == plain.target.digest


def test_arg_default_expands_with_env_and_earlier_args() -> None:
    result = plan("FROM scratch\nENV E=e\nARG A=${E}-x\nARG B=$A/y\nENV OUT=$B\n")
    assert created_by(result)[1:3] == ["ARG A=e-x", "ARG B=e-x/y"]
    assert runtime(result)["Env"][-1] == "OUT=e-x/y"


def test_arg_default_error_modifier_fails_only_when_the_default_is_used() -> None:
    text = 'FROM scratch\nARG FOO\nARG BAR=${FOO:?"foo missing"}\n'
    assert fails(text) == 'failed to process "${FOO:?\\"foo missing\\"}": FOO: foo missing'
    assert created_by(plan(text, build_args={"FOO": "123"}))[-1] == "ARG BAR=123"
    assert created_by(plan(text, build_args={"BAR": "set"}))[-1] == "ARG BAR=set"


def test_several_args_in_one_instruction_take_global_values_and_defaults() -> None:
    # dockerfile_test.go testMultiArgs
    result = plan(
        'ARG a1="foo bar" a2=box\nARG a3="$a2-foo"\nFROM busy$a2 AS build\n'
        'ARG a3 a4="123 456" a1\nRUN echo -n "$a1:$a3:$a4" > /out\n'
    )
    assert created_by(result) == [
        "ARG a3=box-foo a4=123 456 a1=foo bar",
        'RUN |3 a3=box-foo a4=123 456 a1=foo bar /bin/sh -c echo -n "$a1:$a3:$a4" > /out '
        "# buildkit",
    ]
    assert result.base_image is not None
    assert result.base_image.ref == "docker.io/library/busybox:latest"


def test_stage_arg_defaults_see_redeclared_global_values() -> None:
    # dockerfile_args_test.go testQuotedMetaArgs
    result = plan(
        'ARG a1="box"\nARG a2="$a1-foo"\nFROM busy$a1 AS build\nARG a2\nARG a3="bar-$a2"\n'
        "RUN echo -n $a3 > /out\n"
    )
    assert created_by(result) == [
        "ARG a2=box-foo",
        "ARG a3=bar-box-foo",
        "RUN |2 a2=box-foo a3=bar-box-foo /bin/sh -c echo -n $a3 > /out # buildkit",
    ]


def test_global_args_pick_the_base_image_and_errors_name_the_variable() -> None:
    # dockerfile_args_test.go testGlobalArg, testGlobalArgErrors
    images = FakeImages({"busybox:latest": base_image({})})
    text = "ARG tag=nosuchtag\nFROM busybox:${tag}\n"
    result = plan(text, images, build_args={"tag": "latest"})
    assert result.base_image is not None
    assert result.base_image.ref == "docker.io/library/busybox:latest"
    assert fails('ARG FOO=${FOO:?"custom error"}\nFROM busybox\n').endswith("FOO: custom error")


def test_empty_arg_is_set_and_valueless_arg_is_not() -> None:
    # dockerfile_test.go testEmptyStringArgInEnv
    result = plan("FROM busybox\nARG FOO\nARG BAR=\nRUN env\n")
    env = last_exec(result).env
    assert "BAR=" in env
    assert not any(e.startswith("FOO=") for e in env)
    assert created_by(result) == [
        "ARG FOO",
        "ARG BAR=",
        "RUN |2 FOO= BAR= /bin/sh -c env # buildkit",
    ]


def test_empty_build_arg_counts_as_given() -> None:
    # dockerfile_test.go testDefaultEnvWithArgs, "empty" case
    result = plan(
        'FROM busybox\nARG my_arg\nENV my_arg "my_arg=${my_arg:-def_val}"\n'
        'ENV my_trimmed_arg "${my_arg%%e*}"\n',
        build_args={"my_arg": ""},
    )
    assert runtime(result)["Env"][1:] == ["my_arg=my_arg=def_val", "my_trimmed_arg=my_arg=d"]


def test_predefined_platform_args_exist_only_after_redeclaring() -> None:
    result = plan(
        "FROM busybox\nENV BEFORE=$TARGETARCH\nARG TARGETARCH TARGETVARIANT TARGETPLATFORM\n"
        "ENV AFTER=$TARGETPLATFORM/$TARGETARCH\nRUN true\n",
        platform=Platform("linux", "arm64"),
    )
    assert runtime(result)["Env"][-2:] == ["BEFORE=", "AFTER=linux/arm64/arm64"]
    assert created_by(result)[-1] == (
        "RUN |3 TARGETARCH=arm64 TARGETVARIANT= TARGETPLATFORM=linux/arm64 /bin/sh -c true "
        "# buildkit"
    )


def test_build_platform_args_describe_this_machine_and_target_args_the_request() -> None:
    native = native_platform()
    result = plan(
        "FROM scratch\nARG BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT\n"
        "ARG TARGETPLATFORM TARGETARCH TARGETVARIANT\n"
        "ENV B=$BUILDPLATFORM/$BUILDOS/$BUILDARCH/$BUILDVARIANT "
        "T=$TARGETPLATFORM/$TARGETARCH/$TARGETVARIANT\n",
        platform=Platform("linux", "arm", "v7"),
    )
    assert runtime(result)["Env"][-2:] == [
        f"B={format_platform(native)}/{native.os}/{native.architecture}/{native.variant}",
        "T=linux/arm/v7/arm/v7",
    ]


def test_predefined_args_can_be_overridden_by_build_args() -> None:
    result = plan("FROM scratch\nARG TARGETOS\nENV OS=$TARGETOS\n", build_args={"TARGETOS": "x"})
    assert runtime(result)["Env"][-1] == "OS=x"


def test_targetstage_is_the_target_as_requested_in_every_stage() -> None:
    text = (
        "FROM busybox AS Build\nARG TARGETSTAGE\nENV IN_BUILD=$TARGETSTAGE\n"
        "FROM build AS final\nARG TARGETSTAGE\nENV IN_FINAL=$TARGETSTAGE\n"
    )
    assert runtime(plan(text))["Env"][-2:] == ["IN_BUILD=final", "IN_FINAL=final"]
    assert runtime(plan(text, target="Build"))["Env"][-1] == "IN_BUILD=Build"


def test_targetstage_is_default_for_an_unnamed_last_stage() -> None:
    result = plan("FROM scratch\nARG TARGETSTAGE\nENV T=$TARGETSTAGE\n")
    assert runtime(result)["Env"][-1] == "T=default"


def test_args_of_a_base_stage_are_declared_in_the_child() -> None:
    result = plan("FROM busybox AS base\nARG A=1\nFROM base\nRUN echo $A\n")
    assert created_by(result) == ["ARG A=1", "RUN |1 A=1 /bin/sh -c echo $A # buildkit"]
    assert "A=1" in last_exec(result).env


def test_args_with_a_base_image_env_name_show_the_env_value_in_run_history() -> None:
    images = FakeImages({"b": base_image({"Env": ["PATH=/bin", "FOO=img"]})})
    result = plan("FROM b\nARG FOO\nRUN true\n", images)
    assert created_by(result) == ["ARG FOO", "RUN |1 FOO=img /bin/sh -c true # buildkit"]
    assert runtime(result)["Env"] == ["PATH=/bin", "FOO=img"]


# -- LABEL ---------------------------------------------------------------------------------


def test_labels_merge_with_base_labels_later_values_and_cli_labels_winning() -> None:
    images = FakeImages({"b": base_image({"Labels": {"maintainer": "base", "keep": "1"}})})
    result = plan(
        'FROM b\nLABEL "com.example.vendor"="ACME Inc" version=1.0 maintainer=me\n'
        "LABEL legacy value here\n",
        images,
        labels={"version": "cli", "added": "yes"},
    )
    assert runtime(result)["Labels"] == {
        "keep": "1",
        "maintainer": "me",
        "com.example.vendor": "ACME Inc",
        "version": "cli",
        "legacy": "value here",
        "added": "yes",
    }
    assert created_by(result) == [
        "LABEL com.example.vendor=ACME Inc version=1.0 maintainer=me",
        "LABEL legacy=value here",
    ]
    assert rules(result) == [("LegacyKeyValueFormat", 3)]


def test_label_keys_and_values_are_expanded() -> None:
    result = plan("FROM scratch\nARG K=k\nLABEL $K=\"${K}v\" 'lit'='$K' empty=\n")
    assert runtime(result)["Labels"] == {"k": "kv", "lit": "$K", "empty": ""}
    assert created_by(result)[-1] == "LABEL k=kv lit=$K empty="


def test_cli_labels_create_labels_on_an_image_without_any() -> None:
    result = plan("FROM scratch\n", labels={"org.opencontainers.image.title": "t"})
    assert runtime(result)["Labels"] == {"org.opencontainers.image.title": "t"}
    assert created_by(result) == []


def test_cli_labels_go_to_the_target_stage_only() -> None:
    text = "FROM scratch AS a\nLABEL stage=a\nFROM scratch AS b\nLABEL stage=b\n"
    assert runtime(plan(text, target="a", labels={"x": "1"}))["Labels"] == {
        "stage": "a",
        "x": "1",
    }


# -- EXPOSE --------------------------------------------------------------------------------


def test_expose_sorts_raw_words_then_expands_them_in_that_order() -> None:
    # dockerfile_test.go testExportedHistory
    result = plan("FROM scratch\nEXPOSE 2375 5000 1234/udp\n")
    assert created_by(result) == ["EXPOSE [1234/udp 2375/tcp 5000/tcp]"]
    assert runtime(result)["ExposedPorts"] == {"1234/udp": {}, "2375/tcp": {}, "5000/tcp": {}}


def test_expose_lowercases_protocols_and_expands_ranges() -> None:
    result = plan("FROM scratch\nEXPOSE 80 443 8080-8081/UDP 53/Sctp\n")
    assert created_by(result) == ["EXPOSE [443/tcp 53/sctp 80/tcp 8080/udp 8081/udp]"]
    assert rules(result) == [("ExposeProtoCasing", 2), ("ExposeProtoCasing", 2)]


def test_expose_variable_may_expand_to_several_ports() -> None:
    result = plan('FROM scratch\nARG PORTS="9000 80-81/udp"\nEXPOSE $PORTS 22\n')
    assert created_by(result)[-1] == "EXPOSE [9000/tcp 80/udp 81/udp 22/tcp]"


def test_expose_keeps_duplicates_in_history_but_once_in_config() -> None:
    result = plan("FROM scratch\nEXPOSE 80/tcp 80\n")
    assert created_by(result) == ["EXPOSE [80/tcp 80/tcp]"]
    assert runtime(result)["ExposedPorts"] == {"80/tcp": {}}


def test_expose_adds_to_the_base_image_ports() -> None:
    images = FakeImages({"b": base_image({"ExposedPorts": {"22/tcp": {}}})})
    result = plan("FROM b\nEXPOSE 80\n", images)
    assert runtime(result)["ExposedPorts"] == {"22/tcp": {}, "80/tcp": {}}


def test_expose_host_forms_keep_the_container_port_and_warn() -> None:
    result = plan("FROM scratch\nEXPOSE 127.0.0.1:8080:80 [::1]:9090:90/udp 7070:70\n")
    assert runtime(result)["ExposedPorts"] == {"70/tcp": {}, "80/tcp": {}, "90/udp": {}}
    assert rules(result) == [("ExposeInvalidFormat", 2)] * 3


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("80/icmp", 'invalid port: "80/icmp": invalid proto: icmp'),
        ("/tcp", 'invalid port: "/tcp": no port specified'),
        ("70000", "invalid containerPort: 70000"),
        ("90-80", "invalid containerPort: 90-80"),
        ("http", "invalid containerPort: http"),
        ("host:8080:80", "invalid IP address: host"),
        ("x:80", "invalid hostPort: x"),
        (
            "8080-8082:80-81",
            "invalid ranges specified for container and host Ports: 80-81 and 8080-8082",
        ),
    ],
)
def test_expose_errors_have_buildkits_text(words: str, message: str) -> None:
    assert fails(f"FROM scratch\nEXPOSE {words}\n") == message


# -- VOLUME --------------------------------------------------------------------------------


def test_volume_json_and_word_forms_are_expanded_and_merged() -> None:
    images = FakeImages({"b": base_image({"Volumes": {"/base": {}}})})
    result = plan('FROM b\nENV D=/data\nVOLUME ["/a b", "$D/json"]\nVOLUME /d $D\n', images)
    assert runtime(result)["Volumes"] == {
        "/base": {},
        "/a b": {},
        "/data/json": {},
        "/d": {},
        "/data": {},
    }
    assert created_by(result)[1:] == ["VOLUME [/a b /data/json]", "VOLUME [/d /data]"]


def test_volume_expanding_to_nothing_fails() -> None:
    assert fails("FROM scratch\nARG E\nVOLUME /ok $E\n") == (
        "VOLUME specified can not be an empty string"
    )


# -- STOPSIGNAL ----------------------------------------------------------------------------


def test_stopsignal_is_expanded_and_stored_as_written_last_one_winning() -> None:
    images = FakeImages({"b": base_image({"StopSignal": "SIGQUIT"})})
    result = plan("FROM b\nARG S=sigrtmin+3\nSTOPSIGNAL $S\nSTOPSIGNAL 37\n", images)
    assert runtime(result)["StopSignal"] == "37"
    assert created_by(result)[1:] == ["STOPSIGNAL sigrtmin+3", "STOPSIGNAL 37"]
    assert runtime(plan("FROM b\nSTOPSIGNAL term\n", images))["StopSignal"] == "term"


@pytest.mark.parametrize("signal", ["0", "SIGFOO", "9x", "99999999999999999999", "SIG"])
def test_stopsignal_refuses_what_moby_parse_signal_refuses(signal: str) -> None:
    assert fails(f"FROM scratch\nSTOPSIGNAL {signal}\n") == f"invalid signal: {signal}"


# -- HEALTHCHECK ---------------------------------------------------------------------------


def test_healthcheck_durations_are_nanoseconds_in_config_and_go_durations_in_history() -> None:
    result = plan(
        "FROM scratch\nHEALTHCHECK --interval=1m30s --timeout=500ms --start-period=1.5s "
        '--start-interval=2s --retries=07 CMD curl -f "http://x/$PATH"\n'
    )
    assert runtime(result)["Healthcheck"] == {
        "Test": ["CMD-SHELL", 'curl -f "http://x/$PATH"'],
        "Interval": 90_000_000_000,
        "Timeout": 500_000_000,
        "StartPeriod": 1_500_000_000,
        "StartInterval": 2_000_000_000,
        "Retries": 7,
    }
    assert created_by(result) == [
        'HEALTHCHECK {Test:[CMD-SHELL curl -f "http://x/$PATH"] Interval:1m30s Timeout:500ms '
        "StartPeriod:1.5s StartInterval:2s Retries:7}"
    ]


def test_healthcheck_zero_values_are_omitted_meaning_engine_defaults() -> None:
    result = plan('FROM scratch\nHEALTHCHECK --interval=0s --retries=0 CMD ["/check"]\n')
    assert runtime(result)["Healthcheck"] == {"Test": ["CMD", "/check"]}


def test_healthcheck_none_replaces_the_inherited_check_and_ignores_flags() -> None:
    images = FakeImages(
        {"b": base_image({"Healthcheck": {"Test": ["CMD", "x"], "Interval": 1_000_000_000}})}
    )
    result = plan("FROM b\nhealthcheck --interval=5s --bogus=1 none\n", images)
    assert runtime(result)["Healthcheck"] == {"Test": ["NONE"]}
    assert created_by(result) == [
        "HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}"
    ]


def test_last_healthcheck_wins_and_the_earlier_one_is_reported() -> None:
    result = plan("FROM scratch\nHEALTHCHECK CMD a\nHEALTHCHECK --retries=2 CMD b\n")
    assert runtime(result)["Healthcheck"] == {"Test": ["CMD-SHELL", "b"], "Retries": 2}
    assert rules(result) == [("MultipleInstructionsDisallowed", 2)]


def test_healthcheck_ignores_shell_for_its_shell_form() -> None:
    result = plan('FROM scratch\nSHELL ["/bin/bash", "-c"]\nHEALTHCHECK CMD check it\n')
    assert runtime(result)["Healthcheck"] == {"Test": ["CMD-SHELL", "check it"]}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("HEALTHCHECK --interval=500us CMD x", 'Interval "interval" cannot be less than 1ms'),
        ("HEALTHCHECK --timeout=1ns CMD x", 'Interval "timeout" cannot be less than 1ms'),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK FOO x", 'Unknown type "FOO" in HEALTHCHECK (try CMD)'),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK --interval=5 CMD x", 'time: missing unit in duration "5"'),
    ],
)
def test_healthcheck_errors_have_buildkits_text(line: str, message: str) -> None:
    assert fails(f"FROM scratch\n{line}\n").endswith(message)


# -- SHELL, CMD, ENTRYPOINT ----------------------------------------------------------------


def test_shell_applies_to_later_shell_forms_only() -> None:
    result = plan(
        'FROM busybox\nRUN before\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\n'
        'RUN after\nRUN ["exec", "form"]\nCMD serve --port 80\nENTRYPOINT ["/e"]\n'
    )
    assert runtime(result)["Shell"] == ["/bin/bash", "-o", "pipefail", "-c"]
    assert runtime(result)["Cmd"] == ["/bin/bash", "-o", "pipefail", "-c", "serve --port 80"]
    assert created_by(result) == [
        "RUN /bin/sh -c before # buildkit",
        "SHELL [/bin/bash -o pipefail -c]",
        "RUN /bin/bash -o pipefail -c after # buildkit",
        "RUN exec form # buildkit",
        'CMD ["/bin/bash" "-o" "pipefail" "-c" "serve --port 80"]',
        'ENTRYPOINT ["/e"]',
    ]


def test_shell_of_the_base_image_and_base_stage_is_used_without_a_json_lint() -> None:
    images = FakeImages({"b": base_image({"Shell": ["/bin/ash", "-c"]})})
    result = plan("FROM b AS one\nFROM one\nENTRYPOINT run me\n", images)
    assert runtime(result)["Entrypoint"] == ["/bin/ash", "-c", "run me"]
    assert rules(result) == []


def test_shell_must_be_json() -> None:
    assert fails("FROM scratch\nSHELL /bin/bash -c\n").endswith(
        "SHELL requires the arguments to be in JSON form"
    )


def test_cmd_exec_and_shell_forms_and_args_escaped() -> None:
    exec_form = plan('FROM scratch\nCMD ["nginx", "-g", "daemon off;"]\n')
    assert runtime(exec_form)["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert runtime(exec_form)["ArgsEscaped"] is True
    shell_form = plan("FROM scratch\nCMD echo   $HOME 'quoted'\n")
    assert runtime(shell_form)["Cmd"] == ["/bin/sh", "-c", "echo   $HOME 'quoted'"]
    assert rules(shell_form) == [("JSONArgsRecommended", 2)]


def test_entrypoint_alone_does_not_set_args_escaped() -> None:
    result = plan('FROM scratch\nENTRYPOINT ["/e"]\n')
    assert runtime(result) == {"Env": [DEFAULT_PATH], "WorkingDir": "/", "Entrypoint": ["/e"]}


def test_entrypoint_clears_inherited_cmd_but_keeps_cmd_of_the_same_stage() -> None:
    images = FakeImages({"b": base_image({"Cmd": ["base-cmd"]})})
    assert "Cmd" not in runtime(plan('FROM b\nENTRYPOINT ["/e"]\n', images))
    before = plan('FROM b\nCMD ["own"]\nENTRYPOINT ["/e"]\n', images)
    assert runtime(before)["Cmd"] == ["own"]
    after = plan('FROM b\nENTRYPOINT ["/e"]\nCMD ["own"]\n', images)
    assert runtime(after)["Cmd"] == ["own"]


def test_entrypoint_with_inherited_shell_clears_cmd() -> None:
    # dockerfile_cmd_test.go testCmdShell
    images = FakeImages({"cmdbase": base_image({"Cmd": ["test"]})})
    result = plan('FROM cmdbase\nSHELL ["ls"]\nENTRYPOINT my entrypoint\n', images)
    assert "Cmd" not in runtime(result)
    assert runtime(result)["Entrypoint"] == ["ls", "my entrypoint"]


def test_entrypoint_of_a_child_stage_clears_cmd_of_its_parent_stage() -> None:
    result = plan('FROM scratch AS p\nCMD ["p"]\nENTRYPOINT ["/p"]\nFROM p\nENTRYPOINT ["/c"]\n')
    assert "Cmd" not in runtime(result)
    kept = plan('FROM scratch AS p\nENTRYPOINT ["/p"]\nFROM p\nCMD ["c"]\n')
    assert (runtime(kept)["Entrypoint"], runtime(kept)["Cmd"]) == (["/p"], ["c"])


def test_empty_exec_forms_clear_entrypoint_and_cmd() -> None:
    images = FakeImages({"b": base_image({"Entrypoint": ["/e"], "Cmd": ["c"]})})
    no_entrypoint = plan("FROM b\nENTRYPOINT []\n", images)
    assert "Entrypoint" not in runtime(no_entrypoint)
    assert "Cmd" not in runtime(no_entrypoint)  # inherited CMD cleared too
    no_cmd = plan("FROM b\nCMD []\n", images)
    assert runtime(no_cmd)["Entrypoint"] == ["/e"]
    assert "Cmd" not in runtime(no_cmd)
    assert runtime(no_cmd)["ArgsEscaped"] is True
    assert created_by(no_cmd) == ["CMD []"]


def test_cmd_and_entrypoint_history_quote_like_go_percent_q() -> None:
    result = plan('FROM scratch\nCMD ["echo", "a\\"b", "tab\\there", "é", "bell\\u0007"]\n')
    assert runtime(result)["Cmd"] == ["echo", 'a"b', "tab\there", "é", "bell\x07"]
    assert created_by(result) == ['CMD ["echo" "a\\"b" "tab\\there" "é" "bell\\a"]']


def test_args_escaped_of_the_base_image_is_kept() -> None:
    images = FakeImages({"b": base_image({"Cmd": ["x"], "ArgsEscaped": True})})
    assert runtime(plan('FROM b\nENTRYPOINT ["/e"]\n', images))["ArgsEscaped"] is True


# -- ONBUILD -------------------------------------------------------------------------------


def test_onbuild_stores_the_trigger_text_as_typed_without_history() -> None:
    result = plan(
        "FROM scratch\nonbuild   run  --mount=type=cache,target=/c echo $HOME\n"
        "ONBUILD COPY <<EOF /greeting\nhello $NAME\nEOF\n"
    )
    assert runtime(result)["OnBuild"] == [
        "run  --mount=type=cache,target=/c echo $HOME",
        "COPY <<EOF /greeting\nhello $NAME\nEOF",
    ]
    assert created_by(result) == []


def test_image_triggers_run_first_and_their_config_changes_stay() -> None:
    images = FakeImages(
        {
            "parent": base_image(
                {
                    "Env": ["PATH=/bin"],
                    "OnBuild": ["ENV FROM_TRIGGER=1", 'CMD ["trigger"]', "LABEL t=1"],
                }
            )
        }
    )
    result = plan('FROM parent\nENTRYPOINT ["/own"]\nONBUILD RUN for-grandchildren\n', images)
    assert runtime(result) == {
        "Env": ["PATH=/bin", "FROM_TRIGGER=1"],
        "Cmd": ["trigger"],  # set in this stage (by a trigger): ENTRYPOINT keeps it
        "ArgsEscaped": True,
        "Labels": {"t": "1"},
        "Entrypoint": ["/own"],
        "OnBuild": ["RUN for-grandchildren"],
    }
    assert created_by(result) == [
        "ENV FROM_TRIGGER=1",
        'CMD ["trigger"]',
        "LABEL t=1",
        'ENTRYPOINT ["/own"]',
    ]


def test_stage_triggers_run_in_the_direct_child_stage_only() -> None:
    result = plan(
        "FROM scratch AS a\nONBUILD ENV A=1\nLABEL in_a=1\n"
        "FROM a AS b\nENV B=$A\nFROM b\nENV C=${A}c\n"
    )
    assert runtime(result)["Env"] == [DEFAULT_PATH, "A=1", "B=1", "C=1c"]
    assert "OnBuild" not in runtime(result)
    assert created_by(result) == ["LABEL in_a=1", "ENV A=1", "ENV B=1", "ENV C=1c"]
    assert runtime(plan("FROM scratch AS a\nONBUILD ENV A=1\nFROM a AS b\nFROM b\n", target="a"))[
        "OnBuild"
    ] == ["ENV A=1"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD FROM busybox", "FROM isn't allowed as an ONBUILD trigger"),
        ("onbuild maintainer me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ],
)
def test_onbuild_forbidden_triggers(line: str, message: str) -> None:
    assert fails(f"FROM scratch\n{line}\n").endswith(message)


# -- USER, WORKDIR, MAINTAINER -------------------------------------------------------------


def test_user_is_expanded_and_reaches_config_run_and_history() -> None:
    result = plan("FROM busybox\nARG U=app\nUSER ${U}:staff\nRUN id\n")
    assert runtime(result)["User"] == "app:staff"
    assert last_exec(result).user == "app:staff"
    assert created_by(result)[1] == "USER app:staff"


def test_user_of_the_base_image_runs_steps_until_changed() -> None:
    images = FakeImages({"b": base_image({"User": "nobody"})})
    result = plan("FROM b\nRUN id\n", images)
    assert last_exec(result).user == "nobody"
    changed = plan("FROM b\nUSER root\nRUN id\n", images)
    assert (runtime(changed)["User"], last_exec(changed).user) == ("root", "root")


def test_workdir_joins_relative_paths_and_keeps_absolute_ones_as_written() -> None:
    images = FakeImages({"b": base_image({"WorkingDir": "/srv"})})
    result = plan("FROM b\nWORKDIR app\nWORKDIR ../lib\nRUN pwd\n", images)
    assert runtime(result)["WorkingDir"] == "/srv/lib"
    assert last_exec(result).cwd == "/srv/lib"
    absolute = plan("FROM b\nWORKDIR /abs/./x/..\n", images)
    assert runtime(absolute)["WorkingDir"] == "/abs/./x/.."
    assert created_by(absolute) == ["WORKDIR /abs/./x/.."]


def test_workdir_expands_variables_with_unset_ones_empty() -> None:
    result = plan("FROM scratch\nENV D=/data\nWORKDIR $D/$UNSET/sub\n")
    assert runtime(result)["WorkingDir"] == "/data//sub"
    assert created_by(result)[-1] == "WORKDIR /data//sub"


def test_workdir_root_changes_config_without_a_layer() -> None:
    images = FakeImages({"b": base_image({"WorkingDir": "/srv"})})
    result = plan("FROM b\nWORKDIR /\n", images)
    assert runtime(result)["WorkingDir"] == "/"
    assert [(h.created_by, h.empty_layer) for h in result.history[1:]] == [("WORKDIR /", True)]


def test_maintainer_sets_author_unexpanded_and_last_one_wins() -> None:
    result = plan("FROM scratch\nMAINTAINER $USER <a@example.com>\nMAINTAINER Second\n")
    assert result.config["author"] == "Second"
    assert created_by(result) == ["MAINTAINER $USER <a@example.com>", "MAINTAINER Second"]
    assert rules(result) == [("MaintainerDeprecated", 2), ("MaintainerDeprecated", 3)]


# -- multi-stage ---------------------------------------------------------------------------


def test_only_the_target_stage_config_is_produced() -> None:
    text = (
        'FROM busybox AS build\nENV BUILD=1\nLABEL stage=build\nCMD ["build"]\n'
        "FROM scratch AS final\nCOPY --from=build /out /out\nLABEL stage=final\n"
    )
    final = plan(text)
    assert runtime(final) == {
        "Env": [DEFAULT_PATH],
        "WorkingDir": "/",
        "Labels": {"stage": "final"},
    }
    assert created_by(final) == ["COPY /out /out # buildkit", "LABEL stage=final"]
    assert final.base_image is None
    build = plan(text, target="build")
    assert runtime(build)["Cmd"] == ["build"]
    assert created_by(build) == ["ENV BUILD=1", "LABEL stage=build", 'CMD ["build"]']


def test_target_history_includes_its_base_stage_chain() -> None:
    result = plan(
        "FROM busybox AS a\nENV A=1\nFROM a AS b\nRUN b\nFROM scratch AS other\nENV O=1\n"
        "FROM b\nCOPY --from=other / /\n"
    )
    assert [h.created_by for h in result.history] == [
        "base layer 0",
        "ENV A=1",
        "RUN /bin/sh -c b # buildkit",
        "COPY / / # buildkit",
    ]

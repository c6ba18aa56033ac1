"""Typed instructions: arity, flags and values of every instruction, with BuildKit's errors."""

from __future__ import annotations

import re
from typing import TypeVar

import pytest

from strata.dockerfile.ast import Dockerfile
from strata.dockerfile.instructions import (
    DEVICE_UNSUPPORTED,
    AddInstruction,
    ArgInstruction,
    CmdInstruction,
    CopyInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    FromInstruction,
    HealthcheckInstruction,
    Instruction,
    LabelInstruction,
    Location,
    MaintainerInstruction,
    OnbuildInstruction,
    RunInstruction,
    ShellInstruction,
    StopsignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
    parse_go_duration,
    parse_instruction,
    parse_trigger,
)
from strata.dockerfile.parser import parse
from strata.errors import DockerfileError

T = TypeVar("T", bound=Instruction)


def _parsed(text: str) -> Dockerfile:
    """Parse `text`, under a `FROM scratch` unless it has a FROM of its own."""
    has_from = re.search(r"^FROM\b", text, re.MULTILINE | re.IGNORECASE)
    return parse(text if has_from else "FROM scratch\n" + text)


def _typed(text: str, kind: type[T], *, index: int = 1) -> T:
    df = _parsed(text)
    instruction = parse_instruction(df.children[index], file=df.filename, source=df.source)
    assert isinstance(instruction, kind)
    return instruction


def _message(text: str, *, index: int = 1) -> str:
    """The error of the instruction, without BuildKit's `dockerfile parse error` prefix."""
    df = _parsed(text)
    node = df.children[index]
    with pytest.raises(DockerfileError) as caught:
        parse_instruction(node, file=df.filename, source=df.source)
    prefix = f"dockerfile parse error on line {node.start_line}: "
    assert caught.value.message.startswith(prefix)
    return caught.value.message[len(prefix) :]


# -- FROM ---------------------------------------------------------------------


def test_from_with_one_argument_has_no_stage_name() -> None:
    stage = _typed("FROM alpine:3.20\n", FromInstruction, index=0)
    assert (stage.base_name, stage.stage_name, stage.platform) == ("alpine:3.20", None, "")


def test_from_stage_name_is_lower_cased_and_as_is_case_insensitive() -> None:
    stage = _typed("FROM alpine as Builder\n", FromInstruction, index=0)
    assert stage.stage_name == "builder"


def test_from_keeps_platform_and_base_unexpanded() -> None:
    stage = _typed("FROM --platform=$BUILDPLATFORM golang:${V} AS b\n", FromInstruction, index=0)
    assert (stage.platform, stage.base_name) == ("$BUILDPLATFORM", "golang:${V}")


@pytest.mark.parametrize("text", ["FROM a AS\n", "FROM a b c\n", "FROM a AS b c\n"])
def test_from_needs_one_or_three_arguments(text: str) -> None:
    assert _message(text, index=0) == "FROM requires either one or three arguments"


@pytest.mark.parametrize("name", ["1st", "stage!", "-x", "a/b"])
def test_from_rejects_stage_names_with_symbols_or_leading_digit(name: str) -> None:
    assert _message(f"FROM a AS {name}\n", index=0) == (
        f'invalid name for build stage: "{name}", '
        "name can't start with a number or contain symbols"
    )


def test_from_accepts_dots_dashes_and_underscores_in_names() -> None:
    assert _typed("FROM a AS b-1_c.d\n", FromInstruction, index=0).stage_name == "b-1_c.d"


def test_from_description_comes_from_the_comment_naming_the_stage() -> None:
    text = "# unrelated\n# build compiles the app\nFROM a AS build\n"
    assert _typed(text, FromInstruction, index=0).description == "compiles the app"


def test_from_without_matching_comment_has_no_description() -> None:
    text = "# compiles the app\nFROM a AS build\n"
    assert _typed(text, FromInstruction, index=0).description == ""


def test_from_rejects_unknown_flags() -> None:
    assert _message("FROM --plaform=x a\n", index=0) == (
        "unknown flag: --plaform (did you mean platform?)"
    )


# -- RUN ----------------------------------------------------------------------


def test_run_shell_form_is_one_string_with_shell_prepended() -> None:
    run = _typed("RUN echo  a   b\n", RunInstruction)
    assert run.prepend_shell
    assert len(run.command) == 1 and run.command[0].startswith("echo")


def test_run_exec_form_keeps_argv() -> None:
    run = _typed('RUN ["/bin/echo", "a b"]\n', RunInstruction)
    assert (run.command, run.prepend_shell) == (("/bin/echo", "a b"), False)


def test_run_keeps_heredoc_bodies() -> None:
    run = _typed("RUN <<EOF\necho hi\nEOF\n", RunInstruction)
    assert [(d.name, d.content) for d in run.heredocs] == [("EOF", "echo hi\n")]


def test_run_defaults_network_and_security() -> None:
    run = _typed("RUN true\n", RunInstruction)
    assert (run.network, run.security, run.mount_values) == ("default", "sandbox", ())


@pytest.mark.parametrize("mode", ["none", "host", "default"])
def test_run_accepts_each_network_mode(mode: str) -> None:
    assert _typed(f"RUN --network={mode} true\n", RunInstruction).network == mode


def test_run_rejects_unknown_network_mode() -> None:
    assert _message("RUN --network=bridge true\n") == 'invalid network mode "bridge"'


def test_run_accepts_insecure_security() -> None:
    assert _typed("RUN --security=insecure true\n", RunInstruction).security == "insecure"


def test_run_rejects_unknown_security() -> None:
    assert _message("RUN --security=privileged true\n") == 'security "privileged" is not valid'


def test_run_keeps_mount_values_raw_for_dispatch() -> None:
    run = _typed(
        "RUN --mount=type=cache,target=$HOME/.cache --mount=from=build,src=/o true\n",
        RunInstruction,
    )
    assert run.mount_values == ("type=cache,target=$HOME/.cache", "from=build,src=/o")
    assert run.mount_sources == ("", "build")


def test_run_rejects_variable_in_mount_from_at_parse_time() -> None:
    assert _message("RUN --mount=from=$STAGE,target=/x true\n") == (
        "'from' doesn't support variable expansion, define alias stage instead"
    )


def test_run_reports_broken_mount_csv_at_parse_time() -> None:
    # The parser unquotes flag words, so the stray quote is escaped to reach the CSV.
    assert _message('RUN --mount=type=bind,src=a\\"b true\n') == (
        'failed to parse csv mounts: parse error on line 1, column 16: bare " in non-quoted-field'
    )


def test_run_defers_mount_option_errors_to_dispatch() -> None:
    run = _typed("RUN --mount=type=tmpfs,mode=0700 true\n", RunInstruction)
    with pytest.raises(DockerfileError) as caught:
        run.mounts(lambda word: word)
    assert caught.value.message == 'mode not allowed for "tmpfs" type mounts'
    assert caught.value.line == 2


def test_run_misspelled_mount_flag_gets_a_hint() -> None:
    assert _message("RUN --mont=type=cache true\n") == "unknown flag: --mont (did you mean mount?)"


def test_run_device_is_parsed_but_refused_at_dispatch() -> None:
    run = _typed("RUN --device=vendor.com/gpu=all,required true\n", RunInstruction)
    assert [(d.name, d.required) for d in run.devices] == [("vendor.com/gpu=all", True)]
    with pytest.raises(DockerfileError) as caught:
        run.check_supported()
    assert caught.value.message == DEVICE_UNSUPPORTED


def test_run_without_device_passes_the_dispatch_check() -> None:
    _typed("RUN true\n", RunInstruction).check_supported()


# -- CMD / ENTRYPOINT / SHELL ---------------------------------------------------


def test_cmd_exec_and_shell_forms() -> None:
    assert _typed('CMD ["a", "b"]\n', CmdInstruction).command == ("a", "b")
    shell = _typed("CMD run --fast\n", CmdInstruction)
    assert (shell.command, shell.prepend_shell) == (("run --fast",), True)


def test_empty_entrypoint_array_has_no_command() -> None:
    assert _typed("ENTRYPOINT []\n", EntrypointInstruction).command == ()


def test_shell_requires_json_form() -> None:
    assert _message("SHELL /bin/bash -c\n") == "SHELL requires the arguments to be in JSON form"


def test_shell_requires_at_least_one_element() -> None:
    assert _message("SHELL []\n") == "SHELL requires at least one argument"


def test_shell_keeps_the_array() -> None:
    assert _typed('SHELL ["/bin/bash", "-c"]\n', ShellInstruction).shell == ("/bin/bash", "-c")


# -- ENV / LABEL / ARG --------------------------------------------------------


def test_env_pairs_stay_unexpanded_with_quotes() -> None:
    env = _typed('ENV A=1 B="two words" C=$A\n', EnvInstruction)
    assert [(p.key, p.value, p.legacy) for p in env.pairs] == [
        ("A", "1", False),
        ("B", '"two words"', False),
        ("C", "$A", False),
    ]


def test_env_legacy_form_takes_the_rest_of_the_line() -> None:
    env = _typed("ENV GREETING hello world\n", EnvInstruction)
    assert [(p.key, p.value, p.legacy) for p in env.pairs] == [("GREETING", "hello world", True)]


def test_label_pairs_are_kept_in_order() -> None:
    label = _typed('LABEL b=2 a="x y"\n', LabelInstruction)
    assert [(p.key, p.value) for p in label.pairs] == [("b", "2"), ("a", '"x y"')]


def test_label_without_pairs_needs_an_argument() -> None:
    assert _message("LABEL\n") == "LABEL requires at least one argument"


def test_arg_names_defaults_and_descriptions() -> None:
    arg = _typed("# VERSION release to fetch\nARG VERSION=1.2 EMPTY= BARE\n", ArgInstruction)
    assert [(a.name, a.default, a.description) for a in arg.args] == [
        ("VERSION", "1.2", "release to fetch"),
        ("EMPTY", "", ""),
        ("BARE", None, ""),
    ]


def test_arg_with_blank_name_is_rejected() -> None:
    assert _message("ARG =value\n") == "ARG names can not be blank"


def test_arg_needs_a_name() -> None:
    assert _message("ARG\n") == "ARG requires at least one argument"


# -- single-argument instructions ---------------------------------------------


@pytest.mark.parametrize("keyword", ["USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER"])
def test_single_argument_instructions_need_their_argument(keyword: str) -> None:
    assert _message(f"{keyword}\n") == f"{keyword} requires exactly one argument"


def test_user_workdir_stopsignal_maintainer_keep_raw_text() -> None:
    assert _typed("USER app:staff\n", UserInstruction).user == "app:staff"
    assert _typed("WORKDIR $HOME/src\n", WorkdirInstruction).path == "$HOME/src"
    assert _typed("STOPSIGNAL SIGQUIT\n", StopsignalInstruction).signal == "SIGQUIT"
    maintainer = _typed("MAINTAINER Jane Doe <j@x>\n", MaintainerInstruction)
    assert maintainer.maintainer == "Jane Doe <j@x>"


def test_stopsignal_ignores_flags_as_buildkit_does() -> None:
    assert _typed("STOPSIGNAL --x=1 SIGINT\n", StopsignalInstruction).signal == "SIGINT"


# -- EXPOSE / VOLUME ----------------------------------------------------------


def test_expose_sorts_raw_words_as_strings() -> None:
    assert _typed("EXPOSE 8080 443/tcp 53/udp\n", ExposeInstruction).ports == (
        "443/tcp",
        "53/udp",
        "8080",
    )


def test_expose_needs_a_port() -> None:
    assert _message("EXPOSE\n") == "EXPOSE requires at least one argument"


def test_volume_accepts_json_and_words() -> None:
    assert _typed('VOLUME ["/a", "/b"]\n', VolumeInstruction).volumes == ("/a", "/b")
    assert _typed("VOLUME /c /d\n", VolumeInstruction).volumes == ("/c", "/d")


def test_volume_rejects_empty_path() -> None:
    assert _message('VOLUME ["/a", " "]\n') == "VOLUME specified can not be an empty string"


# -- COPY / ADD -----------------------------------------------------------------


def test_copy_needs_a_destination() -> None:
    assert _message("COPY app.py\n") == (
        "COPY requires at least two arguments, but only one was provided. "
        "Destination could not be determined"
    )


def test_add_needs_a_destination() -> None:
    assert _message("ADD app.tar\n").startswith("ADD requires at least two arguments")


def test_copy_reads_every_flag() -> None:
    copy = _typed(
        "COPY --from=build --chown=app:app --chmod=0755 --link --parents "
        "--exclude=*.md --exclude=docs a b /dst/\n",
        CopyInstruction,
    )
    assert (copy.from_, copy.chown, copy.chmod) == ("build", "app:app", "0755")
    assert (copy.link, copy.parents, copy.excludes) == (True, True, ("*.md", "docs"))
    assert (copy.sources, copy.dest) == (("a", "b"), "/dst/")


def test_copy_does_not_know_checksum() -> None:
    assert _message("COPY --checksum=sha256:aa a b\n") == "unknown flag: --checksum"


def test_add_reads_every_flag() -> None:
    add = _typed(
        "ADD --chown=1:1 --chmod=644 --link --keep-git-dir --checksum=sha256:ab "
        "--unpack=false --exclude=.git https://x/y.tar /opt/\n",
        AddInstruction,
    )
    assert (add.chown, add.chmod, add.link, add.checksum) == ("1:1", "644", True, "sha256:ab")
    assert (add.keep_git_dir, add.unpack, add.excludes) == (True, False, (".git",))


def test_add_tristate_flags_are_none_when_absent() -> None:
    add = _typed("ADD a /b\n", AddInstruction)
    assert (add.keep_git_dir, add.unpack) == (None, None)


def test_add_does_not_know_from_or_parents() -> None:
    assert _message("ADD --from=x a b\n") == "unknown flag: --from"
    assert _message("ADD --parents a b\n").startswith("unknown flag: --parents")


def test_copy_heredoc_sources_become_contents() -> None:
    copy = _typed("COPY <<one <<'two' /dst/\nfirst\none\n$literal\ntwo\n", CopyInstruction)
    assert copy.sources == ()
    assert [(c.name, c.data, c.expand) for c in copy.contents] == [
        ("one", "first\n", True),
        ("two", "$literal\n", False),
    ]


def test_copy_chomped_heredoc_loses_leading_tabs() -> None:
    copy = _typed("COPY <<-EOF /x\n\t\tindented\n\tEOF\n", CopyInstruction)
    assert copy.contents[0].data == "indented\n"


def test_copy_mixes_paths_and_heredocs() -> None:
    copy = _typed("COPY a.txt <<EOF /dst/\nbody\nEOF\n", CopyInstruction)
    assert copy.sources == ("a.txt",)
    assert [c.name for c in copy.contents] == ["EOF"]


def test_copy_heredoc_delimiter_is_lexed_like_a_shell_word() -> None:
    text = 'COPY <<"E F" /dst/\nspaced\nE F\n'
    copy = _typed(text, CopyInstruction)
    # The parser splits the words at the space; each half opens no heredoc of its own.
    assert (copy.sources, copy.contents) == (('<<"E', 'F"'), ())
    copy = _typed('COPY <<"EOF" <<E\\X /dst/\nquoted\nEOF\nescaped\nEX\n', CopyInstruction)
    assert [(c.name, c.data, c.expand) for c in copy.contents] == [
        ("EOF", "quoted\n", False),
        ("EX", "escaped\n", True),
    ]


def test_copy_word_whose_delimiter_does_not_lex_is_a_path() -> None:
    copy = _typed("COPY <<'EOF /dst/\n", CopyInstruction)
    assert (copy.sources, copy.contents) == (("<<'EOF",), ())


def test_copy_refuses_heredoc_destination() -> None:
    assert _message("COPY a <<EOF\nx\nEOF\n") == "COPY cannot accept a heredoc as a destination"


# -- HEALTHCHECK --------------------------------------------------------------


def test_healthcheck_none() -> None:
    assert _typed("HEALTHCHECK NONE\n", HealthcheckInstruction).test == ("NONE",)


def test_healthcheck_none_ignores_flags_unchecked() -> None:
    check = _typed("HEALTHCHECK --bogus NONE\n", HealthcheckInstruction)
    assert check.test == ("NONE",)


def test_healthcheck_none_takes_no_arguments() -> None:
    assert _message("HEALTHCHECK NONE now\n") == "HEALTHCHECK NONE takes no arguments"


def test_healthcheck_shell_form_is_cmd_shell() -> None:
    check = _typed(
        "HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s "
        "--start-interval=500ms --retries=4 CMD curl -f http://x/\n",
        HealthcheckInstruction,
    )
    assert check.test == ("CMD-SHELL", "curl -f http://x/")
    assert (check.interval, check.timeout) == (300 * 10**9, 3 * 10**9)
    assert (check.start_period, check.start_interval, check.retries) == (90 * 10**9, 5 * 10**8, 4)


def test_healthcheck_exec_form_is_cmd() -> None:
    check = _typed('HEALTHCHECK CMD ["/bin/check", "--quiet"]\n', HealthcheckInstruction)
    assert check.test == ("CMD", "/bin/check", "--quiet")


def test_healthcheck_needs_arguments() -> None:
    assert _message("HEALTHCHECK\n") == "HEALTHCHECK requires at least one argument"


def test_healthcheck_cmd_needs_a_command() -> None:
    assert _message("HEALTHCHECK CMD\n") == "Missing command after HEALTHCHECK CMD"


def test_healthcheck_unknown_type() -> None:
    assert _message("HEALTHCHECK PING x\n") == 'Unknown type "PING" in HEALTHCHECK (try CMD)'


def test_healthcheck_interval_below_one_millisecond() -> None:
    assert _message("HEALTHCHECK --timeout=10us CMD true\n") == (
        'Interval "timeout" cannot be less than 1ms'
    )


def test_healthcheck_zero_interval_means_default() -> None:
    assert _typed("HEALTHCHECK --interval=0s CMD true\n", HealthcheckInstruction).interval == 0


def test_healthcheck_bad_duration_uses_go_wording() -> None:
    assert _message("HEALTHCHECK --interval=5 CMD true\n") == ('time: missing unit in duration "5"')
    assert _message("HEALTHCHECK --interval=5d CMD true\n") == (
        'time: unknown unit "d" in duration "5d"'
    )


def test_healthcheck_negative_retries() -> None:
    assert _message("HEALTHCHECK --retries=-2 CMD true\n") == "--retries cannot be negative (-2)"


def test_healthcheck_retries_must_be_an_integer() -> None:
    assert _message("HEALTHCHECK --retries=three CMD true\n") == (
        'strconv.ParseInt: parsing "three": invalid syntax'
    )


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [("1h2m3s", 3723 * 10**9), ("1.5s", 15 * 10**8), ("-2ms", -2 * 10**6), ("0", 0), (".5us", 500)],
)
def test_go_durations(text: str, nanoseconds: int) -> None:
    assert parse_go_duration(text) == nanoseconds


@pytest.mark.parametrize("text", ["", "s", "-", "abc"])
def test_go_duration_garbage_is_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="time: invalid duration"):
        parse_go_duration(text)


# -- ONBUILD ------------------------------------------------------------------


def test_onbuild_keeps_the_trigger_text() -> None:
    onbuild = _typed("ONBUILD RUN echo $HOME\n", OnbuildInstruction)
    assert (onbuild.trigger, onbuild.expression) == ("RUN", "RUN echo $HOME")


def test_onbuild_reattaches_heredoc_bodies() -> None:
    onbuild = _typed("onbuild COPY <<EOF /x\nhello\nEOF\n", OnbuildInstruction)
    assert onbuild.expression == "COPY <<EOF /x\nhello\nEOF"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ONBUILD ONBUILD RUN x\n", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD FROM alpine\n", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD maintainer me\n", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ],
)
def test_onbuild_forbidden_triggers(text: str, message: str) -> None:
    assert _message(text) == message


# -- common fields ------------------------------------------------------------


def test_instruction_keeps_keyword_as_typed_text_and_lines() -> None:
    run = _typed("# note\nRun echo \\\n  hi\n", RunInstruction)
    assert (run.keyword, run.name) == ("Run", "run")
    assert (run.location.start_line, run.location.end_line) == (3, 4)
    assert run.comments == ("note",)
    assert run.original.startswith("Run echo")


def test_trigger_is_typed_at_the_inheriting_from_without_parse_prefix() -> None:
    where = Location("Dockerfile", 7, 8, "source text")
    trigger = parse_trigger("COPY --from=dep /a /b", location=where)
    assert isinstance(trigger, CopyInstruction)
    assert (trigger.from_, trigger.location) == ("dep", where)
    with pytest.raises(DockerfileError) as caught:
        parse_trigger("RUN --network=moon true", location=where)
    assert caught.value.message == 'invalid network mode "moon"'
    assert (caught.value.line, caught.value.end_line) == (7, 8)


def test_trigger_with_two_instructions_is_refused() -> None:
    with pytest.raises(DockerfileError, match=r"^onbuild trigger should be a single expression$"):
        parse_trigger("RUN a\nRUN b", location=Location("Dockerfile", 3, 3))

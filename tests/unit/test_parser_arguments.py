"""How each instruction's arguments and flags are split, and how the tree dumps."""

from __future__ import annotations

import pytest

from strata.dockerfile.ast import Node
from strata.dockerfile.parser import parse
from strata.errors import DockerfileError


def node_of(line: str) -> Node:
    dockerfile = parse(line + "\n")
    assert len(dockerfile.children) == 1
    return dockerfile.children[0]


@pytest.mark.parametrize("keyword", ["RUN", "CMD", "ENTRYPOINT", "SHELL"])
def test_json_array_is_exec_form(keyword: str) -> None:
    node = node_of(f'{keyword} ["/bin/sh", "-c", "echo \\"hi\\""]')
    assert node.json_form
    assert node.args == ["/bin/sh", "-c", 'echo "hi"']


@pytest.mark.parametrize(
    "rest",
    [
        "['single', 'quotes']",
        '["unterminated"',
        '["a"] trailing',
        '["a", NaN]',
        '["big", 1e999]',
    ],
)
def test_text_that_is_not_valid_json_is_shell_form(rest: str) -> None:
    node = node_of(f"CMD {rest}")
    assert not node.json_form
    assert node.args == [rest]


def test_json_array_with_a_non_string_is_refused() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse('FROM a\nCMD ["echo", ["nested"]]\n')
    assert caught.value.message == (
        "when using JSON array syntax, arrays must be comprised of strings only"
    )
    assert caught.value.line == 2


def test_empty_json_array_has_no_arguments() -> None:
    node = node_of("CMD []")
    assert node.json_form
    assert node.args == []


def test_unpaired_surrogate_escape_decodes_to_replacement_character() -> None:
    assert node_of('CMD ["a\\ud800b"]').args == ["a\ufffdb"]


@pytest.mark.parametrize("keyword", ["COPY", "ADD", "VOLUME"])
def test_copy_like_instructions_split_on_blanks_without_quote_grouping(keyword: str) -> None:
    node = node_of(f'{keyword} "my file"  \t/dst/')
    assert not node.json_form
    assert node.args == ['"my', 'file"', "/dst/"]


def test_copy_json_form_keeps_spaces_in_paths() -> None:
    node = node_of('COPY ["my file", "/dst/"]')
    assert node.json_form
    assert node.args == ["my file", "/dst/"]


@pytest.mark.parametrize("keyword", ["FROM", "EXPOSE"])
def test_from_and_expose_split_on_blanks(keyword: str) -> None:
    assert node_of(f"{keyword} a   b\tc").args == ["a", "b", "c"]


@pytest.mark.parametrize("keyword", ["WORKDIR", "USER", "MAINTAINER", "STOPSIGNAL"])
def test_single_string_instructions_take_the_rest_of_the_line(keyword: str) -> None:
    assert node_of(f"{keyword}   a b  'c'").args == ["a b  'c'"]


def test_env_assignments_come_as_key_value_equals_triples() -> None:
    node = node_of('ENV a=1 b="two words" c=three\\ words')
    assert node.args == ["a", "1", "=", "b", '"two words"', "=", "c", "three\\ words", "="]


def test_legacy_env_takes_the_rest_of_the_line_as_value() -> None:
    assert node_of("ENV PATH /usr/bin  /bin").args == ["PATH", "/usr/bin  /bin", ""]


def test_legacy_env_without_a_value_is_refused() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse("FROM a\nENV PATH\n")
    assert caught.value.message == "ENV must have two arguments"


def test_env_word_without_equals_after_an_assignment_is_refused() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse('FROM a\nLABEL a=b "c d"\n')
    assert caught.value.message == (
        'Syntax error - can\'t find = in "\\"c d\\"". Must be of the form: name=value'
    )


def test_label_uses_the_same_pairs_as_env() -> None:
    assert node_of('LABEL "com.example"="x y" legacy=1').args == [
        '"com.example"',
        '"x y"',
        "=",
        "legacy",
        "1",
        "=",
    ]


def test_arg_keeps_quotes_and_escapes_of_each_word() -> None:
    assert node_of("ARG a b=\"1 2\" c='x' d=e\\ f").args == ["a", 'b="1 2"', "c='x'", "d=e\\ f"]


def test_healthcheck_has_a_type_then_its_command() -> None:
    shell = node_of("HEALTHCHECK --interval=5s CMD curl -f http://x/")
    assert (shell.flags, shell.args, shell.json_form) == (
        ["--interval=5s"],
        ["CMD", "curl -f http://x/"],
        False,
    )
    exec_form = node_of('HEALTHCHECK CMD ["curl", "-f"]')
    assert (exec_form.args, exec_form.json_form) == (["CMD", "curl", "-f"], True)
    assert node_of("HEALTHCHECK NONE").args == ["NONE"]
    assert node_of("HEALTHCHECK").args == []


def test_onbuild_holds_its_trigger_as_a_child() -> None:
    node = node_of('ONBUILD copy --from=x ["a", "b"]')
    assert node.value == "onbuild"
    assert node.child is not None
    assert (node.child.value, node.child.flags, node.child.args, node.child.json_form) == (
        "copy",
        ["--from=x"],
        ["a", "b"],
        True,
    )
    assert node.args == ["copy", "a", "b"]
    assert node.dump() == 'onbuild (copy ["--from=x"] "a" "b")'


def test_leading_double_dash_words_are_flags_with_quotes_removed() -> None:
    node = node_of('RUN --mount=type=cache,target="/root/.cache" --network=none echo --not-a-flag')
    assert node.flags == ["--mount=type=cache,target=/root/.cache", "--network=none"]
    assert node.args == ["echo --not-a-flag"]


def test_double_dash_ends_the_flags() -> None:
    node = node_of("COPY --link -- --weird-name /dst")
    assert node.flags == ["--link"]
    assert node.args == ["--weird-name", "/dst"]


def test_flag_value_may_use_the_escape_character() -> None:
    assert node_of("COPY --chown=a\\ b x y").flags == ["--chown=a b"]


def test_line_of_only_flags_has_no_arguments() -> None:
    node = node_of("RUN --network=host")
    assert (node.flags, node.args) == (["--network=host"], [])


def test_original_is_the_joined_line() -> None:
    assert node_of("  RUN   echo  hi  ").original == "RUN   echo  hi  "


def test_dump_renders_nodes_in_buildkit_notation() -> None:
    dockerfile = parse(
        "FROM busybox AS base\n"
        "COPY --from=base --chown=1:1 a b\n"
        'RUN echo "tab\there" \\\\ é\u00a0\n'
        "CMD []\n"
    )
    assert dockerfile.dump() == (
        '(from "busybox" "AS" "base")\n'
        '(copy ["--from=base" "--chown=1:1"] "a" "b")\n'
        '(run "echo \\"tab\\there\\" \\\\\\\\ é")\n'
        "(cmd)"
    )


def test_dump_escapes_non_printable_characters_as_go_does() -> None:
    node = node_of("RUN a\x01b\u00a0c\u200bd\U000e0001")
    assert node.dump() == 'run "a\\x01b\\u00a0c\\u200bd\\U000e0001"'


def test_deeply_nested_valid_json_is_refused_as_not_strings() -> None:
    depth = 3000
    with pytest.raises(DockerfileError, match="arrays must be comprised of strings only"):
        parse("CMD " + "[" * depth + "]" * depth + "\n")


@pytest.mark.parametrize(
    "rest",
    ["[" * 3000, "[" * 10001 + "]" * 10001],
    ids=["unterminated", "deeper-than-go-allows"],
)
def test_deeply_nested_json_go_cannot_decode_is_shell_form(rest: str) -> None:
    node = node_of("CMD " + rest)
    assert (node.json_form, node.args) == (False, [rest])

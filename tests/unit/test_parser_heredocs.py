"""Heredocs: which lines open them, how their bodies are read, and what they record."""

from __future__ import annotations

import pytest

from strata.dockerfile.ast import Heredoc
from strata.dockerfile.parser import chomp_heredoc_content, parse, parse_heredoc
from strata.errors import DockerfileError


def test_run_heredoc_body_is_read_verbatim_and_spans_its_lines() -> None:
    dockerfile = parse(
        "FROM a\nRUN <<EOF\n# not a comment\n\nRUN not an instruction \\\nEOF\nUSER x\n"
    )
    run = dockerfile.children[1]
    assert run.args == ["<<EOF"]
    assert run.heredocs == [
        Heredoc(name="EOF", content="# not a comment\n\nRUN not an instruction \\\n")
    ]
    assert (run.start_line, run.end_line) == (2, 6)
    assert dockerfile.children[2].start_line == 7


def test_dash_heredoc_is_marked_chomp_and_its_terminator_may_be_indented_with_tabs() -> None:
    run = parse("RUN <<-END\n\tindented\n\tEND\n").children[0]
    assert run.heredocs == [Heredoc(name="END", content="\tindented\n", chomp=True)]


def test_indented_terminator_does_not_end_a_plain_heredoc() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse("FROM a\nRUN <<END\n\tEND\n")
    assert caught.value.message == "unterminated heredoc"
    assert (caught.value.line, caught.value.end_line) == (2, 3)


@pytest.mark.parametrize(
    ("opener", "name"),
    [("<<'EOF'", "EOF"), ('<<"EOF"', "EOF"), ("<<E'O'F", "EOF"), ("<<'one two'", "one two")],
)
def test_quoting_any_part_of_the_delimiter_turns_expansion_off(opener: str, name: str) -> None:
    copy = parse(f"COPY {opener} /dst\nbody $X\n{name}\n").children[0]
    assert copy.heredocs == [Heredoc(name=name, content="body $X\n", expand=False)]


def test_unquoted_delimiter_leaves_expansion_on() -> None:
    assert parse("COPY <<EOF /dst\n$X\nEOF\n").children[0].heredocs[0].expand


def test_several_heredocs_on_one_line_are_read_in_order() -> None:
    copy = parse("COPY <<A <<B /dst/\nB\nA\nA\nB\n").children[0]
    assert copy.args == ["<<A", "<<B", "/dst/"]
    assert copy.heredocs == [Heredoc(name="A", content="B\n"), Heredoc(name="B", content="A\n")]


def test_heredoc_may_name_a_file_descriptor_and_follow_a_command() -> None:
    run = parse("RUN python3 3<<PY\nprint(1)\nPY\n").children[0]
    assert run.args == ["python3 3<<PY"]
    assert run.heredocs == [Heredoc(name="PY", content="print(1)\n", file_descriptor=3)]


def test_blanks_between_the_arrows_and_the_delimiter_are_allowed() -> None:
    assert parse("RUN <<  EOF  > out\nx\nEOF\n").children[0].heredocs[0].name == "EOF"


def test_heredoc_is_found_after_a_continuation() -> None:
    run = parse("RUN --network=none \\\n  <<EOF\nbody\nEOF\n").children[0]
    assert run.flags == ["--network=none"]
    assert run.heredocs == [Heredoc(name="EOF", content="body\n")]


def test_onbuild_trigger_may_open_a_heredoc() -> None:
    onbuild = parse("ONBUILD RUN <<EOF\necho hi\nEOF\n").children[0]
    assert onbuild.heredocs == [Heredoc(name="EOF", content="echo hi\n")]
    assert onbuild.child is not None
    assert onbuild.child.heredocs == onbuild.heredocs


@pytest.mark.parametrize(
    "line",
    ['RUN ["<<EOF"]', "USER <<EOF", 'RUN "<<EOF"', "RUN '<<EOF'", "ONBUILD ONBUILD RUN <<EOF"],
)
def test_lines_that_cannot_open_a_heredoc_leave_the_next_line_alone(line: str) -> None:
    dockerfile = parse(f"{line}\nEOF\n")
    assert dockerfile.children[0].heredocs == []
    assert dockerfile.children[1].keyword == "EOF"


def test_heredoc_terminator_may_end_in_crlf_and_body_keeps_it() -> None:
    run = parse("RUN <<EOF\r\nline\r\nEOF\r\n").children[0]
    assert run.heredocs == [Heredoc(name="EOF", content="line\r\n")]


def test_unterminated_heredoc_is_refused_with_the_lines_it_spans() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse("FROM a\nCOPY <<ONE <<TWO /d\n1\nONE\n2\n")
    assert caught.value.message == "unterminated heredoc"
    assert (caught.value.line, caught.value.end_line) == (2, 5)


def test_body_of_last_line_without_newline_has_none() -> None:
    with pytest.raises(DockerfileError):
        parse("RUN <<EOF\nbody")
    assert parse("RUN <<EOF\nbody\nEOF").children[0].heredocs[0].content == "body\n"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("<<EOF", Heredoc(name="EOF", content="")),
        ("<<-'EOF'", Heredoc(name="EOF", content="", expand=False, chomp=True)),
        ("<<eo\\'f", Heredoc(name="eo'f", content="")),
        ("<< -EOF", Heredoc(name="-EOF", content="")),
        ("<<$EOF", Heredoc(name="$EOF", content="")),
    ],
)
def test_parse_heredoc_reads_a_delimiter_word(word: str, expected: Heredoc) -> None:
    assert parse_heredoc(word) == expected


@pytest.mark.parametrize("word", ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"])
def test_parse_heredoc_ignores_words_that_open_nothing(word: str) -> None:
    assert parse_heredoc(word) is None


@pytest.mark.parametrize("word", ["<<'EOF", '<<"EOF', "<<EOF'"])
def test_parse_heredoc_refuses_unterminated_quotes(word: str) -> None:
    with pytest.raises(DockerfileError, match="unexpected end of statement"):
        parse_heredoc(word)


def test_chomp_strips_leading_tabs_of_every_line() -> None:
    assert chomp_heredoc_content("\t\thello\n\tworld\n  kept\n") == "hello\nworld\n  kept\n"


def test_empty_quoted_delimiter_opens_no_heredoc() -> None:
    # Lexing `""` gives no word at all, so BuildKit sees no delimiter.
    dockerfile = parse('COPY <<"" /x\nRUN y\n')
    assert dockerfile.children[0].heredocs == []
    assert dockerfile.children[1].args == ["y"]

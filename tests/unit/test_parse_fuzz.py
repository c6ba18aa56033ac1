"""Whatever text it is given, the parser returns a tree or raises DockerfileError, nothing else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strata.dockerfile.parser import parse
from strata.errors import DockerfileError

FRAGMENTS = [
    "FROM ",
    "RUN ",
    "run ",
    "COPY ",
    "ADD ",
    "ENV ",
    "LABEL ",
    "ARG ",
    "ONBUILD ",
    "CMD ",
    "ENTRYPOINT ",
    "HEALTHCHECK ",
    "SHELL ",
    "VOLUME ",
    "EXPOSE ",
    "USER ",
    "WORKDIR ",
    "--mount=type=cache ",
    "-- ",
    "--",
    "\\",
    "`",
    "<<",
    "<<-",
    "EOF",
    "'",
    '"',
    "#",
    "# escape=`",
    "# syntax=x",
    "# check=skip=all",
    "\n",
    "\r\n",
    "\r",
    " ",
    "\t",
    "[",
    "]",
    ",",
    "=",
    "$",
    "${",
    "}",
    ":-",
    "a",
    "1",
    "\ufeff",
    "\u00a0",
    "é",
    '["a", "b"]',
    "NONE",
    "CMD",
]

dockerfile_like = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=40
).map("".join)


def _parse_or_refuse(text: str) -> None:
    try:
        dockerfile = parse(text)
    except DockerfileError as error:
        assert error.message
        assert error.source == text
        assert 0 <= error.line <= error.end_line
    else:
        assert dockerfile.children
        for node in dockerfile.children:
            assert 1 <= node.start_line <= node.end_line
        dockerfile.dump()


@settings(max_examples=250, deadline=None)
@given(dockerfile_like)
def test_dockerfile_like_text_parses_or_is_refused_cleanly(text: str) -> None:
    _parse_or_refuse(text)


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_arbitrary_text_parses_or_is_refused_cleanly(text: str) -> None:
    _parse_or_refuse(text)

"""Parser behaviours found by reading public Dockerfiles and BuildKit's own test Dockerfiles.

Each case is a small Dockerfile written here that reproduces what a real file showed when
strata's reading was compared with BuildKit's (parser dump, verdict, error line).
"""

from __future__ import annotations

from strata.dockerfile.parser import parse


def test_template_placeholder_lines_dump_as_unknown_instructions_with_an_empty_argument() -> None:
    # Jinja/Go-template Dockerfiles (`{% if ... %}`, `{{ ... }}`) reach the parser as
    # unknown instructions; BuildKit's dump shows each with one empty argument.
    text = "{% if x %}\nFROM {{ base }}\n{{ end }} trailing\n"
    assert parse(text).dump() == '({% "")\n(from "{{" "base" "}}")\n({{ "")'


def test_onbuild_with_an_unknown_trigger_keeps_the_empty_argument() -> None:
    node = parse("FROM a\nONBUILD FROBNICATE x y\n").children[1]
    assert node.dump() == 'onbuild (frobnicate "")'
    assert node.args == ["FROBNICATE", ""]

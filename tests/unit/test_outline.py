"""`--call=targets` / `--call=outline`: what is listed, in which order, and how it prints."""

from __future__ import annotations

import base64
import json

import pytest

from strata.dockerfile.instructions import Location
from strata.dockerfile.outline import (
    Outline,
    OutlineArg,
    OutlineSecret,
    build_outline,
    format_outline,
    format_targets,
    go_json,
    list_targets,
    outline_json,
    render_call,
    tabulate,
    targets_json,
)
from strata.dockerfile.parser import parse
from strata.dockerfile.stages import BuildDefinition, parse_stages
from strata.errors import DockerfileError

# Five stages; the target needs `app` (its base) and `assets` (COPY --from), not `docs`.
PROJECT = """\
# syntax=docker/dockerfile:1
ARG REGISTRY=docker.io
ARG FLAVOR=slim
# IMAGE base image for the app
ARG IMAGE="${REGISTRY}/python:${FLAVOR}"
ARG DOCS_IMAGE=nginx

# docs serves the handbook
FROM ${DOCS_IMAGE} AS docs
ARG DOCS_ONLY=1
RUN --mount=type=secret,id=docs-token true

# assets builds static files
FROM node AS assets
# NODE_ENV build mode
ARG NODE_ENV=production
RUN --mount=type=secret,id=npm,required --mount=type=ssh true

FROM ${IMAGE} AS app
ARG LEVEL
ENV SUFFIX=-$LEVEL
RUN --mount=type=secret,id=pip${SUFFIX} --mount=type=ssh,id=git,required true

# release is what ships
FROM app AS release
COPY --from=assets /dist /srv
# VERSION release number
ARG VERSION=0.1 REGISTRY
"""


def _definition(text: str = PROJECT) -> BuildDefinition:
    return parse_stages(parse(text))


def _loc(line: int) -> Location:
    return Location("Dockerfile", line, line)


# -- targets ------------------------------------------------------------------


def test_targets_lists_every_stage_with_the_last_as_default() -> None:
    targets = list_targets(_definition())
    assert [(t.name, t.default, t.description) for t in targets] == [
        ("docs", False, "serves the handbook"),
        ("assets", False, "builds static files"),
        ("app", False, ""),
        ("release", True, "is what ships"),
    ]
    assert (targets[2].base, targets[2].location.start_line) == ("${IMAGE}", 19)


def test_targets_text_aligns_columns_and_marks_default() -> None:
    assert format_targets(list_targets(_definition())) == (
        "TARGET            DESCRIPTION\n"
        "docs              serves the handbook\n"
        "assets            builds static files\n"
        "app               \n"
        "release (default) is what ships\n"
    )


def test_unnamed_default_target_prints_as_default_alone() -> None:
    text = format_targets(list_targets(_definition("FROM a AS x\nFROM b\n")))
    assert text == "TARGET    DESCRIPTION\nx         \n(default) \n"


def test_targets_json_uses_buildkit_field_names_and_omits_empty_ones() -> None:
    source = "FROM --platform=linux/arm64 a AS x\nFROM b\n"
    data = targets_json(list_targets(_definition(source)), source)
    assert data["targets"] == [
        {
            "name": "x",
            "base": "a",
            "platform": "linux/arm64",
            "location": {"ranges": [{"start": {"line": 1}, "end": {"line": 1}}]},
        },
        {
            "default": True,
            "base": "b",
            "location": {"ranges": [{"start": {"line": 2}, "end": {"line": 2}}]},
        },
    ]
    assert base64.b64decode(data["sources"][0]).decode() == source


# -- outline ------------------------------------------------------------------


def test_outline_lists_args_of_the_target_and_its_dependencies_in_line_order() -> None:
    outline = build_outline(_definition(), target="release", build_args={"LEVEL": "dev"})
    assert [(a.name, a.value, a.description, a.location.start_line) for a in outline.args] == [
        ("REGISTRY", "docker.io", "", 2),
        ("FLAVOR", "slim", "", 3),
        ("IMAGE", "docker.io/python:slim", "base image for the app", 5),
        ("NODE_ENV", "production", "build mode", 16),
        ("LEVEL", "dev", "", 20),
        ("VERSION", "0.1", "release number", 28),
    ]


def test_outline_skips_unused_global_args_and_unneeded_stages() -> None:
    names = [a.name for a in build_outline(_definition(), target="release").args]
    assert "DOCS_IMAGE" not in names and "DOCS_ONLY" not in names


def test_outline_of_another_target_reports_its_own_args() -> None:
    outline = build_outline(_definition(), target="docs")
    assert [(a.name, a.value) for a in outline.args] == [
        ("DOCS_IMAGE", "nginx"),
        ("DOCS_ONLY", "1"),
    ]
    assert [s.name for s in outline.secrets] == ["docs-token"]


def test_build_arg_overrides_global_default_and_what_depends_on_it() -> None:
    outline = build_outline(_definition(), target="release", build_args={"FLAVOR": "alpine"})
    values = {a.name: a.value for a in outline.args}
    assert (values["FLAVOR"], values["IMAGE"]) == ("alpine", "docker.io/python:alpine")


def test_outline_secrets_and_ssh_come_from_needed_stages_with_expanded_ids() -> None:
    outline = build_outline(_definition(), target="release", build_args={"LEVEL": "ci"})
    assert [(s.name, s.required, s.location.start_line) for s in outline.secrets] == [
        ("npm", True, 17),
        ("pip-ci", False, 22),
    ]
    assert [(s.name, s.required, s.location.start_line) for s in outline.ssh] == [
        ("default", False, 17),
        ("git", True, 22),
    ]


def test_outline_names_the_target_and_its_description() -> None:
    outline = build_outline(_definition(), target="release")
    assert (outline.name, outline.description) == ("release", "is what ships")


def test_outline_follows_global_arg_defaults_transitively() -> None:
    text = (
        "ARG A=1\nARG B=2\nARG UNUSED=3\nARG A=${A}${B}\nARG C=${A}x\nARG A=${A}${C}\n"
        "FROM scratch\nARG A\nARG IN=5\nARG IN=${IN}6\n"
    )
    outline = build_outline(_definition(text))
    assert [(a.name, a.value) for a in outline.args] == [
        ("B", "2"),
        ("C", "12x"),
        ("A", "1212x"),
        ("IN", "56"),
    ]


def test_stage_arg_without_default_shows_its_empty_value() -> None:
    outline = build_outline(_definition("FROM scratch\n# TOKEN set me\nARG TOKEN\n"))
    assert [(a.name, a.value, a.description) for a in outline.args] == [("TOKEN", "", "set me")]


def test_outline_refuses_unknown_target() -> None:
    with pytest.raises(DockerfileError, match='target stage "relase" could not be found'):
        build_outline(_definition(), target="relase")


def test_outline_reports_bad_mount_options_of_needed_stages() -> None:
    text = "FROM a AS bad\nRUN --mount=type=tmpfs,uid=1 true\nFROM b\n"
    assert build_outline(_definition(text)).args == ()
    with pytest.raises(DockerfileError) as caught:
        build_outline(_definition(text), target="bad")
    assert (caught.value.message, caught.value.line) == (
        'uid not allowed for "tmpfs" type mounts',
        2,
    )


def test_outline_refuses_device_requests() -> None:
    with pytest.raises(DockerfileError, match=r"1\.14\.0-labs"):
        build_outline(_definition("FROM a\nRUN --device=gpu true\n"))


def test_outline_of_file_without_stages_fails() -> None:
    with pytest.raises(DockerfileError, match="dockerfile contains no stages to build"):
        build_outline(_definition("ARG A=1\n"))


# -- rendering ----------------------------------------------------------------


def test_outline_text_has_header_and_tables_each_followed_by_a_blank_line() -> None:
    outline = Outline(
        name="release",
        description="is what ships",
        args=(
            OutlineArg("VERSION", "0.1", "release number", _loc(3)),
            OutlineArg("LEVEL", "", "", _loc(4)),
        ),
        secrets=(OutlineSecret("npm", True, _loc(5)), OutlineSecret("pip", False, _loc(6))),
        ssh=(OutlineSecret("default", False, _loc(7)),),
    )
    assert format_outline(outline) == (
        "TARGET:      release\n"
        "DESCRIPTION: is what ships\n"
        "\n"
        "BUILD ARG   VALUE   DESCRIPTION\n"
        "VERSION     0.1     release number\n"
        "LEVEL               \n"
        "\n"
        "SECRET   REQUIRED\n"
        "npm      true\n"
        "pip      \n"
        "\n"
        "SSH       REQUIRED\n"
        "default   \n"
        "\n"
    )


def test_outline_text_without_name_or_description_has_no_header() -> None:
    outline = Outline("", "", (OutlineArg("A", "1", "", _loc(1)),), (), ())
    assert format_outline(outline) == "BUILD ARG   VALUE   DESCRIPTION\nA           1       \n\n"


def test_outline_text_of_unnamed_described_target_says_default() -> None:
    assert format_outline(Outline("", "main image", (), (), ())) == (
        "TARGET:      (default)\nDESCRIPTION: main image\n\n"
    )


def test_outline_json_fields_and_omissions() -> None:
    outline = Outline(
        name="",
        description="",
        args=(OutlineArg("A", "", "about a", _loc(2)),),
        secrets=(OutlineSecret("s", False, _loc(3)),),
        ssh=(),
    )
    data = outline_json(outline, "FROM x\n")
    assert data == {
        "args": [
            {
                "name": "A",
                "description": "about a",
                "location": {"ranges": [{"start": {"line": 2}, "end": {"line": 2}}]},
            }
        ],
        "secrets": [
            {"name": "s", "location": {"ranges": [{"start": {"line": 3}, "end": {"line": 3}}]}}
        ],
        "sources": [base64.b64encode(b"FROM x\n").decode()],
    }


def test_go_json_indents_two_spaces_and_escapes_html_characters() -> None:
    text = go_json({"d": "<a & b>", "l": []})
    assert text == '{\n  "d": "\\u003ca \\u0026 b\\u003e",\n  "l": []\n}'
    assert json.loads(text) == {"d": "<a & b>", "l": []}


def test_tabulate_pads_all_but_the_last_cell() -> None:
    assert tabulate([["a", "bb", "c"], ["ddd", "e", ""]], padding=2) == "a    bb  c\nddd  e   \n"


def test_render_call_json_ends_with_a_newline() -> None:
    definition = _definition("FROM a AS x\n")
    rendered = render_call("targets", definition, json_format=True)
    assert rendered.endswith("}\n")
    assert json.loads(rendered)["targets"][0]["name"] == "x"


def test_render_call_outline_text() -> None:
    definition = _definition("FROM a\nARG N=1\n")
    assert render_call("outline", definition) == (
        "BUILD ARG   VALUE   DESCRIPTION\nN           1       \n\n"
    )

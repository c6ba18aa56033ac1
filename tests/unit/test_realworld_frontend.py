"""Idioms of public Dockerfiles, in small files of our own, read end to end by the frontend.

Each file imitates a shape seen in official images or popular projects (docker-library
continuations with comments inside, BuildKit's own heredoc + --mount build stages,
Windows images under a backtick escape, unfilled template files). BuildKit's verdict on
each was checked on the same text; these pin strata's reading of them.
"""

from __future__ import annotations

import textwrap

import pytest

from strata.dockerfile.instructions import CopyInstruction, RunInstruction, ShellInstruction
from strata.dockerfile.parser import parse
from strata.dockerfile.stages import parse_stages
from strata.errors import DockerfileError


def dockerfile(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


OFFICIAL_IMAGE_RUN = dockerfile(
    """
    #
    # NOTE: generated file
    #

    FROM buildpack-deps:trixie-scm

    RUN set -eux; \\
    \tapt-get update; \\
    \tapt-get install -y --no-install-recommends \\
    \t\tbzip2 \\
    \t\t\\
    # jlink needs objcopy
    \t\tbinutils \\
    \t; \\

    \trm -rf /var/lib/apt/lists/*

    ENV LANG C.UTF-8
    """
)


def test_long_run_with_comment_and_blank_lines_inside_is_one_instruction() -> None:
    parsed = parse(OFFICIAL_IMAGE_RUN)
    run = parsed.children[1]
    assert (run.start_line, run.end_line) == (7, 16)
    assert run.args == [
        "set -eux; \tapt-get update; \tapt-get install -y --no-install-recommends"
        " \t\tbzip2 \t\t\t\tbinutils \t; \trm -rf /var/lib/apt/lists/*"
    ]
    # The blank line before `rm` is an empty continuation line: a warning, not an error.
    assert [(w.rule, w.line) for w in parsed.warnings] == [("NoEmptyContinuation", 16)]
    stage = parse_stages(parsed).resolve_target(None)
    assert stage.base_name == "buildpack-deps:trixie-scm"
    assert [c.name for c in stage.commands] == ["run", "env"]


BUILDKIT_STYLE = dockerfile(
    """
    # syntax=docker/dockerfile-upstream:master

    ARG GO_VERSION=1.26
    ARG XX_VERSION=1.9.0

    # xx is a helper for cross-compilation
    FROM --platform=$BUILDPLATFORM tonistiigi/xx:${XX_VERSION} AS xx

    FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS golatest
    COPY --link --from=xx / /
    WORKDIR /src
    ARG TARGETPLATFORM
    RUN --mount=type=bind,target=. \\
        --mount=type=cache,target=/root/.cache \\
        --mount=type=cache,target=/go/pkg/mod <<EOT
      set -e
      xx-go build -o /usr/bin/app ./cmd/app
    EOT

    FROM scratch AS binaries
    COPY --link --from=golatest /usr/bin/app /
    """
)


def test_buildkit_style_stages_with_mounts_and_a_heredoc_script() -> None:
    parsed = parse(BUILDKIT_STYLE)
    assert parsed.directives == {"syntax": "docker/dockerfile-upstream:master"}
    definition = parse_stages(parsed)
    assert [s.name for s in definition.stages] == ["xx", "golatest", "binaries"]
    assert definition.stages[0].platform == "$BUILDPLATFORM"
    assert definition.stages[0].description == "is a helper for cross-compilation"
    run = definition.stages[1].commands[-1]
    assert isinstance(run, RunInstruction)
    assert (run.location.start_line, run.location.end_line) == (13, 18)
    assert len(run.mount_values) == 3
    assert [(h.name, h.content) for h in run.heredocs] == [
        ("EOT", "  set -e\n  xx-go build -o /usr/bin/app ./cmd/app\n")
    ]
    needed = definition.stages_needed("binaries")
    assert [s.name for s in needed] == ["xx", "golatest", "binaries"]


WINDOWS_IMAGE = dockerfile(
    """
    # escape=`

    FROM mcr.microsoft.com/windows/servercore:ltsc2022

    SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]

    ENV JAVA_HOME C:\\openjdk-21
    RUN $newPath = ('{0}\\bin;{1}' -f $env:JAVA_HOME, $env:PATH); `
        Write-Host ('Updating PATH: {0}' -f $newPath); `
        setx /M PATH $newPath
    CMD ["jshell"]
    """
)


def test_windows_image_under_a_backtick_escape_keeps_backslashes_literal() -> None:
    parsed = parse(WINDOWS_IMAGE)
    assert parsed.escape == "`"
    commands = parse_stages(parsed).stages[0].commands
    shell = commands[0]
    assert isinstance(shell, ShellInstruction)
    assert shell.shell == ("powershell", "-Command", "$ErrorActionPreference = 'Stop';")
    assert parsed.children[2].args == ["JAVA_HOME", "C:\\openjdk-21", ""]
    run = commands[2]
    assert isinstance(run, RunInstruction)
    assert run.command == (
        "$newPath = ('{0}\\bin;{1}' -f $env:JAVA_HOME, $env:PATH);     Write-Host"
        " ('Updating PATH: {0}' -f $newPath);     setx /M PATH $newPath",
    )
    assert (run.location.start_line, run.location.end_line) == (8, 10)


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        # A Jinja template (eclipse-temurin's generator input) that was never rendered.
        (
            "{% if x %}\nFROM {{ base }}\n{% endif %}\n",
            "dockerfile parse error on line 1: unknown instruction: {%",
            1,
        ),
        # A Go-template Dockerfile (docker-library's mysql/oracle source).
        (
            'FROM oraclelinux:9-slim\n{{ if env.variant == "x" then ( -}}\nRUN true\n',
            "dockerfile parse error on line 2: unknown instruction: {{",
            2,
        ),
        # BuildKit's own parser test file: a bare HEALTHCHECK.
        (
            "FROM debian\nADD check.sh /app/\nHEALTHCHECK\n",
            "dockerfile parse error on line 3: HEALTHCHECK requires at least one argument",
            3,
        ),
    ],
)
def test_files_buildkit_refuses_fail_naming_the_line(text: str, message: str, line: int) -> None:
    with pytest.raises(DockerfileError) as caught:
        parse_stages(parse(text))
    assert (caught.value.message, caught.value.line) == (message, line)


def test_unfilled_dev_container_template_fails_on_the_arg_line() -> None:
    # vscode-dev-containers templates leave `${templateOption:...}` for a tool to fill in;
    # BuildKit's shell lexer reads `:i` as an unknown modifier when the global ARG expands.
    text = dockerfile(
        """
        # [Choice] Debian / Ubuntu version: debian-12, ubuntu-22.04
        ARG VARIANT=${templateOption:imageVariant}
        FROM mcr.microsoft.com/devcontainers/base:${VARIANT}
        WORKDIR /src
        """
    )
    definition = parse_stages(parse(text))
    with pytest.raises(DockerfileError) as caught:
        definition.stages_needed(None)
    assert caught.value.message == (
        'failed to process "${templateOption:imageVariant}": '
        "unsupported modifier (:i) in substitution"
    )
    assert caught.value.line == 2


def test_copy_from_a_stage_index_and_a_later_named_stage_as_image() -> None:
    # After BuildKit's convert tests: `--from=0` is the first stage, and a FROM naming a
    # stage that is only defined further down is an image reference, not that stage.
    text = dockerfile(
        """
        FROM later AS foo
        ENV FOO bar
        FROM foo
        COPY --from=foo f1 /
        COPY --from=0 f2 /
        FROM scratch AS later
        """
    )
    definition = parse_stages(parse(text))
    copies = [c for c in definition.stages[1].commands if isinstance(c, CopyInstruction)]
    assert [c.from_ for c in copies] == ["foo", "0"]
    assert [d.source.index for d in definition.dependencies(definition.stages[1])] == [0, 0]
    assert {i: s.index for i, s in definition.base_stages().items()} == {1: 0}
    assert [s.index for s in definition.stages_needed(None)] == [2]
    assert [s.index for s in definition.stages_needed("foo")] == [0]

"""`strata build --call=targets|outline`: options, output and errors as a user sees them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from strata.cli.build import parse_build_args, parse_call
from strata.cli.main import cli
from strata.errors import UsageError

DOCKERFILE = """\
ARG BASE=alpine
# build compiles the tool
FROM ${BASE} AS build
# MODE debug or release
ARG MODE=release
RUN --mount=type=secret,id=token true

# final is the shipped image
FROM scratch AS final
COPY --from=build /out /
"""

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    return tmp_path


def _is_error_line(line: str, message: str) -> bool:
    """The final `ERROR: ... failed to solve: <message>` line (the wrapper text is the
    error printer's business, so only its shape is checked here)."""
    return line.startswith("ERROR: ") and line.endswith("failed to solve: " + message)


def _run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["build", *args], input=stdin)


def test_targets_text(context: Path) -> None:
    result = _run("--call=targets", str(context))
    assert result.exit_code == 0
    assert result.stdout == (
        "TARGET          DESCRIPTION\n"
        "build           compiles the tool\n"
        "final (default) is the shipped image\n"
    )


def test_outline_text_for_a_target_with_build_args(context: Path) -> None:
    result = _run("--call=outline", "--target", "build", "--build-arg", "MODE=debug", str(context))
    assert result.exit_code == 0
    assert result.stdout == (
        "TARGET:      build\n"
        "DESCRIPTION: compiles the tool\n"
        "\n"
        "BUILD ARG   VALUE    DESCRIPTION\n"
        "BASE        alpine   \n"
        "MODE        debug    debug or release\n"
        "\n"
        "SECRET   REQUIRED\n"
        "token    \n"
        "\n"
    )


def test_format_json_in_the_call_value(context: Path) -> None:
    result = _run("--call=outline,format=json", str(context))
    data = json.loads(result.stdout)
    assert (data["name"], data["description"]) == ("final", "is the shipped image")
    assert [a["name"] for a in data["args"]] == ["BASE", "MODE"]


def test_format_option_gives_the_same_json(context: Path) -> None:
    via_option = _run("--call=targets", "--format=json", str(context)).stdout
    via_call = _run("--call=targets,format=json", str(context)).stdout
    assert via_option == via_call
    assert [t.get("name") for t in json.loads(via_option)["targets"]] == ["build", "final"]


def test_file_option_reads_another_dockerfile(tmp_path: Path) -> None:
    other = tmp_path / "ci.Dockerfile"
    other.write_text("FROM a AS only\n")
    result = _run("--call=targets", "-f", str(other), str(tmp_path))
    assert result.stdout == "TARGET         DESCRIPTION\nonly (default) \n"


def test_dash_file_reads_standard_input(tmp_path: Path) -> None:
    result = _run("--call=targets", "-f", "-", str(tmp_path), stdin="FROM a AS piped\n")
    assert result.stdout == "TARGET          DESCRIPTION\npiped (default) \n"


def test_lower_case_dockerfile_is_the_fallback(tmp_path: Path) -> None:
    (tmp_path / "dockerfile").write_text("FROM a AS lower\n")
    assert "lower (default)" in _run("--call=targets", str(tmp_path)).stdout


def test_unknown_target_names_the_stages(context: Path) -> None:
    result = _run("--call=outline", "--target", "finl", str(context))
    assert result.exit_code == 1
    error, hint = result.stderr.splitlines()
    assert _is_error_line(error, 'target stage "finl" could not be found (did you mean final?)')
    assert hint == "available targets: build, final"


def test_parse_error_prints_excerpt_and_error(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM a\nRUN --networks=none true\n")
    result = _run("--call=targets", str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Dockerfile:2\n" in result.stderr
    assert " >>> RUN --networks=none true" in result.stderr
    assert _is_error_line(
        result.stderr.splitlines()[-1],
        "dockerfile parse error on line 2: unknown flag: --networks (did you mean network?)",
    )


def test_missing_dockerfile_is_reported(tmp_path: Path) -> None:
    result = _run("--call=targets", str(tmp_path))
    assert result.exit_code == 1
    assert _is_error_line(
        result.stderr.rstrip("\n"),
        "failed to read dockerfile: open Dockerfile: no such file or directory",
    )


def test_missing_context_is_reported(tmp_path: Path) -> None:
    result = _run("--call=targets", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert (
        result.stderr == f'ERROR: unable to prepare context: path "{tmp_path / "nope"}" not found\n'
    )


def test_parse_call_values() -> None:
    assert parse_call("build") is None
    assert parse_call("") is None
    request = parse_call("outline,format=json")
    assert request is not None and (request.name, request.json_format) == ("outline", True)
    request = parse_call("targets,format=json", output_format="text")
    assert request is not None and not request.json_format


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("outline,colour=red", "invalid print field: colour=red"),
        ("outline,targets", "invalid print value: outline,targets"),
        ("nope", 'unsupported call "nope" (supported: check, outline, targets)'),
    ],
)
def test_parse_call_errors(value: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_call(value)
    assert caught.value.message == message


def test_build_arg_without_value_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FROM_ENV", "yes")
    monkeypatch.delenv("NOT_SET", raising=False)
    assert parse_build_args(["A=1=2", "FROM_ENV", "NOT_SET", "E="]) == {
        "A": "1=2",
        "FROM_ENV": "yes",
        "E": "",
    }


def test_installed_command_prints_the_guide_targets() -> None:
    strata = Path(sys.executable).with_name("strata")
    completed = subprocess.run(
        [str(strata), "build", "--call=targets", str(REPO / "examples" / "guide")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].split() == ["TARGET", "DESCRIPTION"]
    assert [line.split()[0] for line in lines[1:]] == [
        "base",
        "build-client",
        "build-server",
        "client",
        "server",
    ]
    assert lines[-1].startswith("server (default) ")


def test_installed_command_fails_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM a AS 9lives\n")
    strata = Path(sys.executable).with_name("strata")
    completed = subprocess.run(
        [str(strata), "build", "--call=outline", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert _is_error_line(
        completed.stderr.splitlines()[-1],
        'dockerfile parse error on line 1: invalid name for build stage: "9lives", '
        "name can't start with a number or contain symbols",
    )

"""BuildKit's own shell-expansion vectors (envVarTest, wordsTest), run unchanged.

The files come from moby/buildkit `frontend/dockerfile/shell/`; the README in
the conformance folder says how to read them. Each line is one test id.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.dockerfile.shell import expand, expand_words
from strata.errors import ShellError

CONFORMANCE = Path(__file__).parents[2].parent / "shared" / "conformance"
SHELL_VECTORS = CONFORMANCE / "buildkit" / "shell"

VECTOR_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _env_var_cases() -> list[object]:
    path = SHELL_VECTORS / "envVarTest"
    if not path.is_file():
        return []
    cases: list[object] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("#") or not line.strip():
            continue
        platform, source, expected = (field.strip() for field in line.strip().split("|"))
        if platform not in ("A", "U"):
            continue
        cases.append(pytest.param(source, expected, id=f"envVarTest:{number}:{source}"))
    return cases


def _words_cases() -> list[object]:
    path = SHELL_VECTORS / "wordsTest"
    if not path.is_file():
        return []
    cases: list[object] = []
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("#"):
            continue
        if line.startswith("ENV "):
            name, _, value = line[4:].lstrip(" ").partition("=")
            env[name] = value
            continue
        source, expected = line.split("|")
        cases.append(
            pytest.param(
                source.strip(),
                expected.lstrip(" ").split(","),
                dict(env),
                id=f"wordsTest:{number}:{source.strip()}",
            )
        )
    return cases


needs_vectors = pytest.mark.skipif(
    not SHELL_VECTORS.is_dir(), reason=f"conformance vectors not found at {SHELL_VECTORS}"
)


@needs_vectors
@pytest.mark.parametrize(("source", "expected"), _env_var_cases())
def test_env_var_vector_expands_like_buildkit(source: str, expected: str) -> None:
    if expected == "error":
        with pytest.raises(ShellError):
            expand(source, VECTOR_ENV)
    else:
        assert expand(source, VECTOR_ENV) == expected


@needs_vectors
@pytest.mark.parametrize(("source", "expected", "env"), _words_cases())
def test_words_vector_splits_like_buildkit(
    source: str, expected: list[str], env: dict[str, str]
) -> None:
    try:
        words = expand_words(source, env)
    except ShellError:
        words = ["error"]
    assert words == expected


@needs_vectors
def test_vector_files_are_not_empty() -> None:
    assert len(_env_var_cases()) > 200
    assert len(_words_cases()) > 20

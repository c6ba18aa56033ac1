"""The error tree: one module holds every user-facing error, and `located` places them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import strata.errors
from strata.dockerfile.instructions import Location
from strata.errors import (
    ConfigError,
    DockerfileError,
    ShellError,
    SourceError,
    StoreError,
    StrataError,
    UnplacedError,
    located,
    reraised_as,
)

SRC = Path(strata.errors.__file__).parent
WHERE = Location("Dockerfile.dev", 3, 5, "FROM x\n")


def test_located_turns_an_unplaced_error_into_a_dockerfile_error_at_the_place() -> None:
    with pytest.raises(DockerfileError) as caught, located(WHERE):
        raise ConfigError("bad value")
    error = caught.value
    assert type(error) is DockerfileError
    assert (error.message, error.file, error.line, error.end_line, error.source) == (
        "bad value",
        "Dockerfile.dev",
        3,
        5,
        "FROM x\n",
    )
    assert error.__suppress_context__


def test_located_keeps_the_message_after_its_prefix() -> None:
    expected = r'^parse error: failed to process "\$\{": x$'
    with (
        pytest.raises(DockerfileError, match=expected),
        located(WHERE, ShellError, prefix="parse error: "),
    ):
        raise ShellError("x", word="${")


def test_located_lets_other_kinds_pass_unchanged() -> None:
    with pytest.raises(SourceError), located(WHERE, ShellError):
        raise SourceError("not a shell error")
    with pytest.raises(StoreError), located(WHERE):
        raise StoreError("not unplaced")


def test_every_strata_error_class_is_defined_in_errors_py() -> None:
    error_names = {
        name
        for name, value in vars(strata.errors).items()
        if isinstance(value, type) and issubclass(value, StrataError)
    }
    elsewhere = []
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & error_names:
                    elsewhere.append(f"{path.relative_to(SRC)}:{node.name}")
    assert elsewhere == []


def test_every_unplaced_error_is_drawn_in_the_docstring() -> None:
    doc = strata.errors.__doc__ or ""
    for name, value in vars(strata.errors).items():
        if isinstance(value, type) and issubclass(value, StrataError):
            assert f" {name} " in doc, name
    assert issubclass(ShellError, UnplacedError)


def test_reraised_as_keeps_the_message_in_the_callers_kind() -> None:
    expected = r'^at x: failed to process "\$\{": bad$'
    with (
        pytest.raises(ConfigError, match=expected) as caught,
        reraised_as(ConfigError, ShellError, prefix="at x: "),
    ):
        raise ShellError("bad", word="${")
    assert type(caught.value) is ConfigError
    assert caught.value.__suppress_context__
    with pytest.raises(SourceError), reraised_as(ConfigError, ShellError):
        raise SourceError("passes through")

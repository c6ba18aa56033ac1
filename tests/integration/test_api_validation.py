"""`strata.api.build` and `strata build` on inputs that are not what they should be:
bytes that are not UTF-8 and requests no flag would make. Each ends in one clear
`StrataError` (exit code and message on the CLI), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.api import BuildRequest, build
from strata.errors import DockerfileError
from tests.integration.guide_fixtures import build_root, busybox_tarball, strata

__all__ = ["build_root", "busybox_tarball"]

LATIN1_DOCKERFILE = (
    b"# Autor: J\xfcrgen (Latin-1, as old editors save it)\nFROM busybox:strata-test\nRUN true\n"
)


def _project(directory: Path, dockerfile: bytes, dockerignore: bytes | None = None) -> Path:
    directory.mkdir()
    (directory / "Dockerfile").write_bytes(dockerfile)
    if dockerignore is not None:
        (directory / ".dockerignore").write_bytes(dockerignore)
    return directory


def test_latin1_dockerfile_is_a_dockerfile_error_naming_file_and_line(
    build_root: Path, tmp_path: Path
) -> None:
    project = _project(tmp_path / "p", LATIN1_DOCKERFILE)
    with pytest.raises(DockerfileError) as caught:
        build(BuildRequest(context=project), root=build_root)
    assert (caught.value.file, caught.value.line) == ("Dockerfile", 1)
    assert "invalid UTF-8 byte 0xfc on line 1" in caught.value.message


def test_latin1_dockerignore_is_a_dockerfile_error_naming_it(
    build_root: Path, tmp_path: Path
) -> None:
    project = _project(
        tmp_path / "p", b"FROM busybox:strata-test\n", dockerignore=b"ok\nign\xf3rame\n"
    )
    with pytest.raises(DockerfileError) as caught:
        build(BuildRequest(context=project), root=build_root)
    assert (caught.value.file, caught.value.line) == (".dockerignore", 2)


@pytest.mark.parametrize("from_stdin", [False, True], ids=["file", "dash-f-stdin"])
def test_cli_reports_a_non_utf8_dockerfile_without_a_traceback(
    build_root: Path, tmp_path: Path, from_stdin: bool
) -> None:
    project = _project(tmp_path / "p", LATIN1_DOCKERFILE)
    args = ["build", "--progress=plain", str(project)]
    if from_stdin:
        args[1:1] = ["-f", "-"]
    done = strata(build_root, *args, stdin=LATIN1_DOCKERFILE if from_stdin else None)
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "Traceback" not in err
    assert "invalid UTF-8 byte 0xfc on line 1" in err

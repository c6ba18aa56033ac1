"""Bad input gets one clear error and loses nothing, through the real `strata` binary.

For every wrong invocation: a non-zero exit (1; `strata run` may answer 125 as
`docker run` does for its own errors; 2 only where docker/buildx also reject the input
as a usage error), exactly one error line naming what is wrong (the option's value, the
file, or for a Dockerfile the `<file>:<line>` excerpt BuildKit prints), never a Python
traceback, and the same state root then builds normally.

All cases share one state root, so each one also proves the root survived the others.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from strata.export.tarball_import import import_tarball
from strata.store.images import ImageStore
from strata.store.root import StateRoot
from tests.integration.guide_fixtures import BUSYBOX_IMAGE, STRATA, busybox_tarball

__all__ = ["busybox_tarball"]

GOOD_DOCKERFILE = "FROM busybox:strata-test\nRUN echo ok > /ok\n"


@dataclass(frozen=True)
class Scene:
    """Where a case runs: a state root holding busybox, a good project, scratch space."""

    root: Path
    project: Path
    scratch: Path

    def dockerfile(self, name: str, text: str) -> str:
        """Write a Dockerfile called `name` into the scratch dir; its path."""
        path = self.scratch / name
        path.write_text(text)
        return str(path)


@dataclass(frozen=True)
class BadInput:
    """One wrong invocation and what its error must say."""

    args: Callable[[Scene], list[str]]
    names: tuple[str, ...] = ()
    """Every one of these appears in the error line."""
    at: str | None = None
    """The Dockerfile excerpt's header line (`<file>:<line>`), when the error has a place."""
    any_of: tuple[str, ...] = ()
    """At least one of these appears in the error line."""
    codes: frozenset[int] = frozenset({1})
    usage_error_allowed: bool = False
    """docker/buildx reject this as a usage error too, so click's exit 2 is fine."""
    stdout: str = ""
    """What standard output holds besides the error (`docker inspect` prints `[]`)."""
    before: tuple[str, ...] = ()
    """Lines a command prints before its error, as docker does (`Unable to find image`)."""


RUN_CODES = frozenset({1, 125})


def _build(*args: str) -> Callable[[Scene], list[str]]:
    """`strata build --progress=plain ARGS... <good project>`."""
    return lambda s: ["build", "--progress=plain", *args, str(s.project)]


def _build_file(name: str, text: str) -> Callable[[Scene], list[str]]:
    """`strata build -f <scratch>/NAME <good project>` with that Dockerfile text."""
    return lambda s: ["build", "--progress=plain", "-f", s.dockerfile(name, text), str(s.project)]


def _run(*args: str) -> Callable[[Scene], list[str]]:
    return lambda s: ["run", "--rm", *args]


def _write_garbage(s: Scene) -> str:
    path = s.scratch / "garbage.tar"
    path.write_bytes(b"this is not a tar archive\n" * 3)
    return str(path)


def _empty_dockerfile_context(s: Scene) -> list[str]:
    context = s.scratch / "empty"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text("")
    return ["build", "--progress=plain", str(context)]


CASES: dict[str, BadInput] = {
    # -- build: context and Dockerfile -------------------------------------------------
    "build-missing-context": BadInput(
        lambda s: ["build", "--progress=plain", str(s.scratch / "no-such-dir")],
        names=("no-such-dir", "not found"),
    ),
    "build-missing-dockerfile": BadInput(
        lambda s: ["build", "--progress=plain", "-f", str(s.scratch / "nope"), str(s.project)],
        names=("nope", "no such file or directory"),
    ),
    "build-unknown-instruction": BadInput(
        _build_file("Unknown.Dockerfile", "FROM busybox:strata-test\nFOO bar\n"),
        names=("unknown instruction: FOO",),
        at="Unknown.Dockerfile:2",
    ),
    "build-unknown-run-flag": BadInput(
        _build_file("Flag.Dockerfile", "FROM busybox:strata-test\nRUN --mont=type=cache true\n"),
        names=("unknown flag: --mont",),
        at="Flag.Dockerfile:2",
    ),
    "build-unterminated-heredoc": BadInput(
        _build_file("Heredoc.Dockerfile", "FROM busybox:strata-test\nRUN <<EOF\necho hi\n"),
        names=("heredoc",),
        at="Heredoc.Dockerfile:2",
    ),
    "build-shell-not-json": BadInput(
        _build_file("Shell.Dockerfile", 'FROM busybox:strata-test\nSHELL ["/bin/sh", -c]\n'),
        names=("SHELL requires the arguments to be in JSON form",),
        at="Shell.Dockerfile:2",
    ),
    "build-empty-dockerfile": BadInput(
        _empty_dockerfile_context, names=("the Dockerfile cannot be empty",)
    ),
    "build-unknown-target": BadInput(
        _build("--target", "nope"), names=('target stage "nope" could not be found',)
    ),
    # -- build: options (buildx: commands/build.go, util/buildflags/*.go) ---------------
    "build-output-unknown-type": BadInput(_build("-o", "type=bogus"), names=("bogus",)),
    "build-output-local-without-dest": BadInput(_build("-o", "type=local"), names=("dest",)),
    "build-output-field-without-value": BadInput(
        _build("-o", "type=local,dest"), names=("invalid value dest",)
    ),
    "build-secret-field-without-value": BadInput(
        _build("--secret", "id"), names=("invalid field 'id' must be a key=value pair",)
    ),
    "build-secret-unknown-key": BadInput(
        _build("--secret", "id=s,foo=bar"), names=("unexpected key 'foo'",)
    ),
    "build-secret-missing-source": BadInput(
        lambda s: [
            "build",
            "--progress=plain",
            "--secret",
            f"id=s,src={s.scratch / 'no-such-secret'}",
            str(s.project),
        ],
        names=("no-such-secret",),
    ),
    "build-bad-platform": BadInput(_build("--platform", "bogus/x/y/z"), names=("bogus/x/y/z",)),
    "build-bogus-progress": BadInput(
        lambda s: ["build", "--progress=bogus", str(s.project)],
        names=("invalid progress mode bogus",),
    ),
    # listToMap: a build arg or label with an empty key is refused before anything runs.
    "build-arg-empty-key": BadInput(
        _build("--build-arg", "=x"), names=('invalid key-value pair "=x": empty key',)
    ),
    "build-arg-empty": BadInput(
        _build("--build-arg", ""), names=('invalid key-value pair "": empty key',)
    ),
    "build-label-empty-key": BadInput(
        _build("--label", "=x"), names=('invalid key-value pair "=x": empty key',)
    ),
    # -- build: failures while building -------------------------------------------------
    "build-unknown-base-image": BadInput(
        _build_file("Base.Dockerfile", "FROM alpine:3.20\nRUN true\n"),
        # No registry is reachable from the test machine (or the tag is unknown).
        names=("docker.io/library/alpine:3.20",),
        any_of=("cannot reach registry-1.docker.io", "not found", "pull access denied"),
        at="Base.Dockerfile:1",
    ),
    "build-failing-run": BadInput(
        _build_file("Fail.Dockerfile", "FROM busybox:strata-test\nRUN exit 3\n"),
        names=('process "/bin/sh -c exit 3" did not complete successfully: exit code: 3',),
        at="Fail.Dockerfile:2",
    ),
    "build-missing-copy-source": BadInput(
        _build_file("Copy.Dockerfile", "FROM busybox:strata-test\nCOPY nothere /x\n"),
        names=('"/nothere": not found',),
        at="Copy.Dockerfile:2",
    ),
    # -- run ----------------------------------------------------------------------------
    "run-unknown-image": BadInput(
        _run("nope:1", "true"),
        before=("Unable to find image 'nope:1' locally",),
        any_of=("cannot reach registry-1.docker.io", "not found", "pull access denied"),
        codes=RUN_CODES,
    ),
    "run-volume-without-target": BadInput(
        _run("-v", "bogus", BUSYBOX_IMAGE, "true"), names=("bogus",), codes=RUN_CODES
    ),
    "run-volume-missing-source": BadInput(
        lambda s: ["run", "--rm", "-v", f"{s.scratch / 'no-such-src'}:/x", BUSYBOX_IMAGE, "true"],
        names=("no-such-src",),
        codes=RUN_CODES,
    ),
    # docker run reads --env-file while parsing its flags and reports it as a usage error.
    "run-env-file-missing": BadInput(
        lambda s: ["run", "--rm", "--env-file", str(s.scratch / "no-such-env"), BUSYBOX_IMAGE],
        names=("no-such-env",),
        codes=RUN_CODES,
        usage_error_allowed=True,
    ),
    # docker/cli opts.ValidateEnv refuses an empty name while parsing flags (a usage
    # error): "invalid environment variable: =x".
    "run-env-empty-name": BadInput(
        _run("-e", "=x", BUSYBOX_IMAGE, "true"),
        names=("=x",),
        codes=RUN_CODES,
        usage_error_allowed=True,
    ),
    # docker run accepts any network name; the daemon then refuses an unknown one.
    "run-unknown-network": BadInput(
        _run("--network", "bogus", BUSYBOX_IMAGE, "true"), names=("bogus",), codes=RUN_CODES
    ),
    # -- images -------------------------------------------------------------------------
    "load-missing-file": BadInput(
        lambda s: ["load", "-i", str(s.scratch / "missing.tar")], names=("missing.tar",)
    ),
    "load-not-a-tar": BadInput(lambda s: ["load", "-i", _write_garbage(s)], names=("garbage",)),
    "import-not-a-tar": BadInput(
        lambda s: ["import", _write_garbage(s), "junk:1"], names=("garbage",)
    ),
    "import-missing-file": BadInput(
        lambda s: ["import", str(s.scratch / "missing.tar"), "junk:1"], names=("missing.tar",)
    ),
    "tag-invalid-reference": BadInput(
        lambda s: ["tag", BUSYBOX_IMAGE, "UPPER:bad"], names=("UPPER:bad",)
    ),
    "rmi-unknown": BadInput(lambda s: ["rmi", "nope:1"], names=("nope:1",)),
    "inspect-unknown": BadInput(lambda s: ["inspect", "nope:1"], names=("nope:1",), stdout="[]\n"),
    "save-unknown": BadInput(
        lambda s: ["save", "-o", str(s.scratch / "out.tar"), "nope:1"], names=("nope:1",)
    ),
    # -- prune and du -------------------------------------------------------------------
    "prune-filter-without-value": BadInput(
        lambda s: ["prune", "-f", "--filter", "bogus"], names=("filter",)
    ),
    "prune-filter-bad-duration": BadInput(
        lambda s: ["prune", "-f", "--filter", "until=forever"], names=("until", "forever")
    ),
    "prune-bad-keep-storage": BadInput(
        lambda s: ["prune", "-f", "--keep-storage", "12zz"], names=("--keep-storage", "12zz")
    ),
    "du-filter-without-value": BadInput(lambda s: ["du", "--filter", "bogus"], names=("filter",)),
}


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory, busybox_tarball: Path) -> Path:
    """One state root with `busybox:strata-test`, used by every case in turn."""
    path = tmp_path_factory.mktemp("bad-input") / "root"
    root = StateRoot.open(path)
    try:
        images = ImageStore(root)
        with open(busybox_tarball, "rb") as fh:
            manifest = import_tarball(images, fh, source="busybox", changes=['CMD ["sh"]'])
        images.put(BUSYBOX_IMAGE, manifest)
    finally:
        root.close()
    return path


def strata(root: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STRATA), "--root", str(root), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        timeout=300,
        env=dict(os.environ, PROGRESS_NO_TRUNC="1"),
    )


def assert_one_clear_error(case: BadInput, done: subprocess.CompletedProcess[str]) -> None:
    err = done.stderr
    assert "Traceback" not in err, err
    is_build = done.args[3] == "build"
    if done.returncode == 2 and case.usage_error_allowed:
        # click's usage error: "Usage: ...", "Try ...", "Error: <message>".
        errors = [line for line in err.splitlines() if line.startswith("Error: ")]
    else:
        assert done.returncode in case.codes, f"exit {done.returncode}:\n{err}"
        errors = [line for line in err.splitlines() if line.startswith("ERROR: ")]
        if not is_build:
            # No progress here: the error line is all there is.
            assert [line for line in err.splitlines() if line.strip()] == [
                *case.before,
                *errors,
            ], err
    assert len(errors) == 1, err
    (line,) = errors
    for name in case.names:
        assert name in line, err
    if case.any_of:
        assert any(word in line for word in case.any_of), err
    if case.at is not None:
        assert case.at in err.splitlines(), err
        assert any(line.startswith(" ") and " | >>> " in line for line in err.splitlines()), err
    assert done.stdout == case.stdout, done.stdout


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_fails_with_one_clear_error_and_the_root_still_builds(
    name: str, shared_root: Path, tmp_path: Path
) -> None:
    case = CASES[name]
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(GOOD_DOCKERFILE)
    scene = Scene(root=shared_root, project=project, scratch=tmp_path)

    done = strata(shared_root, case.args(scene), cwd=tmp_path)
    assert_one_clear_error(case, done)

    good = strata(shared_root, ["build", "--progress=plain", "-t", "good", str(project)], tmp_path)
    assert good.returncode == 0, good.stderr
    assert sorted(p.name for p in (shared_root / "tmp").iterdir()) == []

"""BuildKit's own parser test vectors: strata must read every Dockerfile the way BuildKit does.

testfiles/NAME holds a Dockerfile and `result`, BuildKit's AST dump plus a newline; the dump of
our tree must equal it byte for byte. testfiles-negative/NAME holds Dockerfiles BuildKit
refuses to parse. The vectors live outside the repository (../shared/conformance); without
them these tests skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.dockerfile.parser import parse
from strata.errors import DockerfileError

VECTORS = Path(__file__).parents[2].parent / "shared" / "conformance" / "buildkit" / "parser"


def _cases(kind: str) -> list[str]:
    folder = VECTORS / kind
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir())


def _read(path: Path) -> str:
    # newline="" keeps CRLF and lone CR exactly as the vector has them.
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def _require_vectors(kind: str) -> None:
    if not (VECTORS / kind).is_dir():
        pytest.skip(f"conformance vectors not present at {VECTORS / kind}")


@pytest.mark.parametrize("name", _cases("testfiles") or ["<absent>"])
def test_dump_matches_buildkit_result(name: str) -> None:
    _require_vectors("testfiles")
    case = VECTORS / "testfiles" / name
    dockerfile = parse(_read(case / "Dockerfile"), filename=str(case / "Dockerfile"))
    assert dockerfile.dump() + "\n" == _read(case / "result")


@pytest.mark.parametrize("name", _cases("testfiles-negative") or ["<absent>"])
def test_buildkit_rejected_dockerfile_is_rejected(name: str) -> None:
    _require_vectors("testfiles-negative")
    case = VECTORS / "testfiles-negative" / name
    with pytest.raises(DockerfileError):
        parse(_read(case / "Dockerfile"), filename=str(case / "Dockerfile"))

"""Data flows down the layers of docs/architecture.md: each package imports nothing from
the layers above it (at any depth: function-level imports count, they run too)."""

from __future__ import annotations

import ast
from pathlib import Path

import strata

SRC = Path(strata.__file__).parent
TOP = ("strata.builder", "strata.client", "strata.api", "strata.cli", "strata.gc")

# package -> the strata modules it must not import (besides TOP, which no layer below
# the API may import).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "dockerfile": (
        "strata.plan",
        "strata.solver",
        "strata.worker",
        "strata.store",
        "strata.export",
        "strata.registry",
        "strata.remotecache",
    ),
    "plan": (
        "strata.worker",
        "strata.store",
        "strata.solver",
        "strata.export",
        "strata.registry",
        "strata.remotecache",
    ),
    "image": (
        "strata.plan",
        "strata.solver",
        "strata.worker",
        "strata.store",
        "strata.export",
        "strata.registry",
        "strata.dockerfile",
    ),
    "store": (
        "strata.worker",
        "strata.solver",
        "strata.export",
        "strata.registry",
        "strata.dockerfile",
        "strata.plan",
        "strata.remotecache",
    ),
    "worker": (
        "strata.dockerfile",
        "strata.plan.convert",
        "strata.solver",
        "strata.export",
        "strata.registry",
        "strata.remotecache",
    ),
    "registry": ("strata.solver", "strata.dockerfile", "strata.export", "strata.remotecache"),
    "solver": ("strata.dockerfile", "strata.export", "strata.registry"),
    "export": ("strata.dockerfile",),
    "progress": (
        "strata.plan",
        "strata.solver",
        "strata.worker",
        "strata.store",
        "strata.export",
        "strata.registry",
        "strata.dockerfile",
        "strata.image",
        "strata.remotecache",
    ),
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_no_layer_imports_a_layer_above_it() -> None:
    offenders: list[str] = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((SRC / package).rglob("*.py")):
            for line, module in imports_of(path):
                if under(module, forbidden + TOP):
                    offenders.append(f"{path.relative_to(SRC)}:{line}: {module}")
    assert offenders == []


def test_the_check_sees_an_upward_import() -> None:
    assert under("strata.solver.records", FORBIDDEN["store"])
    assert not under("strata.store.root", FORBIDDEN["solver"])

"""The import graph of `src/strata` has no cycles, and the light entry points stay light.

Only imports that run when a module is imported count: those at module level (also
inside `try`, `if` and class bodies), not those inside functions, which run on call,
nor those under `if TYPE_CHECKING:`, which never run. `from package import name` is an
edge to `package.name` when that is a module, else to `package`; an edge to a module is
also an edge to each package above it, whose `__init__` runs first, except the
importer's own packages, which are initialised before it whatever it imports (a name
imported from one of them is still an edge).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import strata

SRC = Path(strata.__file__).parent
HEAVY = ("strata.solver", "strata.worker", "strata.store", "strata.api", "strata.plan")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_nodes(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements among `body` that run when the module is imported."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_time_nodes(node.body)
            yield from _import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _import_time_nodes(block)
            for handler in node.handlers:
                yield from _import_time_nodes(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _import_time_nodes(node.body)


def _with_packages(target: str, known: dict[str, Path]) -> set[str]:
    """`target` and the packages above it: importing `a.b.c` runs `a` and `a.b` first."""
    parts = target.split(".")
    return {m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if m in known}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _import_time_nodes(ast.parse(path.read_text()).body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            own_packages = _with_packages(name, known)
            for target in targets:
                graph[name].update(_with_packages(target, known) - own_packages)
                if target in known and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_walk_sees_import_time_edges_only() -> None:
    graph = import_graph()
    assert "strata.errors" in graph["strata.dockerfile.flags"]
    # strata/__init__.py names strata.api only under TYPE_CHECKING.
    assert "strata.api" not in graph["strata"]


def test_cycle_finder_reports_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_strata_modules() -> None:
    assert cycles(import_graph()) == []


def _loaded_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys\nprint('\\n'.join(m for m in sys.modules if m.startswith('strata')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return proc.stdout.split()


def _heavy(loaded: list[str]) -> list[str]:
    return [m for m in loaded if m.startswith(HEAVY)]


def test_import_strata_loads_no_build_engine_code() -> None:
    loaded = _loaded_after("import strata")
    assert "strata" in loaded
    assert _heavy(loaded) == []


def test_the_dockerfile_parser_loads_without_the_rest_of_the_frontend() -> None:
    loaded = _loaded_after("import strata.dockerfile.parser")
    assert "strata.dockerfile.parser" in loaded
    assert _heavy(loaded) == []
    assert "strata.dockerfile.outline" not in loaded
    assert "strata.dockerfile.instructions" not in loaded


def test_strata_version_and_help_load_no_build_engine_code() -> None:
    for flag in ("--version", "--help"):
        code = (
            f"import sys\nsys.argv = ['strata', {flag!r}]\n"
            "from strata.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass"
        )
        loaded = _loaded_after(code)
        assert "strata.cli.main" in loaded
        assert _heavy(loaded) == [], flag


def test_a_used_public_name_is_imported_on_demand() -> None:
    loaded = _loaded_after("import strata\nstrata.build")
    assert "strata.api" in loaded


def test_graph_counts_names_from_a_package_init_but_not_deferred_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "strata"
    package.mkdir()
    (package / "__init__.py").write_text("from strata.a import f\n")
    (package / "a.py").write_text("from strata.b import g\n\ndef f() -> None: ...\n")
    (package / "b.py").write_text("from strata import f\n\ndef g() -> None: ...\n")
    (package / "c.py").write_text("def h() -> None:\n    from strata.c2 import x\n")
    (package / "c2.py").write_text("from strata.c import h\nx = 1\n")
    (package / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from strata.d2 import y\n"
    )
    (package / "d2.py").write_text("from strata.d import TYPE_CHECKING as y\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", package)
    assert cycles(import_graph()) == [["strata", "strata.a", "strata.b"]]


@pytest.mark.parametrize("package", ["strata", "strata.dockerfile"])
def test_lazy_packages_resolve_and_list_every_public_name(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) <= set(dir(module))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        module.not_a_name  # noqa: B018

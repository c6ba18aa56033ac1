"""The solver's scheduler is op-agnostic: op kinds are known only to their runners and
the one registry that maps op types to them."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import strata.solver.solve as solve_module
from strata.plan import ops
from strata.solver.runners import RunnerServices, op_runners

OP_CLASS_NAMES = {cls.__name__ for cls in typing.get_args(ops.Op)} | {"Op"}


def _names_in(node: ast.AST) -> set[str]:
    found: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute):
            found.add(child.attr)
    return found


def _op_type_checks(source: str) -> list[str]:
    """Every `isinstance(..., <op class>)`, `match` class pattern on an op class and
    import of an op class in `source`, as `line: what`."""
    tree = ast.parse(source)
    found: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("isinstance", "issubclass")
            and len(node.args) == 2
        ):
            hit = _names_in(node.args[1]) & OP_CLASS_NAMES
            if hit:
                found.append(f"{node.lineno}: {node.func.id} on {sorted(hit)}")
        elif isinstance(node, ast.MatchClass):
            hit = _names_in(node.cls) & OP_CLASS_NAMES
            if hit:
                found.append(f"{node.lineno}: match on {sorted(hit)}")
        elif isinstance(node, ast.ImportFrom) and node.module == "strata.plan.ops":
            hit = {alias.name for alias in node.names} & OP_CLASS_NAMES
            if hit:
                found.append(f"{node.lineno}: imports {sorted(hit)}")
    return found


def test_scheduler_never_checks_op_types() -> None:
    source = Path(solve_module.__file__).read_text()
    assert _op_type_checks(source) == []


def test_op_type_scan_finds_a_type_switch() -> None:
    # The scan itself must be able to fail.
    switch = (
        "from strata.plan.ops import ExecOp, Vertex\n"
        "def f(op):\n"
        "    if isinstance(op, ExecOp | ops.FileOp):\n"
        "        return 1\n"
        "    match op:\n"
        "        case ops.MergeOp():\n"
        "            return 2\n"
        "    return isinstance(op, Vertex)\n"
    )
    assert _op_type_checks(switch) == [
        "1: imports ['ExecOp']",
        "3: isinstance on ['ExecOp', 'FileOp']",
        "6: match on ['MergeOp']",
    ]


def test_registry_has_a_runner_for_every_op_kind() -> None:
    fields = typing.get_type_hints(RunnerServices)
    services = RunnerServices(**dict.fromkeys(fields, None))  # type: ignore[arg-type]
    runners = op_runners(services)
    assert set(runners) == set(typing.get_args(ops.Op))
    for runner in runners.values():
        assert callable(runner.cache_map) and callable(runner.run)

"""The CLI only parses and prints: `strata/cli/` imports the public layers and nothing
else (the engine is reached through `strata.Client` and `strata.api`)."""

from __future__ import annotations

import ast
from pathlib import Path

import strata

CLI = Path(strata.__file__).parent / "cli"

# The public layers: the package itself, its API (Client, values, helpers), the errors,
# the progress printers, the Dockerfile frontend (public on its own), and the CLI's own
# modules.
PUBLIC = ("strata", "strata.api", "strata.errors", "strata.progress", "strata.dockerfile")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every `import x` / `from x import ...` in the file, at any depth (function-level
    imports count: they run when the command does)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def is_public(module: str) -> bool:
    if not module.startswith("strata"):
        return True  # the standard library and click
    if module == "strata" or module.startswith("strata.cli"):
        return True
    return any(module == p or module.startswith(p + ".") for p in PUBLIC[1:])


def test_the_cli_imports_only_the_public_layers() -> None:
    files = sorted(CLI.glob("*.py"))
    assert len(files) >= 8
    offenders = [
        f"{path.name}:{line}: {module}"
        for path in files
        for line, module in imported_modules(path)
        if not is_public(module)
    ]
    assert offenders == []


def test_the_check_sees_an_engine_import() -> None:
    assert not is_public("strata.solver.solve")
    assert not is_public("strata.store.images")
    assert is_public("strata.progress.bus") and is_public("strata.api")

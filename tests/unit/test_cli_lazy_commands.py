"""`strata --help` lists commands from `LAZY_COMMANDS` without importing them; the table
must say what the commands themselves say, or the listing would drift from them."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from click.testing import CliRunner

import strata.cli
from strata.cli.main import LAZY_COMMANDS, cli

CLI_DIR = Path(strata.cli.__file__).parent


def _command_modules() -> list[str]:
    """Every module of strata/cli that defines `COMMANDS`."""
    return sorted(
        f"strata.cli.{path.stem}"
        for path in CLI_DIR.glob("*.py")
        if "\nCOMMANDS" in path.read_text()
    )


def test_lazy_table_names_every_command_of_every_command_module() -> None:
    assert sorted({entry.module for entry in LAZY_COMMANDS.values()}) == _command_modules()
    for module_name in _command_modules():
        module = importlib.import_module(module_name)
        names = {str(command.name) for command in module.COMMANDS}
        listed = {name for name, entry in LAZY_COMMANDS.items() if entry.module == module_name}
        assert names == listed, module_name


def test_lazy_summary_is_the_first_paragraph_of_the_commands_help() -> None:
    for name, entry in LAZY_COMMANDS.items():
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None, name
        first_paragraph = (command.help or "").split("\n\n")[0]
        assert entry.summary == first_paragraph, name
        # A short_help, hidden or deprecated command would list differently from its stand-in.
        assert (command.short_help, command.hidden, command.deprecated) == (None, False, False)


def test_help_lists_the_same_rows_before_and_after_the_commands_are_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "commands", {})  # as at start, whatever other tests loaded
    runner = CliRunner()
    lazy_help = runner.invoke(cli, ["--help"], terminal_width=60).output
    for name in LAZY_COMMANDS:
        cli.get_command(None, name)  # type: ignore[arg-type]
    loaded_help = runner.invoke(cli, ["--help"], terminal_width=60).output
    assert "Commands:" in lazy_help
    assert lazy_help == loaded_help


def test_unknown_command_is_refused_as_before() -> None:
    result = CliRunner().invoke(cli, ["nosuch"])
    assert result.exit_code == 2
    assert "No such command 'nosuch'." in result.output


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["--version"], prog_name="strata")
    assert result.output == f"strata, version {version('strata')}\n"

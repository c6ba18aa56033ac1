"""The global `--snapshotter` option (and $STRATA_SNAPSHOTTER) reach every command."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from strata.cli.main import cli


def global_options(args: list[str]) -> dict[str, Any]:
    """What `strata ARGS images` puts in ctx.obj for the sub-command to read."""
    assert cli.callback is not None
    with cli.make_context("strata", [*args, "images"]) as ctx:
        ctx.invoke(cli.callback, **ctx.params)
        return dict(ctx.obj)


@pytest.mark.parametrize("choice", ["auto", "overlay", "native"])
def test_snapshotter_option_is_stored_for_commands(choice: str) -> None:
    assert global_options(["--snapshotter", choice])["snapshotter"] == choice


def test_snapshotter_defaults_to_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRATA_SNAPSHOTTER", raising=False)
    assert global_options([])["snapshotter"] == "auto"


def test_snapshotter_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATA_SNAPSHOTTER", "native")
    assert global_options([])["snapshotter"] == "native"
    assert global_options(["--snapshotter", "overlay"])["snapshotter"] == "overlay"


def test_unknown_snapshotter_is_refused_naming_the_option() -> None:
    result = CliRunner().invoke(cli, ["--snapshotter", "zfs", "images"])
    assert result.exit_code == 2
    assert "Invalid value for '--snapshotter': 'zfs' is not one of" in result.output

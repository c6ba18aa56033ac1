"""Which OCI runtime the executor uses: runc unless told otherwise, crun without runc."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.errors import ExecError
from strata.worker.executor import pick_runtime


def install(bin_dir: Path, *names: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        tool = bin_dir / name
        tool.write_text("#!/bin/sh\nexit 0\n")
        tool.chmod(0o755)


def test_runc_is_the_default_when_both_are_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path / "bin", "runc", "crun")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert pick_runtime(None) == "runc"
    assert pick_runtime("crun") == "crun"


def test_crun_is_used_when_runc_is_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path / "bin", "crun")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert pick_runtime(None) == "crun"
    with pytest.raises(ExecError, match="OCI runtime runc is not installed"):
        pick_runtime("runc")


def test_no_runtime_at_all_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(ExecError, match="no OCI runtime found: install runc"):
        pick_runtime(None)

"""`strata build --call=outline` knows a base image's ENV when the local store has it.

BuildKit resolves the base image to expand ARG defaults that use its variables; strata
reads the image from the state root instead, and leaves an image it lacks unknown.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from strata.cli.main import cli
from strata.store.images import ImageStore
from strata.store.root import StateRoot

DOCKERFILE = "FROM tools:1 AS build\nARG GREETING=${BASEENV:-unknown}\n"


def _outline_args(root: Path, context: Path) -> dict[str, object]:
    result = CliRunner().invoke(
        cli, ["--root", str(root), "build", "--call=outline,format=json", str(context)]
    )
    assert result.exit_code == 0, result.output
    outline = json.loads(result.output)
    return {arg["name"]: arg.get("value") for arg in outline["args"]}


def _context(tmp_path: Path) -> Path:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    return context


def test_stored_base_image_env_expands_arg_defaults(tmp_path: Path) -> None:
    root_dir = tmp_path / "root"
    root = StateRoot.open(root_dir)
    try:
        images = ImageStore(root)
        config = {"architecture": "amd64", "os": "linux", "config": {"Env": ["BASEENV=hello"]}}
        images.put("tools:1", images.commit_image(config, []))
    finally:
        root.close()
    assert _outline_args(root_dir, _context(tmp_path))["GREETING"] == "hello"


def test_image_missing_from_the_store_stays_unknown(tmp_path: Path) -> None:
    root_dir = tmp_path / "root"
    StateRoot.open(root_dir).close()
    assert _outline_args(root_dir, _context(tmp_path))["GREETING"] == "unknown"


def test_outline_does_not_create_a_state_root(tmp_path: Path) -> None:
    root_dir = tmp_path / "never"
    assert _outline_args(root_dir, _context(tmp_path))["GREETING"] == "unknown"
    assert not root_dir.exists()

"""Helpers shared by the planner tests: a stand-in image store and a one-call planner.

The fake store is a test double for the image store the engine passes in; the planner
only ever sees `ResolvedImage` values, so nothing else is imitated.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from strata.dockerfile.parser import parse
from strata.errors import StoreError
from strata.plan.convert import plan_build
from strata.plan.ops import ExecOp, FileOp, Platform, Vertex
from strata.plan.result import BuildPlan, ImageResolver, ResolvedImage

DIGEST = "sha256:" + "1" * 64


def image_config(
    *,
    env: list[str] | None = None,
    cmd: list[str] | None = None,
    workdir: str = "",
    user: str = "",
    onbuild: list[str] | None = None,
    layers: int = 1,
    arch: str = "amd64",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    runtime: dict[str, Any] = {"Env": env if env is not None else ["PATH=/usr/bin:/bin"]}
    if cmd is not None:
        runtime["Cmd"] = cmd
    if workdir:
        runtime["WorkingDir"] = workdir
    if user:
        runtime["User"] = user
    if onbuild:
        runtime["OnBuild"] = onbuild
    runtime.update(extra or {})
    return {
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{i:064d}" for i in range(layers)]},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": f"base layer {i}"}
            for i in range(layers)
        ],
    }


class FakeImages:
    """Images by name, with the normalization BuildKit shows (`docker.io/library/...`)."""

    def __init__(self, images: Mapping[str, dict[str, Any]] | None = None) -> None:
        self.images = dict(images or {})
        self.calls: list[tuple[str, Platform]] = []

    def __call__(self, ref: str, platform: Platform) -> ResolvedImage:
        self.calls.append((ref, platform))
        config = self.images.get(ref)
        if config is None:
            if ref.split(":")[0] in ("busybox", "alpine", "debian", "python"):
                config = image_config()
            else:
                raise StoreError(f"{ref}: not found")
        name = ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"
        if "/" not in name:
            name = "docker.io/library/" + name
        return ResolvedImage(ref=name, manifest_digest=DIGEST, config=config)


def plan(text: str, images: ImageResolver | None = None, **options: Any) -> BuildPlan:
    """Plan a Dockerfile given as (dedented) text."""
    df = parse(textwrap.dedent(text).lstrip("\n"))
    return plan_build(df, resolve_image=images or FakeImages(), **options)


def names(result: BuildPlan) -> list[str]:
    """Names of the target's vertices that carry a step prefix or FROM, in build order."""
    return [
        v.name
        for v in result.all_vertices()
        if v.name.startswith(("[", "FROM")) and not v.name.startswith("[internal]")
    ]


def last_exec(result: BuildPlan) -> ExecOp:
    assert result.target is not None
    op = result.target.op
    assert isinstance(op, ExecOp)
    return op


def last_file(result: BuildPlan) -> FileOp:
    assert result.target is not None
    op = result.target.op
    assert isinstance(op, FileOp)
    return op


def vertices_of(result: BuildPlan, kind: type) -> list[Vertex]:
    return [v for v in result.all_vertices() if isinstance(v.op, kind)]


def created_by(result: BuildPlan) -> list[str]:
    """History texts of the new entries (those with BuildKit's comment)."""
    return [h.created_by for h in result.history if h.comment == "buildkit.dockerfile.v0"]

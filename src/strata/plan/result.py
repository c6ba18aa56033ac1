"""What the planner hands the engine: the op graph of the target plus its image metadata.

Everything here is data: the engine solves `target`, maps the non-empty `history` entries
to the new layers in order, and writes `config` with `rootfs`, `history` and `created`
filled in at export.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strata.plan.ops import Platform, SourceLocation, Vertex, post_order


@dataclass(frozen=True)
class ResolvedImage:
    """A base image as the image store knows it.

    `ref` is the normalized reference (`docker.io/library/alpine:3.20`), `manifest_digest`
    pins it, `config` is the OCI image config JSON (with `rootfs` and `history`).
    """

    ref: str
    manifest_digest: str
    config: Mapping[str, Any]


# resolve_image(ref as written after expansion, platform) -> ResolvedImage. The engine
# implements it over the image store; an unknown name raises a StrataError it writes.
ImageResolver = Callable[[str, Platform], ResolvedImage]


@dataclass(frozen=True)
class HistoryEntry:
    """One `history` item of the image config (`created` filled at export unless pinned)."""

    created_by: str
    empty_layer: bool
    comment: str = ""
    created: str | None = None
    author: str = ""


@dataclass(frozen=True)
class PlanWarning:
    """A lint-style finding: `<rule>: <message> (line <line>)` when printed."""

    rule: str
    message: str
    line: int

    def __str__(self) -> str:
        return f"{self.rule}: {self.message} (line {self.line})"


@dataclass(frozen=True)
class SecretUse:
    """A secret or ssh id some RUN of the target's stages asks for."""

    id: str
    required: bool


@dataclass
class StagePlan:
    """One converted stage: its display name, vertices in creation order, final state."""

    name: str
    index: int
    vertices: list[Vertex] = field(default_factory=list)
    state: Vertex | None = None
    platform: Platform = field(default_factory=Platform)


@dataclass
class BuildPlan:
    """The target's graph and image metadata, plus what the engine needs around them."""

    target: Vertex | None
    config: dict[str, Any]
    history: list[HistoryEntry]
    base_image: ResolvedImage | None
    stages: list[StagePlan]
    platform: Platform
    # vertex digest -> where it comes from / which stage made it (first stage wins).
    locations: dict[str, SourceLocation] = field(default_factory=dict)
    stage_of: dict[str, str] = field(default_factory=dict)
    warnings: list[PlanWarning] = field(default_factory=list)
    secrets_used: list[SecretUse] = field(default_factory=list)
    ssh_used: list[SecretUse] = field(default_factory=list)
    # cache-mount ids whose directories --no-cache(-filter) must empty before the build.
    cache_ids_to_clear: list[str] = field(default_factory=list)
    source_date_epoch: int | None = None

    def all_vertices(self) -> list[Vertex]:
        """Every vertex reachable from the target, inputs before users, each once."""
        return post_order(self.target) if self.target is not None else []

"""Build stages of a Dockerfile: naming, targets, global ARGs and the stage graph.

`parse_stages` groups typed instructions under their FROM the way BuildKit's
instructions.Parse does; `BuildDefinition` then answers the questions a build asks
before any work starts: which stage is the target, which stages it needs and in what
order (buildkit: frontend/dockerfile/dockerfile2llb/convert.go, toDispatchState,
buildStageDependencyGraph, resolveTarget, allReachableStages; validations.go).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from strata.dockerfile.ast import Node, ParseWarning
from strata.dockerfile.instructions import (
    ArgDefinition,
    ArgInstruction,
    CopyInstruction,
    FromInstruction,
    Instruction,
    Location,
    MaintainerInstruction,
    OnbuildInstruction,
    RunInstruction,
    parse_instruction,
    parse_trigger,
)
from strata.dockerfile.mounts import split_csv
from strata.dockerfile.shell import ShellLex
from strata.dockerfile.suggest import with_suggestion
from strata.errors import DockerfileError, ShellError, UnknownTargetError, located
from strata.gotext import go_atoi, go_lower, go_quote
from strata.hostplatform import host_platform as oci_host_platform

RESERVED_STAGE_NAMES = ("context", "scratch")
EMPTY_IMAGE = "scratch"


class DockerfileLike(Protocol):
    """What stage parsing needs of a parsed Dockerfile (the parser's `Dockerfile`)."""

    @property
    def children(self) -> list[Node]: ...

    @property
    def filename(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def escape(self) -> str: ...


@dataclass(frozen=True)
class Stage:
    """One `FROM` and the instructions under it.

    `name` is lower-cased (None when unnamed); `base_name` and `platform` are as
    written, expanded later with the global ARGs.
    """

    index: int
    name: str | None
    base_name: str
    platform: str
    commands: tuple[Instruction, ...]
    description: str
    location: Location
    from_instruction: FromInstruction

    @property
    def display_name(self) -> str:
        """BuildKit's name in messages: the stage name, else `stage-<index>`."""
        return self.name if self.name is not None else f"stage-{self.index}"


@dataclass(frozen=True)
class MetaArg:
    """A global ARG (before the first FROM) after build-args and defaults were applied.

    `value` is None when the ARG has neither default nor build-arg; `uses` names the
    global ARGs its default referred to (for the outline's "used args").
    """

    definition: ArgDefinition
    value: str | None
    uses: frozenset[str]
    location: Location


@dataclass(frozen=True)
class GlobalArgs:
    """The environment FROM lines are expanded with, and each global ARG's details."""

    env: dict[str, str]
    args: dict[str, MetaArg]


@dataclass(frozen=True)
class Dependency:
    """An edge of the stage graph: `stage` needs `source` because of `instruction`."""

    source: Stage
    instruction: Instruction
    written: str  # the --from / from= value as written
    mount_target: str | None = None  # set when the edge is a RUN --mount from=


@dataclass(frozen=True)
class BuildDefinition:
    """All stages of one Dockerfile, its global ARGs, and lint warnings found on the way."""

    stages: tuple[Stage, ...]
    meta_args: tuple[ArgInstruction, ...]
    file: str
    source: str
    escape: str = "\\"
    warnings: tuple[ParseWarning, ...] = field(default=())

    def find_stage(self, name: str) -> Stage | None:
        """The stage called `name`, case-insensitively; a later duplicate wins (as BuildKit)."""
        wanted = go_lower(name)
        found = None
        for stage in self.stages:
            if stage.name == wanted:
                found = stage
        return found

    def _require_stages(self) -> None:
        if not self.stages:
            raise DockerfileError("dockerfile contains no stages to build", file=self.file)

    def resolve_target(self, target: str | None) -> Stage:
        """The stage `--target` names (case-insensitive), or the last stage when None/empty."""
        self._require_stages()
        if not target:
            return self.stages[-1]
        stage = self.find_stage(target)
        if stage is None:
            names = [s.display_name for s in self.stages if s.name is not None]
            raise UnknownTargetError(
                with_suggestion(
                    f"target stage {go_quote(target)} could not be found", target, names
                ),
                file=self.file,
                stages=names,
            )
        return stage

    def global_args(
        self,
        build_args: Mapping[str, str] | None = None,
        predefined: Mapping[str, str] | None = None,
    ) -> GlobalArgs:
        """Resolve the global ARGs (BuildKit's buildMetaArgs).

        `predefined` (TARGETPLATFORM, BUILDARCH, ...; see `predefined_args`) seeds the
        environment; each ARG then takes its `--build-arg` value, else its default
        expanded with what came before, else stays unset.
        """
        build_args = build_args or {}
        env = dict(predefined or {})
        args: dict[str, MetaArg] = {}
        lex = ShellLex(self.escape)
        for instruction in self.meta_args:
            for definition in instruction.args:
                uses: frozenset[str] = frozenset()
                value: str | None
                if definition.name in build_args:
                    value = build_args[definition.name]
                elif definition.default is not None:
                    with located(instruction.location, ShellError):
                        result = lex.process_word(definition.default, env)
                    value = result.value
                    uses = result.matched
                    if definition.name in uses:
                        # `ARG X=${X}suffix` inherits what the earlier X used.
                        previous = args.get(definition.name)
                        uses = (uses - {definition.name}) | (
                            previous.uses if previous else frozenset()
                        )
                else:
                    value = None
                if value is not None:
                    env[definition.name] = value
                args[definition.name] = MetaArg(definition, value, uses, instruction.location)
        return GlobalArgs(env=env, args=args)

    def expand_from(self, stage: Stage, env: Mapping[str, str]) -> tuple[str, frozenset[str]]:
        """The stage's base name expanded with the global ARGs, and the ARGs it used."""
        with located(stage.location, ShellError):
            result = ShellLex(self.escape).process_word(stage.base_name, env)
        if result.value == "":
            raise stage.location.error(f"base name ({stage.base_name}) should not be blank")
        return result.value, result.matched

    def base_stages(self, env: Mapping[str, str] | None = None) -> dict[int, Stage]:
        """For each stage built on an earlier stage, that stage (keyed by index).

        A FROM matches only stages defined above it, against their lower-cased name
        and case-sensitively, after expansion with the global ARGs (`env`; None = the
        ARG defaults without build-args).
        """
        if env is None:
            env = self.global_args({}, predefined_args(None)).env
        by_name: dict[str, Stage] = {}
        bases: dict[int, Stage] = {}
        for stage in self.stages:
            base, _ = self.expand_from(stage, env)
            if base in by_name:
                bases[stage.index] = by_name[base]
            if stage.name is not None:
                by_name[stage.name] = stage
        return bases

    def onbuild_triggers(self, stage: Stage, bases: Mapping[int, Stage]) -> tuple[Instruction, ...]:
        """The ONBUILD triggers `stage` runs before its own instructions, typed.

        Only a base stage of this file is looked at (`bases`, from `base_stages`): its
        ONBUILD lines, in order, re-parsed as BuildKit does, every error at `stage`'s FROM.
        Triggers of a base image are unknown here (no image is pulled).
        """
        base = bases.get(stage.index)
        if base is None:
            return ()
        return tuple(
            parse_trigger(command.expression, location=stage.location)
            for command in base.commands
            if isinstance(command, OnbuildInstruction)
        )

    def dependencies(
        self, stage: Stage, *, bases: Mapping[int, Stage] | None = None
    ) -> list[Dependency]:
        """Stages `stage` reads from via COPY --from and RUN --mount from= (not its base).

        With `bases` (see `base_stages`), the ONBUILD triggers it inherits from a base
        stage count too: their `--from` names this file's stages, as in BuildKit. Unknown
        names are images, not edges.
        """
        commands: Sequence[Instruction] = stage.commands
        if bases is not None:
            commands = (*self.onbuild_triggers(stage, bases), *stage.commands)
        edges: list[Dependency] = []
        for command in commands:
            if isinstance(command, CopyInstruction) and command.from_:
                source = self._copy_source(command)
                if source is not None:
                    edges.append(Dependency(source, command, command.from_))
            elif isinstance(command, RunInstruction):
                for value, raw_from in zip(
                    command.mount_values, command.mount_sources, strict=True
                ):
                    # BuildKit looks a mount without from= up as "scratch" too
                    # (convert_runmount.go, detectRunMount), so a stage named so is a dep.
                    found = self.find_stage(raw_from or EMPTY_IMAGE)
                    if found is not None:
                        edges.append(Dependency(found, command, raw_from, _raw_mount_target(value)))
        return edges

    def _copy_source(self, command: CopyInstruction) -> Stage | None:
        # BuildKit reports these without a line (convert.go toCommand); the COPY's is kept.
        with located(command.location, ShellError):
            unchanged = ShellLex(self.escape).process_word(command.from_, {}).value
        if unchanged != command.from_:
            raise command.location.error(
                "variable expansion is not supported for --from, define a new stage with "
                "FROM using ARG from global scope as a workaround"
            )
        index = go_atoi(command.from_)
        if index is None:
            return self.find_stage(command.from_)
        if not 0 <= index < len(self.stages):
            raise command.location.error(f"invalid stage index {index}")
        return self.stages[index]

    def check_cycles(self) -> None:
        """Fail on a cycle of COPY --from / mount edges anywhere in the file (as BuildKit).

        BuildKit keeps one edge per source stage, the last instruction naming it (a map),
        so that instruction is the one the error points at (validations.go).
        """
        edges: dict[int, list[Dependency]] = {}
        for stage in self.stages:
            last_per_source: dict[int, Dependency] = {}
            for dep in self.dependencies(stage):
                last_per_source[dep.source.index] = dep
            edges[stage.index] = list(last_per_source.values())
        visited: set[int] = set()
        for start in self.stages:
            path: set[int] = set()
            cycle = _find_cycle(start.index, edges, visited, path, [])
            if cycle is not None:
                first = cycle[0].location
                raise DockerfileError(
                    f"circular dependency detected on stage: {start.display_name}",
                    file=self.file,
                    line=first.start_line,
                    end_line=first.end_line,
                    source=self.source,
                )

    def stages_needed(
        self, target: str | None, *, env: Mapping[str, str] | None = None
    ) -> tuple[Stage, ...]:
        """The target and every stage it needs, in an order they can be built (file order).

        `env` is the global-ARG environment for expanding FROM lines (see
        `global_args`; None = the ARG defaults). Raises BuildKit's errors for an unknown target, a cycle, or a
        COPY --from / mount from= naming a stage defined after the one using it.
        """
        self._require_stages()
        bases = self.base_stages(env)
        target_stage = self.resolve_target(target)
        self.check_cycles()
        needed: set[int] = set()
        pending = [target_stage]
        while pending:
            stage = pending.pop()
            if stage.index in needed:
                continue
            needed.add(stage.index)
            if stage.index in bases:
                pending.append(bases[stage.index])
            pending.extend(dep.source for dep in self.dependencies(stage, bases=bases))
        ordered = [stage for stage in self.stages if stage.index in needed]
        for stage in ordered:
            for dep in self.dependencies(stage, bases=bases):
                # A trigger may read its own stage: BuildKit marks a stage dispatched
                # before running its commands.
                if dep.source.index > stage.index:
                    raise dep.instruction.location.error(_later_stage_message(dep, stage))
        return tuple(ordered)


def _later_stage_message(dep: Dependency, stage: Stage) -> str:
    if isinstance(dep.instruction, CopyInstruction):
        return (
            f"cannot copy from stage {go_quote(dep.written)}, "
            f"it needs to be defined before current stage {go_quote(stage.display_name)}"
        )
    return (
        f"cannot mount from stage {go_quote(dep.written)} to {go_quote(dep.mount_target or '')}, "
        "stage needs to be defined before current command"
    )


def _find_cycle(
    index: int,
    edges: Mapping[int, list[Dependency]],
    visited: set[int],
    path: set[int],
    trail: list[Instruction],
) -> list[Instruction] | None:
    if index in visited:
        return None
    visited.add(index)
    path.add(index)
    for dep in edges[index]:
        step = [*trail, dep.instruction]
        if dep.source.index in path:
            return step
        found = _find_cycle(dep.source.index, edges, visited, path, step)
        if found is not None:
            return found
    path.discard(index)
    return None


def _raw_mount_target(value: str) -> str:
    try:
        fields = split_csv(value)
    except ValueError:
        return ""
    target = ""
    for item in fields:
        key, _, val = item.partition("=")
        if go_lower(key) in ("target", "dst", "destination"):
            target = val
    return target


def parse_stages(dockerfile: DockerfileLike) -> BuildDefinition:
    """Type every instruction and group them into stages (BuildKit's instructions.Parse).

    ARGs before the first FROM become global ARGs; any other instruction there fails
    with `no build stage in current context`. The first bad instruction raises its
    DockerfileError. Lint warnings for stage names are collected, not raised.
    """
    file, source = dockerfile.filename, dockerfile.source
    meta_args: list[ArgInstruction] = []
    staged: list[tuple[FromInstruction, list[Instruction]]] = []
    warnings: list[ParseWarning] = []
    for node in dockerfile.children:
        instruction = parse_instruction(node, file=file, source=source)
        warnings.extend(_instruction_lint(node, instruction))
        if not staged and isinstance(instruction, ArgInstruction):
            meta_args.append(instruction)
            continue
        if isinstance(instruction, FromInstruction):
            staged.append((instruction, []))
            continue
        if not staged:
            raise instruction.location.error("no build stage in current context")
        staged[-1][1].append(instruction)
    stages = tuple(
        Stage(
            index=i,
            name=from_.stage_name,
            base_name=from_.base_name,
            platform=from_.platform,
            commands=tuple(commands),
            description=from_.description,
            location=from_.location,
            from_instruction=from_,
        )
        for i, (from_, commands) in enumerate(staged)
    )
    warnings.extend(_stage_name_lint(stages))
    return BuildDefinition(
        stages=stages,
        meta_args=tuple(meta_args),
        file=file,
        source=source,
        escape=dockerfile.escape,
        warnings=tuple(warnings),
    )


def _instruction_lint(node: Node, instruction: Instruction) -> list[ParseWarning]:
    # buildkit: instructions/parse.go runs these as it parses; texts from linter/ruleset.go.
    line = instruction.location.start_line
    found: list[ParseWarning] = []
    if isinstance(instruction, MaintainerInstruction):
        found.append(
            ParseWarning(
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label",
                line,
            )
        )
    if isinstance(instruction, FromInstruction) and len(node.args) == 3:
        written_name, as_word = node.args[2], node.args[1]
        if written_name != go_lower(written_name):
            found.append(
                ParseWarning(
                    "StageNameCasing", f"Stage name '{written_name}' should be lowercase", line
                )
            )
        keyword = instruction.keyword
        if keyword in (keyword.lower(), keyword.upper()):
            expected = as_word.lower() if keyword == keyword.lower() else as_word.upper()
            if as_word != expected:
                found.append(
                    ParseWarning(
                        "FromAsCasing",
                        f"'{as_word}' and '{keyword}' keywords' casing do not match",
                        line,
                    )
                )
    return found


def _stage_name_lint(stages: Sequence[Stage]) -> list[ParseWarning]:
    # buildkit: dockerfile2llb/validations.go (validateStageNames)
    found: list[ParseWarning] = []
    seen: set[str] = set()
    for stage in stages:
        if stage.name is None:
            continue
        line = stage.location.start_line
        if stage.name in RESERVED_STAGE_NAMES:
            found.append(
                ParseWarning(
                    "ReservedStageName",
                    f'Stage name should not use the same name as reserved stage "{stage.name}"',
                    line,
                )
            )
        if stage.name in seen:
            found.append(
                ParseWarning(
                    "DuplicateStageName",
                    f'Duplicate stage name "{stage.name}", stage names should be unique',
                    line,
                )
            )
        seen.add(stage.name)
    return found


def host_platform() -> str:
    """This machine as an OCI platform string (`linux/amd64`, `linux/arm/v7`)."""
    return "/".join(part for part in oci_host_platform() if part)


def predefined_args(
    target: str | None,
    *,
    build_platform: str | None = None,
    target_platform: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """BuildKit's automatic ARGs (BUILDPLATFORM, TARGETARCH, TARGETSTAGE, ...).

    The target platform defaults to the build platform, which defaults to this host;
    a `--build-arg` of the same name (in `overrides`) wins (dockerfile2llb/platform.go).
    """
    build = build_platform or host_platform()
    wanted = target_platform or build

    def parts(spec: str) -> tuple[str, str, str]:
        os_name, _, rest = spec.partition("/")
        arch, _, variant = rest.partition("/")
        return os_name, arch, variant

    build_os, build_arch, build_variant = parts(build)
    target_os, target_arch, target_variant = parts(wanted)
    values = {
        "BUILDPLATFORM": build,
        "BUILDOS": build_os,
        "BUILDOSVERSION": "",
        "BUILDARCH": build_arch,
        "BUILDVARIANT": build_variant,
        "TARGETPLATFORM": wanted,
        "TARGETOS": target_os,
        "TARGETOSVERSION": "",
        "TARGETARCH": target_arch,
        "TARGETVARIANT": target_variant,
        "TARGETSTAGE": target or "default",
    }
    for key, value in (overrides or {}).items():
        if key in values:
            values[key] = value
    return values

"""The conversion's working state: options of the whole build and one state per stage.

A `DispatchState` is BuildKit's dispatchState (dockerfile2llb/convert.go): the stage's
current root vertex, its build environment, working directory, user and image config,
plus the step counter that numbers its vertex names. States also stand for images and
hidden scratch inputs named by `COPY --from` and `RUN --mount`, which BuildKit registers
as extra stages (that is what turns `[1/3]` into `[stage-0 1/3]`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from strata.dockerfile.directives import CheckOptions
from strata.dockerfile.instructions import Instruction, Location
from strata.dockerfile.shell import ShellLex
from strata.dockerfile.stages import Stage
from strata.dockerfile.suggest import closest
from strata.errors import DockerfileError, ShellError, located
from strata.plan.buildargs import NON_ENV_ARGS, EnvList
from strata.plan.config import ImageState
from strata.plan.epoch import SourceEpochResolver
from strata.plan.lint import EXPERIMENTAL_RULES
from strata.plan.naming import StepCounter, uppercase_first_word
from strata.plan.ops import Platform, SourceLocation, Vertex
from strata.plan.result import ImageResolver, PlanWarning, ResolvedImage, SecretUse
from strata.sandbox import SandboxOptions


@dataclass(frozen=True)
class PlanOptions:
    """Everything about the build request the conversion reads, fixed for the build."""

    build_args: Mapping[str, str]
    resolve_image: ImageResolver
    target_platform: Platform
    build_platform: Platform
    implicit_platform: bool
    no_cache: bool
    no_cache_filter: tuple[str, ...]
    labels: Mapping[str, str]
    context_name: str
    dockerignore: tuple[str, ...]
    source_date_epoch: int | None
    network: str
    hostname: str
    cache_namespace: str
    escape: str
    file: str
    source: str
    multi_platform: bool = False
    checks: CheckOptions = field(default_factory=CheckOptions)
    resolve_source_epoch: SourceEpochResolver | None = None
    # `--add-host`, `--ulimit`, `--shm-size`, `--cgroup-parent`: set on every RUN's op.
    sandbox: SandboxOptions = field(default_factory=SandboxOptions)

    def ignores_cache(self, stage_name: str | None) -> bool:
        """BuildKit's IsNoCache: `--no-cache` hits every stage, the filter named ones."""
        if self.no_cache:
            return True
        if not stage_name:
            return False
        return any(name.lower() == stage_name.lower() for name in self.no_cache_filter)


def source_location(where: Location) -> SourceLocation:
    """The frontend's place of an instruction as the plan records it on a vertex."""
    return SourceLocation(where.file, where.start_line, where.end_line)


@dataclass
class Command:
    """An instruction to dispatch, with the states it reads (COPY --from, mount from=)."""

    instruction: Instruction
    sources: list[DispatchState | None] = field(default_factory=list)
    onbuild: bool = False
    location: Location | None = None  # where errors point (the FROM line for triggers)

    @property
    def where(self) -> Location:
        return self.location or self.instruction.location


@dataclass(eq=False)
class DispatchState:
    """One stage (or image / scratch input) while the conversion walks it."""

    base_name: str
    stage: Stage | None = None
    stage_name: str = ""  # display name; "" when the Dockerfile has a single state
    lookup_name: str | None = None  # lower-cased `AS` name
    location: Location | None = None
    unregistered: bool = False
    platform: Platform | None = None
    base: DispatchState | None = None
    deps: list[tuple[DispatchState, Command]] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    resolved: bool = False
    dispatched: bool = False
    onbuild_initialized: bool = False
    root: Vertex | None = None
    image: ImageState | None = None
    base_image: ResolvedImage | None = None
    env: EnvList = field(default_factory=EnvList)
    workdir: str = "/"
    user: str = ""
    hostname: str = ""
    network: str = "default"
    declared_args: list[tuple[str, str | None]] = field(default_factory=list)
    counter: StepCounter = field(default_factory=lambda: StepCounter("", 0))
    ignore_cache: bool = False
    cmd_set: bool = False
    # line of the last CMD / ENTRYPOINT / HEALTHCHECK in this stage (MultipleInstructionsDisallowed)
    used_once: dict[str, int] = field(default_factory=dict)
    workdir_set: bool = False
    vertices: list[Vertex] = field(default_factory=list)

    @property
    def config(self) -> ImageState:
        assert self.image is not None, "state used before its base was resolved"
        return self.image

    def record(self, vertex: Vertex) -> Vertex:
        self.vertices.append(vertex)
        return vertex


@dataclass
class SharedState:
    """What one conversion pass accumulates across stages."""

    options: PlanOptions
    context: Vertex
    lex: ShellLex
    resolved_images: dict[tuple[str, Platform], ResolvedImage]
    context_paths: set[str] = field(default_factory=set)
    warnings: list[PlanWarning] = field(default_factory=list)
    # The `check` options of the instruction being dispatched (its own `# check=` comment
    # merged in), and the rules that reported something, in order (linter CalledRules).
    active_checks: CheckOptions | None = None
    rules_reported: list[str] = field(default_factory=list)
    secrets: dict[str, SecretUse] = field(default_factory=dict)
    ssh: dict[str, SecretUse] = field(default_factory=dict)
    cache_ids_to_clear: list[str] = field(default_factory=list)

    def warn(self, warning: PlanWarning) -> None:
        """Report a lint finding unless the `check` options in force skip its rule.

        As BuildKit's Linter.Run: a skipped rule neither warns nor counts towards
        `error=true`; a repeated identical finding is listed once.
        """
        checks = self.active_checks or self.options.checks
        if not checks.runs(warning.rule, experimental=warning.rule in EXPERIMENTAL_RULES):
            return
        self.rules_reported.append(warning.rule)
        if warning not in self.warnings:
            self.warnings.append(warning)

    def expand(self, word: str, env: Mapping[str, str], where: Location) -> str:
        """A word expanded as BuildKit's dispatch does; errors point at `where`."""
        with located(where, ShellError):
            return self.lex.process_word(word, env).value

    def expand_in(self, state: DispatchState, word: str, where: Location) -> str:
        """Expand with the stage's environment, noting undefined variables (UndefinedVar).

        As convert.go `reportUnmatchedVariables`: names declared by ARG in the stage
        (even without a value) are not reported.
        """
        with located(where, ShellError):
            result = self.lex.process_word(word, state.env)
        declared = {name for name, _ in state.declared_args}
        for name in sorted(result.unmatched - declared - NON_ENV_ARGS):
            hint = closest(name, list(state.env))
            message = f"Usage of undefined variable '${name}'"
            if hint:
                message += f" (did you mean ${hint}?)"
            self.warn(PlanWarning("UndefinedVar", message, where.start_line))
        return result.value

    def display_text(self, text: str, env: Mapping[str, str], *, raw: bool = False) -> str:
        """An instruction's text for its vertex name (convert.go `processCmdEnv`).

        RUN (`raw`) keeps quotes and leaves unset variables as written; COPY/ADD/WORKDIR
        expand fully. A word that fails to expand is shown as written.
        """
        try:
            if raw:
                lex = ShellLex(self.options.escape)
                value = lex.process_word(text, env, keep_quotes=True, skip_unset=True).value
            else:
                value = self.lex.process_word(text, env).value
        except ShellError:
            value = text
        return uppercase_first_word(value)

    def error(self, message: str, where: Location) -> DockerfileError:
        return where.error(message)

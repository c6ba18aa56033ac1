"""Stage resolution: the states of a conversion, how they depend on each other, their bases.

BuildKit's dockerfile2llb does this before it dispatches a single instruction
(convert.go `toDispatchState`, `resolveReachableStages`): one dispatch state per stage,
and one per image or hidden scratch input that `COPY --from` and `RUN --mount` name; a
FROM naming an earlier stage takes it as its base; the commands' sources make a graph,
which must have no cycle; then the base images of the stages the target needs are
resolved, and the ONBUILD triggers those bases carry are prepended to the inheriting
stages, which may name new stages, so resolution repeats until nothing new appears.
"""

from __future__ import annotations

from collections.abc import Iterable

from strata.dockerfile.instructions import (
    AddInstruction,
    CopyInstruction,
    Location,
    OnbuildInstruction,
    RunInstruction,
    WorkdirInstruction,
    parse_trigger,
)
from strata.dockerfile.stages import EMPTY_IMAGE, BuildDefinition, Stage
from strata.dockerfile.suggest import with_suggestion
from strata.errors import (
    BuildError,
    DockerfileError,
    ImageReferenceError,
    PlatformError,
    ShellError,
    located,
)
from strata.gotext import go_atoi, go_quote
from strata.plan.buildargs import EnvList
from strata.plan.config import ImageState, empty_image, image_from_base, is_scratch_config
from strata.plan.naming import StepCounter
from strata.plan.ops import ImageSource, Platform, Vertex
from strata.plan.platforms import parse_platform
from strata.plan.references import check_reference
from strata.plan.state import Command, DispatchState, PlanOptions, SharedState, source_location


class StageResolver:
    """The dispatch states of one conversion and the graph between them.

    `states` lists them in registration order (the Dockerfile's stages first, then the
    images and scratch inputs commands name); `by_name` finds a stage by its lower-cased
    `AS` name. `epoch_text` is the build's SOURCE_DATE_EPOCH as RFC 3339 (None without
    one), which the image state of a resolved base carries into its new history.
    """

    def __init__(
        self,
        definition: BuildDefinition,
        shared: SharedState,
        global_args: EnvList,
        epoch_text: str | None,
    ) -> None:
        self.definition = definition
        self.shared = shared
        self.global_args = global_args
        self.epoch_text = epoch_text
        self.states: list[DispatchState] = []
        self.by_name: dict[str, DispatchState] = {}

    @property
    def options(self) -> PlanOptions:
        return self.shared.options

    def add_stage(self, stage: Stage) -> None:
        """A state for `stage`: its FROM expanded, its platform parsed, its steps counted."""
        where: Location = stage.location
        base_name, _ = self.definition.expand_from(stage, self.global_args)
        state = DispatchState(
            base_name=base_name,
            stage=stage,
            stage_name=stage.name or f"stage-{stage.index}",
            lookup_name=stage.name,
            location=where,
        )
        if stage.platform:
            state.platform = self._stage_platform(stage.platform, where)
        self._register(state)
        total = 1 if base_name != EMPTY_IMAGE and state.base is None else 0
        for command in stage.commands:
            if isinstance(
                command,
                RunInstruction | CopyInstruction | AddInstruction | WorkdirInstruction,
            ):
                total += 1
        state.counter = StepCounter(
            state.stage_name,
            total,
            platform=None,
        )
        state.ignore_cache = self.options.ignores_cache(stage.name)
        state.commands = [Command(c) for c in stage.commands]

    def _stage_platform(self, written: str, where: Location) -> Platform:
        # BuildKit prints the (empty) result of the failed expansion here.
        with located(where, ShellError, prefix="failed to process arguments for platform : "):
            expanded = self.shared.lex.process_word(written, self.global_args)
        if expanded.value == "":
            message = f"empty platform value from expression {written}"
            raise where.error(self._suggest_global_arg(message, expanded.unmatched)) from None
        try:
            return parse_platform(expanded.value)
        except PlatformError as exc:
            reason = self._suggest_global_arg(exc.message, expanded.unmatched)
            raise where.error(f"failed to parse platform {written}: {reason}") from None

    def _suggest_global_arg(self, message: str, unmatched: Iterable[str]) -> str:
        """BuildKit's wrapSuggestAny: hint at a global ARG an unset name probably meant."""
        options = list(self.global_args)
        for name in sorted(unmatched):
            hinted = with_suggestion(message, name, options)
            if hinted != message:
                return hinted
        return message

    def _register(self, state: DispatchState) -> None:
        """BuildKit's addState: a FROM naming an earlier stage makes it the base."""
        self.states.append(state)
        base = self.by_name.get(state.base_name)
        if base is not None:
            state.base = base
        if state.lookup_name:
            self.by_name[state.lookup_name.lower()] = state

    def find_stage_state(self, name: str | None, index: int) -> DispatchState:
        """The state of the stage called `name`, or at `index` when it has none."""
        if name:
            return self.by_name[name.lower()]
        return self.states[index]

    def _unregistered(self, base_name: str, where: Location | None) -> DispatchState:
        """An image or the hidden scratch input named by COPY --from / RUN --mount."""
        state = DispatchState(base_name=base_name, unregistered=True, location=where)
        self._register(state)
        return state

    def sources_for(self, command: Command) -> None:
        """Which states a COPY --from or RUN --mount reads (convert.go `toCommand`)."""
        instruction = command.instruction
        where = command.where
        if isinstance(instruction, CopyInstruction) and instruction.from_:
            from_ = instruction.from_
            with located(where, ShellError):
                unchanged = self.shared.lex.process_word(from_, {}).value
            if unchanged != from_:
                raise where.error(
                    "variable expansion is not supported for --from, define a new stage "
                    "with FROM using ARG from global scope as a workaround"
                )
            index = go_atoi(from_)
            if index is None:
                found = self.by_name.get(from_.lower())
                source = found if found is not None else self._unregistered(from_, where)
            else:
                if not 0 <= index < len(self.states):
                    raise where.error(f"invalid stage index {index}")
                source = self.states[index]
            command.sources = [source]
        elif isinstance(instruction, RunInstruction):
            sources: list[DispatchState | None] = []
            for raw_from in instruction.mount_sources:
                name = raw_from or EMPTY_IMAGE
                found = self.by_name.get(name.lower())
                # A mount's image has no place in the Dockerfile: BuildKit's errors about
                # it carry no line (convert_runmount.go `detectRunMount`).
                sources.append(found if found is not None else self._unregistered(name, None))
            command.sources = sources

    def build_dependency_graph(self) -> None:
        """Record which states each state's commands read (`deps`)."""
        for state in list(self.states):
            for command in state.commands:
                self.sources_for(command)
                for source in command.sources:
                    if source is not None:
                        state.deps.append((source, command))

    def check_cycles(self) -> None:
        """Fail on a stage that (transitively) reads itself (validations.go)."""
        visited: set[int] = set()

        def visit(state: DispatchState, path: set[int], trail: list[Command]) -> list[Command]:
            if id(state) in visited:
                return []
            visited.add(id(state))
            path.add(id(state))
            for dep, command in state.deps:
                step = [*trail, command]
                if id(dep) in path:
                    return step
                found = visit(dep, path, step)
                if found:
                    return found
            path.discard(id(state))
            return []

        for state in self.states:
            cycle = visit(state, set(), [])
            if cycle:
                raise cycle[0].where.error(
                    f"circular dependency detected on stage: {state.stage_name}"
                )

    def _reachable(self, target: DispatchState) -> list[DispatchState]:
        seen: set[int] = set()
        pending = [target]
        while pending:
            state = pending.pop()
            if id(state) in seen:
                continue
            seen.add(id(state))
            if state.base is not None:
                pending.append(state.base)
            pending.extend(dep for dep, _ in state.deps)
        return [state for state in self.states if id(state) in seen]

    def resolve(self, target: DispatchState) -> list[DispatchState]:
        """Resolve the base images of the states `target` needs, adding inherited ONBUILD
        triggers until they bring no new dependency; the needed states, in file order."""
        while True:
            reachable = self._reachable(target)
            # BuildKit parses the base name of every unresolved state, needed or not, and
            # resolves only the needed ones (convert.go `resolveReachableStages`).
            for state in self.states:
                if state.base is None and not state.dispatched and not state.resolved:
                    self._check_base_name(state)
            for state in reachable:
                if state.base is None and not state.dispatched and not state.resolved:
                    state.resolved = True
                    self._resolve_base(state)
            new_dependencies = False
            for state in reachable:
                if self._init_onbuild(state):
                    new_dependencies = True
            if not new_dependencies:
                return reachable

    def _check_base_name(self, state: DispatchState) -> None:
        """Fail on a base name distribution/reference would not parse (not for scratch)."""
        if state.base_name == EMPTY_IMAGE:
            return
        try:
            check_reference(state.base_name)
        except ImageReferenceError as exc:
            message = f"failed to parse stage name {go_quote(state.base_name)}: {exc.message}"
            if state.location is None:
                raise DockerfileError(message, file=self.options.file) from None
            raise state.location.error(message) from None

    def _resolve_base(self, state: DispatchState) -> None:
        platform = state.platform or self.options.target_platform
        if state.base_name == EMPTY_IMAGE:
            state.root = None
            state.image = ImageState(empty_image(self.options.target_platform))
            state.platform = self.options.target_platform
            if state.unregistered:
                state.dispatched = True
            return
        where = state.location
        key = (state.base_name, platform)
        image = self.shared.resolved_images.get(key)
        if image is None:
            try:
                image = self.options.resolve_image(state.base_name, platform)
            except BuildError as exc:
                if exc.line or where is None:
                    raise
                # BuildKit points a failed base-image lookup at the FROM (or COPY) line.
                raise BuildError(
                    exc.message,
                    file=where.file,
                    line=where.start_line,
                    end_line=where.end_line,
                    source=where.source,
                ) from exc
            self.shared.resolved_images[key] = image
        config, history = image_from_base(image.config)
        state.base_image = image
        state.image = ImageState(config, history, self.epoch_text)
        if is_scratch_config(image.config):
            state.root = None
        else:
            pinned = f"{image.ref}@{image.manifest_digest}"
            location = source_location(where) if where and not state.unregistered else None
            state.root = state.record(
                Vertex(
                    ImageSource(
                        ref=image.ref, manifest_digest=image.manifest_digest, platform=platform
                    ),
                    name=state.counter.prefix("FROM " + pinned),
                    location=location,
                )
            )
        state.platform = platform
        if state.unregistered:
            state.dispatched = True

    def _init_onbuild(self, state: DispatchState) -> bool:
        """Prepend the triggers a stage inherits; True when they add dependencies."""
        if state.unregistered or (state.image is None and state.base is None):
            return False
        triggers: list[str] = []
        if state.base is None and state.image is not None:
            triggers = list(state.image.config.get("OnBuild") or [])
            state.image.config.pop("OnBuild", None)
        elif state.base is not None and not state.onbuild_initialized:
            for command in state.base.commands:
                if isinstance(command.instruction, OnbuildInstruction) and not command.onbuild:
                    triggers.append(command.instruction.expression)
        state.onbuild_initialized = True
        if not triggers:
            return False
        where = state.location
        assert where is not None
        added: list[Command] = []
        new_dependencies = False
        for trigger in triggers:
            instruction = parse_trigger(trigger, location=where)
            command = Command(instruction, onbuild=True, location=where)
            self.sources_for(command)
            if command.sources:
                new_dependencies = True
            for source in command.sources:
                if source is not None:
                    state.deps.append((source, command))
            added.append(command)
        state.commands[:0] = added
        state.counter.total += len(added)
        return new_dependencies

"""Dockerfile → op graph, image config and history, following BuildKit's dockerfile2llb.

`plan_build` walks the stages the target needs in file order, the way
frontend/dockerfile/dockerfile2llb/convert.go (`toDispatchState`) does: resolve base
images, expand FROM lines with the global ARGs, run inherited ONBUILD triggers first,
then dispatch each instruction onto a per-stage state. Only the target's dependencies
are converted; the rest of the file is parsed (by the frontend) and otherwise ignored.

Stage resolution (the states, their graph, base images and ONBUILD triggers) lives in
`plan/resolve.py`; this module dispatches each instruction with one `match` on its type
(convert.go `dispatch`), the image-config instructions here, COPY/ADD in `plan/copy.py`
and RUN in `plan/run.py`.

The build context is one `ContextSource` whose `include` lists the paths COPY/ADD and bind
mounts read. Those are known only after every stage was dispatched, so the conversion uses
a placeholder source and then rebuilds the vertices that read it around the final one
(BuildKit fills the same gap with a mutable output, convert.go `mutableOutput`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from strata.dockerfile.ast import Dockerfile, ParseWarning
from strata.dockerfile.directives import (
    CHECK_BUILD_ARG,
    CheckOptions,
    check_options_for,
    read_check_options,
)
from strata.dockerfile.instructions import (
    AddInstruction,
    ArgInstruction,
    CmdInstruction,
    CopyInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    HealthcheckInstruction,
    KeyValue,
    LabelInstruction,
    Location,
    MaintainerInstruction,
    OnbuildInstruction,
    RunInstruction,
    ShellInstruction,
    StopsignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
    refuse_nul,
)
from strata.dockerfile.shell import ShellLex
from strata.dockerfile.stages import BuildDefinition, parse_stages
from strata.errors import (
    ConfigError,
    DockerfileError,
    LintViolation,
    ShellError,
    located,
)
from strata.gotext import format_rfc3339_nano
from strata.plan import paths
from strata.plan.buildargs import (
    CACHE_NS_ARG,
    HOSTNAME_ARG,
    NON_ENV_ARGS,
    SOURCE_DATE_EPOCH_ARG,
    EnvList,
    predefined_args,
)
from strata.plan.config import (
    ensure_path,
    go_list,
    go_quote_list,
    healthcheck_history,
    parse_exposed_port,
    validate_signal,
)
from strata.plan.copy import dispatch_copy
from strata.plan.epoch import SourceEpochResolver, resolve_source_date_epoch
from strata.plan.lint import (
    EXPERIMENTAL_RULES,
    expose_warnings,
    legacy_key_value_warning,
    repeated_instruction_warning,
    secret_key_warning,
)
from strata.plan.ops import (
    ContextSource,
    FileOp,
    MkdirAction,
    Platform,
    SourceLocation,
    Vertex,
)
from strata.plan.platforms import native_platform, normalize_arch
from strata.plan.resolve import StageResolver
from strata.plan.result import BuildPlan, ImageResolver, PlanWarning, StagePlan
from strata.plan.run import dispatch_run
from strata.plan.state import Command, DispatchState, PlanOptions, SharedState, source_location
from strata.sandbox import SandboxOptions

CONTEXT_VERTEX_NAME = "[internal] load build context"


def plan_build(
    df: Dockerfile,
    *,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    resolve_image: ImageResolver,
    platform: Platform | None = None,
    no_cache: bool = False,
    no_cache_filter: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    context_name: str = "context",
    dockerignore: Sequence[str] = (),
    source_date_epoch: int | None = None,
    network: str = "default",
    resolve_source_epoch: SourceEpochResolver | None = None,
    checks: CheckOptions | None = None,
    sandbox: SandboxOptions | None = None,
) -> BuildPlan:
    """Convert `df` for `target` (default: the last stage) into a BuildPlan.

    `platform` None means "this machine, implicitly": the image config then keeps the
    base image's os/architecture, as BuildKit does without `--platform`. The hostname
    and cache-mount namespace come from the BUILDKIT_SANDBOX_HOSTNAME and
    BUILDKIT_CACHE_MOUNT_NS build-args, the lint options from `# check=` or the
    BUILDKIT_DOCKERFILE_CHECK build-arg. `resolve_source_epoch` dates the source of a
    `SOURCE_DATE_EPOCH=<stage>` (without it such an epoch stays unset). `checks` are the
    lint options when the caller read them before parsing (`read_check_options`, as
    BuildKit does); otherwise they are read here. Raises DockerfileError for anything
    wrong in the Dockerfile (`LintViolation` for findings under `error=true`), and
    whatever StrataError `resolve_image` raises for a missing image.
    """
    args = dict(build_args or {})
    if checks is None:
        checks = read_check_options(
            df.source, filename=df.filename, build_arg=args.get(CHECK_BUILD_ARG)
        )
    native = native_platform()
    definition = parse_stages(df)
    if not definition.stages:
        raise DockerfileError("dockerfile contains no stages to build", file=df.filename)
    options = PlanOptions(
        build_args=args,
        resolve_image=resolve_image,
        target_platform=platform or native,
        build_platform=native,
        implicit_platform=platform is None,
        no_cache=no_cache,
        no_cache_filter=tuple(no_cache_filter),
        labels=dict(labels or {}),
        context_name=context_name,
        dockerignore=tuple(dockerignore),
        source_date_epoch=source_date_epoch,
        resolve_source_epoch=resolve_source_epoch,
        network=network,
        sandbox=sandbox or SandboxOptions(),
        hostname=args.get(HOSTNAME_ARG, ""),
        cache_namespace=args.get(CACHE_NS_ARG, ""),
        escape=df.escape,
        file=df.filename,
        source=df.source,
        checks=checks,
    )
    conversion = _Conversion(definition, options, ContextSource(name=context_name))
    plan = conversion.run(target)
    frontend = _frontend_warnings(df, definition, checks)
    plan.warnings[:0] = frontend
    reported = [w.rule for w in frontend] + conversion.shared.rules_reported
    if checks.error and reported:
        # BuildKit fails only once the whole target was converted (convert.go
        # `finalizeResultImage`, linter.go `Error`); it lists each rule once, in Go map
        # order, which is random: here they keep the order they were first reported in.
        raise LintViolation(list(dict.fromkeys(reported)), plan.warnings, file=df.filename)
    return plan


# Findings of instructions.Parse that run with the instruction's own `# check=` comment
# merged in (instructions/parse.go `ParseInstructionWithLinter`); the parser's and the
# stage-name checks use the Dockerfile's options alone.
_PER_INSTRUCTION_FRONTEND_RULES = frozenset(
    {"MaintainerDeprecated", "StageNameCasing", "FromAsCasing"}
)


def _frontend_warnings(
    df: Dockerfile, definition: BuildDefinition, checks: CheckOptions
) -> list[PlanWarning]:
    """The parser's and stage reader's findings that the `check` options let through."""
    comments_at = {node.start_line: node.comments for node in df.children}
    kept: list[PlanWarning] = []
    found: list[ParseWarning] = [*df.warnings, *definition.warnings]
    for warning in found:
        options = checks
        if warning.rule in _PER_INSTRUCTION_FRONTEND_RULES:
            options = check_options_for(checks, list(comments_at.get(warning.line, [])))
        if options.runs(warning.rule, experimental=warning.rule in EXPERIMENTAL_RULES):
            kept.append(PlanWarning(warning.rule, warning.message, warning.line))
    return kept


def _include_paths(read: set[str]) -> tuple[str, ...]:
    """BuildKit's FollowPaths: relative, sorted; reading `/` means everything (empty)."""
    if "/" in read:
        return ()
    return tuple(sorted(paths.join(".", p) for p in read))


class _Conversion:
    """One pass over the stages the target needs."""

    def __init__(
        self,
        definition: BuildDefinition,
        options: PlanOptions,
        context: ContextSource,
    ) -> None:
        self.definition = definition
        self.options = options
        self.context_name = context.name
        self.shared = SharedState(
            options=options,
            context=Vertex(context, name=CONTEXT_VERTEX_NAME),
            lex=ShellLex(options.escape),
            resolved_images={},
        )
        self.epoch: int | None = None

    # -- setup -------------------------------------------------------------------------

    def run(self, target: str | None) -> BuildPlan:
        definition = self.definition
        target_name = target or (definition.stages[-1].name or "")
        predefined = predefined_args(
            target_platform=self.options.target_platform,
            build_platform=self.options.build_platform,
            target_stage=target_name,
            build_args=self.options.build_args,
        )
        global_env = definition.global_args(self.options.build_args, predefined).env
        self.global_args = EnvList.from_pairs(global_env.items())
        self.epoch = self._source_date_epoch()
        epoch_text = format_rfc3339_nano(self.epoch) if self.epoch is not None else None
        graph = StageResolver(definition, self.shared, self.global_args, epoch_text)
        self.states = graph.states
        for stage in definition.stages:
            graph.add_stage(stage)
        # Only now, as BuildKit does after the global ARGs and the FROM lines were
        # expanded (convert.go `toDispatchState`): their errors come first.
        target_stage = definition.resolve_target(target)
        target_state = graph.find_stage_state(target_stage.name, target_stage.index)
        graph.build_dependency_graph()
        graph.check_cycles()
        if len(self.states) == 1:
            self.states[0].stage_name = ""
            self.states[0].counter.stage_name = ""
        reachable = graph.resolve(target_state)
        self._dispatch_stages(reachable)
        self._install_context()
        return self._finalize(target_state, reachable)

    def _install_context(self) -> None:
        """Swap the placeholder context source for one listing the paths read.

        The paths are known only once every stage was dispatched; vertices reading the
        context (directly or through their inputs) are rebuilt around the final source.
        """
        placeholder = self.shared.context
        final = Vertex(
            ContextSource(
                name=self.context_name,
                include=_include_paths(self.shared.context_paths),
                exclude=self.options.dockerignore,
            ),
            name=CONTEXT_VERTEX_NAME,
        )
        rebuilt: dict[int, Vertex] = {id(placeholder): final}

        def rebuild(vertex: Vertex) -> Vertex:
            stack: list[tuple[Vertex, bool]] = [(vertex, False)]
            while stack:
                current, expanded = stack.pop()
                if id(current) in rebuilt:
                    continue
                if not expanded:
                    stack.append((current, True))
                    stack.extend((item, False) for item in current.inputs)
                    continue
                inputs = tuple(rebuilt[id(item)] for item in current.inputs)
                changed = any(a is not b for a, b in zip(inputs, current.inputs, strict=True))
                rebuilt[id(current)] = (
                    dataclasses.replace(current, inputs=inputs) if changed else current
                )
            return rebuilt[id(vertex)]

        self.shared.context = final
        for state in self.states:
            state.vertices = [rebuild(vertex) for vertex in state.vertices]
            if state.root is not None:
                state.root = rebuild(state.root)

    def _source_date_epoch(self) -> int | None:
        """The build's epoch, and the SOURCE_DATE_EPOCH the stages see set to it.

        As convert.go: a build-arg counts even when empty, a global ARG only when not;
        the value may name a stage whose remote source dates the build (plan/epoch.py).
        Afterwards the build-arg and the global ARG hold the resolved seconds, or are
        removed when there are none (`setBuildArgValue`).
        """
        if self.options.source_date_epoch is not None:
            return self.options.source_date_epoch
        build_args = self.options.build_args
        raw = build_args.get(SOURCE_DATE_EPOCH_ARG)
        if raw is None:
            raw = self.global_args.get(SOURCE_DATE_EPOCH_ARG, "") or None
        if raw is None:
            return None
        epoch = resolve_source_date_epoch(
            raw,
            stages=self.definition.stages,
            build_args=build_args,
            global_args=self.global_args,
            escape=self.options.escape,
            file=self.options.file,
            resolve=self.options.resolve_source_epoch,
        )
        value = "" if epoch is None else str(epoch)
        if SOURCE_DATE_EPOCH_ARG in build_args:
            updated = {k: v for k, v in build_args.items() if k != SOURCE_DATE_EPOCH_ARG}
            if value:
                updated[SOURCE_DATE_EPOCH_ARG] = value
            self.options = dataclasses.replace(self.options, build_args=updated)
            self.shared.options = self.options
        if SOURCE_DATE_EPOCH_ARG in self.global_args:
            self.global_args = (
                self.global_args.set(SOURCE_DATE_EPOCH_ARG, value)
                if value
                else self.global_args.delete(SOURCE_DATE_EPOCH_ARG)
            )
        return epoch

    # -- dispatch ----------------------------------------------------------------------

    def _dispatch_stages(self, reachable: list[DispatchState]) -> None:
        wanted = {id(state) for state in reachable}
        for state in self.states:
            if id(state) not in wanted or state.dispatched:
                continue
            self._init_from_base(state)
            state.dispatched = True
            if state.platform is None:
                state.platform = self.options.target_platform
            image = state.config
            ensure_path(image)
            for entry in image.config.get("Env") or []:
                key, _, value = str(entry).partition("=")
                state.env = state.env.set(key, value)
            if self.options.hostname:
                state.hostname = self.options.hostname
            working_dir = image.config.get("WorkingDir")
            if working_dir:
                state.workdir = paths.normalize_workdir(str(working_dir), str(working_dir))
                image.config["WorkingDir"] = state.workdir
            if image.config.get("User"):
                state.user = str(image.config["User"])
            state.network = self.options.network
            for command in state.commands:
                self._dispatch(state, command)

    def _init_from_base(self, state: DispatchState) -> None:
        base = state.base
        if base is None:
            return
        state.root = base.root
        state.platform = base.platform
        state.image = base.config.clone()
        state.image.config.pop("OnBuild", None)
        state.base_image = base.base_image
        state.env = base.env
        state.workdir = base.workdir
        state.user = base.user
        state.hostname = base.hostname
        state.network = base.network
        state.workdir_set = base.workdir_set
        state.declared_args = [*state.declared_args, *base.declared_args]

    def _dispatch(self, state: DispatchState, command: Command) -> None:
        instruction = command.instruction
        # A `# check=` comment above the instruction widens the options for its own
        # findings (convert.go `dispatch`: WithMergedConfigFromComments(cmd.Comments())).
        self.shared.active_checks = check_options_for(
            self.options.checks, list(instruction.comments)
        )
        try:
            with located(command.where, ConfigError):
                self._dispatch_instruction(state, command)
        finally:
            self.shared.active_checks = None

    def _dispatch_instruction(self, state: DispatchState, command: Command) -> None:
        """The instruction's own dispatch (convert.go `dispatch`'s type switch)."""
        match command.instruction:
            case EnvInstruction() as instruction:
                self.dispatch_env(state, command, instruction)
            case LabelInstruction() as instruction:
                self.dispatch_label(state, command, instruction)
            case MaintainerInstruction() as instruction:
                self.dispatch_maintainer(state, instruction)
            case UserInstruction() as instruction:
                self.dispatch_user(state, command, instruction)
            case VolumeInstruction() as instruction:
                self.dispatch_volume(state, command, instruction)
            case StopsignalInstruction() as instruction:
                self.dispatch_stopsignal(state, command, instruction)
            case ShellInstruction() as instruction:
                self.dispatch_shell(state, instruction)
            case CmdInstruction() as instruction:
                self.dispatch_cmd(state, command, instruction)
            case EntrypointInstruction() as instruction:
                self.dispatch_entrypoint(state, command, instruction)
            case HealthcheckInstruction() as instruction:
                self.dispatch_healthcheck(state, command, instruction)
            case ExposeInstruction() as instruction:
                self.dispatch_expose(state, command, instruction)
            case OnbuildInstruction() as instruction:
                self.dispatch_onbuild(state, instruction)
            case ArgInstruction() as instruction:
                self.dispatch_arg(state, command, instruction)
            case WorkdirInstruction() as instruction:
                self.dispatch_workdir(state, command, instruction)
            case CopyInstruction() | AddInstruction() as instruction:
                dispatch_copy(self.shared, state, command, instruction)
            case RunInstruction() as instruction:
                dispatch_run(self.shared, state, command, instruction)
            case _:
                pass  # FROM starts a stage; the stage reader consumed it

    # -- instructions ------------------------------------------------------------------

    def _expand(self, state: DispatchState, word: str, where: Location) -> str:
        return self.shared.expand_in(state, word, where)

    def _expand_pairs(
        self, state: DispatchState, pairs: Sequence[KeyValue], where: Location
    ) -> list[tuple[str, str]]:
        """ENV's and LABEL's `key=value` pairs, both sides expanded, all before any is
        applied (a pair does not see the ones before it in the same instruction)."""
        return [
            (self._expand(state, p.key, where), self._expand(state, p.value, where)) for p in pairs
        ]

    def dispatch_env(
        self, state: DispatchState, command: Command, instruction: EnvInstruction
    ) -> None:
        where = command.where
        pairs = self._expand_pairs(state, instruction.pairs, where)
        message = "ENV"
        for pair, (key, value) in zip(instruction.pairs, pairs, strict=True):
            self._legacy_form_lint(pair.legacy, command)
            self._secret_lint("ENV", key, where)
            message += f" {key}={value}"
            state.env = state.env.set(key, value)
            state.config.set_env(key, value)
        state.config.commit(message, with_layer=False)

    def dispatch_label(
        self, state: DispatchState, command: Command, instruction: LabelInstruction
    ) -> None:
        pairs = self._expand_pairs(state, instruction.pairs, command.where)
        message = "LABEL"
        for pair, (key, value) in zip(instruction.pairs, pairs, strict=True):
            self._legacy_form_lint(pair.legacy, command)
            state.config.set_label(key, value)
            message += f" {key}={value}"
        state.config.commit(message, with_layer=False)

    def dispatch_maintainer(self, state: DispatchState, instruction: MaintainerInstruction) -> None:
        state.config.image["author"] = instruction.maintainer
        state.config.commit(f"MAINTAINER {instruction.maintainer}", with_layer=False)

    def dispatch_user(
        self, state: DispatchState, command: Command, instruction: UserInstruction
    ) -> None:
        user = self._expand(state, instruction.user, command.where)
        state.user = user
        state.config.set_optional("User", user)
        state.config.commit(f"USER {user}", with_layer=False)

    def dispatch_volume(
        self, state: DispatchState, command: Command, instruction: VolumeInstruction
    ) -> None:
        volumes = [self._expand(state, v, command.where) for v in instruction.volumes]
        if any(v == "" for v in volumes):
            raise ConfigError("VOLUME specified can not be an empty string")
        state.config.add_volumes(volumes)
        state.config.commit(f"VOLUME {go_list(volumes)}", with_layer=False)

    def dispatch_stopsignal(
        self, state: DispatchState, command: Command, instruction: StopsignalInstruction
    ) -> None:
        signal = self._expand(state, instruction.signal, command.where)
        validate_signal(signal)
        state.config.config["StopSignal"] = signal
        state.config.commit(f"STOPSIGNAL {signal}", with_layer=False)

    def dispatch_shell(self, state: DispatchState, instruction: ShellInstruction) -> None:
        shell = list(instruction.shell)
        state.config.set_optional("Shell", shell)
        state.config.commit(f"SHELL {go_list(shell)}", with_layer=False)

    def _used_once(self, state: DispatchState, command: Command) -> None:
        kind = type(command.instruction).__name__
        previous = state.used_once.get(kind)
        if previous is not None:
            self.shared.warn(repeated_instruction_warning(command.instruction.keyword, previous))
        state.used_once[kind] = command.where.start_line

    def _legacy_form_lint(self, legacy: bool, command: Command) -> None:
        if legacy:
            warning = legacy_key_value_warning(
                command.instruction.keyword, command.where.start_line
            )
            self.shared.warn(warning)

    def _secret_lint(self, instruction: str, key: str, where: Location) -> None:
        warning = secret_key_warning(instruction, key, where.start_line)
        if warning is not None:
            self.shared.warn(warning)

    def _json_args_lint(self, state: DispatchState, command: Command) -> None:
        keyword = command.instruction.keyword
        line = command.where.start_line
        if not state.config.config.get("Shell"):
            self.shared.warn(
                PlanWarning(
                    "JSONArgsRecommended",
                    f"JSON arguments recommended for {keyword} to prevent unintended "
                    "behavior related to OS signals",
                    line,
                )
            )

    def dispatch_cmd(
        self, state: DispatchState, command: Command, instruction: CmdInstruction
    ) -> None:
        self._used_once(state, command)
        args = list(instruction.command)
        if instruction.prepend_shell:
            self._json_args_lint(state, command)
            args = state.config.with_shell(args)
        state.config.set_optional("Cmd", args)
        state.config.config["ArgsEscaped"] = True
        state.cmd_set = True
        state.config.commit(f"CMD {go_quote_list(args)}", with_layer=False)

    def dispatch_entrypoint(
        self, state: DispatchState, command: Command, instruction: EntrypointInstruction
    ) -> None:
        self._used_once(state, command)
        args = list(instruction.command)
        if instruction.prepend_shell:
            self._json_args_lint(state, command)
            args = state.config.with_shell(args)
        state.config.set_optional("Entrypoint", args)
        if not state.cmd_set:
            state.config.config.pop("Cmd", None)
        state.config.commit(f"ENTRYPOINT {go_quote_list(args)}", with_layer=False)

    def dispatch_healthcheck(
        self, state: DispatchState, command: Command, instruction: HealthcheckInstruction
    ) -> None:
        self._used_once(state, command)
        check: dict[str, Any] = {"Test": list(instruction.test)}
        for key, value in (
            ("Interval", instruction.interval),
            ("Timeout", instruction.timeout),
            ("StartPeriod", instruction.start_period),
            ("StartInterval", instruction.start_interval),
            ("Retries", instruction.retries),
        ):
            if value:
                check[key] = value
        state.config.config["Healthcheck"] = check
        state.config.commit(healthcheck_history(check), with_layer=False)

    def dispatch_expose(
        self, state: DispatchState, command: Command, instruction: ExposeInstruction
    ) -> None:
        words: list[str] = []
        for raw in sorted(instruction.ports):
            with located(command.where, ShellError):
                words.extend(self.shared.lex.process_words(raw, state.env))
        ports: list[str] = []
        for word in words:
            ports.extend(parse_exposed_port(word))
            for warning in expose_warnings(word, command.where.start_line):
                self.shared.warn(warning)
        state.config.add_ports(ports)
        state.config.commit(f"EXPOSE {go_list(ports)}", with_layer=False)

    def dispatch_onbuild(self, state: DispatchState, instruction: OnbuildInstruction) -> None:
        triggers = list(state.config.config.get("OnBuild") or [])
        triggers.append(instruction.expression)
        state.config.config["OnBuild"] = triggers

    def dispatch_arg(
        self, state: DispatchState, command: Command, instruction: ArgInstruction
    ) -> None:
        build_args = self.options.build_args
        parts: list[str] = []
        for definition in instruction.args:
            key = definition.name
            self._secret_lint("ARG", key, command.where)
            value = definition.default
            in_build_args = key in build_args
            if value is None and not in_build_args and key in self.global_args:
                value = self.global_args[key]  # inherited from the global scope
            elif in_build_args:
                value = build_args[key]
            elif value is not None:
                value = self._expand(state, value, command.where)
            if value is not None and key not in NON_ENV_ARGS:
                state.env = state.env.set(key, value)
            state.declared_args.append((key, value))
            parts.append(key if value is None else f"{key}={value}")
        state.config.commit("ARG " + " ".join(parts), with_layer=False)

    def dispatch_workdir(
        self, state: DispatchState, command: Command, instruction: WorkdirInstruction
    ) -> None:
        where = command.where
        requested = self._expand(state, instruction.path, where)
        refuse_nul(where, "WORKDIR", "path", requested)
        if not state.workdir_set and not requested.startswith("/"):
            self.shared.warn(
                PlanWarning(
                    "WorkdirRelativePath",
                    f'Relative workdir "{requested}" can have unexpected results if the '
                    "base image changes",
                    where.start_line,
                )
            )
        state.workdir_set = True
        current = str(state.config.config.get("WorkingDir") or "")
        workdir = paths.normalize_workdir(current, requested)
        state.config.config["WorkingDir"] = workdir
        state.workdir = workdir
        with_layer = workdir != "/"
        if with_layer:
            name = state.counter.prefix(
                self.shared.display_text(instruction.original, state.env),
                onbuild=command.onbuild,
            )
            user = str(state.config.config.get("User") or "")
            from strata.plan.copy import parse_chown

            op = FileOp(
                actions=(
                    MkdirAction(
                        path=workdir,
                        mode=0o755,
                        chown=parse_chown(user),
                        make_parents=True,
                        mtime=self.epoch,
                    ),
                ),
                base=0 if state.root is not None else None,
            )
            state.root = state.record(
                Vertex(
                    op,
                    (state.root,) if state.root is not None else (),
                    name=name,
                    location=source_location(where),
                )
            )
        state.config.commit(f"WORKDIR {workdir}", with_layer=with_layer)

    # -- result ------------------------------------------------------------------------

    def _finalize(self, target: DispatchState, reachable: list[DispatchState]) -> BuildPlan:
        image = target.config
        if self.options.labels:
            for key, value in self.options.labels.items():
                image.set_label(key, value)
        if not self.options.implicit_platform:
            wanted = self.options.target_platform
            same = (
                image.image.get("os") == wanted.os
                and image.image.get("architecture") == wanted.architecture
            )
            image.image["os"] = wanted.os
            image.image["architecture"] = wanted.architecture
            if wanted.variant or not same:
                if wanted.variant:
                    image.image["variant"] = wanted.variant
                else:
                    image.image.pop("variant", None)
            if not same:
                # The requested platform has no os.version here, and BuildKit copies
                # the requested one whenever os/arch change (convert.go
                # `finalizeResultImage`).
                image.image.pop("os.version", None)
        _normalize_image_platform(image.image)
        config = copy.deepcopy(image.image)
        stages: list[StagePlan] = []
        locations: dict[str, SourceLocation] = {}
        stage_of: dict[str, str] = {}
        for state in reachable:
            label = state.stage_name or (
                state.lookup_name or (f"stage-{state.stage.index}" if state.stage else "")
            )
            if state.stage is None:
                continue
            stages.append(
                StagePlan(
                    name=label,
                    index=state.stage.index,
                    vertices=list(state.vertices),
                    state=state.root,
                    platform=state.platform or self.options.target_platform,
                )
            )
            for vertex in state.vertices:
                stage_of.setdefault(vertex.digest, state.lookup_name or label)
                if vertex.location is not None:
                    locations.setdefault(vertex.digest, vertex.location)
        return BuildPlan(
            target=target.root,
            config=config,
            history=list(image.history),
            base_image=target.base_image,
            stages=stages,
            platform=target.platform or self.options.target_platform,
            locations=locations,
            stage_of=stage_of,
            warnings=list(self.shared.warnings),
            secrets_used=list(self.shared.secrets.values()),
            ssh_used=list(self.shared.ssh.values()),
            cache_ids_to_clear=list(dict.fromkeys(self.shared.cache_ids_to_clear)),
            source_date_epoch=self.epoch,
        )


def _normalize_image_platform(image: dict[str, Any]) -> None:
    """The result's os/architecture/variant in containerd's canonical spelling.

    BuildKit ends `finalizeResultImage` with platforms.Normalize, so a base image that
    says `x86_64` or `aarch64/v8` yields `amd64` or `arm64` without a variant.
    """
    os_name = str(image.get("os") or "linux").lower()  # "" is the runtime's OS
    image["os"] = "darwin" if os_name == "macos" else os_name
    arch, variant = normalize_arch(
        str(image.get("architecture", "")), str(image.get("variant", ""))
    )
    image["architecture"] = arch
    if variant:
        image["variant"] = variant
    else:
        image.pop("variant", None)
    features = image.get("os.features")
    if isinstance(features, list) and features:
        image["os.features"] = sorted(set(features))

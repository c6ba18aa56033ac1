"""RUN: one exec op over the stage's root, its mounts, and a heredoc turned into a script.

As BuildKit's dockerfile2llb `dispatchRun` (convert.go) with `dispatchRunMounts`
(convert_runmount.go, here `plan/runmount.py`): the command gets the SHELL prepended in
shell form; a heredoc that is the whole command runs as a script file mounted read-only
under /dev/pipes/ when it starts with `#!`, or as the shell's command text otherwise;
secret values never reach the vertex name (their env variables show as `****`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from strata.dockerfile.instructions import RunInstruction
from strata.dockerfile.shell import ShellLex
from strata.errors import ShellError
from strata.plan import paths
from strata.plan.buildargs import proxy_env
from strata.plan.config import go_list
from strata.plan.copy import INLINE_DOCUMENT_NAME
from strata.plan.naming import summarize_heredoc
from strata.plan.ops import ExecMount, ExecOp, FileOp, MkfileAction, Vertex
from strata.plan.runmount import ExecInputs, convert_mounts
from strata.plan.state import Command, DispatchState, SharedState, source_location

DEFAULT_HOSTNAME = "buildkitsandbox"
PIPES_DIR = "/dev/pipes/"
_HEREDOC_ONLY = re.compile(r"^(\d*)<<(-?)\s*([^<]*)$")


def dispatch_run(
    shared: SharedState, state: DispatchState, command: Command, instruction: RunInstruction
) -> None:
    """Add the RUN's exec vertex (and an inline script's file) to `state` and its
    history entry to the image; `instruction` is `command.instruction`, typed."""
    where = command.where
    instruction.check_supported()
    env = state.env
    mounts = instruction.mounts(lambda word: shared.expand_in(state, word, where))
    inputs = ExecInputs()
    if state.root is not None:
        inputs.index_of(state.root)
    exec_mounts: list[ExecMount] = [
        ExecMount(target="/", input=0 if state.root is not None else None)
    ]
    args = list(instruction.command)
    name_text = instruction.original
    if instruction.heredocs:
        if len(args) != 1 or not instruction.prepend_shell:
            raise where.error(f"parsing produced an invalid run command: {go_list(args)}")
        first = instruction.heredocs[0]
        if _is_single_heredoc(args[0]):
            data = first.content
            if first.chomp:
                data = re.sub(r"(?m)^\t+", "", data)
            if state.config.os != "windows" and data.startswith("#!"):
                script = state.record(
                    Vertex(
                        FileOp(
                            actions=(MkfileAction("/" + first.name, data, mode=0o755),),
                            base=None,
                        ),
                        name=INLINE_DOCUMENT_NAME,
                    )
                )
                exec_mounts.append(
                    ExecMount(
                        target=PIPES_DIR,
                        input=inputs.index_of(script),
                        selector="/",
                        readonly=True,
                    )
                )
                args = [paths.join(PIPES_DIR, first.name)]
            else:
                args = [data]
            name_text += f" ({summarize_heredoc(first.content)})"
        else:
            text = args[0]
            for doc in instruction.heredocs:
                text += "\n" + doc.content + doc.name
            args = [text]
    if instruction.prepend_shell:
        args = state.config.with_shell(args)

    converted = convert_mounts(shared, state, mounts, command.sources, inputs, where)
    exec_mounts.extend(converted.mounts)
    run_env = env
    if converted.ssh_sock and "SSH_AUTH_SOCK" not in run_env:
        run_env = run_env.set("SSH_AUTH_SOCK", converted.ssh_sock)

    network = state.network if instruction.network == "default" else instruction.network
    op = ExecOp(
        args=tuple(args),
        env=run_env.as_strings(),
        cwd=state.workdir,
        user=state.user,
        mounts=tuple(exec_mounts),
        hostname=state.hostname or DEFAULT_HOSTNAME,
        network=network,
        security=instruction.security,
        proxy_env=proxy_env(shared.options.build_args, env),
        extra_hosts=shared.options.sandbox.extra_hosts,
        ulimits=shared.options.sandbox.ulimits,
        shm_size=shared.options.sandbox.shm_size,
        cgroup_parent=shared.options.sandbox.cgroup_parent,
    )
    masked = env
    for mount in mounts:
        secret_env = getattr(mount, "env", None)
        if isinstance(secret_env, str) and secret_env:
            masked = masked.set(secret_env, "****")
    display = shared.display_text(name_text, masked, raw=True)
    name = state.counter.prefix(display, onbuild=command.onbuild)
    state.root = state.record(
        Vertex(
            op,
            tuple(inputs.vertices),
            name=name,
            location=source_location(where),
            no_cache=state.ignore_cache,
        )
    )
    history = "RUN " + _run_command_string(args, state.declared_args, env) + " # buildkit"
    state.config.commit(history, with_layer=True)


def _is_single_heredoc(command: str) -> bool:
    """The whole command is one `<<WORD` (parser.MustParseHeredoc on the command)."""
    match = _HEREDOC_ONLY.match(command)
    if not match or not match.group(3):
        return False
    try:
        words = ShellLex("\\").process_words(match.group(3), {}, skip_unset=True)
    except ShellError:
        return False
    return len(words) == 1


def _run_command_string(
    args: Sequence[str], declared: Sequence[tuple[str, str | None]], env: Mapping[str, str]
) -> str:
    """RUN's history text: `|<n> K=V ... <argv>` (convert.go `runCommandString`)."""
    values: dict[str, str] = {}
    for key, default in declared:
        values[key] = env.get(key, default or "")
    prefix = [f"|{len(values)}", *(f"{k}={v}" for k, v in values.items())] if values else []
    return " ".join([*prefix, *args])

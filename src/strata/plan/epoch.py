"""SOURCE_DATE_EPOCH: a number of seconds, or the time of a source a stage names.

BuildKit accepts `SOURCE_DATE_EPOCH=<stage>` (dockerfile2llb/epoch.go): the named stage
must be `FROM scratch` holding ARGs and exactly one remote ADD (an http(s) download or a
git repository), and the build's epoch becomes that source's time (the commit time, the
Last-Modified header, or the newest file of a downloaded archive). `context` names the
main build context, whose time is unknown for a local directory.

Finding a source's time is I/O, so the planner only checks the stage and describes the
source as an op; the caller's `SourceEpochResolver` (if any) looks the time up. Without
one the epoch stays unset, as in BuildKit when the frontend runs without a client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from strata.dockerfile.instructions import AddInstruction, ArgInstruction
from strata.dockerfile.shell import ShellLex
from strata.dockerfile.stages import EMPTY_IMAGE, Stage
from strata.errors import DockerfileError, ShellError, SourceError, reraised_as
from strata.gotext import go_quote
from strata.plan.ops import GitSource, HttpSource
from strata.plan.sources import is_http_source, parse_git_ref, url_filename, validate_digest

MAIN_CONTEXT = "context"

# resolve(source) -> Unix seconds, or None when the source carries no time.
SourceEpochResolver = Callable[[HttpSource | GitSource], int | None]


class _StageProblem(Exception):
    """Why a SOURCE_DATE_EPOCH stage is refused; reported at the stage's FROM."""


def parse_epoch_seconds(value: str) -> int | None:
    """Go's strconv.ParseInt(value, 10, 64): a signed decimal within int64, else None."""
    body = value[1:] if value[:1] in ("+", "-") else value
    if not body or not body.isascii() or not body.isdigit():
        return None
    seconds = int(value)
    return seconds if -(2**63) <= seconds < 2**63 else None


def resolve_source_date_epoch(
    value: str,
    *,
    stages: Sequence[Stage],
    build_args: Mapping[str, str],
    global_args: Mapping[str, str],
    escape: str,
    file: str,
    resolve: SourceEpochResolver | None,
) -> int | None:
    """The epoch `value` stands for (epoch.go `resolveSourceDateEpochValue`).

    Raises DockerfileError `invalid SOURCE_DATE_EPOCH: <value>` when it is neither a
    number, `context` nor a stage name, and the stage's own problem (at its FROM) when the
    stage does not qualify.
    """
    if value == "":
        return None
    seconds = parse_epoch_seconds(value)
    if seconds is not None:
        return seconds
    if value == MAIN_CONTEXT:
        return None
    wanted = value.lower()
    for stage in stages:
        if stage.name is None or stage.name.lower() != wanted:
            continue
        env = {k: v for k, v in global_args.items() if k != "SOURCE_DATE_EPOCH"}
        try:
            source = _stage_source(stage, build_args, env, ShellLex(escape))
        except _StageProblem as problem:
            raise stage.location.error(str(problem)) from None
        return resolve(source) if resolve is not None else None
    raise DockerfileError(f"invalid SOURCE_DATE_EPOCH: {value}", file=file)


def _expand(lex: ShellLex, word: str, env: Mapping[str, str]) -> str:
    with reraised_as(_StageProblem, ShellError):
        return lex.process_word(word, env).value


def _stage_source(
    stage: Stage, build_args: Mapping[str, str], env: dict[str, str], lex: ShellLex
) -> HttpSource | GitSource:
    """The one remote source of a SOURCE_DATE_EPOCH stage (`sourceDateEpochStageSource`)."""
    with reraised_as(
        _StageProblem,
        ShellError,
        prefix=f"failed to process source stage base name {go_quote(stage.base_name)}: ",
    ):
        base = lex.process_word(stage.base_name, env).value
    if base != EMPTY_IMAGE:
        raise _StageProblem("SOURCE_DATE_EPOCH stage must use FROM scratch")
    source: HttpSource | GitSource | None = None
    for command in stage.commands:
        if isinstance(command, ArgInstruction):
            for definition in command.args:
                if definition.name in build_args:
                    env[definition.name] = build_args[definition.name]
                elif definition.default is not None:
                    env[definition.name] = _expand(lex, definition.default, env)
        elif isinstance(command, AddInstruction):
            if source is not None:
                raise _StageProblem("SOURCE_DATE_EPOCH stage must contain exactly one remote ADD")
            source = _add_source(command, env, lex)
        else:
            raise _StageProblem(
                "SOURCE_DATE_EPOCH stage does not meet source-only requirements: "
                f"unsupported {command.keyword} instruction"
            )
    if source is None:
        raise _StageProblem("SOURCE_DATE_EPOCH stage must contain exactly one remote ADD")
    return source


def _add_source(
    command: AddInstruction, env: Mapping[str, str], lex: ShellLex
) -> HttpSource | GitSource:
    """The ADD's single remote source as an op (`sourceDateEpochAddSource`)."""
    if command.contents or len(command.sources) != 1:
        raise _StageProblem("SOURCE_DATE_EPOCH stage must contain exactly one remote ADD source")
    src = _expand(lex, command.sources[0], env)
    checksum = _expand(lex, command.checksum, env) if command.checksum else ""
    if is_http_source(src):
        if checksum:
            with reraised_as(_StageProblem, SourceError):
                validate_digest(checksum)
        return HttpSource(url=src, checksum=checksum, filename=url_filename(src))
    with reraised_as(_StageProblem, SourceError):
        git = parse_git_ref(src)
    if git is not None and not git.indistinguishable_from_local:
        keep = bool(command.keep_git_dir) or bool(git.keep_git_dir)
        return GitSource(
            remote=git.remote,
            ref=git.ref,
            subdir=git.subdir,
            keep_git_dir=keep,
            checksum=checksum or git.checksum,
        )
    raise _StageProblem("SOURCE_DATE_EPOCH stage source must be a single HTTP(S) or Git ADD")

"""COPY and ADD as file ops (dockerfile2llb/convert_copy.go).

One instruction becomes one FileOp whose copy actions read the build context, a stage, an
image, a download, a git checkout or a heredoc written into a scratch tree; `--link`
instead copies onto scratch and merges the result on top of the previous state.
"""

from __future__ import annotations

import re

from strata.dockerfile.instructions import (
    AddInstruction,
    CopyInstruction,
    SourceContent,
    refuse_nul,
)
from strata.dockerfile.shell import ShellLex
from strata.errors import ConfigError, ShellError, SourceError, located, reraised_as
from strata.plan import paths
from strata.plan.ops import (
    Chown,
    CopyAction,
    FileAction,
    FileOp,
    GitSource,
    HttpSource,
    MergeOp,
    MkfileAction,
    Vertex,
)
from strata.plan.result import PlanWarning
from strata.plan.sources import (
    is_git_source,
    is_http_source,
    parse_git_ref,
    url_filename,
    validate_digest,
)
from strata.plan.state import Command, DispatchState, SharedState, source_location

INLINE_DOCUMENT_NAME = "[internal] preparing inline document"
_SYMBOLIC_MODE = re.compile(r"^[ugoa]*(?:[-+=][rwxXstugo]*)+(?:,[ugoa]*(?:[-+=][rwxXstugo]*)+)*$")


def validate_chmod(value: str) -> None:
    """Octal up to 07777 or a symbolic mode, with BuildKit's error texts."""
    if re.fullmatch(r"[0-7]+", value):
        if int(value, 8) > 0o7777:
            raise ConfigError(_non_octal(value))
        return
    if value[:1].isdigit():
        raise ConfigError(_non_octal(value))  # looks numeric: the compatibility message
    if not _SYMBOLIC_MODE.match(value):
        raise ConfigError("invalid syntax")


def _non_octal(value: str) -> str:
    return f"invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777"


def parse_chown(value: str) -> Chown | None:
    if not value:
        return None
    user, _, group = value.partition(":")
    return Chown(user=user, group=group)


def _inline_document(content: SourceContent) -> Vertex:
    """A scratch tree holding one heredoc source file, mode 0644."""
    op = FileOp(actions=(MkfileAction(path="/" + content.name, data=content.data),), base=None)
    return Vertex(op, name=INLINE_DOCUMENT_NAME)


def _expand_content(content: SourceContent, state: DispatchState) -> SourceContent:
    """An unquoted heredoc's body with variables expanded, quotes kept (ExpandRaw)."""
    if not content.expand:
        return content
    with reraised_as(ConfigError, ShellError):
        data = ShellLex("\\").process_word(content.data, state.env, skip_quotes=True).value
    return SourceContent(name=content.name, data=data, expand=content.expand)


def dispatch_copy(
    shared: SharedState,
    state: DispatchState,
    command: Command,
    instruction: CopyInstruction | AddInstruction,
) -> None:
    """Add the COPY/ADD's vertices to `state` and its history entry to the image;
    `instruction` is `command.instruction`, typed."""
    where = command.where
    is_add = isinstance(instruction, AddInstruction)
    env = state.env

    keyword = "ADD" if is_add else "COPY"

    def expand(word: str) -> str:
        expanded = shared.expand_in(state, word, where)
        refuse_nul(where, keyword, "path", expanded)
        return expanded

    chown = expand(instruction.chown)
    chmod = expand(instruction.chmod)
    checksum = expand(instruction.checksum) if isinstance(instruction, AddInstruction) else ""
    sources = [expand(source) for source in instruction.sources]
    dest_written = expand(instruction.dest)
    with located(where, ConfigError):
        contents = [_expand_content(c, state) for c in instruction.contents]

    source_state: DispatchState | None = None
    from_ = instruction.from_ if isinstance(instruction, CopyInstruction) else ""
    if from_:
        source_state = command.sources[0] if command.sources else None
        if source_state is None or not source_state.dispatched:
            raise where.error(
                f'cannot copy from stage "{from_}", it needs to be defined before '
                f'current stage "{state.stage_name}"'
            )

    dest = paths.relative_to_workdir(state.workdir, dest_written)
    owner = parse_chown(chown)
    with located(where, (ConfigError, SourceError)):
        if chmod:
            validate_chmod(chmod)
        if checksum:
            if len(sources) != 1:
                raise ConfigError("checksum can't be specified for multiple sources")
            if not is_http_source(sources[0]) and not is_git_source(sources[0]):
                raise ConfigError("checksum requires HTTP(S) or Git sources")

    history = "ADD" if is_add else "COPY"
    if isinstance(instruction, CopyInstruction) and instruction.parents:
        history += " --parents"
    if chown:
        history += " --chown=" + chown
    if chmod:
        history += " --chmod=" + chmod

    name_text = shared.display_text(instruction.original, env)
    step_name = state.counter.prefix(name_text, onbuild=command.onbuild)

    inputs: list[Vertex] = []

    def input_index(vertex: Vertex | None) -> int | None:
        if vertex is None:
            return None
        for i, existing in enumerate(inputs):
            if existing is vertex:
                return i
        inputs.append(vertex)
        return len(inputs) - 1

    link = instruction.link and not chmod
    if state.root is not None and not link:
        input_index(state.root)

    unpack_flag = instruction.unpack if isinstance(instruction, AddInstruction) else None
    keep_git_dir = instruction.keep_git_dir if isinstance(instruction, AddInstruction) else None
    excludes = tuple(instruction.excludes)

    def literal_copy(source_input: int | None, source: str, *, unpack: bool = False) -> CopyAction:
        """The copy of one exact path a source op made (a checkout, a download, a
        heredoc): no wildcards, and a symlink there is copied as the link."""
        return CopyAction(
            source_input=source_input,
            sources=(source,),
            dest=dest,
            chown=owner,
            chmod=chmod,
            follow_symlinks=False,
            allow_wildcard=False,
            allow_empty_wildcard=False,
            exclude=excludes,
            unpack=unpack,
        )

    actions: list[FileAction] = []
    for src in sources:
        history += " " + src
        with located(where, SourceError):
            git = parse_git_ref(src)
        if git is not None and not git.indistinguishable_from_local:
            if not is_add:
                raise where.error("source can't be a git ref for COPY")
            if (
                keep_git_dir is not None
                and git.keep_git_dir is not None
                and keep_git_dir != git.keep_git_dir
            ):
                raise where.error("inconsistent keep-git-dir configuration")
            keep = git.keep_git_dir if git.keep_git_dir is not None else keep_git_dir
            if checksum and git.checksum and checksum != git.checksum:
                raise where.error(f'checksum mismatch "{checksum}" != "{git.checksum}"')
            git_vertex = state.record(
                Vertex(
                    GitSource(
                        remote=git.remote,
                        ref=git.ref,
                        subdir=git.subdir,
                        keep_git_dir=bool(keep),
                        checksum=git.checksum or checksum,
                    ),
                    name=step_name,
                )
            )
            actions.append(literal_copy(input_index(git_vertex), "/"))
            continue
        if is_http_source(src):
            if not is_add:
                raise where.error("source can't be a URL for COPY")
            if checksum:
                with located(where, SourceError):
                    validate_digest(checksum)
            filename = url_filename(src)
            http_vertex = state.record(
                Vertex(HttpSource(url=src, checksum=checksum, filename=filename), name=step_name)
            )
            actions.append(
                literal_copy(input_index(http_vertex), "/" + filename, unpack=bool(unpack_flag))
            )
            continue
        _warn_ignored(shared, src, is_add, where.start_line, from_)
        parents = isinstance(instruction, CopyInstruction) and instruction.parents
        # A --parents source stays as written: the file op cuts it at its first `/./`
        # (the pivot), which making it absolute would move (`./a/./b` -> `/./a/./b`).
        selector = src if parents else paths.normalize_path("/", src, keep_slash=False)
        if source_state is None:
            shared.context_paths.add(paths.join("/", src))
            base: Vertex | None = shared.context
        else:
            base = source_state.root
        unpack = is_add if unpack_flag is None else unpack_flag
        actions.append(
            CopyAction(
                source_input=input_index(base),
                sources=(selector,),
                dest=dest,
                chown=owner,
                chmod=chmod,
                owner_reset=source_state is None,
                parents=parents,
                exclude=excludes,
                unpack=unpack,
            )
        )

    for content in contents:
        history += " <<" + content.name
        document = state.record(_inline_document(content))
        actions.append(literal_copy(input_index(document), "/" + content.name))

    history += " " + dest_written
    no_cache = state.ignore_cache
    if link:
        copy_vertex = state.record(
            Vertex(
                FileOp(actions=tuple(actions), base=None),
                tuple(inputs),
                name=step_name,
                location=source_location(command.where),
                no_cache=no_cache,
            )
        )
        if state.root is None:
            state.root = copy_vertex
        else:
            link_name = step_name.replace(name_text, "LINK " + name_text, 1)
            state.root = state.record(
                Vertex(
                    MergeOp(),
                    (state.root, copy_vertex),
                    name=link_name,
                    location=source_location(command.where),
                    no_cache=no_cache,
                )
            )
    else:
        state.root = state.record(
            Vertex(
                FileOp(actions=tuple(actions), base=0 if state.root is not None else None),
                tuple(inputs),
                name=step_name,
                location=source_location(command.where),
                no_cache=no_cache,
            )
        )
    state.config.commit(history + " # buildkit", with_layer=True)


def _warn_ignored(shared: SharedState, src: str, is_add: bool, line: int, from_: str) -> None:
    """Lint CopyIgnoredFile: a context source the .dockerignore excludes (validations.go)."""
    patterns = shared.options.dockerignore
    if from_ or not patterns or any(p.startswith("!") for p in patterns):
        return
    try:
        from strata.dockerfile.ignore import PatternMatcher
    except ImportError:  # the matcher lands separately; without it, no warning
        return
    cleaned = paths.clean(src).lstrip("/") or "."
    if cleaned in (".", "/"):
        return
    matcher = PatternMatcher(list(patterns))
    if matcher.matches(cleaned):
        kind = "Add" if is_add else "Copy"
        shared.warn(
            PlanWarning(
                "CopyIgnoredFile",
                f'Attempting to {kind} file "{cleaned}" that is excluded by .dockerignore',
                line,
            )
        )

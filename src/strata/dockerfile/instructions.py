"""Typed Dockerfile instructions built from parser nodes, with BuildKit's checks and errors.

`parse_instruction` mirrors buildkit: frontend/dockerfile/instructions/parse.go. Values
stay as written (unexpanded): the planner expands them at dispatch with the build
environment of that point, as BuildKit does. Every instruction keeps its place in the
file so later errors (a bad mount option, a missing stage) can point at it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strata.dockerfile.ast import Heredoc, Node
from strata.dockerfile.flags import FlagSet, ParsedFlags
from strata.dockerfile.mounts import Mount, mount_from, parse_mount, split_csv
from strata.dockerfile.parser import chomp_heredoc_content, parse, parse_heredoc
from strata.dockerfile.suggest import with_suggestion
from strata.errors import DockerfileError, InstructionError, MountError, located, reraised_as
from strata.gotext import GO_SPACE, go_lower, go_quote
from strata.gotext import go_time_quote as go_time_quote
from strata.gotext import parse_go_duration as parse_go_duration
from strata.modes import NETWORK_MODES, SECURITY_MODES

INSTRUCTION_NAMES = (
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)

DEVICE_UNSUPPORTED = "device feature is only supported in Dockerfile frontend 1.14.0-labs or later"

_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*")
# Go regexp's \s is ASCII whitespace only; Python's would also eat \v and Unicode spaces.
_ONBUILD_PREFIX = re.compile(r"^[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*", re.IGNORECASE)


def nul_error(keyword: str, what: str, value: str) -> str | None:
    """The message for a NUL byte in a path-like `value` of `keyword`, or None.

    No path can hold a NUL: the kernel takes C strings. BuildKit lets one through
    until a system call fails with "invalid argument"; strata refuses it at the line
    that has it (or whose expansion made it), before anything touches the disk."""
    if "\x00" not in value:
        return None
    return f"{keyword} {what} {go_quote(value)} contains a NUL byte"


def refuse_nul(location: Location, keyword: str, what: str, value: str) -> None:
    """Raise a DockerfileError at `location` if `value` holds a NUL byte (see
    `nul_error`): for words only known after expansion."""
    message = nul_error(keyword, what, value)
    if message is not None:
        raise location.error(message)


def _refuse_nul_in_args(keyword: str, what: str, values: tuple[str, ...] | list[str]) -> None:
    for value in values:
        message = nul_error(keyword, what, value)
        if message is not None:
            raise InstructionError(message)


@dataclass(frozen=True)
class Location:
    """Where an instruction sits: file name, 1-based lines, and the file's text."""

    file: str
    start_line: int
    end_line: int
    source: str | None = field(default=None, compare=False, repr=False)

    def error(self, message: str) -> DockerfileError:
        """A DockerfileError pointing at these lines (BuildKit's parser.WithLocation)."""
        return DockerfileError(
            message,
            file=self.file,
            line=self.start_line,
            end_line=self.end_line,
            source=self.source,
        )


@dataclass(frozen=True, kw_only=True)
class Instruction:
    """What every instruction has: its keyword as typed, its text and its place."""

    keyword: str
    original: str
    location: Location
    comments: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The keyword in lower case (`run`, `copy`, ...)."""
        return self.keyword.lower()


_I = TypeVar("_I", bound=Instruction)


@dataclass(frozen=True)
class KeyValue:
    """One ENV/LABEL pair as written; `legacy` marks the `ENV key value` form."""

    key: str
    value: str
    legacy: bool = False


@dataclass(frozen=True)
class ArgDefinition:
    """One name of an ARG, its default as written (None when absent), its doc comment."""

    name: str
    default: str | None = None
    description: str = ""


@dataclass(frozen=True)
class SourceContent:
    """A COPY/ADD heredoc source: a file named `name` with `data` (tabs chomped)."""

    name: str
    data: str
    expand: bool = True


@dataclass(frozen=True)
class Device:
    """A `RUN --device` CDI device request."""

    name: str
    required: bool = False


@dataclass(frozen=True, kw_only=True)
class FromInstruction(Instruction):
    base_name: str
    stage_name: str | None = None  # lower-cased
    platform: str = ""
    description: str = ""  # the `# <name> <text>` comment above, when named


@dataclass(frozen=True, kw_only=True)
class RunInstruction(Instruction):
    command: tuple[str, ...]  # exec form: argv; shell form: one string
    prepend_shell: bool
    heredocs: tuple[Heredoc, ...] = ()
    mount_values: tuple[str, ...] = ()  # raw `--mount` CSV values
    mount_sources: tuple[str, ...] = ()  # `from` of each mount as written ("" = none)
    network: str = "default"
    security: str = "sandbox"
    devices: tuple[Device, ...] = ()
    flags_used: frozenset[str] = frozenset()

    def mounts(self, expand: Callable[[str], str]) -> tuple[Mount, ...]:
        """Every `--mount`, its values expanded with `expand`, validated as at dispatch.

        Errors point at this RUN (without the parse-error prefix, as BuildKit's dispatch).
        """

        def expand_checked(word: str) -> str:
            expanded = expand(word)
            refuse_nul(self.location, "RUN", "--mount value", expanded)
            return expanded

        with located(self.location, MountError):
            return tuple(parse_mount(value, expand=expand_checked) for value in self.mount_values)

    def check_supported(self) -> None:
        """Refuse what only BuildKit's labs frontend runs (`--device`), as at dispatch."""
        if self.devices:
            raise self.location.error(DEVICE_UNSUPPORTED)


@dataclass(frozen=True, kw_only=True)
class CmdInstruction(Instruction):
    command: tuple[str, ...]
    prepend_shell: bool


@dataclass(frozen=True, kw_only=True)
class EntrypointInstruction(Instruction):
    command: tuple[str, ...]
    prepend_shell: bool


@dataclass(frozen=True, kw_only=True)
class ShellInstruction(Instruction):
    shell: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class EnvInstruction(Instruction):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, kw_only=True)
class LabelInstruction(Instruction):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, kw_only=True)
class MaintainerInstruction(Instruction):
    maintainer: str


@dataclass(frozen=True, kw_only=True)
class ExposeInstruction(Instruction):
    ports: tuple[str, ...]  # raw words, sorted as strings (BuildKit sorts before expanding)


@dataclass(frozen=True, kw_only=True)
class CopyInstruction(Instruction):
    sources: tuple[str, ...]
    contents: tuple[SourceContent, ...]
    dest: str
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AddInstruction(Instruction):
    sources: tuple[str, ...]
    contents: tuple[SourceContent, ...]
    dest: str
    chown: str = ""
    chmod: str = ""
    link: bool = False
    checksum: str = ""
    keep_git_dir: bool | None = None  # None = not given
    unpack: bool | None = None  # None = not given (local: true, URL: false)
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class VolumeInstruction(Instruction):
    volumes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class UserInstruction(Instruction):
    user: str


@dataclass(frozen=True, kw_only=True)
class WorkdirInstruction(Instruction):
    path: str


@dataclass(frozen=True, kw_only=True)
class ArgInstruction(Instruction):
    args: tuple[ArgDefinition, ...]


@dataclass(frozen=True, kw_only=True)
class OnbuildInstruction(Instruction):
    trigger: str  # the triggered keyword, upper-cased
    expression: str  # the text after ONBUILD, heredoc bodies re-attached


@dataclass(frozen=True, kw_only=True)
class StopsignalInstruction(Instruction):
    signal: str


@dataclass(frozen=True, kw_only=True)
class HealthcheckInstruction(Instruction):
    test: tuple[str, ...]  # ("NONE",), ("CMD", argv...) or ("CMD-SHELL", text)
    interval: int = 0  # nanoseconds; 0 = engine default
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class _Request:
    """One node's pieces, as BuildKit's parseRequest."""

    node: Node
    keyword: str
    location: Location

    @property
    def args(self) -> list[str]:
        return self.node.args

    def make(self, cls: type[_I], **fields: Any) -> _I:
        """An instruction of type `cls` carrying this node's keyword, text and place."""
        return cls(
            keyword=self.keyword,
            original=self.node.original.strip(),
            location=self.location,
            comments=tuple(self.node.comments),
            **fields,
        )

    def flags(self, flag_set: FlagSet) -> ParsedFlags:
        return flag_set.parse(self.node.flags)

    def no_flags(self) -> None:
        FlagSet().parse(self.node.flags)


def _keyword_as_typed(node: Node) -> str:
    """The keyword exactly as written (BuildKit's node.Value keeps the user's casing).

    The parser records it; splitting `original` ourselves would cut at Unicode spaces that
    BuildKit's parser keeps inside the word (`F<U+00A0>ROM`).
    """
    return node.keyword or node.value


def _doc_comment(comments: tuple[str, ...], name: str) -> str:
    """The text after `<name> ` in the first comment line that starts so (getDocComment)."""
    if not name:
        return ""
    for line in comments:
        if line.startswith(name + " "):
            return line[len(name) + 1 :]
    return ""


def _command_line(node: Node) -> tuple[str, ...]:
    """Exec form as is; shell form joined into one string (handleJSONArgs)."""
    if not node.args:
        return ()
    if node.json_form:
        return tuple(node.args)
    return (" ".join(node.args),)


def _at_least_one(keyword: str) -> InstructionError:
    return InstructionError(f"{keyword} requires at least one argument")


def _exactly_one(keyword: str) -> InstructionError:
    return InstructionError(f"{keyword} requires exactly one argument")


def _key_values(args: list[str], keyword: str) -> tuple[KeyValue, ...]:
    if not args:
        raise _at_least_one(keyword)
    if len(args) % 3 != 0:
        raise InstructionError(f"Bad input to {keyword}, too many arguments")
    pairs = []
    for i in range(0, len(args), 3):
        if not args[i]:
            raise InstructionError(f"{keyword} names can not be blank")
        pairs.append(KeyValue(args[i], args[i + 1], legacy=args[i + 2] == ""))
    return tuple(pairs)


def heredoc_word(word: str) -> Heredoc | None:
    """The heredoc `word` opens (`<<EOF`, `<<-"EOF"`, `2<<EOF`), or None.

    This is BuildKit's MustParseHeredoc: the parser's heredoc lexing with its errors
    ignored, so a word whose delimiter does not lex is an ordinary path.
    """
    try:
        return parse_heredoc(word)
    except DockerfileError:
        return None


def _sources_and_dest(
    req: _Request,
) -> tuple[tuple[str, ...], tuple[SourceContent, ...], str]:
    # buildkit: instructions/parse.go parseSourcesAndDest. Name, chomping and expansion
    # come from the source word itself; the body from the node's heredoc of that name.
    *sources, dest = req.args
    if heredoc_word(dest) is not None:
        raise InstructionError(f"{req.keyword.upper()} cannot accept a heredoc as a destination")
    bodies = {doc.name: doc.content for doc in req.node.heredocs}
    paths: list[str] = []
    contents: list[SourceContent] = []
    for src in sources:
        opened = heredoc_word(src)
        if opened is None:
            paths.append(src)
            continue
        data = bodies.get(opened.name, "")
        if opened.chomp:
            data = chomp_heredoc_content(data)
        contents.append(SourceContent(name=opened.name, data=data, expand=opened.expand))
    return tuple(paths), tuple(contents), dest


def go_upper(text: str) -> str:
    """Upper-case as Go's strings.ToUpper: one code point for one (`ß` stays, not `SS`)."""
    if text.isascii():
        return text.upper()
    return "".join(upper if len(upper := char.upper()) == 1 else char for char in text)


def _go_equal_fold(left: str, right: str) -> bool:
    """Go's strings.EqualFold: equal under simple case folding (`aſ` is `AS`; `İ` is not `i`)."""
    if len(left) != len(right):
        return False
    for a, b in zip(left, right, strict=True):
        if a == b:
            continue
        folded = a.casefold()
        if len(folded) != 1 or folded != b.casefold():
            return False
    return True


def _parse_from(req: _Request) -> FromInstruction:
    args = req.args
    stage_name: str | None = None
    if len(args) == 3 and _go_equal_fold(args[1], "as"):
        stage_name = go_lower(args[2])
        if not _STAGE_NAME.fullmatch(stage_name):
            raise InstructionError(
                f"invalid name for build stage: {go_quote(args[2])}, "
                "name can't start with a number or contain symbols"
            )
    elif len(args) != 1:
        raise InstructionError("FROM requires either one or three arguments")
    flags = req.flags(FlagSet().add_string("platform"))
    comments = tuple(req.node.comments)
    return req.make(
        FromInstruction,
        base_name=args[0],
        stage_name=stage_name,
        platform=flags.value("platform"),
        description=_doc_comment(comments, stage_name or ""),
    )


def _parse_device(value: str) -> Device:
    # buildkit: instructions/commands_rundevice.go (ParseDevice)
    try:
        fields = split_csv(value)
    except ValueError as exc:
        raise InstructionError(f"failed to parse csv devices: {exc}") from None
    name = ""
    required = False
    for item in fields:
        key, has_value, val = item.partition("=")
        key = go_lower(key)
        if not has_value:
            if key == "required":
                required = True
            elif not name:
                name = item
            else:
                raise InstructionError(f"invalid field '{item}' must be a key=value pair")
            continue
        if key == "name":
            if name:
                raise InstructionError(f"device name already set to {name}")
            name = val
        elif key == "required":
            if val in ("1", "t", "T", "TRUE", "true", "True"):
                required = True
            elif val in ("0", "f", "F", "FALSE", "false", "False"):
                required = False
            else:
                raise InstructionError(f"invalid value for {key}: {val}")
        elif not name:
            name = item
        else:
            raise InstructionError(
                with_suggestion(f"unexpected key '{key}' in '{item}'", key, ("name", "required"))
            )
    return Device(name=name, required=required)


def _parse_run(req: _Request) -> RunInstruction:
    # Flag order follows BuildKit's hook registration (device, mount, network, security).
    flags = req.flags(
        FlagSet()
        .add_strings("device")
        .add_strings("mount")
        .add_string("network", "default")
        .add_string("security", "sandbox")
    )
    devices = tuple(_parse_device(v) for v in flags.values("device"))
    mount_values = flags.values("mount")
    _refuse_nul_in_args("RUN", "--mount", mount_values)
    with reraised_as(InstructionError, MountError):
        mount_sources = tuple(mount_from(v) for v in mount_values)
    network = flags.value("network")
    if network not in NETWORK_MODES:
        raise InstructionError(f"invalid network mode {go_quote(network)}")
    security = flags.value("security")
    if security not in SECURITY_MODES:
        raise InstructionError(f"security {go_quote(security)} is not valid")
    return req.make(
        RunInstruction,
        command=_command_line(req.node),
        prepend_shell=not req.node.json_form,
        heredocs=tuple(req.node.heredocs),
        mount_values=mount_values,
        mount_sources=mount_sources,
        network=network,
        security=security,
        devices=devices,
        flags_used=flags.used,
    )


def _parse_copy(req: _Request) -> CopyInstruction:
    if len(req.args) < 2:
        raise _no_destination("COPY")
    flags = req.flags(
        FlagSet()
        .add_string("chown")
        .add_string("from")
        .add_string("chmod")
        .add_bool("link")
        .add_strings("exclude")
        .add_bool("parents")
    )
    sources, contents, dest = _sources_and_dest(req)
    _refuse_nul_in_args("COPY", "path", [*sources, dest])
    return req.make(
        CopyInstruction,
        sources=sources,
        contents=contents,
        dest=dest,
        from_=flags.value("from"),
        chown=flags.value("chown"),
        chmod=flags.value("chmod"),
        link=flags.is_true("link"),
        parents=flags.is_true("parents"),
        excludes=flags.values("exclude"),
    )


def _parse_add(req: _Request) -> AddInstruction:
    if len(req.args) < 2:
        raise _no_destination("ADD")
    flags = req.flags(
        FlagSet()
        .add_string("chown")
        .add_string("chmod")
        .add_bool("link")
        .add_bool("keep-git-dir")
        .add_string("checksum")
        .add_bool("unpack")
        .add_strings("exclude")
    )
    sources, contents, dest = _sources_and_dest(req)
    _refuse_nul_in_args("ADD", "path", [*sources, dest])
    return req.make(
        AddInstruction,
        sources=sources,
        contents=contents,
        dest=dest,
        chown=flags.value("chown"),
        chmod=flags.value("chmod"),
        link=flags.is_true("link"),
        checksum=flags.value("checksum"),
        keep_git_dir=flags.is_true("keep-git-dir") if flags.is_used("keep-git-dir") else None,
        unpack=flags.is_true("unpack") if flags.is_used("unpack") else None,
        excludes=flags.values("exclude"),
    )


def _no_destination(keyword: str) -> InstructionError:
    return InstructionError(
        f"{keyword} requires at least two arguments, but only one was provided. "
        "Destination could not be determined"
    )


def _interval(flags: ParsedFlags, name: str) -> int:
    text = flags.value(name)
    if not text:
        return 0
    try:
        value = parse_go_duration(text)
    except ValueError as exc:
        raise InstructionError(str(exc)) from None
    if value != 0 and value < 1_000_000:
        raise InstructionError(f'Interval "{name}" cannot be less than 1ms')
    return value


def _parse_int32(text: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise InstructionError(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not -(2**31) <= value < 2**31:
        raise InstructionError(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return value


def _parse_healthcheck(req: _Request) -> HealthcheckInstruction:
    if not req.args:
        raise _at_least_one("HEALTHCHECK")
    kind = go_upper(req.args[0])
    rest = req.args[1:]
    if kind == "NONE":
        if rest:
            raise InstructionError("HEALTHCHECK NONE takes no arguments")
        # Flags given with NONE are never parsed, so never checked (as in BuildKit).
        return req.make(HealthcheckInstruction, test=("NONE",))
    flags = req.flags(
        FlagSet()
        .add_string("interval")
        .add_string("timeout")
        .add_string("start-period")
        .add_string("start-interval")
        .add_string("retries")
    )
    if kind != "CMD":
        raise InstructionError(f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)")
    if not rest:
        raise InstructionError("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *rest) if req.node.json_form else ("CMD-SHELL", " ".join(rest))
    interval = _interval(flags, "interval")
    timeout = _interval(flags, "timeout")
    start_period = _interval(flags, "start-period")
    start_interval = _interval(flags, "start-interval")
    retries = 0
    if flags.value("retries"):
        retries = _parse_int32(flags.value("retries"))
        if retries < 0:
            raise InstructionError(f"--retries cannot be negative ({retries})")
    return req.make(
        HealthcheckInstruction,
        test=test,
        interval=interval,
        timeout=timeout,
        start_period=start_period,
        start_interval=start_interval,
        retries=retries,
    )


def _parse_onbuild(req: _Request) -> OnbuildInstruction:
    if not req.args:
        raise _at_least_one("ONBUILD")
    req.no_flags()
    trigger = go_upper(req.args[0].strip(GO_SPACE))
    if trigger == "ONBUILD":
        raise InstructionError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise InstructionError(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", req.node.original, count=1)
    heredocs = req.node.heredocs or (req.node.child.heredocs if req.node.child else [])
    for doc in heredocs:
        expression += "\n" + doc.content + doc.name
    return req.make(
        OnbuildInstruction,
        trigger=trigger,
        expression=expression,
    )


def _parse_arg(req: _Request) -> ArgInstruction:
    # BuildKit never parses ARG's flags: stray `--x` words are ignored, not errors.
    if not req.args:
        raise _at_least_one("ARG")
    comments = tuple(req.node.comments)
    definitions = []
    for word in req.args:
        name, has_value, default = word.partition("=")
        if has_value and not name:
            raise InstructionError("ARG names can not be blank")
        definitions.append(
            ArgDefinition(
                name=name,
                default=default if has_value else None,
                description=_doc_comment(comments, name),
            )
        )
    return req.make(ArgInstruction, args=tuple(definitions))


def _parse_shell(req: _Request) -> ShellInstruction:
    req.no_flags()
    shell = _command_line(req.node)
    if not shell:
        raise _at_least_one("SHELL")
    if not req.node.json_form:
        raise InstructionError("SHELL requires the arguments to be in JSON form")
    return req.make(ShellInstruction, shell=shell)


def _parse_simple(req: _Request) -> Instruction:
    """The instructions whose only checks are arity and "no flags"."""
    args = req.args
    kind = go_lower(req.node.value)
    if kind == "env":
        req.no_flags()
        return req.make(EnvInstruction, pairs=_key_values(args, "ENV"))
    if kind == "label":
        req.no_flags()
        return req.make(LabelInstruction, pairs=_key_values(args, "LABEL"))
    if kind == "maintainer":
        if len(args) != 1:
            raise _exactly_one("MAINTAINER")
        req.no_flags()
        return req.make(MaintainerInstruction, maintainer=args[0])
    if kind == "workdir":
        if len(args) != 1:
            raise _exactly_one("WORKDIR")
        req.no_flags()
        _refuse_nul_in_args("WORKDIR", "path", args[:1])
        return req.make(WorkdirInstruction, path=args[0])
    if kind == "user":
        if len(args) != 1:
            raise _exactly_one("USER")
        req.no_flags()
        return req.make(UserInstruction, user=args[0])
    if kind == "stopsignal":
        # BuildKit checks no flags here either.
        if len(args) != 1:
            raise _exactly_one("STOPSIGNAL")
        return req.make(StopsignalInstruction, signal=args[0])
    if kind == "expose":
        if not args:
            raise _at_least_one("EXPOSE")
        req.no_flags()
        return req.make(ExposeInstruction, ports=tuple(sorted(args)))
    if kind == "volume":
        if not args:
            raise _at_least_one("VOLUME")
        req.no_flags()
        volumes = tuple(v.strip() for v in args)
        if any(v == "" for v in volumes):
            raise InstructionError("VOLUME specified can not be an empty string")
        return req.make(VolumeInstruction, volumes=volumes)
    if kind == "cmd":
        req.no_flags()
        return req.make(
            CmdInstruction,
            command=_command_line(req.node),
            prepend_shell=not req.node.json_form,
        )
    if kind == "entrypoint":
        req.no_flags()
        return req.make(
            EntrypointInstruction,
            command=_command_line(req.node),
            prepend_shell=not req.node.json_form,
        )
    raise _unknown(req)


def _unknown(req: _Request) -> InstructionError:
    return InstructionError(
        with_suggestion(
            f"unknown instruction: {req.keyword}",
            req.keyword,
            INSTRUCTION_NAMES,
            case_sensitive=False,
        )
    )


_PARSERS: dict[str, Callable[[_Request], Instruction]] = {
    "from": _parse_from,
    "run": _parse_run,
    "copy": _parse_copy,
    "add": _parse_add,
    "healthcheck": _parse_healthcheck,
    "onbuild": _parse_onbuild,
    "arg": _parse_arg,
    "shell": _parse_shell,
}


def parse_instruction(node: Node, *, file: str, source: str) -> Instruction:
    """The typed instruction for `node`, or DockerfileError with BuildKit's message.

    Messages get BuildKit's `dockerfile parse error on line <L>: ` prefix, since
    BuildKit wraps every instruction parse failure that way (instructions/parse.go).
    """
    location = Location(file, node.start_line, node.end_line, source)
    with located(
        location, InstructionError, prefix=f"dockerfile parse error on line {node.start_line}: "
    ):
        return _typed_instruction(node, location)


def _typed_instruction(node: Node, location: Location) -> Instruction:
    req = _Request(node=node, keyword=_keyword_as_typed(node), location=location)
    parser = _PARSERS.get(go_lower(node.value), _parse_simple)
    return parser(req)


def parse_trigger(expression: str, *, location: Location) -> Instruction:
    """An ONBUILD trigger typed as the stage that inherits it runs it.

    BuildKit re-parses the stored expression as a one-instruction Dockerfile (default
    escape, no directives), types it with ParseCommand, and points every error at the
    inheriting stage's FROM, without the `dockerfile parse error` prefix
    (dockerfile2llb/convert.go initOnBuildTriggers). `location` is that FROM.
    """
    with located(location, DockerfileError):
        parsed = parse(expression, filename=location.file)
    if len(parsed.children) != 1:
        raise location.error("onbuild trigger should be a single expression")
    node = parsed.children[0]
    node.start_line, node.end_line = location.start_line, location.end_line
    with located(location, InstructionError):
        instruction = _typed_instruction(node, location)
    if isinstance(instruction, FromInstruction):
        # ParseCommand's "%T is not a command type" for a stage.
        raise location.error("*instructions.Stage is not a command type")
    return instruction

"""Parser directives: the `# syntax=`, `# escape=` and `# check=` lines that open a Dockerfile.

BuildKit reads them from the leading block of comment lines only; the first line that is not
a known directive (an instruction, a blank line, any other comment) ends the block for good,
and later directive-looking lines are plain comments. Keys are case-insensitive, whitespace
around `=` is allowed, and a key may appear once.
Behaviour from BuildKit `frontend/dockerfile/parser/directives.go` (DirectiveParser,
ParseDirective, DetectSyntax) and `parser.go` (setEscapeToken); the `check` options from
`frontend/dockerfile/linter/linter.go` (ParseLintOptions, WithMergedConfig,
WithMergedConfigFromComments) and `frontend/dockerui/config.go` (BUILDKIT_DOCKERFILE_CHECK).

BuildKit's DetectSyntax also accepts `// syntax=` lines and a JSON `{"syntax": ...}` document,
but only to pick which frontend image reads the file; its Dockerfile parser never treats
those as directives (`//` is an unknown instruction to it), so strata does not either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from strata.errors import DockerfileError
from strata.gotext import GO_SPACE, go_quote

DIRECTIVE_KEYS: Final = frozenset({"syntax", "escape", "check"})
DEFAULT_ESCAPE: Final = "\\"

# `key = value`; Go's \s is [\t\n\f\r ] and its `$` means end of text.
_DIRECTIVE_BODY: Final = re.compile(
    r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z"
)


class DirectiveProblem(Exception):
    """A directive the parser must refuse; the parser turns it into a located DockerfileError."""


class DirectiveReader:
    """Reads the leading directive block one line at a time, as BuildKit's DirectiveParser.

    Feed it every line until `done`; it then ignores the rest. It is per-parse state, so each
    parse makes its own.
    """

    def __init__(self) -> None:
        self.done = False
        self.found: dict[str, str] = {}

    def read(self, line: str) -> tuple[str, str] | None:
        """Return `(key, value)` when `line` is a directive, else None (and end the block).

        Raises DirectiveProblem for a repeated key.
        """
        if self.done:
            return None
        if not line.startswith("#"):
            self.done = True
            return None
        match = _DIRECTIVE_BODY.match(line[1:].lstrip(GO_SPACE))
        if match is None:
            self.done = True
            return None
        key = match.group(1).lower()
        if key not in DIRECTIVE_KEYS:
            self.done = True
            return None
        if key in self.found:
            raise DirectiveProblem(f"only one {key} parser directive can be used")
        value = match.group(2)
        self.found[key] = value
        return key, value


def check_escape_token(value: str) -> str:
    """Return `value` when it is a valid escape token (`\\` or `` ` ``), else refuse it."""
    if value not in ("\\", "`"):
        raise DirectiveProblem(f"invalid escape token '{value}' does not match ` or \\")
    return value


def find_directive(text: str, key: str) -> str | None:
    """The value of directive `key` as BuildKit's frontend selection and linter look it up.

    Unlike the parser itself (which ends the block at a `#!` line), this skips a byte-order
    mark and a leading `#!` shebang line first, and it does not skip indentation. Lines are
    split as Go's bufio.ScanLines does (one trailing `\\r` dropped). The value is returned as
    written; BuildKit uses the part before the first space as the frontend image or the
    check options.
    """
    text = text.removeprefix("\ufeff")
    if text.startswith("#!"):
        _, _, text = text.partition("\n")
    reader = DirectiveReader()
    for line in text.split("\n"):
        try:
            reader.read(line.removesuffix("\r"))
        except DirectiveProblem:
            break
        if reader.done:
            break
    return reader.found.get(key)


def find_directive_line(text: str, key: str) -> tuple[str, int] | None:
    """`find_directive` plus the 1-based line the directive is on (a shebang line counts)."""
    text = text.removeprefix("\ufeff")
    offset = 0
    if text.startswith("#!"):
        _, _, text = text.partition("\n")
        offset = 1
    reader = DirectiveReader()
    for number, line in enumerate(text.split("\n"), start=1 + offset):
        try:
            found = reader.read(line.removesuffix("\r"))
        except DirectiveProblem:
            break
        if found is not None and found[0] == key:
            return found[1], number
        if reader.done:
            break
    return None


# --- `# check=` ----------------------------------------------------------------------------

CHECK_BUILD_ARG: Final = "BUILDKIT_DOCKERFILE_CHECK"

# strconv.ParseBool's spellings.
_GO_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True)
class CheckOptions:
    """What a `check` directive asks of the linter (BuildKit's linter.Config).

    skip:         rule names whose warnings are dropped; `skip_all` drops every warning.
    error:        turn the build's warnings into the error `lint violation found for rules:`.
    experimental: experimental rules to run (they are off unless named);
                  `experimental_all` runs all of them.
    """

    skip: tuple[str, ...] = ()
    error: bool = False
    experimental: tuple[str, ...] = ()
    skip_all: bool = False
    experimental_all: bool = False

    def runs(self, rule: str, *, experimental: bool = False) -> bool:
        """Whether a warning of `rule` is reported (BuildKit's Linter.Run).

        An experimental rule runs only when enabled, and `skip` does not apply to it.
        """
        if experimental:
            return self.experimental_all or rule in self.experimental
        return not self.skip_all and rule not in self.skip

    def merged(self, other: CheckOptions) -> CheckOptions:
        """These options widened by `other` (WithMergedConfig): `error` is not inherited."""
        return CheckOptions(
            skip=self.skip + tuple(rule for rule in other.skip if rule not in self.skip),
            error=self.error,
            experimental=self.experimental
            + tuple(rule for rule in other.experimental if rule not in self.experimental),
            skip_all=self.skip_all or other.skip_all,
            experimental_all=self.experimental_all or other.experimental_all,
        )


def parse_check_options(text: str) -> CheckOptions:
    """Read `skip=<rules|all>;error=<bool>;experimental=<rules|all>` (ParseLintOptions).

    The text is split on `;` into at most three parts, so a fourth option stays inside the
    third one's value. Raises DirectiveProblem with BuildKit's wording; callers add what
    was being parsed (`failed to parse check options: ...`).
    """
    text = text.strip(GO_SPACE)
    if not text:
        return CheckOptions()
    skip: tuple[str, ...] = ()
    experimental: tuple[str, ...] = ()
    skip_all = experimental_all = error = False
    for part in text.split(";", 2):
        key, equals, value = part.partition("=")
        if not equals:
            raise DirectiveProblem(f"invalid check option {go_quote(part)}")
        key = key.strip(GO_SPACE)
        if key == "skip":
            value = value.strip(GO_SPACE)
            if value == "all":
                skip_all = True
            else:
                skip = tuple(rule.strip(GO_SPACE) for rule in value.split(","))
        elif key == "experimental":
            value = value.strip(GO_SPACE)
            if value == "all":
                experimental_all = True
            else:
                experimental = tuple(rule.strip(GO_SPACE) for rule in value.split(","))
        elif key == "error":
            word = value.strip(GO_SPACE)
            if word not in _GO_TRUE and word not in _GO_FALSE:
                raise DirectiveProblem(
                    f"failed to parse check option {go_quote(part)}: "
                    f"strconv.ParseBool: parsing {go_quote(word)}: invalid syntax"
                )
            error = word in _GO_TRUE
        else:
            raise DirectiveProblem(f"invalid check option {go_quote(key)}")
    return CheckOptions(
        skip=skip,
        error=error,
        experimental=experimental,
        skip_all=skip_all,
        experimental_all=experimental_all,
    )


def parse_check_directive(value: str) -> CheckOptions:
    """The options of a `# check=` directive value as written (Dockerfile.directives["check"]).

    Only the part before the first space counts, as BuildKit's ParseDirective cuts it. A
    bad value raises DockerfileError `failed to parse check options: ...` without a place;
    `read_check_options` adds the directive's line.
    """
    options, _, _ = value.partition(" ")
    try:
        return parse_check_options(options)
    except DirectiveProblem as problem:
        raise DockerfileError(f"failed to parse check options: {problem}") from None


def read_check_options(
    text: str, *, filename: str = "Dockerfile", build_arg: str | None = None
) -> CheckOptions:
    """The check options a build of `text` runs with; call it before parsing, as BuildKit does.

    BuildKit reads them before it parses the Dockerfile (dockerfile2llb `toDispatchState`,
    `newRuleLinter`), so a bad `# check=` is reported even when the file has other errors.
    `build_arg` is the BUILDKIT_DOCKERFILE_CHECK build-arg; when given it replaces the
    directive entirely, and the directive is then not even read. Errors name the directive's
    line (BuildKit gives none).
    """
    if build_arg is not None:
        try:
            return parse_check_options(build_arg)
        except DirectiveProblem as problem:
            raise DockerfileError(
                f"failed to parse build-arg:{CHECK_BUILD_ARG}: {problem}", file=filename
            ) from None
    found = find_directive_line(text, "check")
    if found is None:
        return CheckOptions()
    value, line = found
    try:
        return parse_check_directive(value)
    except DockerfileError as error:
        raise DockerfileError(error.message, file=filename, line=line, source=text) from None


def check_options_for(base: CheckOptions, comments: list[str]) -> CheckOptions:
    """`base` widened by a `check=` comment directly above an instruction or stage.

    BuildKit (WithMergedConfigFromComments) lets `# check=skip=Rule` above one instruction
    skip that rule there. `comments` are the node's comment lines without `#`; the first
    one that reads as a `check` directive counts, and one with bad options is ignored.
    """
    for comment in comments:
        match = _DIRECTIVE_BODY.match(comment.lstrip(GO_SPACE))
        if match is None or match.group(1).lower() != "check":
            continue
        options, _, _ = match.group(2).partition(" ")
        try:
            return base.merged(parse_check_options(options))
        except DirectiveProblem:
            return base
    return base

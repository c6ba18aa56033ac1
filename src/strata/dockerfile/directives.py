"""Parser directives: the `# syntax=`, `# escape=` and `# check=` lines that open a Dockerfile.

BuildKit reads them from the leading block of comment lines only; the first line that is not
a known directive (an instruction, a blank line, any other comment) ends the block for good,
and later directive-looking lines are plain comments. Keys are case-insensitive, whitespace
around `=` is allowed, and a key may appear once.
Behaviour from BuildKit `frontend/dockerfile/parser/directives.go` (DirectiveParser,
ParseDirective, DetectSyntax) and `parser.go` (setEscapeToken).
"""

from __future__ import annotations

import re
from typing import Final

from strata.dockerfile.ast import GO_SPACE

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

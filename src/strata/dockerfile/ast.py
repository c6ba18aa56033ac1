"""The parsed Dockerfile tree, shaped like BuildKit's parser.Node (frontend/dockerfile/parser).

The parser fills these; the instruction layer reads them. Fields listed here are the
contract between the two: add fields freely, do not rename these.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heredoc:
    """One `<<NAME` document: its body verbatim (ending in a newline)."""

    name: str
    content: str
    expand: bool = True  # False when any part of the delimiter was quoted
    chomp: bool = False  # `<<-`: leading tabs stripped
    file_descriptor: int = 0


@dataclass
class Node:
    """One instruction.

    value:      the instruction keyword, lower-cased (`run`, `copy`, ...).
    args:       its arguments as parsed: JSON elements, whitespace-split words, or
                the raw rest of the line, depending on the instruction.
    flags:      the leading `--name[=value]` words, as written.
    original:   the source text after continuation joining (comment lines dropped).
    json_form:  True when the arguments came from a JSON array (exec form).
    heredocs:   the documents this instruction opened, in order.
    child:      for ONBUILD, the triggered instruction.
    comments:   the comment lines directly above this instruction (without `#`),
                used as a stage's description when this is a FROM.
    start_line, end_line: 1-based lines the instruction spans in the file.
    """

    value: str
    args: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    original: str = ""
    json_form: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)
    child: Node | None = None
    comments: list[str] = field(default_factory=list)
    start_line: int = 0
    end_line: int = 0


@dataclass(frozen=True)
class ParseWarning:
    """A lint-style warning found while parsing (for example an empty continuation line)."""

    rule: str
    message: str
    line: int

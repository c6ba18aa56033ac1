"""The parsed Dockerfile tree, shaped like BuildKit's parser.Node (frontend/dockerfile/parser).

The parser fills these; the instruction layer reads them. Fields listed here are the
contract between the two: add fields freely, do not rename these.

`dump()` renders the tree in BuildKit's s-expression notation (parser.go `Node.Dump`), the
form BuildKit's own parser test vectors are written in, so strata can be checked against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strata.gotext import GO_SPACE, go_lower, go_quote


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
    keyword:    the instruction word exactly as written (`Run`, `FROM`), for messages and
                the casing lint; `value` is its lower-case form.

    For ONBUILD, `child` is the trigger and `args` are the trigger's keyword followed by its
    args (BuildKit's nodeArgs); the heredocs of a trigger are on both nodes.
    For ENV and LABEL, `args` come in triples: key, value, and `=` or `` (legacy `ENV k v`).
    For HEALTHCHECK, `args[0]` is the type (`CMD`, `NONE`) and the rest its command.
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
    keyword: str = ""

    def dump(self) -> str:
        """This instruction in BuildKit's AST notation, without the enclosing parentheses."""
        parts = [go_lower(self.value)]
        if self.flags:
            parts.append("[" + " ".join(go_quote(flag) for flag in self.flags) + "]")
        if self.child is not None:
            parts.append("(" + self.child.dump() + ")")
        else:
            parts.extend(go_quote(arg) for arg in self.args)
        return " ".join(parts).strip(GO_SPACE)


@dataclass(frozen=True)
class ParseWarning:
    """A lint-style warning found while parsing (for example an empty continuation line)."""

    rule: str
    message: str
    line: int


@dataclass
class Dockerfile:
    """A whole parsed Dockerfile: its instructions in order plus what the parser learned.

    children:   one Node per instruction.
    filename:   the name errors and excerpts refer to.
    source:     the text that was parsed (for excerpts).
    escape:     the escape / line-continuation character in force (`\\` or `` ` ``).
    directives: the parser directives BuildKit honours, keys lower-case (`syntax`, `escape`,
                `check`), values as written. `syntax` and `check` are read the way BuildKit's
                frontend selection and linter read them (a `#!` first line is skipped).
    warnings:   parse-time lint warnings (NoEmptyContinuation).
    """

    children: list[Node]
    filename: str = "Dockerfile"
    source: str = ""
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)
    warnings: list[ParseWarning] = field(default_factory=list)

    def dump(self) -> str:
        """The tree in BuildKit's AST notation, one `(instruction ...)` per line.

        Equal to BuildKit's `Node.Dump()` of the root; its test vectors hold this plus `\\n`.
        """
        return "\n".join(f"({child.dump()})" for child in self.children).strip(GO_SPACE)

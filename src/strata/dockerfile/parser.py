"""Dockerfile text to a `Dockerfile` tree, reading it exactly as BuildKit's parser does.

The parser knows lines, not meaning: it joins continuation lines, drops comments, reads the
leading parser directives and the heredoc bodies of RUN/COPY/ADD, and splits each instruction
into flags and arguments in the per-instruction shape BuildKit's line parsers give. What the
arguments mean (and most errors about them) is the instruction layer's business.

Behaviour follows BuildKit `frontend/dockerfile/parser/{parser.go,line_parsers.go,
split_command.go,directives.go}`; the few places where strata differs on purpose are noted
where they happen.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final, NoReturn

from strata.dockerfile.ast import Dockerfile, Heredoc, Node, ParseWarning
from strata.dockerfile.directives import (
    DEFAULT_ESCAPE,
    DirectiveProblem,
    DirectiveReader,
    check_escape_token,
    find_directive,
)
from strata.dockerfile.shell import ShellLex
from strata.errors import DockerfileError, ShellError
from strata.gotext import GO_SPACE, go_lower
from strata.gotext import go_quote as _go_quote

# bufio.Scanner's default buffer (64 KiB) must hold a line and its newline.
MAX_LINE_BYTES: Final = 65535

NO_EMPTY_CONTINUATION: Final = "NoEmptyContinuation"

_NOT_STRING_ARRAY: Final = "when using JSON array syntax, arrays must be comprised of strings only"

# Go's regexp `[\t\v\f\r ]+` (reWhitespace): note, no newline and no Unicode spaces.
_WHITESPACE_RUN: Final = re.compile(r"[\t\v\f\r ]+")
# reHeredoc with Go's meanings: \d is ASCII, \s is [\t\n\f\r ], `$` is the end of the text.
_HEREDOC_WORD: Final = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
# Go's unicode.IsSpace on the single bytes that split_command.go and parseHealthConfig look at.
_ASCII_SPACE: Final = frozenset("\t\n\v\f\r ")
_GO_SPACE_SET: Final = frozenset(GO_SPACE)
_HEREDOC_INSTRUCTIONS: Final = frozenset({"run", "copy", "add"})
_MAX_UINT64: Final = (1 << 64) - 1


class _Problem(Exception):
    """What is wrong with the instruction being read; the parser adds file and lines."""


# --- the entry point -------------------------------------------------------------------


def parse(text: str, *, filename: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile `text` into its instructions.

    Every failure is a `DockerfileError` carrying `filename`, the lines of the offending
    instruction (0 when there is none) and the text, worded as BuildKit words it.
    """
    if text == "":
        # dockerfile2llb/convert.go refuses an empty file before parsing it.
        raise DockerfileError("the Dockerfile cannot be empty", file=filename, line=0, source=text)
    return _Parser(text, filename).run()


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc that `word` opens (`<<EOF`, `3<<-"EOF"`, `<< EOF`), or None.

    BuildKit's ParseHeredoc; COPY/ADD use it to tell heredoc sources from paths. The body is
    left empty. Raises DockerfileError (without a location) when the delimiter cannot be
    lexed, e.g. an unterminated quote.
    """
    try:
        return _heredoc_from_word(word)
    except _Problem as problem:
        raise DockerfileError(str(problem)) from None


def chomp_heredoc_content(content: str) -> str:
    """Strip leading tabs from every line, as `<<-` asks (BuildKit's ChompHeredocContent)."""
    return _LEADING_TABS.sub("", content)


_LEADING_TABS: Final = re.compile(r"^\t+", re.MULTILINE)


# --- reading lines ---------------------------------------------------------------------


class _Parser:
    """One run over one text: a line cursor plus the state BuildKit's Parse loop keeps."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.lines = text.split("\n")
        self.ends_with_newline = text.endswith("\n")
        if self.ends_with_newline:
            self.lines.pop()
        self.next_index = 0
        self.too_long_line = 0  # 1-based number of a line over the limit, once seen
        self.line_number = 0  # lines consumed so far (BuildKit's currentLine)
        self.escape = DEFAULT_ESCAPE
        self.directive_reader = DirectiveReader()

    # The scanner: like bufio.Scanner it stops for good at a line that is too long.
    def scan(self) -> str | None:
        index = self.next_index
        if index >= len(self.lines) or self.too_long_line:
            return None
        line = self.lines[index]
        # A character is at most 4 UTF-8 bytes: only long lines need encoding to measure.
        if len(line) * 4 > MAX_LINE_BYTES and _utf8_length(line) > MAX_LINE_BYTES:
            self.too_long_line = index + 1
            return None
        self.next_index = index + 1
        self.line_number += 1
        return line

    def with_newline(self, line: str) -> str:
        """The line as the file holds it: every line but an unterminated last one ends in \\n."""
        if self.next_index < len(self.lines) or self.ends_with_newline:
            return line + "\n"
        return line

    def fail(self, message: str, start: int, end: int | None = None) -> NoReturn:
        raise DockerfileError(
            message,
            file=self.filename,
            line=start,
            end_line=end if end is not None and end > start else start,
            source=self.text,
        )

    def run(self) -> Dockerfile:
        children: list[Node] = []
        warnings: list[ParseWarning] = []
        directives: dict[str, str] = {}
        comments: list[str] = []
        first = True
        while (raw := self.scan()) is not None:
            if first:
                raw = raw.removeprefix("\ufeff")
                first = False
            token = raw.rstrip("\r").lstrip(GO_SPACE)
            is_comment = token.startswith("#")
            if is_comment:
                # BuildKit drops the first byte of the raw line, not the `#`: an indented
                # comment keeps its `#` in the description.
                comment = raw[1:].strip(GO_SPACE)
                if comment:
                    comments.append(comment)
                else:
                    comments = []
            if (
                not self.directive_reader.done
                and self.read_directive(token, directives)
                and comments
            ):
                # A directive is not part of the description of the instruction below it.
                comments.pop()
            if is_comment:
                continue
            start = self.line_number
            token, complete = _strip_continuation(token, self.escape)
            if complete and not token:
                continue
            line, had_empty_line = self.join_continuation(token, complete)
            if had_empty_line:
                warnings.append(
                    ParseWarning(
                        NO_EMPTY_CONTINUATION,
                        "Empty continuation line found in: " + line,
                        self.line_number,
                    )
                )
            try:
                node = _node_from_line(line, self.escape, comments)
            except _Problem as problem:
                self.fail(str(problem), start, self.line_number)
            if "<<" in line and _can_contain_heredoc(node):
                self.read_heredocs(node, line, start)
            node.start_line = start
            node.end_line = self.line_number
            if node.child is not None:
                node.child.start_line = start
                node.child.end_line = self.line_number
            children.append(node)
            comments = []

        if not children:
            # BuildKit names the last line it read, so the excerpt shows the end of the file.
            self.fail("file with no instructions", self.line_number)
        if self.too_long_line:
            self.fail(
                f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}",
                self.too_long_line,
            )
        for key in ("syntax", "check"):
            value = find_directive(self.text, key)
            if value is not None:
                directives[key] = value
        return Dockerfile(
            children=children,
            filename=self.filename,
            source=self.text,
            escape=self.escape,
            directives=dict(sorted(directives.items())),
            warnings=warnings,
        )

    def read_directive(self, token: str, directives: dict[str, str]) -> bool:
        """Feed the directive block; an `escape` directive takes effect from the next line.

        Returns whether the line was a directive.
        """
        try:
            found = self.directive_reader.read(token)
            if found is not None and found[0] == "escape":
                self.escape = check_escape_token(found[1])
                directives["escape"] = found[1]
        except DirectiveProblem as problem:
            # BuildKit reports the line before (its counter lags by one); we name the line.
            self.fail(str(problem), self.line_number)
        return found is not None

    def join_continuation(self, token: str, complete: bool) -> tuple[str, bool]:
        """Append continuation lines to `token` until one does not end in the escape char.

        Comment lines inside are dropped; whitespace-only ones are dropped and reported. A
        continuation at the end of the file simply ends the instruction.
        """
        if complete:
            return token, False
        parts = [token]
        had_empty_line = False
        while not complete:
            raw = self.scan()
            if raw is None:
                break
            stripped = raw.lstrip(GO_SPACE)
            if stripped.startswith("#"):
                continue
            if not stripped:
                had_empty_line = True
                continue
            token, complete = _strip_continuation(raw.rstrip("\r"), self.escape)
            parts.append(token)
        return "".join(parts), had_empty_line

    def read_heredocs(self, node: Node, line: str, start: int) -> None:
        """Read the body of every heredoc the line opens, in order, from the lines after it."""
        try:
            opened = _heredocs_in_line(line)
        except _Problem as problem:
            self.fail(str(problem), start, self.line_number)
        for heredoc in opened:
            body: list[str] = []
            while (raw := self.scan()) is not None:
                candidate = raw.rstrip("\r")
                if heredoc.chomp:
                    candidate = candidate.lstrip("\t")
                if candidate == heredoc.name:
                    break
                body.append(self.with_newline(raw))
            else:
                self.fail("unterminated heredoc", start, self.line_number)
            node.heredocs.append(
                Heredoc(
                    name=heredoc.name,
                    content="".join(body),
                    expand=heredoc.expand,
                    chomp=heredoc.chomp,
                    file_descriptor=heredoc.file_descriptor,
                )
            )
        if node.child is not None:
            node.child.heredocs = list(node.heredocs)


def _utf8_length(line: str) -> int:
    return len(line.encode("utf-8", "surrogatepass"))


def _strip_continuation(token: str, escape: str) -> tuple[str, bool]:
    """Remove a trailing escape char (plus spaces/tabs after it); report if the line is complete.

    BuildKit's lineContinuationRegex `([^\\])\\[ \\t]*$|^\\[ \\t]*$`: the escape must not itself be
    escaped, the character before it stays, and a line of only the escape contributes nothing.
    """
    body = token.rstrip(" \t")
    if not body.endswith(escape):
        return token, True
    if len(body) == 1:
        return "", False
    if body[-2] == escape:
        return token, True
    return body[:-1], False


# --- one instruction -------------------------------------------------------------------


def _node_from_line(line: str, escape: str, comments: list[str]) -> Node:
    """Split a joined instruction line into keyword, flags and arguments (newNodeFromLine)."""
    keyword, flags, rest = _split_command(line, escape)
    value = go_lower(keyword)
    arguments = _ARGUMENT_PARSERS.get(value, _ignore_arguments)
    args, json_form, child = arguments(rest, escape)
    return Node(
        value=value,
        args=args,
        flags=flags,
        original=line,
        json_form=json_form,
        child=child,
        comments=list(comments),
        keyword=keyword,
    )


def _split_command(line: str, escape: str) -> tuple[str, list[str], str]:
    parts = _WHITESPACE_RUN.split(line.strip(GO_SPACE), maxsplit=1)
    if len(parts) == 1:
        return parts[0], [], ""
    rest, flags = _extract_flags(parts[1], escape)
    return parts[0], flags, rest.strip(GO_SPACE)


def _extract_flags(text: str, escape: str) -> tuple[str, list[str]]:
    """Take the leading `--name[=value]` words off `text` (BuildKit's extractBuilderFlags).

    Quotes inside a flag word group and are removed, the escape char escapes one character,
    and a bare `--` ends the flags. BuildKit walks bytes here and so garbles non-ASCII
    characters in flags; strata keeps characters intact and treats only ASCII blanks as
    separators (which is what BuildKit's byte test amounts to for the first byte of a word).
    """
    flags: list[str] = []
    length = len(text)
    pos = 0
    while True:
        while pos < length and text[pos] in _ASCII_SPACE:
            pos += 1
        if pos == length:
            return "", flags
        if not text.startswith("--", pos):
            return text[pos:], flags
        word: list[str] = []
        quote = ""
        quoted = False
        while pos < length:
            char = text[pos]
            if quote:
                if char == quote:
                    quote = ""
                elif char == escape:
                    if pos + 1 == length:
                        quote = ""
                    else:
                        pos += 1
                        word.append(text[pos])
                else:
                    word.append(char)
            elif char in _ASCII_SPACE:
                break
            elif char in "'\"":
                quote = char
                quoted = True
            elif char == escape:
                if pos + 1 < length:
                    pos += 1
                    word.append(text[pos])
            else:
                word.append(char)
            pos += 1
        flag = "".join(word)
        if pos == length:
            if flag != "--" and (quoted or flag):
                flags.append(flag)
            return "", flags
        if flag == "--":
            return text[pos:], flags
        if quoted or flag:
            flags.append(flag)


_Arguments = tuple[list[str], bool, Node | None]


def _ignore_arguments(rest: str, escape: str) -> _Arguments:
    """Unknown instructions keep one empty argument whatever follows them (parseIgnore).

    BuildKit's parseIgnore returns an empty node rather than none, so its dump shows
    `(foo "")` and nodeArgs gives `[""]`; strata keeps the same shape.
    """
    return [""], False, None


def _plain_string(rest: str, escape: str) -> _Arguments:
    """The whole rest of the line as one argument (parseString)."""
    return ([rest] if rest else []), False, None


def _whitespace_words(rest: str, escape: str) -> _Arguments:
    """Words split on blanks, quotes not grouping (parseStringsWhitespaceDelimited)."""
    return (_WHITESPACE_RUN.split(rest) if rest else []), False, None


def _json_or_string(rest: str, escape: str) -> _Arguments:
    """Exec form when the rest is a JSON array of strings, else one string (parseMaybeJSON)."""
    if not rest:
        return [], False, None
    array = _json_string_array(rest)
    if array is not None:
        return array, True, None
    return [rest], False, None


def _json_or_words(rest: str, escape: str) -> _Arguments:
    """A JSON array of strings, else blank-separated words (parseMaybeJSONToList)."""
    array = _json_string_array(rest)
    if array is not None:
        return array, True, None
    return _whitespace_words(rest, escape)


def _health_config(rest: str, escape: str) -> _Arguments:
    """HEALTHCHECK: a type word (`CMD`, `NONE`) then a JSON-or-string command."""
    end_of_type = 0
    while end_of_type < len(rest) and rest[end_of_type] not in _ASCII_SPACE:
        end_of_type += 1
    if end_of_type == 0:
        return [], False, None
    start_of_command = end_of_type
    while start_of_command < len(rest) and rest[start_of_command] in _ASCII_SPACE:
        start_of_command += 1
    command, json_form, _ = _json_or_string(rest[start_of_command:], escape)
    return [rest[:end_of_type], *command], json_form, None


def _names_or_assignments(rest: str, escape: str) -> _Arguments:
    """ARG: quoted-aware words, quotes kept (parseNameOrNameVal)."""
    return _quoted_words(rest, escape), False, None


def _env(rest: str, escape: str) -> _Arguments:
    return _name_values(rest, escape, "ENV"), False, None


def _label(rest: str, escape: str) -> _Arguments:
    return _name_values(rest, escape, "LABEL"), False, None


def _name_values(rest: str, escape: str, keyword: str) -> list[str]:
    """`k=v k2=v2` or the legacy `k v` as key, value, separator triples (parseNameVal).

    The separator is `=` for the new form and empty for the legacy one, which takes the
    whole rest of the line after the key as the value.
    """
    words = _quoted_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WHITESPACE_RUN.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _Problem(f"{keyword} must have two arguments")
        return [parts[0], parts[1], ""]
    triples: list[str] = []
    for word in words:
        key, equals, value = word.partition("=")
        if not equals:
            raise _Problem(
                f"Syntax error - can't find = in {_go_quote(word)}. Must be of the form: name=value"
            )
        triples += (key, value, "=")
    return triples


def _sub_command(rest: str, escape: str) -> _Arguments:
    """ONBUILD: the rest is an instruction of its own (parseSubCommand)."""
    if not rest:
        return [], False, None
    child = _node_from_line(rest, escape, [])
    return [child.keyword, *child.args], False, child


def _quoted_words(text: str, escape: str) -> list[str]:
    """Split on blanks, letting quotes group and keeping quotes and escapes (parseWords)."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    quote = ""
    keep_empty = False
    length = len(text)
    pos = 0
    while pos < length:
        char = text[pos]
        if quote:
            if char == quote:
                quote = ""
            elif char == escape and quote != "'":
                if pos + 1 == length:
                    quote = ""
                    pos += 1
                    continue
                word.append(char)
                pos += 1
                char = text[pos]
            word.append(char)
        elif char in _GO_SPACE_SET:
            if in_word:
                if keep_empty or word:
                    words.append("".join(word))
                word = []
                keep_empty = False
                in_word = False
        else:
            in_word = True
            if char in "'\"":
                quote = char
                keep_empty = True
            elif char == escape:
                if pos + 1 == length:
                    pos += 1
                    continue
                word.append(char)
                pos += 1
                char = text[pos]
            word.append(char)
        pos += 1
    if (in_word or quote) and (keep_empty or word):
        words.append("".join(word))
    return words


def _json_string_array(rest: str) -> list[str] | None:
    """The strings of a JSON array, or None when `rest` is not valid JSON (parseJSON).

    Go's encoding/json is the reference: NaN/Infinity are not JSON, a number too large for a
    float64 fails decoding (so the line falls back to shell form), and an unpaired surrogate
    escape decodes to U+FFFD. A valid array holding anything but strings is an error.
    """
    rest = rest.lstrip(GO_SPACE)
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(
            rest,
            parse_constant=_reject_json_constant,
            parse_float=_go_json_number,
            parse_int=_go_json_number,
        )
    except ValueError:
        return None
    except RecursionError:
        # Python's decoder recurses; Go's does not. Decide deep arrays without recursion:
        # a valid one necessarily holds a non-string (the nested array).
        if _decodes_in_go(rest):
            raise _Problem(_NOT_STRING_ARRAY) from None
        return None
    if not isinstance(value, list):
        return None
    for item in value:
        if not isinstance(item, str):
            raise _Problem(_NOT_STRING_ARRAY)
    if "\\u" in rest:
        return [_UNPAIRED_SURROGATE.sub("\ufffd", item) for item in value]
    return value


_UNPAIRED_SURROGATE: Final = re.compile("[\ud800-\udfff]")


# One JSON token after optional blanks: a string, a number, a literal or punctuation.
_JSON_TOKEN: Final = re.compile(
    r'[ \t\n\r]*(?:("(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")'
    r"|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
    r"|(true|false|null)"
    r"|([\[\]{},:]))"
)
# encoding/json's scanner refuses deeper nesting.
_GO_MAX_JSON_DEPTH: Final = 10000


def _decodes_in_go(text: str) -> bool:
    """Whether Go's json.Unmarshal would decode `text` without error, checked iteratively.

    Only used for arrays nested too deeply for Python's recursive decoder.
    """
    stack: list[str] = []
    expect = "value"  # value | first-value | key | first-key | colon | next
    pos = 0
    while stack or expect != "next":
        match = _JSON_TOKEN.match(text, pos)
        if match is None:
            return False
        pos = match.end()
        string, number, _literal, punct = match.groups()
        if expect in ("value", "first-value"):
            if punct == "]" and expect == "first-value":
                stack.pop()
                expect = "next"
            elif punct in ("[", "{"):
                stack.append(punct)
                if len(stack) > _GO_MAX_JSON_DEPTH:
                    return False
                expect = "first-value" if punct == "[" else "first-key"
            elif punct is not None:
                return False
            elif number is not None and math.isinf(float(number)):
                return False  # Go fails to decode a number that overflows a float64
            else:
                expect = "next"
        elif expect in ("key", "first-key"):
            if punct == "}" and expect == "first-key":
                stack.pop()
                expect = "next"
            elif string is None:
                return False
            else:
                expect = "colon"
        elif expect == "colon":
            if punct != ":":
                return False
            expect = "value"
        elif punct == "," and stack:
            expect = "value" if stack[-1] == "[" else "key"
        elif stack and punct == {"[": "]", "{": "}"}[stack[-1]]:
            stack.pop()
        else:
            return False
    return not text[pos:].strip(" \t\n\r")


def _reject_json_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _go_json_number(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"number {text} overflows a float64")
    return number


_ARGUMENT_PARSERS: Final[Mapping[str, Callable[[str, str], _Arguments]]] = MappingProxyType(
    {
        "add": _json_or_words,
        "arg": _names_or_assignments,
        "cmd": _json_or_string,
        "copy": _json_or_words,
        "entrypoint": _json_or_string,
        "env": _env,
        "expose": _whitespace_words,
        "from": _whitespace_words,
        "healthcheck": _health_config,
        "label": _label,
        "maintainer": _plain_string,
        "onbuild": _sub_command,
        "run": _json_or_string,
        "shell": _json_or_string,
        "stopsignal": _plain_string,
        "user": _plain_string,
        "volume": _json_or_words,
        "workdir": _plain_string,
    }
)

# The instructions BuildKit knows. The parser accepts any word as an instruction (with no
# arguments), as BuildKit's does; refusing unknown ones with `unknown instruction: X` is the
# instruction layer's job (instructions/parse.go), which keeps BuildKit's error order.
INSTRUCTIONS: Final = frozenset(_ARGUMENT_PARSERS)


# --- heredocs --------------------------------------------------------------------------


def _can_contain_heredoc(node: Node) -> bool:
    """RUN, COPY and ADD in shell form, also as an ONBUILD trigger (canContainHeredoc)."""
    if node.value == "onbuild" and node.child is not None:
        node = node.child
    return node.value in _HEREDOC_INSTRUCTIONS and not node.json_form


def _heredocs_in_line(line: str) -> list[Heredoc]:
    """The heredocs a line opens, in order (heredocsFromLine).

    The line is split into words with BuildKit's shell lexer keeping quotes and escapes, with
    `\\` as escape whatever the directive says; a line the lexer refuses opens none.
    """
    try:
        words = _lexed_words(line, keep_quotes=True, keep_escapes=True)
    except ShellError:
        return []
    except RecursionError:
        raise _Problem("line nests ${...} too deeply to read") from None
    heredocs = []
    for word in words:
        heredoc = _heredoc_from_word(word)
        if heredoc is not None:
            heredocs.append(heredoc)
    return heredocs


def _lexed_words(text: str, *, keep_quotes: bool, keep_escapes: bool) -> list[str]:
    """ProcessWords with BuildKit's heredoc settings: escape `\\`, unset variables kept.

    Go's ProcessWords never yields an empty word (`""` alone is no word); strata's lexer
    does, so empty words are dropped here.
    """
    words = ShellLex("\\").process_words(
        text, {}, keep_quotes=keep_quotes, keep_escapes=keep_escapes, skip_unset=True
    )
    return [word for word in words if word]


def _heredoc_from_word(word: str) -> Heredoc | None:
    """ParseHeredoc: the delimiter word after `<<`, lexed with and without its quotes.

    When quotes disappear in lexing, part of the delimiter was quoted, and the body must
    not be expanded later.
    """
    match = _HEREDOC_WORD.match(word)
    if match is None:
        return None
    digits, dash, rest = match.groups()
    if not rest:
        return None
    try:
        words = _lexed_words(rest, keep_quotes=False, keep_escapes=False)
        if len(words) != 1:
            return None
        raw_words = _lexed_words(rest, keep_quotes=True, keep_escapes=False)
    except ShellError as error:
        raise _Problem(str(error)) from None
    except RecursionError:
        raise _Problem("heredoc delimiter nests ${...} too deeply to read") from None
    if len(raw_words) != 1:
        raise _Problem(f"internal lexing of heredoc produced inconsistent results: {rest}")
    name = words[0]
    quotes = name.count("'") + name.count('"')
    raw_quotes = raw_words[0].count("'") + raw_words[0].count('"')
    # strconv.ParseUint: no digits is 0, too many saturates at the largest uint64.
    file_descriptor = min(int(digits), _MAX_UINT64) if digits else 0
    return Heredoc(
        name=name,
        content="",
        expand=quotes == raw_quotes,
        chomp=dash == "-",
        file_descriptor=file_descriptor,
    )

"""Shell-word expansion of Dockerfile arguments, as BuildKit's frontend does it.

BuildKit does not run a shell to expand `$VAR` in ENV, COPY, WORKDIR and
friends: it has its own small lexer (`frontend/dockerfile/shell/lex.go`) that
understands quotes, the escape token, `$VAR`, `${VAR}` and a fixed set of
`${VAR<modifier>word}` forms. Dockerfiles that work with BuildKit must expand
to the same bytes here, quirks included, so this module follows lex.go rule
by rule (the comments cite the behaviours that look surprising).

`expand` and `expand_words` are what instruction code calls. `ShellLex` is the
lower-level entry for the build engine: it can keep quotes and leave unset
variables untouched (RUN step names) and reports which variables were used,
for the UndefinedVar lint.

Two bounds BuildKit does not have keep hostile words from hurting: a word
may expand to at most `MAX_EXPANDED_CHARS` (1 MiB; forty `ARG A1=${A0}${A0}`
lines would otherwise ask for a terabyte), and `${...}` may nest `MAX_NESTING`
deep (lex.go recurses on Go's growable stacks and takes 10,000 levels and
more; this lexer recurses too, so the interpreter's recursion limit is
raised for the few words that need it, see `_RecursionRoom`).
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from strata.errors import ShellError
from strata.gotext import GO_SPACE, go_quote

__all__ = [
    "ExpandResult",
    "ShellError",
    "ShellLex",
    "expand",
    "expand_words",
    "go_quote",
]

# Go's `fmt` prints an invalid rune (text/scanner's EOF, -1) with %c and
# string(rune) as U+FFFD; BuildKit's messages show it that way.
_GO_EOF_RUNE = "\ufffd"

# text/scanner skips a byte-order mark at the very start of the input.
_BOM = "\ufeff"

MAX_EXPANDED_CHARS = 1 << 20
MAX_NESTING = 100_000
# Python frames one level of `${X:-${...}}` costs (until, dollar, modified,
# until_closing), and those the caller may already be using.
_FRAMES_PER_LEVEL = 4
_FRAMES_SPARE = 2_000
# Words nested less deeply than this fit the default recursion limit.
_SHALLOW_NESTING = 100
_SHOWN_WORD_CHARS = 60


def _shown(word: str) -> str:
    """`word` shortened for an error of strata's own bounds: the words that hit them
    are long, and the message should stay one readable line."""
    if len(word) <= _SHOWN_WORD_CHARS:
        return word
    return word[:_SHOWN_WORD_CHARS] + "..."


def _nesting_depth(text: str) -> int:
    """How deep `${` nests in `text`, counted over the raw characters (quotes and
    escapes ignored, so it may count a level too many, never too few for the
    lexer, which only recurses at `${`)."""
    depth = deepest = 0
    at = text.find("${")
    while at != -1:
        # Closing braces between this `${` and the previous one end levels.
        depth += 1
        deepest = max(deepest, depth)
        next_at = text.find("${", at + 2)
        stop = len(text) if next_at == -1 else next_at
        depth = max(0, depth - text.count("}", at + 2, stop))
        at = next_at
    return deepest


class _RecursionRoom:
    """Raises the interpreter's recursion limit while words nested deeper than the
    default limit allows are expanded, and puts it back when the last such
    expansion ends. Python 3.11 runs Python-to-Python calls without using the C
    stack, so the lexer's frames cost only memory. The limit is one for the whole
    interpreter, hence the lock and the count of expansions that need it."""

    _lock = threading.Lock()
    _users = 0
    _saved = 0

    @classmethod
    @contextmanager
    def enough_for(cls, frames: int) -> Iterator[None]:
        with cls._lock:
            if cls._users == 0:
                cls._saved = sys.getrecursionlimit()
            cls._users += 1
            if sys.getrecursionlimit() < frames:
                sys.setrecursionlimit(frames)
        try:
            yield
        finally:
            with cls._lock:
                cls._users -= 1
                if cls._users == 0:
                    sys.setrecursionlimit(cls._saved)


@dataclass(frozen=True)
class ExpandResult:
    """The outcome of expanding one word.

    `matched` names the variables that were looked up and set, `unmatched` the
    ones looked up and unset (BuildKit feeds the latter to UndefinedVar).
    `words` is the whitespace split of the result as `process_words` gives it.
    """

    value: str
    words: tuple[str, ...]
    matched: frozenset[str]
    unmatched: frozenset[str]


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """Expand one Dockerfile word: quotes removed, escapes applied, variables
    substituted (unset ones become empty). Raises `ShellError`."""
    return ShellLex(escape).process_word(word, env).value


def expand_words(text: str, env: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """Expand `text` and split it into words like BuildKit's ProcessWords:
    whitespace from unquoted text and unquoted expansions separates words,
    quoted text never does, and empty words disappear. Raises `ShellError`."""
    return ShellLex(escape).process_words(text, env)


class ShellLex:
    """BuildKit's shell lexer for one escape token (`\\` or `` ` ``).

    The flags mirror lex.go's: `keep_quotes` (RawQuotes) leaves quote
    characters in the output, `keep_escapes` (RawEscapes) leaves escape
    tokens in, `skip_quotes` (SkipProcessQuotes) treats quotes as ordinary
    characters, and `skip_unset` (SkipUnsetEnv) leaves references to unset
    variables exactly as written (`$X`, `${X}`, `${X:-w}`). BuildKit names RUN
    steps with keep_quotes + skip_unset and expands COPY heredoc bodies with
    skip_quotes.
    """

    def __init__(self, escape: str = "\\") -> None:
        if len(escape) != 1:
            raise ValueError(f"escape token must be one character, not {escape!r}")
        self.escape = escape

    def process_word(
        self,
        word: str,
        env: Mapping[str, str],
        *,
        keep_quotes: bool = False,
        skip_unset: bool = False,
        keep_escapes: bool = False,
        skip_quotes: bool = False,
    ) -> ExpandResult:
        """Expand `word` as one word; see the class docstring for the flags."""
        run = _Expansion(
            word,
            env,
            self.escape,
            raw_quotes=keep_quotes,
            raw_escapes=keep_escapes,
            skip_quotes=skip_quotes,
            skip_unset=skip_unset,
        )
        value, words = run.run()
        return ExpandResult(
            value=value,
            words=tuple(words),
            matched=frozenset(run.matched),
            unmatched=frozenset(run.unmatched),
        )

    def process_words(
        self,
        text: str,
        env: Mapping[str, str],
        *,
        keep_quotes: bool = False,
        skip_unset: bool = False,
        keep_escapes: bool = False,
        skip_quotes: bool = False,
    ) -> list[str]:
        """Expand `text` and split it into words (BuildKit's ProcessWords)."""
        result = self.process_word(
            text,
            env,
            keep_quotes=keep_quotes,
            skip_unset=skip_unset,
            keep_escapes=keep_escapes,
            skip_quotes=skip_quotes,
        )
        return list(result.words)


class _Failure(Exception):
    """An expansion error before BuildKit wraps it with the word."""


class _TooLong(Exception):
    """The expansion outgrew MAX_EXPANDED_CHARS."""


def _check_size(size: int) -> None:
    if size > MAX_EXPANDED_CHARS:
        raise _TooLong()


def _is_go_space(ch: str) -> bool:
    """Go's unicode.IsSpace of one character ("" at the end of the input is not)."""
    return ch != "" and ch in GO_SPACE


class _WordSplitter:
    """Collects the words of ProcessWords while the lexer runs.

    The character buffer is shared by every nesting level of one expansion,
    and each level clears it when it starts, because lex.go (since BuildKit
    v0.15, "optimize memory usage on env processing") reuses one strings.Builder
    for all levels. The visible effect: text of the current word before a
    `${VAR<modifier>...}` is dropped from the split words (not from the
    expanded value). We keep that so `EXPOSE` splits as BuildKit does.
    """

    def __init__(self, buffer: list[str]) -> None:
        self.buffer = buffer
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if _is_go_space(ch):
            # lex.go checks the word's length, so a quoted empty string ("") is no word.
            if self.in_word and any(self.buffer):
                self.words.append("".join(self.buffer))
                self.buffer.clear()
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.buffer.append(text)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def finish(self) -> list[str]:
        if any(self.buffer):
            self.words.append("".join(self.buffer))
            self.buffer.clear()
            self.in_word = False
        return self.words


class _Expansion:
    """One pass of the lexer over one input word (lex.go's shellWord)."""

    def __init__(
        self,
        text: str,
        env: Mapping[str, str],
        escape: str,
        *,
        raw_quotes: bool,
        raw_escapes: bool,
        skip_quotes: bool,
        skip_unset: bool,
    ) -> None:
        self.source = text
        self.text = text
        self.pos = 1 if text.startswith(_BOM) else 0
        self.env = env
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_quotes = skip_quotes
        self.skip_unset = skip_unset
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()
        self.words_buffer: list[str] = []

    # -- scanner ---------------------------------------------------------

    def peek(self) -> str:
        """The next character, or "" at the end."""
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    # -- driver ----------------------------------------------------------

    def run(self) -> tuple[str, list[str]]:
        depth = _nesting_depth(self.text) if "${" in self.text else 0
        if depth > MAX_NESTING:
            raise ShellError(
                f"variable references nested more than {MAX_NESTING} deep",
                word=_shown(self.source),
            )
        try:
            if depth < _SHALLOW_NESTING:
                return self.until("", self.raw_escapes)
            frames = depth * _FRAMES_PER_LEVEL + _FRAMES_SPARE + sys.getrecursionlimit()
            with _RecursionRoom.enough_for(frames):
                return self.until("", self.raw_escapes)
        except _Failure as failure:
            raise ShellError(str(failure), word=self.source) from None
        except _TooLong:
            raise ShellError(
                f"expanded word is longer than {MAX_EXPANDED_CHARS} characters (1 MiB)",
                word=_shown(self.source),
            ) from None
        except RecursionError:
            # `_nesting_depth` can only overcount; this is a net, not a path.
            raise ShellError(
                "variable references nested too deeply", word=_shown(self.source)
            ) from None

    def until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """Read up to `stop` (consumed) or to the end when `stop` is ""."""
        result: list[str] = []
        size = 0
        self.words_buffer.clear()
        words = _WordSplitter(self.words_buffer)
        saved_raw_escapes = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            while ch := self.peek():
                if stop and ch == stop:
                    self.next()
                    return "".join(result), words.finish()
                if ch == "$":
                    piece = self.dollar()
                    size += len(piece)
                    _check_size(size)
                    result.append(piece)
                    words.add_string(piece)
                elif ch == "<":
                    piece = self.possible_heredoc()
                    result.append(piece)
                    words.add_raw(piece)
                elif ch == "'" and not self.skip_quotes:
                    piece = self.single_quoted()
                    result.append(piece)
                    words.add_raw(piece)
                elif ch == '"' and not self.skip_quotes:
                    piece = self.double_quoted()
                    result.append(piece)
                    words.add_raw(piece)
                else:
                    ch = self.next()
                    if ch == self.escape:
                        if self.raw_escapes:
                            words.add_raw(ch)
                            result.append(ch)
                        # The escape token escapes anything; at the very end
                        # it is simply dropped.
                        ch = self.next()
                        if not ch:
                            break
                        words.add_raw(ch)
                    else:
                        words.add_char(ch)
                    result.append(ch)
            if stop:
                raise _Failure(f"unexpected end of statement while looking for matching {stop}")
            return "".join(result), words.finish()
        finally:
            self.raw_escapes = saved_raw_escapes

    # -- quotes ----------------------------------------------------------

    def single_quoted(self) -> str:
        """Everything up to the next `'` is literal; nothing can escape it."""
        out: list[str] = []
        quote = self.next()
        if self.raw_quotes:
            out.append(quote)
        while True:
            ch = self.next()
            if not ch:
                raise _Failure(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quoted(self) -> str:
        """Literal except `$` expansions; the escape token escapes only `"`,
        `$` and itself, and stays in the text before anything else."""
        out: list[str] = []
        size = 0
        quote = self.next()
        if self.raw_quotes:
            out.append(quote)
        while True:
            ch = self.peek()
            if not ch:
                raise _Failure(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                size += len(out[-1])
                _check_size(size)
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if not following:
                    # lex.go ignores the escape at the end; the missing quote
                    # is reported on the next round.
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def possible_heredoc(self) -> str:
        """`<<` swallows the blanks after it so `<< EOF` stays one word (the
        parser finds heredocs this way)."""
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        spaces: list[str] = []
        while self.peek() in ("\t", "\r", " "):
            spaces.append(self.next())
        return "<<" + "".join(spaces)

    # -- variables -------------------------------------------------------

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matched.add(name)
            return self.env[name], True
        self.unmatched.add(name)
        return "", False

    def name(self) -> str:
        """A variable name: letters, digits and `_`; or a run of digits
        (positional parameter); or one special parameter character."""
        chars: list[str] = []
        while ch := self.peek():
            if not chars and ch.isdecimal():
                while self.peek() and self.peek().isdecimal():
                    chars.append(self.next())
                return "".join(chars)
            if not chars and ch in _SPECIAL_PARAMETERS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            chars.append(self.next())
        return "".join(chars)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.lookup(name)
            if not found and self.skip_unset:
                return "$" + name
            return value

        self.next()
        ch = self.peek()
        if not ch:
            raise _Failure("syntax error: missing '}'")
        if ch in ("{", "}", ":"):
            raise _Failure("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        modifier = ch or _GO_EOF_RUNE
        if ch == "}":
            value, found = self.lookup(name)
            if not found and self.skip_unset:
                return "${" + name + "}"
            return value
        if ch == "/":
            return self.substitute(name)
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            modifier += ch or _GO_EOF_RUNE
        elif ch not in ("+", "-", "?", "#", "%"):
            raise _Failure(f"unsupported modifier ({modifier}) in substitution")
        return self.modified(name, ch, modifier, null_is_unset)

    def modified(self, name: str, op: str, modifier: str, null_is_unset: bool) -> str:
        """`${name<modifier>word}` after the modifier was read. Like lex.go,
        the word is read (and its variables looked up) before the name."""
        # Patterns keep their escapes so that `\*` stays a literal star.
        keep_escapes = op in ("#", "%")
        if null_is_unset and keep_escapes:
            raise _Failure(f"unsupported modifier ({modifier}) in substitution")
        word = self.until_closing("}", keep_escapes, "syntax error: missing '}'")
        value, found = self.lookup(name)
        if self.skip_unset and not found:
            return "${" + name + modifier + word + "}"
        unset_or_null = not found or (null_is_unset and value == "")
        if op == "-":
            return word if unset_or_null else value
        if op == "+":
            return "" if unset_or_null else word
        if op == "?":
            if not found:
                raise _Failure(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _Failure(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if op in ("#", "%"):
            # One `#`/`%` trims the shortest match, two the longest.
            greedy = word.startswith(op)
            if greedy:
                word = word[1:]
            if op == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        raise _Failure(f"unsupported modifier ({modifier}) in substitution")

    def substitute(self, name: str) -> str:
        """`${name/pattern/replacement}` and `${name//pattern/replacement}`."""
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern = self.until_closing("/", True, "syntax error: missing '/' in ${}")
        replacement = self.until_closing("}", True, "syntax error: missing '}'")
        value, found = self.lookup(name)
        if self.skip_unset and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = _compile_or_fail(pattern, greedy=True, anchored=False, shown=pattern)
        if replace_all:
            return _go_replace_all(regex, value, replacement)
        found_match = regex.search(value)
        if found_match is None:
            return value
        # A single replacement is inserted literally (Go's FindStringIndex).
        return value[: found_match.start()] + replacement + value[found_match.end() :]

    def until_closing(self, stop: str, raw_escapes: bool, missing: str) -> str:
        """Read a nested word up to `stop`; running out of input is reported
        as the missing delimiter, other failures pass through."""
        try:
            text, _ = self.until(stop, raw_escapes)
        except _Failure:
            if not self.peek():
                raise _Failure(missing) from None
            raise
        return text


_SPECIAL_PARAMETERS = frozenset("@*#?-$!0")


# -- shell patterns for ${VAR#p}, ${VAR%p} and ${VAR/p/r} ---------------------


def _shell_pattern_to_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """Turn a `${VAR#pattern}` pattern into a regex the way lex.go's
    convertShellPatternToRegex does: `*` any string (shortest unless greedy),
    `?` one character, `\\` quotes `*`, `?` and itself, and drops itself before
    `}` or `/`. Bracket expressions are not supported: `[` is literal."""
    out: list[str] = ["\\A"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(star)
        elif tok == "?":
            out.append(".")
        elif tok == "\\":
            following = pattern[i] if i < len(pattern) else ""
            if following in ("}", "/"):
                continue
            i += 1
            if following not in ("*", "?", "\\"):
                shown = following or _GO_EOF_RUNE
                raise _Failure(f"invalid escape '\\{shown}'")
            out.append(re.escape(following))
        else:
            out.append(re.escape(tok))
    return re.compile("".join(out))


def _compile_or_fail(pattern: str, *, greedy: bool, anchored: bool, shown: str) -> re.Pattern[str]:
    try:
        return _shell_pattern_to_regex(pattern, greedy=greedy, anchored=anchored)
    except _Failure as failure:
        raise _Failure(f"invalid pattern ({shown}) in substitution: {failure}") from None


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    regex = _compile_or_fail(pattern, greedy=greedy, anchored=True, shown=pattern)
    found = regex.match(value)
    return value[found.end() :] if found else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern but keep each `\\x` escape pair in order (a trailing
    lone `\\` stays a single character)."""
    units: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i != len(pattern) - 1:
            units.append(pattern[i : i + 2])
            i += 2
        else:
            units.append(pattern[i])
            i += 1
    return "".join(reversed(units))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    """A regex cannot find the shortest match ending at the right, so, like
    lex.go, reverse both and trim a prefix. Error messages then show the
    reversed pattern, as BuildKit's do."""
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def _go_replace_all(regex: re.Pattern[str], value: str, template: str) -> str:
    """Go's Regexp.ReplaceAllString: an empty match right after a match is not
    replaced (Python's re.sub would), and the replacement is a Go template in
    which `$0`/`${0}` is the match, `$$` a dollar and other `$names` empty."""
    out: list[str] = []
    size = 0
    last_end = 0
    search_pos = 0
    while search_pos <= len(value):
        found = regex.search(value, search_pos)
        if found is None:
            break
        start, end = found.span()
        out.append(value[last_end:start])
        if end > last_end or start == 0:
            out.append(_go_expand_template(template, found.group(0)))
            size += len(out[-1]) + start - last_end
            _check_size(size)
        last_end = end
        search_pos = search_pos + 1 if search_pos + 1 > end else end
    out.append(value[last_end:])
    return "".join(out)


def _go_expand_template(template: str, whole_match: str) -> str:
    """regexp.Expand for a regex without groups."""
    out: list[str] = []
    rest = template
    while True:
        before, dollar, after = rest.partition("$")
        out.append(before)
        if not dollar:
            return "".join(out)
        rest = after
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        parsed = _go_template_name(rest)
        if parsed is None:
            out.append("$")
            continue
        name, rest = parsed
        if name == "0":
            out.append(whole_match)


def _go_template_name(text: str) -> tuple[str, str] | None:
    """Read `name` or `{name}` after a `$`; None when malformed."""
    braced = text.startswith("{")
    body = text[1:] if braced else text
    length = 0
    while length < len(body) and (
        body[length].isalpha() or body[length].isdecimal() or body[length] == "_"
    ):
        length += 1
    if length == 0:
        return None
    name = body[:length]
    if braced:
        if length >= len(body) or body[length] != "}":
            return None
        length += 1
    return name, body[length:]

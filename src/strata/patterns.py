"""Path patterns as moby/patternmatcher matches them (`.dockerignore`, `--exclude`).

Those rules are not gitignore's: no implicit `**/`, a pattern also excludes
everything under a directory it matches, the last matching pattern wins, and each
pattern is turned into a Go regular expression in a way that gives a few
characters (`^`, `\\d`, brackets around `*`) surprising meanings. We follow that
translation step by step so that the same files are sent, copied and hashed.

This module sits below every layer: the frontend reads `.dockerignore` files with it
and the solver and worker filter trees with it. Everything is compiled once per
pattern; matching a path costs one Python regex call per pattern, because the
context walker asks for every file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from strata.errors import IgnorePatternError
from strata.gotext import go_path_clean, go_trim_space

__all__ = [
    "IgnorePatternError",
    "MatchInfo",
    "PatternMatcher",
]

# filepath.ErrBadPattern's text.
_BAD_PATTERN = "syntax error in pattern"

# Characters that, left in an exception pattern, stop the walker from ruling
# out whole directories (fsutil filter.go, NewFilterFS `patternChars`).
_PATTERN_CHARS = frozenset("*[]?^\\")

# What one walked directory learned about each pattern (patternmatcher's
# MatchInfo): entry i is true when pattern i matched the directory.
MatchInfo = tuple[bool, ...]


# -- matching ----------------------------------------------------------------


class PatternMatcher:
    """patternmatcher.PatternMatcher over a list of ignore patterns.

    `matches(path)` answers "is this path excluded?" the way BuildKit checks a
    single path (MatchesOrParentMatches, used for the CopyIgnoredFile lint).
    A tree walker should instead use `match_with_parent`, passing the result
    it got for the parent directory: that is how fsutil filters the context
    and is cheaper. `may_skip_directory` says when a whole excluded directory
    can be left unwalked.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        compiled: list[_Pattern] = []
        for entry in patterns:
            text = go_trim_space(entry)
            if not text:
                continue
            text = go_path_clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise IgnorePatternError('illegal exclusion pattern: "!"', pattern=entry)
                text = text[1:]
            if _has_bad_match_syntax(text):
                raise IgnorePatternError(_BAD_PATTERN, pattern=entry)
            compiled.append(_compile(text, exclusion))
        self._patterns = tuple(compiled)
        self._has_exclusions = any(p.exclusion for p in compiled)
        # fsutil may skip an excluded directory only when every exception is
        # a plain path (optionally ending in /* or /**).
        self._exception_prefixes = tuple(
            _without_trailing_glob(p.text) + "/" for p in compiled if p.exclusion
        )
        self._only_prefix_exceptions = not any(
            _PATTERN_CHARS.intersection(prefix) for prefix in self._exception_prefixes
        )

    @property
    def patterns(self) -> tuple[str, ...]:
        """The patterns in use, cleaned, exceptions with their `!`."""
        return tuple(("!" if p.exclusion else "") + p.text for p in self._patterns)

    @property
    def has_exclusions(self) -> bool:
        """Whether any `!` exception pattern exists (BuildKit's Exclusions())."""
        return self._has_exclusions

    def matches(self, rel_path: str) -> bool:
        """Whether `rel_path` (slash-separated, relative to the context root)
        is excluded: a pattern applies when it matches the path or any of its
        parent directories; patterns apply in order and the last one that
        applies wins, `!` ones re-including."""
        clean = _is_clean(rel_path)
        matched = False
        for pattern in self._patterns:
            # An exclusion only matters once something matched, and an
            # inclusion only while nothing has (patternmatcher skips the rest).
            if pattern.exclusion != matched:
                continue
            if pattern.matches_self_or_parent(rel_path, clean):
                matched = not pattern.exclusion
        return matched

    def match_with_parent(self, rel_path: str, parent: MatchInfo | None) -> tuple[bool, MatchInfo]:
        """Whether `rel_path` is excluded, given `parent`, the MatchInfo this
        method returned for its parent directory (None or `()` at the top of a
        walk). Returns the answer and the MatchInfo to hand to the children if
        `rel_path` is a directory (patternmatcher MatchesUsingParentResults).

        A pattern that matched the parent counts as matching the child
        without being checked again; other patterns are checked against the
        path alone. fsutil walks the context this way, and in rare orders of
        `!` patterns its answer differs from `matches`; this one decides what
        BuildKit sends.
        """
        if parent and len(parent) != len(self._patterns):
            raise ValueError(
                f"parent MatchInfo has {len(parent)} entries, matcher has "
                f"{len(self._patterns)} patterns"
            )
        clean = _is_clean(rel_path)
        matched = False
        info: list[bool] = []
        for index, pattern in enumerate(self._patterns):
            hit = parent[index] if parent else False
            if not hit:
                if pattern.exclusion != matched:
                    info.append(False)
                    continue
                if parent:
                    hit = pattern.matches_self(rel_path)
                else:
                    hit = pattern.matches_self_or_parent(rel_path, clean)
            info.append(hit)
            if hit:
                matched = not pattern.exclusion
        return matched, tuple(info)

    def may_skip_directory(self, rel_dir: str) -> bool:
        """True when `rel_dir` is excluded and nothing below it can be
        re-included, so a walker need not descend (fsutil's SkipDir rule).

        With only plain-path exceptions, an excluded directory is skipped
        unless an exception names a path inside it; an exception containing
        glob characters could match anywhere, so nothing is skipped.
        """
        if not self._only_prefix_exceptions or not self.matches(rel_dir):
            return False
        below = rel_dir + "/"
        return not any(prefix.startswith(below) for prefix in self._exception_prefixes)


def _without_trailing_glob(text: str) -> str:
    text = text.removesuffix("/**")
    return text.removesuffix("/*")


def _is_clean(path: str) -> bool:
    """True for a path Go's filepath.Dir would not change (no empty, `.` or
    `..` segment); then its parents are exactly its prefixes before a `/`."""
    wrapped = f"/{path}/"
    return "//" not in wrapped and "/./" not in wrapped and "/../" not in wrapped


def _go_parents(path: str) -> list[str]:
    """The parent directories patternmatcher tries, shortest first: the
    prefixes of filepath.Dir(path) split on `/`."""
    slash = path.rfind("/")
    parent = go_path_clean(path[: slash + 1] if slash >= 0 else "")
    if parent == ".":
        return []
    parts = parent.split("/")
    return ["/".join(parts[: count + 1]) for count in range(len(parts))]


# -- one compiled pattern ----------------------------------------------------


@dataclass(frozen=True)
class _Pattern:
    """A pattern ready to match.

    `kind` follows patternmatcher's shortcuts: "exact", "prefix" (`a/**`),
    "suffix" (`**/a`) or "regex". `self_regex` matches the path itself;
    `tree_regex` matches it when it or one of its parents matches (it is None
    when that cannot be expressed as one regex). `error` is set when the Go
    regex would not compile: like BuildKit we report it when the pattern is
    first used.
    """

    text: str
    exclusion: bool
    kind: str
    self_regex: re.Pattern[str] | None
    tree_regex: re.Pattern[str] | None
    error: str | None

    def matches_self(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        if self.self_regex is None:
            raise IgnorePatternError(self.error or _BAD_PATTERN, pattern=self.text)
        return self.self_regex.match(path) is not None

    def matches_self_or_parent(self, path: str, clean: bool) -> bool:
        if self.self_regex is None and self.kind == "regex":
            raise IgnorePatternError(self.error or _BAD_PATTERN, pattern=self.text)
        if clean and self.tree_regex is not None:
            return self.tree_regex.match(path) is not None
        if self.matches_self(path):
            return True
        return any(self.matches_self(parent) for parent in _go_parents(path))


def _compile(text: str, exclusion: bool) -> _Pattern:
    """Build the matcher for one cleaned pattern the way patternmatcher's
    Pattern.compile does: `*` and `?` stay within a segment, `**` spans
    segments, `\\x` escapes, brackets are handed to the regex engine as they
    are, and a few forms are plain string tests."""
    go_regex, kind = _pattern_to_go_regex(text)
    if kind == "exact":
        tree = re.compile(r"\A" + re.escape(text) + r"(?=/|\Z)")
        return _Pattern(text, exclusion, kind, None, tree, None)
    if kind == "prefix":
        tree = re.compile(r"\A" + re.escape(text[:-2]))
        return _Pattern(text, exclusion, kind, None, tree, None)
    if kind == "suffix":
        suffix = text[2:]
        alternatives = [r"[\s\S]*" + re.escape(suffix)]
        if suffix.startswith("/"):
            alternatives.append(re.escape(suffix[1:]))
        tree = re.compile(r"\A(?:" + "|".join(alternatives) + r")(?=/|\Z)")
        return _Pattern(text, exclusion, kind, None, tree, None)
    try:
        body, ends_inside = _GoRegexTranslator(go_regex).translate()
        self_regex = re.compile(body + r"\Z")
        # A parent matches when the body matches up to a `/`; an end-of-text
        # assertion inside the body would then mean something else.
        tree_regex = None if ends_inside else re.compile(body + r"(?=/|\Z)")
    except (_BadRegex, re.error):
        return _Pattern(text, exclusion, kind, None, None, _BAD_PATTERN)
    return _Pattern(text, exclusion, kind, self_regex, tree_regex, None)


def _pattern_to_go_regex(text: str) -> tuple[str, str]:
    """patternmatcher's Pattern.compile for `/` as the separator: the Go
    regex body (without the final `$`) and the kind of match."""
    out = ["^"]
    kind = "exact"
    i = 0
    loop = 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch == "*":
            if i < len(text) and text[i] == "*":
                i += 1
                # `**/` is `**`.
                if i < len(text) and text[i] == "/":
                    i += 1
                if i >= len(text):
                    # A trailing `**` accepts everything below.
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        out.append(".*")
                        kind = "regex"
                else:
                    out.append("(.*/)?")
                    kind = "regex"
                if loop == 0:
                    kind = "suffix"
            else:
                out.append("[^/]*")
                kind = "regex"
        elif ch == "?":
            out.append("[^/]")
            kind = "regex"
        elif ch in ".+()|{}$":
            out.append("\\" + ch)
        elif ch == "\\":
            if i < len(text):
                out.append("\\" + text[i])
                i += 1
                kind = "regex"
            else:
                out.append("\\")
        elif ch in "[]":
            out.append(ch)
            kind = "regex"
        else:
            out.append(ch)
        loop += 1
    return "".join(out), kind


# -- filepath.Match syntax check ---------------------------------------------


def _has_bad_match_syntax(pattern: str) -> bool:
    """Whether Go's filepath.Match would report ErrBadPattern for `pattern`
    (patternmatcher.New calls it only for that): an unclosed or empty `[...]`,
    a bad range, or a trailing `\\`."""
    rest = pattern
    while rest:
        rest = rest.lstrip("*")
        end = 0
        in_range = False
        while end < len(rest):
            ch = rest[end]
            if ch == "\\":
                if end + 1 < len(rest):
                    end += 1
            elif ch == "[":
                in_range = True
            elif ch == "]":
                in_range = False
            elif ch == "*" and not in_range:
                break
            end += 1
        if not _chunk_syntax_ok(rest[:end]):
            return True
        rest = rest[end:]
    return False


def _chunk_syntax_ok(chunk: str) -> bool:
    i = 0
    while i < len(chunk):
        ch = chunk[i]
        if ch == "[":
            i += 1
            if i < len(chunk) and chunk[i] == "^":
                i += 1
            ranges = 0
            while True:
                if i < len(chunk) and chunk[i] == "]" and ranges > 0:
                    i += 1
                    break
                i = _class_char_end(chunk, i)
                if i < 0:
                    return False
                if chunk[i] == "-":
                    i = _class_char_end(chunk, i + 1)
                    if i < 0:
                        return False
                ranges += 1
        elif ch == "\\":
            if i + 1 >= len(chunk):
                return False
            i += 2
        else:
            i += 1
    return True


def _class_char_end(chunk: str, i: int) -> int:
    """filepath.Match's getEsc: the index after one class character, or -1
    when the class is malformed there (it must also not end the chunk)."""
    if i >= len(chunk) or chunk[i] in "-]":
        return -1
    if chunk[i] == "\\":
        i += 1
        if i >= len(chunk):
            return -1
    i += 1
    return i if i < len(chunk) else -1


# -- Go regex syntax to Python -----------------------------------------------


class _BadRegex(Exception):
    """Go's regexp.Compile would refuse the generated expression."""


_MAX_RUNE = 0x10FFFF

_PERL_CLASSES: dict[str, tuple[tuple[int, int], ...]] = {
    "d": ((0x30, 0x39),),
    "s": ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)),
    "w": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
}

_POSIX_CLASSES: dict[str, tuple[tuple[int, int], ...]] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": ((0x30, 0x39),),
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}


def _complement(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    gaps: list[tuple[int, int]] = []
    next_low = 0
    for low, high in sorted(ranges):
        if low > next_low:
            gaps.append((next_low, low - 1))
        next_low = max(next_low, high + 1)
    if next_low <= _MAX_RUNE:
        gaps.append((next_low, _MAX_RUNE))
    return gaps


def _python_class(ranges: Sequence[tuple[int, int]], negated: bool) -> str:
    parts = []
    for low, high in ranges:
        parts.append(f"\\U{low:08x}" if low == high else f"\\U{low:08x}-\\U{high:08x}")
    return "[" + ("^" if negated else "") + "".join(parts) + "]"


class _GoRegexTranslator:
    """Rewrites the subset of Go (RE2, Perl flags) regex syntax that
    patternmatcher can generate into an equivalent Python regex.

    The input is built from a pattern, and a pattern's `\\x` escapes and
    `[...]` classes reach the Go regex untouched, so escapes such as `\\d`,
    `\\x41`, `\\Q...\\E` and POSIX classes must mean what they mean to Go.
    Unicode classes (`\\pL`) are not supported and count as invalid.
    """

    def __init__(self, go_regex: str) -> None:
        self.src = go_regex
        self.pos = 0
        self.ends_inside = False

    def translate(self) -> tuple[str, bool]:
        out: list[str] = []
        src = self.src
        while self.pos < len(src):
            ch = src[self.pos]
            if ch == "\\":
                out.append(self.escape_outside_class())
            elif ch == "[":
                out.append(self.char_class())
            elif ch == "^":
                out.append(r"\A")
                self.pos += 1
            elif ch == "$":
                out.append(r"\Z")
                self.ends_inside = True
                self.pos += 1
            elif ch == "(":
                out.append("(?:")
                self.pos += 1
            elif ch in ").*+?|":
                out.append(ch)
                self.pos += 1
            else:
                out.append(re.escape(ch))
                self.pos += 1
        return "".join(out), self.ends_inside

    def escape_outside_class(self) -> str:
        src = self.src
        if self.pos + 1 >= len(src):
            raise _BadRegex("trailing backslash")
        letter = src[self.pos + 1]
        if letter == "A":
            self.pos += 2
            return r"\A"
        if letter == "z":
            self.pos += 2
            self.ends_inside = True
            return r"\Z"
        if letter in "bB":
            self.pos += 2
            return rf"(?a:\{letter})"
        if letter == "Q":
            end = src.find("\\E", self.pos + 2)
            literal = src[self.pos + 2 :] if end < 0 else src[self.pos + 2 : end]
            self.pos = len(src) if end < 0 else end + 2
            return re.escape(literal)
        if letter.lower() in _PERL_CLASSES:
            self.pos += 2
            return _python_class(_PERL_CLASSES[letter.lower()], negated=letter.isupper())
        return re.escape(chr(self.single_escape()))

    def single_escape(self) -> int:
        """Go's parseEscape at a `\\`: the rune it stands for."""
        src = self.src
        if self.pos + 1 >= len(src):
            raise _BadRegex("trailing backslash")
        letter = src[self.pos + 1]
        self.pos += 2
        if letter.isascii() and not letter.isalnum():
            return ord(letter)
        if letter in "01234567":
            following = src[self.pos] if self.pos < len(src) else ""
            if letter != "0" and not ("0" <= following <= "7"):
                raise _BadRegex("backreference")
            value = int(letter)
            for _ in range(2):
                if self.pos < len(src) and "0" <= src[self.pos] <= "7":
                    value = value * 8 + int(src[self.pos])
                    self.pos += 1
                else:
                    break
            return value
        if letter == "x":
            return self.hex_escape()
        simple = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
        if letter in simple:
            return simple[letter]
        raise _BadRegex("invalid escape")

    def hex_escape(self) -> int:
        src = self.src
        if self.pos < len(src) and src[self.pos] == "{":
            end = src.find("}", self.pos + 1)
            digits = src[self.pos + 1 : end] if end >= 0 else ""
            if not digits or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise _BadRegex("invalid escape")
            value = int(digits, 16)
            if value > _MAX_RUNE:
                raise _BadRegex("invalid escape")
            self.pos = end + 1
            return value
        digits = src[self.pos : self.pos + 2]
        if len(digits) != 2 or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise _BadRegex("invalid escape")
        self.pos += 2
        return int(digits, 16)

    def char_class(self) -> str:
        """Go's parseClass at `[`."""
        src = self.src
        self.pos += 1
        negated = False
        if self.pos < len(src) and src[self.pos] == "^":
            negated = True
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while first or self.pos >= len(src) or src[self.pos] != "]":
            if self.pos >= len(src):
                raise _BadRegex("missing closing ]")
            first = False
            if src.startswith("[:", self.pos) and len(src) - self.pos > 2:
                end = src.find(":]", self.pos + 2)
                if end >= 0:
                    name = src[self.pos + 2 : end]
                    members = _POSIX_CLASSES.get(name.removeprefix("^"))
                    if members is None:
                        raise _BadRegex("invalid character class")
                    ranges.extend(_complement(members) if name.startswith("^") else members)
                    self.pos = end + 2
                    continue
            if src[self.pos] == "\\" and self.pos + 1 < len(src):
                letter = src[self.pos + 1]
                if letter in "pP":
                    raise _BadRegex("unicode classes are not supported")
                if letter.lower() in _PERL_CLASSES:
                    members = _PERL_CLASSES[letter.lower()]
                    ranges.extend(_complement(members) if letter.isupper() else members)
                    self.pos += 2
                    continue
            low = self.class_char()
            high = low
            if self.pos + 1 < len(src) and src[self.pos] == "-" and src[self.pos + 1] != "]":
                self.pos += 1
                high = self.class_char()
                if high < low:
                    raise _BadRegex("invalid character class range")
            ranges.append((low, high))
        self.pos += 1
        return _python_class(ranges, negated)

    def class_char(self) -> int:
        if self.pos >= len(self.src):
            raise _BadRegex("missing closing ]")
        if self.src[self.pos] == "\\":
            return self.single_escape()
        self.pos += 1
        return ord(self.src[self.pos - 1])

"""`--format`: the subset of Go's text/template that docker's CLI users write.

docker/cli (`cli/command/formatter/formatter.go`) gives `--format` three forms: `table`
(the default columns), `json` (each item as `{{json .}}`), or a template, optionally
prefixed with `table ` to get a header row and tabwriter columns. Before parsing it
turns the two-character sequences `\\t` and `\\n` into a tab and a newline. The
template language here covers what such formats use:

- text, and actions `{{ pipeline }}` with `{{- ` / ` -}}` trimming;
- a pipeline is a command, optionally piped: `.`, `.Field`, `.Field.Sub`, a quoted
  string, or a function with arguments: `json`, `upper`, `lower`, `title`, `join LIST
  SEP`, `index MAP KEY`, `len`, `println`, `print`, `truncate S N`, `pad S L R`;
  `.A | json` passes the value as the last argument.

Anything else (`range`, `if`, variables) is a `UsageError` naming the template, so an
unsupported format fails clearly instead of printing something wrong. Values print as
Go prints them: `[a b]` for lists, `map[k:v]` for maps, `<no value>` for a missing key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strata.errors import UsageError

__all__ = ["Template", "go_json", "go_print", "parse_format", "render_items"]

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+)')
NO_VALUE = "<no value>"


class _Missing:
    """A map key that is not there: Go prints `<no value>`."""


MISSING = _Missing()


def go_json(value: Any) -> str:
    """Go's json.Marshal: compact, map keys sorted, `<`, `>`, `&` escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def go_print(value: Any) -> str:
    """A value as text/template prints it (fmt's `%v`)."""
    if isinstance(value, _Missing):
        return NO_VALUE
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Mapping):
        items = " ".join(f"{k}:{go_print(v)}" for k, v in sorted(value.items()))
        return f"map[{items}]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    return str(value)


def _field(value: Any, name: str, template: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name, MISSING)
    if isinstance(value, _Missing) or value is None:
        return MISSING
    raise UsageError(
        f"template: {template}: can't evaluate field {name} in type {type(value).__name__}",
        option="--format",
    )


def _truncate(text: Any, length: Any) -> str:
    return go_print(text)[: int(length)]


def _pad(text: Any, left: Any, right: Any) -> str:
    return " " * int(left) + go_print(text) + " " * int(right)


FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "json": lambda value: go_json(None if isinstance(value, _Missing) else value),
    "upper": lambda value: go_print(value).upper(),
    "lower": lambda value: go_print(value).lower(),
    "title": lambda value: go_print(value).title(),
    "join": lambda items, sep: str(sep).join(go_print(i) for i in items or ()),
    "index": lambda value, key: (
        value.get(key, MISSING) if isinstance(value, Mapping) else value[int(key)]
    ),
    "len": lambda value: len(value),
    "println": lambda *values: " ".join(go_print(v) for v in values) + "\n",
    "print": lambda *values: "".join(go_print(v) for v in values),
    "truncate": _truncate,
    "pad": _pad,
}


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and actions in turn."""

    source: str
    parts: tuple[str | tuple[tuple[str, ...], ...], ...]

    def fields(self) -> list[str]:
        """The top-level fields the template names, in order (for a table's header)."""
        found: list[str] = []
        for part in self.parts:
            if isinstance(part, tuple):
                for command in part:
                    for word in command:
                        if word.startswith(".") and len(word) > 1:
                            found.append(word[1:].split(".")[0])
        return found

    def render(self, data: Any) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(go_print(self._pipeline(part, data)))
        return "".join(out)

    def _pipeline(self, commands: tuple[tuple[str, ...], ...], data: Any) -> Any:
        value: Any = MISSING
        for position, command in enumerate(commands):
            args = [self._operand(word, data) for word in command[1:]]
            head = command[0]
            if head in FUNCTIONS:
                if position > 0:
                    args.append(value)
                try:
                    value = FUNCTIONS[head](*args)
                except (TypeError, ValueError, IndexError, KeyError) as exc:
                    raise UsageError(
                        f"template: {self.source}: error calling {head}: {exc}", option="--format"
                    ) from None
            elif position == 0 and not args:
                value = self._operand(head, data)
            else:
                raise UsageError(
                    f'template: {self.source}: function "{head}" not defined', option="--format"
                )
        return value

    def _operand(self, word: str, data: Any) -> Any:
        if word == ".":
            return data
        if word.startswith("."):
            value = data
            for name in word[1:].split("."):
                value = _field(value, name, self.source)
            return value
        if word[:1] == '"':
            return json.loads(word)
        if word[:1] == "`":
            return word[1:-1]
        if re.fullmatch(r"-?\d+", word):
            return int(word)
        if word in FUNCTIONS:
            return FUNCTIONS[word]()
        raise UsageError(
            f'template: {self.source}: function "{word}" not defined', option="--format"
        )


def parse_template(source: str) -> Template:
    """Parse `source` (already unescaped); `UsageError` for what is not supported."""
    parts: list[str | tuple[tuple[str, ...], ...]] = []
    position = 0
    for match in _ACTION.finditer(source):
        text = source[position : match.start()]
        if match.group(1):
            text = text.rstrip()
        if parts and isinstance(parts[-1], str) and parts[-1] == "\x00trim":
            parts.pop()
            text = text.lstrip()
        parts.append(text)
        parts.append(_parse_pipeline(match.group(2).strip(), source))
        if match.group(3):
            parts.append("\x00trim")
        position = match.end()
    tail = source[position:]
    if parts and parts[-1] == "\x00trim":
        parts.pop()
        tail = tail.lstrip()
    if "{{" in tail:
        raise UsageError(f"template: {source}: unclosed action", option="--format")
    parts.append(tail)
    return Template(source, tuple(p for p in parts if p != ""))


def _parse_pipeline(text: str, source: str) -> tuple[tuple[str, ...], ...]:
    words = [m.group(1) for m in _TOKEN.finditer(text)]
    if not words:
        raise UsageError(f"template: {source}: missing value for command", option="--format")
    if words[0] in ("range", "if", "with", "end", "else", "define", "template", "block") or any(
        w.startswith("$") for w in words
    ):
        raise UsageError(
            f"template: {source}: {words[0]!r} is not supported by strata's --format"
            " (fields, json and simple functions are)",
            option="--format",
        )
    commands: list[tuple[str, ...]] = [()]
    for word in words:
        if word == "|":
            commands.append(())
        else:
            commands[-1] = (*commands[-1], word)
    if any(not c for c in commands):
        raise UsageError(f"template: {source}: missing command in pipeline", option="--format")
    return tuple(commands)


@dataclass(frozen=True)
class Format:
    """A parsed `--format`: a table (with a header) or one line per item."""

    template: Template
    table: bool


def parse_format(value: str, *, table_default: str) -> Format:
    """`table`, `json`, `table TEMPLATE` or `TEMPLATE` (docker/cli formatter.Format)."""
    if value == "table" or value == "":
        value = table_default
    elif value == "json":
        value = "{{json .}}"
    table = value.startswith("table")
    if table:
        value = value[len("table") :]
    value = value.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return Format(parse_template(value), table)


def render_items(
    fmt: Format,
    items: Sequence[Mapping[str, Any]],
    headers: Mapping[str, str],
    layout: Callable[[str], str],
) -> str:
    """Every item through the template, one per line; with a table format, a header
    row first (each field's header, or the field name upper-cased) and `layout` (a
    tabwriter) over the whole. Empty when there are no items and no table."""
    lines: list[str] = []
    if fmt.table:
        header = fmt.template.render(
            {name: headers.get(name, name.upper()) for name in fmt.template.fields()}
        )
        lines.append(header)
    lines.extend(fmt.template.render(item) for item in items)
    if not lines:
        return ""
    text = "\n".join(lines) + "\n"
    return layout(text) if fmt.table else text

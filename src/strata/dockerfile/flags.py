"""Leading `--name[=value]` words of an instruction, checked as BuildKit's BFlags does.

Each instruction declares the flags it knows, then `parse` walks the words once
(buildkit: frontend/dockerfile/instructions/bflag.go). Errors carry BuildKit's exact
text; the instruction layer adds the Dockerfile location.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from strata.dockerfile.suggest import with_suggestion
from strata.errors import InstructionError


class FlagKind(Enum):
    BOOL = "bool"
    STRING = "string"
    STRINGS = "strings"  # may repeat: --mount, --exclude, --device


@dataclass
class _Flag:
    kind: FlagKind
    value: str
    values: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ParsedFlags:
    """The flag values after parsing; unset flags hold their declared defaults."""

    bools: dict[str, bool]
    strings: dict[str, str]
    lists: dict[str, tuple[str, ...]]
    used: frozenset[str]

    def is_true(self, name: str) -> bool:
        return self.bools[name]

    def value(self, name: str) -> str:
        return self.strings[name]

    def values(self, name: str) -> tuple[str, ...]:
        return self.lists[name]

    def is_used(self, name: str) -> bool:
        return name in self.used


class FlagSet:
    """The flags one instruction accepts, in declaration order (used for hints)."""

    def __init__(self) -> None:
        self._flags: dict[str, _Flag] = {}

    def add_bool(self, name: str, default: bool = False) -> FlagSet:
        self._flags[name] = _Flag(FlagKind.BOOL, "true" if default else "false")
        return self

    def add_string(self, name: str, default: str = "") -> FlagSet:
        self._flags[name] = _Flag(FlagKind.STRING, default)
        return self

    def add_strings(self, name: str) -> FlagSet:
        self._flags[name] = _Flag(FlagKind.STRINGS, "")
        return self

    def parse(self, words: Sequence[str]) -> ParsedFlags:
        """Read `words` (flags as the parser extracted them) against the declared flags.

        Raises InstructionError with BuildKit's wording on the first bad word.
        """
        flags = {name: _Flag(f.kind, f.value) for name, f in self._flags.items()}
        used: set[str] = set()
        for word in words:
            if word == "--":
                break  # POSIX: `--` ends the options
            if not word.startswith("--"):
                raise InstructionError(f"arg should start with -- : {word}")
            flag_name, has_value, value = word.partition("=")
            name = flag_name[2:]
            flag = flags.get(name)
            if flag is None:
                raise InstructionError(
                    with_suggestion(f"unknown flag: {flag_name}", name, list(flags))
                )
            if name in used and flag.kind is not FlagKind.STRINGS:
                raise InstructionError(f"duplicate flag specified: {flag_name}")
            used.add(name)
            if flag.kind is FlagKind.BOOL:
                if has_value and value == "":
                    raise InstructionError(f"missing a value on flag: {flag_name}")
                lowered = value.lower()
                if lowered in ("", "true"):
                    flag.value = "true"
                elif lowered == "false":
                    flag.value = "false"
                else:
                    raise InstructionError(
                        f"expecting boolean value for flag {flag_name}, not: {value}"
                    )
            elif not has_value:
                raise InstructionError(f"missing a value on flag: {flag_name}")
            elif flag.kind is FlagKind.STRING:
                flag.value = value
            else:
                flag.values.append(value)
        return ParsedFlags(
            bools={n: f.value == "true" for n, f in flags.items() if f.kind is FlagKind.BOOL},
            strings={n: f.value for n, f in flags.items() if f.kind is FlagKind.STRING},
            lists={n: tuple(f.values) for n, f in flags.items() if f.kind is FlagKind.STRINGS},
            used=frozenset(used),
        )

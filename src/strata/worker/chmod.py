"""`COPY --chmod`: octal modes and chmod(1)-style symbolic modes.

BuildKit accepts an octal number (`0`–`07777`, applied as-is to every copied file and
directory and to created parents) or a symbolic mode (`u+x`, `go-w`, `a+X`,
`u=rwX,go=rX`) applied relative to each source's own mode, with created parents left at
0755. The symbolic grammar and its quirks are BSD `setmode(3)` with a umask of 0, as in
the `tonistiigi/dchapes-mode` package BuildKit uses; validation follows
`frontend/dockerfile/dockerfile2llb/convert_copy.go` (`dispatchCopy`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strata.errors import ChmodSyntaxError

_SUID = 0o4000
_SGID = 0o2000
_STICKY = 0o1000
_STANDARD = 0o6777  # setuid, setgid and rwx for everyone; the sticky bit is separate
_WHO = {"a": _STANDARD, "u": _SUID | 0o700, "g": _SGID | 0o070, "o": 0o007}
_CLASS_SHIFT = {"u": 6, "g": 3, "o": 0}


@dataclass(frozen=True)
class _Step:
    """One primitive of a parsed symbolic mode, applied in order."""

    kind: str  # "+", "-", "X" (add if executable or directory), or a class to copy: u/g/o
    bits: int
    copy_to: tuple[str, ...] = ()  # for class copies: the classes written
    copy_op: str = ""  # for class copies: "+", "-" or "="


@dataclass(frozen=True)
class Chmod:
    """A parsed `--chmod` value: exactly one of `octal` and `steps` is meaningful."""

    text: str
    octal: int | None
    steps: tuple[_Step, ...] = ()

    def apply(self, mode: int, *, is_dir: bool) -> int:
        """The new permission bits (incl. setuid/setgid/sticky) for an entry of `mode`."""
        if self.octal is not None:
            return self.octal
        original = mode & 0o7777
        new = original
        for step in self.steps:
            if step.kind == "+":
                new |= step.bits
            elif step.kind == "-":
                new &= ~step.bits
            elif step.kind == "X":
                if original & 0o111 or is_dir:
                    new |= step.bits
            else:
                value = (new >> _CLASS_SHIFT[step.kind]) & 0o7
                clear = 0o7 if step.copy_op == "=" else value
                for cls in step.copy_to:
                    shift = _CLASS_SHIFT[cls]
                    if step.copy_op in ("-", "="):
                        new &= ~((clear << shift) & step.bits)
                    if step.copy_op in ("+", "="):
                        new |= (value << shift) & step.bits
        return new & 0o7777

    @property
    def parent_mode(self) -> int:
        """Mode of directories a copy creates: the octal permission bits, else 0755."""
        return self.octal & 0o777 if self.octal is not None else 0o755


def _non_octal(value: str) -> ChmodSyntaxError:
    return ChmodSyntaxError(
        f"invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777"
    )


def parse_chmod(value: str) -> Chmod:
    """Parse a `--chmod` value as BuildKit does, with its exact error texts.

    Octal values above 07777, and values that look numeric but are not octal, give the
    `invalid chmod parameter` error; other malformed values give `invalid syntax` (the
    bare error of the mode parser, which BuildKit passes through).
    """
    if re.fullmatch(r"[0-7]+", value) and int(value, 8) <= 0xFFFFFFFF:
        number = int(value, 8)
        if number > 0o7777:
            raise _non_octal(value)
        return Chmod(text=value, octal=number)
    if value[:1].isdigit():
        # The mode parser reads a leading digit as an octal number; failing that is a
        # numeric error, which BuildKit reports with the octal message.
        raise _non_octal(value)
    return Chmod(text=value, octal=None, steps=tuple(_parse_symbolic(value)))


def _syntax() -> ChmodSyntaxError:
    return ChmodSyntaxError("invalid syntax")


def _parse_symbolic(text: str) -> list[_Step]:
    steps: list[_Step] = []
    s = text
    if not s:
        raise _syntax()
    while True:
        who = 0
        while True:
            if not s:
                raise _syntax()
            if s[0] not in _WHO:
                break
            who |= _WHO[s[0]]
            s = s[1:]
        while True:  # one operator and its permissions; repeats for `u+r-w`
            op, s = s[0], s[1:]
            if op not in "+-=":
                raise _syntax()
            equal_done = False
            who &= ~_STICKY
            perm = 0
            perm_x = 0
            while True:
                ch = s[:1]
                if ch == "r":
                    perm |= 0o444
                elif ch == "w":
                    perm |= 0o222
                elif ch == "x":
                    perm |= 0o111
                elif ch == "s":
                    if who == 0 or who & ~0o007:
                        perm |= _SUID | _SGID
                elif ch == "t":
                    if who == 0 or who & ~0o007:
                        who |= _STICKY
                        perm |= _STICKY
                elif ch == "X":
                    if op == "+":
                        perm_x = 0o111
                elif ch in ("u", "g", "o"):
                    if perm:
                        steps.extend(_add(op, who, perm))
                        perm = 0
                    if op == "=":
                        equal_done = True
                    if perm_x:
                        steps.extend(_add("X", who, perm_x))
                        perm_x = 0
                    steps.append(_copy(ch, who, op))
                else:
                    if perm or (op == "=" and not equal_done):
                        equal_done = True
                        steps.extend(_add(op, who, perm))
                    if perm_x:
                        steps.extend(_add("X", who, perm_x))
                    break
                s = s[1:]
            if s == "" or s[0] == ",":
                break
        if s == "":
            return steps
        s = s[1:]


def _add(op: str, who: int, perm: int) -> list[_Step]:
    if op == "=":
        return [_Step("-", who or _STANDARD), _Step("+", who & perm if who else perm)]
    return [_Step(op, who & perm if who else perm)]


def _copy(source: str, who: int, op: str) -> _Step:
    if who:
        targets = tuple(c for c, bit in (("u", 0o400), ("g", 0o040), ("o", 0o004)) if who & bit)
        return _Step(source, 0o7777 | _STICKY, copy_to=targets, copy_op=op)
    return _Step(source, 0o7777, copy_to=("u", "g", "o"), copy_op=op)

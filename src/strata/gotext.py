"""Go's standard library where strata must behave exactly as BuildKit's Go code does.

BuildKit formats words with `%q` (strconv.Quote) in its AST dump and in many error
messages, and lower-cases with strings.ToLower; both differ from Python's built-ins at
the edges (control characters, invalid UTF-8, İ). Durations (time.ParseDuration) and
memory sizes (go-units RAMInBytes) are parsed here too, with Go's values and error
texts, so the frontend and `prune --filter until=` cannot disagree.

A Go helper that more than one module needs lives here and only here: unicode.IsSpace
and strings.TrimSpace, path.Clean and path.Base, strconv.Atoi, time.RFC3339Nano
formatting (one used by a single module, such as the CLI's text/tabwriter, stays with
it). Every layer may import this module; it imports nothing of strata.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

__all__ = [
    "GO_SPACE",
    "format_rfc3339_nano",
    "go_atoi",
    "go_lower",
    "go_parse_int",
    "go_path_base",
    "go_path_clean",
    "go_quote",
    "go_time_quote",
    "go_trim_space",
    "parse_go_duration",
    "parse_ram_in_bytes",
]

# Go's unicode.IsSpace set. Python's str.isspace() also counts U+001C..U+001F, which Go's
# strings.TrimSpace keeps, so Go's trimming and splitting use this explicit set instead.
GO_SPACE: Final = (
    "\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

_GO_SHORT_ESCAPES: Final = MappingProxyType(
    {
        "\a": "\\a",
        "\b": "\\b",
        "\f": "\\f",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\v": "\\v",
    }
)


def go_quote(text: str) -> str:
    """Quote `text` as Go's strconv.Quote (`%q`) does.

    BuildKit's dump and several of its error messages print words this way; matching it
    byte for byte is what lets the conformance vectors compare equal.
    """
    if text.isprintable() and '"' not in text and "\\" not in text:
        return '"' + text + '"'
    out = ['"']
    for char in text:
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif char in _GO_SHORT_ESCAPES:
            out.append(_GO_SHORT_ESCAPES[char])
        else:
            out.append(_go_escape_code_point(char))
    out.append('"')
    return "".join(out)


def _go_escape_code_point(char: str) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        # A lone surrogate stands for bytes that were not valid UTF-8 (surrogateescape) or
        # cannot be encoded; Go prints invalid bytes one by one as \xNN.
        if 0xDC80 <= code <= 0xDCFF:
            return f"\\x{code - 0xDC00:02x}"
        return "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_lower(text: str) -> str:
    """Lower-case as Go's strings.ToLower: one code point for one (no final-sigma rule, İ→i)."""
    if text.isascii():
        return text.lower()
    return "".join("i" if char == "\u0130" else char.lower() for char in text)


# -- durations: Go's time.ParseDuration --------------------------------------------------

_DURATION_UNITS: Final = MappingProxyType(
    {
        "ns": 1,
        "us": 1_000,
        "µs": 1_000,  # U+00B5 micro sign
        "μs": 1_000,  # U+03BC Greek mu
        "ms": 1_000_000,
        "s": 1_000_000_000,
        "m": 60_000_000_000,
        "h": 3_600_000_000_000,
    }
)
_ASCII_DIGITS: Final = frozenset("0123456789")
_MAX_DURATION: Final = 2**63 - 1


def go_time_quote(text: str) -> str:
    """Quote as Go's time package does in its errors (not strconv.Quote).

    ASCII printable characters stay, `"` and `\\` get a backslash, and every byte of
    anything else (control or non-ASCII) is written `\\xNN`.
    """
    out = ['"']
    for char in text:
        if " " <= char < "\x80":
            out.append("\\" + char if char in '"\\' else char)
        else:
            data = char.encode("utf-8", "surrogateescape")
            out.extend(f"\\x{byte:02x}" for byte in data)
    out.append('"')
    return "".join(out)


def _leading_digits(text: str) -> tuple[str, str]:
    end = 0
    while end < len(text) and text[end] in _ASCII_DIGITS:
        end += 1
    return text[:end], text[end:]


def parse_go_duration(text: str) -> int:
    """Nanoseconds from a Go duration (`1m30s`, `1.5h`, `300ms`); Go's error text on failure.

    Follows time.ParseDuration step by step, integer arithmetic included, so values and
    errors match what BuildKit stores for HEALTHCHECK (go/src/time/format.go).
    """

    def error(message: str) -> ValueError:
        return ValueError(f"time: {message} {go_time_quote(text)}")

    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if rest == "":
        raise error("invalid duration")
    total = 0
    while rest:
        if not (rest[0] == "." or rest[0] in _ASCII_DIGITS):
            raise error("invalid duration")
        whole, rest = _leading_digits(rest)
        if whole and int(whole) > 2**63:
            raise error("invalid duration")  # leadingInt overflows
        fraction = ""
        has_fraction = False
        if rest[:1] == ".":
            fraction, rest = _leading_digits(rest[1:])
            has_fraction = fraction != ""
        if not whole and not has_fraction:
            raise error("invalid duration")  # no digits, as in ".s"
        unit_end = 0
        while unit_end < len(rest) and not (
            rest[unit_end] == "." or rest[unit_end] in _ASCII_DIGITS
        ):
            unit_end += 1
        if unit_end == 0:
            raise error("missing unit in duration")
        unit, rest = rest[:unit_end], rest[unit_end:]
        if unit not in _DURATION_UNITS:
            raise ValueError(
                f"time: unknown unit {go_time_quote(unit)} in duration {go_time_quote(text)}"
            )
        scale_ns = _DURATION_UNITS[unit]
        value = int(whole or "0")
        if value > 2**63 // scale_ns:
            raise error("invalid duration")
        value *= scale_ns
        numerator, scale = _fraction_digits(fraction)
        if numerator > 0:
            # Go multiplies in float64: uint64(float64(f) * (float64(unit) / scale)).
            value += int(float(numerator) * (float(scale_ns) / scale))
            if value > 2**63:
                raise error("invalid duration")
        total += value
        if total > 2**63:
            raise error("invalid duration")
    if negative:
        return -total
    if total > _MAX_DURATION:
        raise error("invalid duration")
    return total


def _fraction_digits(digits: str) -> tuple[int, float]:
    """Go's leadingFraction: the digits as an integer and 10**count, ignoring digits that
    would overflow (they cannot change the nanosecond result)."""
    value = 0
    scale = 1.0
    for char in digits:
        if value > _MAX_DURATION // 10:
            break
        candidate = value * 10 + int(char)
        if candidate > 2**63:
            break
        value = candidate
        scale *= 10
    return value, scale


# -- sizes: go-units RAMInBytes ------------------------------------------------------------

_SIZE_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_BINARY_UNITS: Final = MappingProxyType(
    {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
)


def parse_ram_in_bytes(text: str) -> int:
    """Bytes from `64m`, `1.5g`, `512KiB`, `100` (go-units RAMInBytes: binary units).

    BuildKit parses `RUN --mount=type=tmpfs,size=` with it; ValueError on bad input.
    """
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep == -1:
        raise ValueError(text)
    if text[sep] == " ":
        number, suffix = text[:sep], text[sep + 1 :]
    else:
        number, suffix = text[: sep + 1], text[sep + 1 :]
    if not _SIZE_NUMBER.fullmatch(number):
        raise ValueError(text)
    size = float(number)
    if size < 0:
        raise ValueError(text)
    if not suffix:
        return int(size)
    suffix = go_lower(suffix)
    if len(suffix) > 3:
        raise ValueError(text)
    if suffix[0] == "b":
        if len(suffix) > 1:
            raise ValueError(text)
        return int(size)
    multiplier = _BINARY_UNITS.get(suffix[0])
    if multiplier is None or (len(suffix) == 2 and suffix[1] != "b"):
        raise ValueError(text)
    if len(suffix) == 3 and suffix[1:] != "ib":
        raise ValueError(text)
    return int(size * multiplier)


# -- strings.TrimSpace ----------------------------------------------------------------


def go_trim_space(text: str) -> str:
    """strings.TrimSpace: Python's strip() also removes U+001C..U+001F."""
    start, end = 0, len(text)
    while start < end and text[start] in GO_SPACE:
        start += 1
    while end > start and text[end - 1] in GO_SPACE:
        end -= 1
    return text[start:end]


# -- path.Clean, path.Base ----------------------------------------------------------------


def go_path_clean(path: str) -> str:
    """Go's path.Clean (and filepath.Clean on a slash-separated path): collapse `//`,
    drop `.` segments, resolve `..` lexically (`/..` is `/`), "" becomes `.`, no
    trailing slash."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(segment)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def go_path_base(path: str) -> str:
    """Go's path.Base: last element, `""` -> `.`, all slashes -> `/`."""
    if path == "":
        return "."
    stripped = path.rstrip("/")
    if stripped == "":
        return "/"
    return stripped.rsplit("/", 1)[-1]


# -- strconv.Atoi -------------------------------------------------------------------------

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


def go_parse_int(text: str) -> tuple[int, bool]:
    """strconv.Atoi's two results on a 64-bit platform: the value and whether it parsed.

    An optionally signed run of ASCII digits parses; anything else is a syntax error
    (value 0); a number beyond int64 is a range error whose value is clamped to the
    nearest bound, as Go returns it. (`str.isdigit` alone would also accept "²".)"""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):
        return 0, False
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        return max(_INT64_MIN, min(_INT64_MAX, value)), False
    return value, True


def go_atoi(text: str) -> int | None:
    """strconv.Atoi, with None for either error (BuildKit then reads the word as a name)."""
    value, ok = go_parse_int(text)
    return value if ok else None


# -- time.RFC3339Nano ---------------------------------------------------------------------


def format_rfc3339_nano(seconds: float) -> str:
    """A Unix time as Go's time.RFC3339Nano in UTC: `2026-08-21T15:04:05.1234Z`, trailing
    zeros of the fraction dropped and no fraction for a whole second.

    A float Unix time holds about a quarter of a microsecond at today's dates, so the
    fraction is rounded (half to even, as `datetime.fromtimestamp`) to microseconds
    rather than printing noise digits."""
    whole = math.floor(seconds)
    micros = round((seconds - whole) * 1_000_000)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    stamp = datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{micros:06d}".rstrip("0")
    return f"{stamp}.{digits}Z" if digits else f"{stamp}Z"

"""Go's text formatting, where strata must print exactly what BuildKit prints.

BuildKit formats words with `%q` (strconv.Quote) in its AST dump and in many error
messages, and lower-cases with strings.ToLower; both differ from Python's built-ins at
the edges (control characters, invalid UTF-8, İ). Every layer may import this module.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["go_lower", "go_quote"]

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

"""The Dockerfile excerpt BuildKit prints under an error (buildkit: solver/errdefs/source.go)."""

from __future__ import annotations

RULE = "-" * 20


def format_excerpt(source: str, filename: str, start: int, end: int | None = None) -> str:
    """Render lines around `start..end` (1-based) with `>>>` on the lines of the range.

    Two lines of context around a single-line range, one around a multi-line range,
    clipped at the file's edges. A final newline yields one extra empty line, as in Go's
    strings.Split, and empty lines keep their trailing spaces.
    """
    end = start if end is None or end < start else end
    lines = source.split("\n")
    context = 2 if start == end else 1
    first = max(1, start - context)
    last = min(len(lines), end + context)
    out = [f"{filename}:{start}", RULE]
    for number in range(first, last + 1):
        marker = ">>>" if start <= number <= end else "   "
        out.append(f" {number:>3} | {marker} {lines[number - 1]}")
    out.append(RULE)
    return "\n".join(out)

"""Sizes and durations written the way BuildKit's printers write them.

The plain and tty printers format byte counts with `%.2f` of tonistiigi/units'
`Bytes` (vendored in buildkit): decimal units, two decimals with trailing zeros
kept, and values under 1000 as bare integer bytes (`2B`, `1.23kB`, `3.40MB`).
Durations are `%.1f` seconds, and log lines carry the time since the vertex
started with 3, 2 or 1 decimals (buildkit: util/progress/progressui/display.go,
`trace.update`). Keeping these in one place lets every printer agree.

The CLI's tables (`du`, `images`) use Docker's go-units `HumanSize` instead, which
is here too so the two precisions they print come from one function.
"""

from __future__ import annotations

DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
GO_UNITS_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def format_size(size: int) -> str:
    """`123B`, `1.23kB`, `3.40MB`: what BuildKit prints for a byte count."""
    magnitude = abs(size)
    step = 0
    base = 1
    while step + 1 < len(DECIMAL_UNITS) and magnitude >= base * 1000:
        base *= 1000
        step += 1
    if step == 0:
        return f"{size}B"
    return f"{size / base:.2f}{DECIMAL_UNITS[step]}"


def human_size(size: float, precision: int = 4) -> str:
    """go-units `HumanSizeWithPrecision`: `%.<precision>g` in decimal units.

    The default, 4, is go-units `HumanSize` (`docker buildx du`: `1.235MB`); `docker
    images` asks for 3 (`1.23MB`). Sizes are `0B`, `999B`, `1kB`: no padded decimals.
    """
    step = 0
    while size >= 1000 and step < len(GO_UNITS_DECIMAL) - 1:
        size /= 1000
        step += 1
    return f"{size:.{precision}g}{GO_UNITS_DECIMAL[step]}"


def format_progress(current: int, total: int) -> str:
    """A status' amount: `<cur> / <total>` when the total is known, else `<cur>`, or nothing."""
    if total != 0:
        return f"{format_size(current)} / {format_size(total)}"
    if current != 0:
        return format_size(current)
    return ""


def format_seconds(seconds: float) -> str:
    """`0.3s`, `12.0s`: a finished vertex's or status' duration, one decimal."""
    return f"{seconds:.1f}s"


def format_log_elapsed(seconds: float) -> str:
    """Time since a vertex started, as BuildKit prefixes each output line.

    Three decimals below 10 s, two below 100 s, one otherwise, so the column
    stays about five characters wide: `0.168`, `12.34`, `123.4`.
    """
    if seconds < 10:
        return f"{seconds:.3f}"
    if seconds < 100:
        return f"{seconds:.2f}"
    return f"{seconds:.1f}"

"""Vertex names as BuildKit prints them: `[base 2/4] COPY ...`, `[ 3/12] RUN ...`.

The step counter belongs to a stage; it advances once per named step in dispatch order, so
the planner asks it for a prefix exactly where BuildKit calls `prefixCommand`
(dockerfile2llb/convert.go).
"""

from __future__ import annotations

from dataclasses import dataclass

from strata.plan.ops import Platform
from strata.plan.platforms import format_platform


@dataclass
class StepCounter:
    """`[<platform> <stage> <i>/<n>] ` for one stage.

    `stage_name` is empty when the frontend's stage list has exactly one entry, and
    `total` is 0 for states that are not stages (an image used by COPY --from): then
    names carry no bracket at all.
    """

    stage_name: str
    total: int
    index: int = 0
    platform: Platform | None = None

    def prefix(self, text: str, *, onbuild: bool = False) -> str:
        if self.total == 0:
            return text
        out = "["
        if self.platform is not None:
            out += format_platform(self.platform) + " "
        if self.stage_name:
            out += self.stage_name + " "
        self.index += 1
        width = len(str(self.total))
        out += f"{self.index:>{width}}/{self.total}] "
        if onbuild:
            out += "ONBUILD "
        return out + text


def uppercase_first_word(text: str) -> str:
    """`run x` → `RUN x` (convert.go `uppercaseCmd`)."""
    head, sep, rest = text.partition(" ")
    return head.upper() + sep + rest


def summarize_heredoc(body: str) -> str:
    """First line of a trimmed heredoc body, `...` when more lines follow."""
    lines = body.strip().replace("\r\n", "\n").split("\n")
    return lines[0] + ("..." if len(lines) > 1 else "")

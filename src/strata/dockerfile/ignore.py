""".dockerignore reading, as BuildKit and its client do it.

BuildKit reads the file with moby/patternmatcher's `ignorefile.ReadAll` and
filters the build context with `patternmatcher` (through tonistiigi/fsutil's
walker); the matching itself lives in `strata.patterns`, shared by every layer.
"""

from __future__ import annotations

from pathlib import Path

from strata.errors import IgnorePatternError
from strata.gotext import go_path_clean, go_trim_space
from strata.patterns import MatchInfo, PatternMatcher

__all__ = [
    "IgnorePatternError",
    "MatchInfo",
    "PatternMatcher",
    "find_ignore_file",
    "read_ignore_patterns",
]

DOCKERIGNORE_NAME = ".dockerignore"


# -- reading -----------------------------------------------------------------


def find_ignore_file(context_dir: Path, dockerfile: Path | None) -> Path | None:
    """The ignore file a build uses: `<Dockerfile name>.dockerignore` next to
    the Dockerfile replaces `<context>/.dockerignore` when it exists (the two
    are never merged; dockerui/config.go). None when neither exists."""
    if dockerfile is not None:
        beside = dockerfile.with_name(dockerfile.name + DOCKERIGNORE_NAME)
        if beside.is_file():
            return beside
    default = context_dir / DOCKERIGNORE_NAME
    return default if default.is_file() else None


def read_ignore_patterns(text: str) -> list[str]:
    """The patterns of an ignore file, normalised as `ignorefile.ReadAll` does.

    A line whose first character is `#` is a comment (an indented `#` is a
    pattern). Lines are trimmed and empty ones skipped. A leading `!` marks an
    exception. Each pattern is cleaned like Go's filepath.Clean (`./a` and
    `a/` become `a`) and loses a leading `/`. A bare `!` is refused here, as
    patternmatcher would refuse it when the matcher is built.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    patterns: list[str] = []
    for number, raw in enumerate(lines):
        line = raw[:-1] if raw.endswith("\r") else raw
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        pattern = go_trim_space(line)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = go_trim_space(pattern[1:])
        if pattern:
            pattern = go_path_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        if invert:
            if not pattern:
                raise IgnorePatternError('illegal exclusion pattern: "!"', pattern="!")
            pattern = "!" + pattern
        patterns.append(pattern)
    return patterns

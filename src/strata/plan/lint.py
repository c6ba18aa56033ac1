"""Lint rules the planner can check while it dispatches (dockerfile2llb/validations.go,
convert_expose.go; texts from frontend/dockerfile/linter/ruleset.go)."""

from __future__ import annotations

import re

from strata.plan.result import PlanWarning

# Rules that run only when `# check=experimental=` names them (linter/ruleset.go).
EXPERIMENTAL_RULES = frozenset({"InvalidDefinitionDescription"})

_SECRET = re.compile(
    r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)"
    r"(?:_|$)"
)
_SECRET_ALLOWED = re.compile(r"(?i)(?:_|^)(?:public|file|version)(?:_|$)")


def secret_key_warning(instruction: str, key: str, line: int) -> PlanWarning | None:
    """SecretsUsedInArgOrEnv: an ARG/ENV name that looks like it holds a secret."""
    if _SECRET.search(key) and not _SECRET_ALLOWED.search(key):
        return PlanWarning(
            "SecretsUsedInArgOrEnv",
            f'Do not use ARG or ENV instructions for sensitive data ({instruction} "{key}")',
            line,
        )
    return None


def expose_warnings(raw: str, line: int) -> list[PlanWarning]:
    """ExposeProtoCasing and ExposeInvalidFormat for one EXPOSE word."""
    found: list[PlanWarning] = []
    parts = raw.split(":")
    container = parts[-1]
    proto = container.partition("/")[2]
    if proto != proto.lower():
        found.append(
            PlanWarning(
                "ExposeProtoCasing",
                f"Defined protocol '{raw}' in EXPOSE instruction should be lowercase",
                line,
            )
        )
    if len(parts) > 1:
        found.append(
            PlanWarning(
                "ExposeInvalidFormat",
                "EXPOSE instruction should not define an IP address or host-port mapping, "
                f"found '{raw}'",
                line,
            )
        )
    return found


def repeated_instruction_warning(keyword: str, previous_line: int) -> PlanWarning:
    """MultipleInstructionsDisallowed, reported at the earlier (ignored) instruction."""
    return PlanWarning(
        "MultipleInstructionsDisallowed",
        f"Multiple {keyword} instructions should not be used in the same stage because only "
        "the last one will be used",
        previous_line,
    )


def legacy_key_value_warning(keyword: str, line: int) -> PlanWarning:
    """LegacyKeyValueFormat: `ENV key value` instead of `ENV key=value` (ENV and LABEL).

    The keyword is quoted as typed, as BuildKit passes the command's name.
    """
    return PlanWarning(
        "LegacyKeyValueFormat",
        f'"{keyword} key=value" should be used instead of legacy "{keyword} key value" format',
        line,
    )

"""`--call=check` (`--check`): the Dockerfile's lint findings without building.

BuildKit answers the `frontend.lint` subrequest by converting the Dockerfile as a build
would (base images resolved, nothing run) and returning the findings
(`frontend/subrequests/lint/lint.go`); buildx prints them and exits 1 when there is any
(`result.statuscode`). strata plans the target the same way (`plan_build`, with image
metadata resolved by the build's own resolver) and keeps the warnings.
"""

from __future__ import annotations

import base64
import re
import shutil
from dataclasses import dataclass
from typing import Any

from strata.errors import LintViolation, UsageError
from strata.model import BuildRequest
from strata.plan.result import PlanWarning
from strata.registry.hosts import RegistryConfig
from strata.store.root import StateRoot

RULE_URL = "https://docs.docker.com/go/dockerfile/rule/{}/"
_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def rule_url(rule: str) -> str:
    """The documentation URL BuildKit gives a rule (`JSONArgsRecommended` →
    `.../rule/json-args-recommended/`, linter/ruleset.go)."""
    return RULE_URL.format(_WORD_BOUNDARY.sub("-", rule).lower())


@dataclass(frozen=True)
class CheckResult:
    """The findings of `--call=check` for one Dockerfile.

    `error` is set when `# check=error=true` turns the findings into a failure
    (BuildKit's `buildError`): the build would have failed with it."""

    filename: str
    source: str
    warnings: tuple[PlanWarning, ...]
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """buildx's: 1 when anything was found, else 0."""
        return 1 if self.warnings or self.error else 0


def check(request: BuildRequest, root: StateRoot, registry_config: RegistryConfig) -> CheckResult:
    """Read, parse and plan `request`'s Dockerfile for its target; the lint findings."""
    from strata import builder
    from strata.dockerfile.directives import CHECK_BUILD_ARG, read_check_options
    from strata.dockerfile.ignore import find_ignore_file, read_ignore_patterns
    from strata.dockerfile.parser import parse
    from strata.progress.null import NullBus

    if request.context is None or not request.context.is_dir():
        raise UsageError("--call=check needs a context directory", option="--call")
    context_dir = request.context.absolute()
    run = builder._Build(request, root, NullBus(), None, registry_config=registry_config)
    scratch = root.mkdtemp("check")
    try:
        text, df_path, shown = builder._read_dockerfile(request, context_dir, None)
        checks = read_check_options(
            text, filename=shown, build_arg=request.build_args.get(CHECK_BUILD_ARG)
        )
        dockerfile = parse(text, filename=shown)
        ignore_file = find_ignore_file(context_dir, df_path)
        ignore_text = builder._read_ignore_file(ignore_file) if ignore_file is not None else ""
        platform = builder._check_platform(request.platform)
        try:
            plan = run._plan(
                dockerfile, read_ignore_patterns(ignore_text), platform, checks, scratch
            )
        except LintViolation as violation:
            return CheckResult(shown, text, violation.warnings, error=violation.message)
        return CheckResult(shown, text, tuple(plan.warnings))
    finally:
        run.puller.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _ordered(result: CheckResult) -> list[PlanWarning]:
    """buildx's order (`LintResults.PrintTo`): by line, as the sort is on the first
    range's start line (stable, so equal lines keep the finding order)."""
    return sorted(result.warnings, key=lambda w: w.line)


def render_check(result: CheckResult) -> str:
    """The text buildx prints for `--call=check` (commands/build.go `printResult`)."""
    from strata.progress.excerpt import format_excerpt

    out: list[str] = []
    count = len(result.warnings)
    if count:
        found = "1 warning has been found!" if count == 1 else f"{count} warnings have been found!"
        out.append(f"Check complete, {found}\n")
    for warning in _ordered(result):
        out.append(f"\nWARNING: {warning.rule} - {rule_url(warning.rule)}\n{warning.message}\n")
        if warning.line > 0:
            out.append(format_excerpt(result.source, result.filename, warning.line) + "\n")
    if result.error is not None:
        if count:
            out.append("\n")
    elif not count:
        out.append("Check complete, no warnings found.\n")
    return "".join(out)


def check_json(result: CheckResult) -> dict[str, Any]:
    """`--call=check,format=json`: BuildKit's `LintResults` document."""
    warnings = []
    for warning in _ordered(result):
        ranges = []
        if warning.line > 0:
            position = {"line": warning.line}
            ranges.append({"start": position, "end": position})
        warnings.append(
            {
                "ruleName": warning.rule,
                "url": rule_url(warning.rule),
                "detail": warning.message,
                "location": {"ranges": ranges},
            }
        )
    document: dict[str, Any] = {
        "warnings": warnings,
        "sources": [
            {
                "fileName": result.filename,
                "language": "Dockerfile",
                "data": base64.b64encode(result.source.encode()).decode(),
            }
        ],
    }
    if result.error is not None:
        document["buildError"] = {"message": result.error, "location": {}}
    return document

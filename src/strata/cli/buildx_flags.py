"""The flags of `docker buildx build` beyond strata's own build options: accepted and
applied, accepted and ignored as buildx ignores them, or refused with a reason.

The promise is that a `docker buildx build` command line works with `strata` in place of
`docker buildx`, so no flag of buildx's (documented or legacy, commands/build.go
`buildCmd`) may end in click's "No such option". Each flag here is one of:

- applied: `--add-host`, `--shm-size`, `--ulimit`, `--cgroup-parent`, `--resource` and
  the legacy resource flags buildx turns into `--resource` entries (`-m`,
  `--memory-swap`, `-c/--cpu-shares`, `--cpu-period`, `--cpu-quota`, `--cpuset-cpus`,
  `--cpuset-mems`), `--annotation` (handed to the exporters), `-D/--debug`, `--check`;
- accepted: `--builder` (strata is the one builder; another name warns),
  `--provenance=false`, `--sbom=false`, `--attest type=...,disabled=true`; the legacy
  `--rm`, `--force-rm`, `--compress` silently, `--isolation`, `--security-opt`,
  `--squash` with buildx's own warnings;
- refused, naming the flag and why: attestations that would need work strata does not
  do, and the flags of features strata lacks (`REFUSED`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

import click

from strata.api import (
    SandboxOptions,
    parse_add_hosts,
    parse_resources,
    parse_shm_size,
    parse_ulimit,
)
from strata.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

# Flags buildx knows that strata does not implement, and why (the message says both).
REFUSED: Mapping[str, str] = {
    "--build-context": "named build contexts are not supported yet",
    "--policy": "build source policies are not supported",
}

# buildx's boolean flags: pflag reads `--rm=false` as well as `--rm`.
BOOL_FLAGS = frozenset(
    {
        "--check",
        "--compress",
        "--debug",
        "--force-rm",
        "--load",
        "--no-cache",
        "--pull",
        "--push",
        "--quiet",
        "--rm",
        "--squash",
    }
)

# The names `--builder` accepts without a warning: strata is one builder.
BUILDER_NAMES = ("default", "strata")

# buildx commands/build.go: the `flag-warn` annotations of the deprecated flags.
DEPRECATED_WARNINGS: Mapping[str, str] = {
    "isolation": "isolation flag is deprecated with BuildKit.",
    "security_opt": 'security-opt flag is deprecated. "RUN --security=insecure" should be '
    "used with BuildKit.",
    "squash": "experimental flag squash is removed with BuildKit. You should squash inside "
    "build using a multi-stage Dockerfile for efficiency.",
}

# The legacy resource flags, in buildx's order, and the `--resource` key each becomes.
LEGACY_RESOURCES = (
    ("memory", "memory"),
    ("memory_swap", "memory-swap"),
    ("cpu_shares", "cpu-shares"),
    ("cpu_period", "cpu-period"),
    ("cpu_quota", "cpu-quota"),
    ("cpuset_cpus", "cpuset-cpus"),
    ("cpuset_mems", "cpuset-mems"),
)


def parse_go_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool; None when `text` is not one of its spellings."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def normalize_bool_flags(
    args: Sequence[str],
    flags: frozenset[str] = BOOL_FLAGS,
    negations: Mapping[str, str] | None = None,
) -> list[str]:
    """pflag booleans for click: `--rm=true` → `--rm`; `--rm=false` → dropped, or its
    negation (`-H=false` → `--no-human`) for a flag that defaults to true. Arguments
    after `--` are left alone."""
    out: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            out.append(arg)
            out.extend(rest)
            break
        name, has_value, value = arg.partition("=")
        if has_value and name in flags:
            parsed = parse_go_bool(value)
            if parsed is None:
                raise UsageError(
                    f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: '
                    f'parsing "{value}": invalid syntax',
                    option=name,
                )
            if parsed:
                out.append(name)
            elif negations and name in negations:
                out.append(negations[name])
            continue
        out.append(arg)
    return out


class GoBoolCommand(click.Command):
    """A click command whose boolean flags also take pflag's `--flag=true|false`."""

    bool_flags: frozenset[str] = BOOL_FLAGS
    negations: Mapping[str, str] = MappingProxyType({})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, normalize_bool_flags(args, self.bool_flags, self.negations))


class BuildxCommand(GoBoolCommand):
    """`strata build`: buildx's boolean flags."""


def buildx_options(command: F) -> F:
    """The options of this module, one block, for `strata build`."""
    options = [
        click.option("--builder", default=None, help="Builder instance (strata is the one)."),
        click.option(
            "--add-host",
            "add_hosts",
            multiple=True,
            help="Add a custom host-to-IP mapping (host:ip or host=ip) to RUN's /etc/hosts.",
        ),
        click.option("--shm-size", default=None, help="Size of /dev/shm in RUN containers."),
        click.option("--ulimit", "ulimits", multiple=True, help="Ulimit (name=soft[:hard])."),
        click.option("--cgroup-parent", default=None, help="Parent cgroup of RUN containers."),
        click.option(
            "--resource",
            "resources",
            multiple=True,
            help="Resource limits for RUN (memory=2g, cpu-quota=50000, ...).",
        ),
        click.option(
            "--annotation", "annotations", multiple=True, help="Add annotation to the image."
        ),
        click.option("--attest", "attests", multiple=True, help="Attestation parameters."),
        click.option("--provenance", default=None, help="Provenance attestation (false only)."),
        click.option("--sbom", default=None, help="SBOM attestation (false only)."),
        click.option("-D", "--debug", is_flag=True, help="Expand warnings in the summary."),
        click.option("--check", is_flag=True, help='Shorthand for "--call=check".'),
        # buildx's hidden old name of --call.
        click.option("--print", "print_call", default=None, hidden=True),
    ]
    for flag in REFUSED:
        dest = "refused_" + flag.lstrip("-").replace("-", "_")
        options.append(click.option(flag, dest, multiple=True, hidden=True))
    # Legacy `docker build` flags (hidden, as in buildx).
    options += [
        click.option("-m", "--memory", default=None, hidden=True),
        click.option("--memory-swap", default=None, hidden=True),
        click.option("-c", "--cpu-shares", default=None, hidden=True),
        click.option("--cpu-period", default=None, hidden=True),
        click.option("--cpu-quota", default=None, hidden=True),
        click.option("--cpuset-cpus", default=None, hidden=True),
        click.option("--cpuset-mems", default=None, hidden=True),
        click.option("--compress", is_flag=True, hidden=True),
        click.option("--isolation", default=None, hidden=True),
        click.option("--security-opt", "security_opt", multiple=True, hidden=True),
        click.option("--squash", is_flag=True, hidden=True),
        click.option("--rm", is_flag=True, hidden=True),
        click.option("--force-rm", is_flag=True, hidden=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def read_allow(values: Sequence[str]) -> list[str]:
    """`--allow` as buildx `ParseEntitlements` reads it: comma-separated;
    `buildx.local.delete` lets a local output clear its destination (strata's local
    exporter writes into it without deleting, so there is nothing to allow); `device`
    is refused (strata does not pass host devices to RUN)."""
    allowed: list[str] = []
    for item in (part for value in values for part in value.split(",") if part):
        if item == "buildx.local.delete":
            continue
        if item == "device" or item.startswith("device="):
            raise UsageError(
                f"--allow {item} is not supported: strata does not expose host devices "
                "to RUN (no CDI)",
                option="--allow",
            )
        allowed.append(item)
    return allowed


@dataclass(frozen=True)
class BuildxFlags:
    """What the flags of this module ask of a build, once checked."""

    sandbox: SandboxOptions = field(default_factory=SandboxOptions)
    annotations: Mapping[str, str] = field(default_factory=dict)
    debug: bool = False
    check: bool = False
    # `--print VALUE`, buildx's old spelling of `--call`.
    call: str | None = None
    warnings: tuple[str, ...] = ()


def read_buildx_flags(params: Mapping[str, Any]) -> BuildxFlags:
    """Check the values of `buildx_options` (click's parameters by name): a refused
    flag or a bad value raises `UsageError`; warnings are returned for the caller to
    print (`print_warnings`)."""
    for flag, reason in REFUSED.items():
        if params.get("refused_" + flag.lstrip("-").replace("-", "_")):
            raise UsageError(f"{flag} is not supported: {reason}", option=flag)
    warnings: list[str] = []
    builder = params.get("builder") or os.environ.get("BUILDX_BUILDER")
    if builder and builder not in BUILDER_NAMES:
        warnings.append(f'builder "{builder}" not found: strata is its own builder, building here')
    _check_attestations(params)
    for name, message in DEPRECATED_WARNINGS.items():
        if params.get(name):
            warnings.append(message)
    resources = [
        f"{key}={params[name]}" for name, key in LEGACY_RESOURCES if params.get(name) is not None
    ]
    resources += list(params.get("resources") or ())
    shm_size = params.get("shm_size")
    sandbox = SandboxOptions(
        extra_hosts=parse_add_hosts(params.get("add_hosts") or ()),
        ulimits=tuple(parse_ulimit(v) for v in params.get("ulimits") or ()),
        shm_size=parse_shm_size(shm_size) if shm_size else 0,
        cgroup_parent=params.get("cgroup_parent") or "",
        resources=parse_resources(resources),
    )
    return BuildxFlags(
        sandbox=sandbox,
        annotations=parse_annotations(params.get("annotations") or ()),
        debug=bool(params.get("debug")),
        check=bool(params.get("check")),
        call=params.get("print_call") or None,
        warnings=tuple(warnings),
    )


def print_warnings(flags: BuildxFlags) -> None:
    for warning in flags.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)


def parse_annotations(values: Sequence[str]) -> dict[str, str]:
    """`--annotation KEY=VALUE`, KEY optionally `type[,type][platform]:name` as buildx
    `ParseAnnotations` takes it (types: manifest, manifest-descriptor, index,
    index-descriptor). The key is kept as written for the exporters."""
    found: dict[str, str] = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep:
            raise UsageError(
                f"invalid annotation {value}, expected key=value", option="--annotation"
            )
        types, colon, name = key.rpartition(":")
        if colon:
            kinds = types.split("[", 1)[0]
            for kind in kinds.split(","):
                if kind not in ("manifest", "manifest-descriptor", "index", "index-descriptor"):
                    raise UsageError(f"unknown annotation type {kind!r}", option="--annotation")
        if not name:
            raise UsageError(f"invalid annotation {value}: empty key", option="--annotation")
        found[key] = setting
    return found


def _check_attestations(params: Mapping[str, Any]) -> None:
    """`--provenance`, `--sbom`, `--attest`: turning one off is fine (strata makes none);
    asking for one is refused, saying which and why."""
    attests: list[tuple[str, str]] = []
    for kind in ("provenance", "sbom"):
        value = params.get(kind)
        if value:
            attests.append((f"--{kind}", _canonical_attest(kind, value)))
    attests += [("--attest", value) for value in params.get("attests") or ()]
    for flag, value in attests:
        fields = dict(item.partition("=")[::2] for item in value.split(",") if item)
        kind = fields.get("type", "")
        if not kind:
            raise UsageError(f"attestation type not specified: {value}", option=flag)
        if parse_go_bool(fields.get("disabled", "false")):
            continue
        if kind == "sbom":
            raise UsageError(
                f"{flag}: SBOM attestations are not supported: strata has no SBOM "
                "generator (use --sbom=false)",
                option=flag,
            )
        if kind == "provenance":
            raise UsageError(
                f"{flag}: provenance attestations are not supported yet (use --provenance=false)",
                option=flag,
            )
        raise UsageError(f"{flag}: unknown attestation type {kind!r}", option=flag)


def _canonical_attest(kind: str, value: str) -> str:
    """buildx `CanonicalizeAttest`: `--sbom=false` is `type=sbom,disabled=true`,
    `--sbom=true` is `type=sbom`, anything else is more fields for that type."""
    parsed = parse_go_bool(value)
    if parsed is not None:
        return f"type={kind}" + ("" if parsed else ",disabled=true")
    return f"type={kind},{value}"

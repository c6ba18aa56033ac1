"""`-o/--output` values, read as buildx reads them (`util/buildflags/export.go`).

- `-o DIR` is `type=local,dest=DIR`; `-o -` is `type=tar,dest=-` (a tar on stdout);
- otherwise a CSV of `key=value` fields with `type` among `local`, `tar`, `docker`,
  `oci`, `image`; `dest` names the directory (local) or file (`-` = stdout);
- `type=image` (and `type=docker` without `dest`) stores the image in the local image
  store, optionally under `name=a,b` in addition to `-t` names.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

from strata.errors import UsageError

OutputType = Literal["local", "tar", "docker", "oci", "image"]
OUTPUT_TYPES: tuple[OutputType, ...] = get_args(OutputType)


@dataclass(frozen=True)
class OutputSpec:
    """One output. `dest` None means the image store (image/docker without dest).

    Checked on construction, so a spec built through the API is held to what `-o`
    accepts: an unknown type or a file output without `dest` is a UsageError here,
    not an OCI archive or an assertion at export time."""

    type: OutputType
    dest: str | None = None
    names: tuple[str, ...] = ()
    attrs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in OUTPUT_TYPES:
            raise UsageError(
                f'unsupported output type "{self.type}" (supported: {", ".join(OUTPUT_TYPES)})',
                option="--output",
            )
        if self.type in ("local", "tar", "oci") and not self.dest:
            raise UsageError(f"dest is required for {self.type} exporter", option="--output")
        if self.type == "local" and self.dest == "-":
            raise UsageError(
                "local exporter cannot write to stdout (use type=tar)", option="--output"
            )

    @property
    def to_stdout(self) -> bool:
        return self.dest == "-"


def parse_output(value: str) -> OutputSpec:
    """Parse one `-o` value; raises UsageError with buildx's wording for bad ones."""
    if value == "-":
        return OutputSpec(type="tar", dest="-")
    if "=" not in value and "," not in value:
        return OutputSpec(type="local", dest=value)
    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration) as exc:
        raise UsageError(f"failed to parse csv output: {exc}", option="--output") from None
    attrs: dict[str, str] = {}
    for item in fields:
        key, has_value, setting = item.partition("=")
        if not has_value:
            raise UsageError(f"invalid value {item}", option="--output")
        attrs[key.strip().lower()] = setting
    kind = attrs.pop("type", "")
    if not kind:
        if "dest" in attrs:
            kind = "local"
        else:
            raise UsageError(f"type is required for output {value!r}", option="--output")
    if kind == "registry":
        raise UsageError(
            "exporting to a registry is not supported yet (registries arrive with issue 7)",
            option="--output",
        )
    dest = attrs.pop("dest", None)
    names = tuple(n for n in attrs.pop("name", "").split(",") if n)
    if kind == "image":
        dest = None
    # OutputSpec refuses an unknown type and a missing dest itself.
    return OutputSpec(type=cast(OutputType, kind), dest=dest or None, names=names, attrs=attrs)


def parse_outputs(values: list[str] | tuple[str, ...]) -> list[OutputSpec]:
    specs = [parse_output(v) for v in values]
    if sum(1 for s in specs if s.to_stdout) > 1:
        raise UsageError("only one output can write to stdout", option="--output")
    return specs

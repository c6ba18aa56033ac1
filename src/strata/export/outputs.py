"""`-o/--output` values, read as buildx reads them (`util/buildflags/export.go`), and the
exporter attributes BuildKit documents (`bk:README.md` "Output", `bk:exporter/containerimage/
opts.go`, `bk:exporter/oci/export.go`):

- `-o DIR` is `type=local,dest=DIR`; `-o -` is `type=tar,dest=-` (a tar on stdout);
- otherwise a CSV of `key=value` fields with `type` among `local`, `tar`, `docker`,
  `oci`, `image`, `registry`; `dest` names the directory (local) or file (`-` = stdout);
- `type=image` (and `type=docker` without `dest`) stores the image in the local image
  store (unless `store=false`), under `name=a,b` in addition to `-t` names, and pushes it
  to those names with `push=true`; `type=registry` is `type=image,push=true`;
- `--push` is `type=image,push=true` (or sets `push=true` on a given `type=image`);
  `--load` adds the image store (`type=docker`) next to the `-o` outputs given.

Every attribute is checked here: one strata does not know for that exporter is a
UsageError naming it, never ignored (`ImageOptions` holds the checked values).
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

from strata.errors import UsageError

OutputType = Literal["local", "tar", "docker", "oci", "image", "registry"]
OUTPUT_TYPES: tuple[OutputType, ...] = get_args(OutputType)

LayerCompression = Literal["gzip", "zstd", "uncompressed"]
COMPRESSIONS: tuple[str, ...] = get_args(LayerCompression)

# Attributes of the image exporter (`type=image|registry`).
IMAGE_ATTRS = frozenset(
    {
        "push",
        "push-by-digest",
        "name-canonical",
        "store",
        "oci-mediatypes",
        "compression",
        "compression-level",
        "force-compression",
        "registry.insecure",
        "rewrite-timestamp",
    }
)
# Attributes of the archive exporters (`type=oci|docker`); `dest` and `name` are fields.
ARCHIVE_ATTRS = frozenset(
    {
        "tar",
        "oci-mediatypes",
        "compression",
        "compression-level",
        "force-compression",
        "rewrite-timestamp",
    }
)
# `annotation-index-descriptor.*` (BuildKit: on an OCI layout's index.json entry) is not
# among them: strata's layouts do not take it, so it is refused as unknown.
ANNOTATION_KINDS = (
    "annotation",
    "annotation-manifest",
    "annotation-manifest-descriptor",
    "annotation-index",
)
AnnotationKind = Literal[
    "annotation",
    "annotation-manifest",
    "annotation-manifest-descriptor",
    "annotation-index",
]


@dataclass(frozen=True)
class ImageOptions:
    """The checked exporter attributes of an image-making output."""

    push: bool = False
    push_by_digest: bool = False
    name_canonical: bool = False
    store: bool = True
    oci_mediatypes: bool = True
    compression: LayerCompression = "gzip"
    compression_level: int | None = None
    force_compression: bool = False
    insecure: bool = False
    rewrite_timestamp: bool = False
    tar: bool = True
    # ((kind, key), value): `annotation.k=v` is ("annotation", "k"); the kinds place it
    # on the manifest, the index, or their descriptors as BuildKit does.
    annotations: tuple[tuple[tuple[AnnotationKind, str], str], ...] = ()

    def annotations_for(self, *kinds: AnnotationKind) -> dict[str, str]:
        return {key: value for (kind, key), value in self.annotations if kind in kinds}

    @property
    def needs_index(self) -> bool:
        """Index annotations ask for an OCI index around the manifest (BuildKit writes
        one for them even with a single platform)."""
        return any(
            kind in ("annotation-index", "annotation-manifest-descriptor")
            for (kind, _), _ in self.annotations
        )

    @property
    def is_default(self) -> bool:
        """Whether the documents are the image store's own (OCI, gzip, no annotations)."""
        return (
            self.oci_mediatypes
            and self.compression == "gzip"
            and not self.force_compression
            and not self.rewrite_timestamp
            and not self.annotations
        )


@dataclass(frozen=True)
class OutputSpec:
    """One output. `dest` None means the image store (image/docker without dest).

    Checked on construction, so a spec built through the API is held to what `-o`
    accepts: an unknown type or attribute, or a file output without `dest`, is a
    UsageError here, not an OCI archive or an assertion at export time."""

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
        options = self.options  # checks every attribute
        if not options.tar and (self.to_stdout or not self.dest):
            raise UsageError(
                "tar=false needs dest=DIR (an OCI layout directory)", option="--output"
            )

    @property
    def to_stdout(self) -> bool:
        return self.dest == "-"

    @property
    def makes_image(self) -> bool:
        return self.type in ("image", "registry", "docker", "oci")

    @property
    def stores(self) -> bool:
        """Whether this output puts the image in the image store."""
        if self.type in ("image", "registry"):
            return self.options.store
        return self.type == "docker" and self.dest is None

    @property
    def options(self) -> ImageOptions:
        return _image_options(self.type, self.attrs)


def with_build_annotations(output: OutputSpec, annotations: Mapping[str, str]) -> OutputSpec:
    """`output` with `--annotation` values added as the exporter attributes buildx turns
    them into (`build/opt.go`: `KEY` is a manifest annotation, `manifest:KEY`,
    `index:KEY`, `manifest-descriptor:KEY`, several types comma-separated, an optional
    `[platform]` filter, which matches: strata builds one platform). Outputs that make
    no image are returned as they are."""
    if not annotations or not output.makes_image:
        return output
    attrs = dict(output.attrs)
    for key, value in annotations.items():
        types, colon, name = key.rpartition(":")
        kinds = types.split("[", 1)[0].split(",") if colon else [""]
        for kind in kinds:
            attr = f"annotation-{kind}" if kind else "annotation"
            if attr not in ANNOTATION_KINDS:
                raise UsageError(
                    f"annotation type {kind!r} is not supported for this output",
                    option="--annotation",
                )
            attrs[f"{attr}.{name}"] = value
    return dataclasses.replace(output, attrs=attrs)


def _bool(key: str, value: str) -> bool:
    # Go's strconv.ParseBool, which BuildKit uses for every boolean attribute.
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise UsageError(f'non-bool value "{value}" specified for {key}', option="--output")


def _image_options(kind: OutputType, attrs: dict[str, str]) -> ImageOptions:
    if kind in ("local", "tar"):
        if attrs:
            key = sorted(attrs)[0]
            raise UsageError(
                f'unknown attribute "{key}" for the {kind} exporter (it takes dest)',
                option="--output",
            )
        return ImageOptions()
    allowed = IMAGE_ATTRS if kind in ("image", "registry") else ARCHIVE_ATTRS
    values: dict[str, object] = {"push": kind == "registry"}
    annotations: list[tuple[tuple[AnnotationKind, str], str]] = []
    for key, value in attrs.items():
        head, dot, rest = key.partition(".")
        base = head.split("[", 1)[0]
        if dot and base in ANNOTATION_KINDS:
            # `annotation[-kind][<platform>].<key>`: the platform filter BuildKit allows
            # always matches here (strata builds one platform).
            if not rest:
                raise UsageError(f"empty annotation key in {key}", option="--output")
            annotations.append(((cast(AnnotationKind, base), rest), value))
            continue
        if key not in allowed:
            raise UsageError(
                f'unknown attribute "{key}" for the {kind} exporter', option="--output"
            )
        if key == "compression":
            if value == "estargz":
                raise UsageError(
                    "compression=estargz is not supported (use gzip, zstd or uncompressed)",
                    option="--output",
                )
            if value not in COMPRESSIONS:
                raise UsageError(
                    f'unsupported compression type "{value}" (use gzip, zstd or uncompressed)',
                    option="--output",
                )
            values["compression"] = value
        elif key == "compression-level":
            try:
                values["compression_level"] = int(value)
            except ValueError:
                raise UsageError(
                    f'non-int value "{value}" specified for compression-level', option="--output"
                ) from None
        elif key == "registry.insecure":
            values["insecure"] = _bool(key, value)
        else:
            values[key.replace("-", "_")] = _bool(key, value)
    options = ImageOptions(**values, annotations=tuple(annotations))  # type: ignore[arg-type]
    if options.compression == "zstd" and "oci_mediatypes" in values and not options.oci_mediatypes:
        raise UsageError(
            "compression=zstd needs oci-mediatypes=true (Docker media types have no zstd layer)",
            option="--output",
        )
    if options.needs_index and not options.oci_mediatypes:
        raise UsageError(
            "index annotations need oci-mediatypes=true", option="--output"
        )
    return options


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
    dest = attrs.pop("dest", None)
    names: tuple[str, ...] = ()
    if kind not in ("local", "tar") or "name" in attrs:
        names = tuple(n.strip() for n in attrs.pop("name", "").split(",") if n.strip())
    if kind in ("image", "registry") and dest is not None:
        raise UsageError(f'unknown attribute "dest" for the {kind} exporter', option="--output")
    # OutputSpec refuses an unknown type, attribute or a missing dest itself.
    return OutputSpec(type=cast(OutputType, kind), dest=dest or None, names=names, attrs=attrs)


def parse_outputs(
    values: list[str] | tuple[str, ...], *, push: bool = False, load: bool = False
) -> list[OutputSpec]:
    """Every `-o`, with buildx's `--push` and `--load` folded in: `--push` sets
    `push=true` on the first image output or adds `type=image,push=true`; `--load`
    adds the image store when the outputs given do not already store the image."""
    specs = [parse_output(v) for v in values]
    if push:
        first = next((s for s in specs if s.type in ("image", "registry")), None)
        if first is None:
            specs.append(OutputSpec(type="image", attrs={"push": "true"}))
        else:
            attrs = dict(first.attrs, push="true")
            specs[specs.index(first)] = OutputSpec(first.type, first.dest, first.names, attrs)
    if load and specs and not any(s.stores for s in specs):
        specs.append(OutputSpec(type="docker"))
    if sum(1 for s in specs if s.to_stdout) > 1:
        raise UsageError("only one output can write to stdout", option="--output")
    return specs

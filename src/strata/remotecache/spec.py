"""`--cache-to` / `--cache-from` values, read as buildx reads them.

buildx (`util/buildflags/cache.go` `ParseCacheEntry`): each value is one CSV line; a line
whose fields all lack `=` is a list of registry references (`--cache-from user/app:cache`
is `type=registry,ref=user/app:cache`); otherwise every field is `key=value`, `type` picks
the backend and the rest are its attributes. The flags may be given several times.

strata checks more than buildx does (BuildKit checks on the daemon side): an attribute the
backend does not know is an error naming it, and the backends strata has no client for
(`gha`, `s3`, `azblob`) are refused up front, naming the ones it has.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from strata.errors import UsageError

Direction = Literal["to", "from"]

EXPORT_TYPES = ("registry", "local", "inline")
IMPORT_TYPES = ("registry", "local")
NOT_SUPPORTED = ("gha", "s3", "azblob")

_EXPORT_COMMON = frozenset(
    {
        "mode",
        "image-manifest",
        "oci-mediatypes",
        "compression",
        "compression-level",
        "force-compression",
        "ignore-error",
        # strata's own: the RUN --mount=type=cache directories travel with the cache.
        "cache-mounts",
        "cache-mounts-max-size",
    }
)
_ATTRIBUTES: dict[tuple[Direction, str], frozenset[str]] = {
    ("to", "registry"): _EXPORT_COMMON | {"ref", "registry.insecure"},
    ("to", "local"): _EXPORT_COMMON | {"dest", "tag", "reset"},
    ("to", "inline"): frozenset({"mode"}),
    ("from", "registry"): frozenset({"ref", "registry.insecure"}),
    ("from", "local"): frozenset({"src", "tag", "digest"}),
}
_REQUIRED: dict[tuple[Direction, str], str] = {
    ("to", "registry"): "ref",
    ("to", "local"): "dest",
    ("from", "registry"): "ref",
    ("from", "local"): "src",
}
_BOOLEANS = ("image-manifest", "oci-mediatypes", "force-compression", "ignore-error", "reset")
_COMPRESSIONS = ("gzip", "zstd", "uncompressed", "estargz")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class CacheSpec:
    """One `--cache-to` or `--cache-from` entry: a backend type and its attributes."""

    type: str
    attrs: tuple[tuple[str, str], ...] = ()

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.attrs:
            if key == name:
                return value
        return default

    def flag(self, name: str, default: bool) -> bool:
        """A boolean attribute as Go's strconv.ParseBool reads it (checked at parse)."""
        value = self.get(name)
        return default if value == "" else value in _TRUE

    @property
    def mode(self) -> str:
        return self.get("mode", "min")

    def describe(self) -> str:
        """How progress names this cache (`type=local,src=/x` → `/x`, a ref as given)."""
        return self.get("ref") or self.get("src") or self.get("dest") or f"type={self.type}"


def parse_cache_specs(values: Iterable[str], direction: Direction) -> tuple[CacheSpec, ...]:
    """Every value of `--cache-to` (`direction="to"`) or `--cache-from` ("from")."""
    specs: list[CacheSpec] = []
    for value in values:
        specs.extend(_parse_one(value, direction))
    return tuple(specs)


def check_cache_spec(spec: CacheSpec, direction: Direction) -> CacheSpec:
    """Refuse a type or attribute strata does not know (for specs made through the API)."""
    option = _option(direction)
    supported = EXPORT_TYPES if direction == "to" else IMPORT_TYPES
    if spec.type in NOT_SUPPORTED:
        raise UsageError(
            f'cache type "{spec.type}" is not supported by strata'
            f" (supported: {', '.join(supported)})",
            option=option,
        )
    if spec.type not in supported:
        raise UsageError(
            f'unknown cache type "{spec.type}" (supported: {", ".join(supported)})',
            option=option,
        )
    known = _ATTRIBUTES[(direction, spec.type)]
    unknown = [key for key, _ in spec.attrs if key not in known]
    if unknown:
        raise UsageError(
            f"unknown attribute{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
            f' for cache type "{spec.type}" (known: {", ".join(sorted(known))})',
            option=option,
        )
    required = _REQUIRED.get((direction, spec.type))
    if required is not None and not spec.get(required):
        raise UsageError(f'{required} is required for cache type "{spec.type}"', option=option)
    _check_values(spec, option)
    return spec


def _parse_one(value: str, direction: Direction) -> list[CacheSpec]:
    option = _option(direction)
    try:
        fields = next(csv.reader([value]), [])
    except csv.Error as exc:
        raise UsageError(f"invalid value {value!r}: {exc}", option=option) from None
    fields = [f for f in fields if f != ""]
    if not fields:
        raise UsageError("empty cache value", option=option)
    if all("=" not in f for f in fields):
        # buildx isRefOnlyFormat: bare references are registry caches.
        return [check_cache_spec(CacheSpec("registry", (("ref", f),)), direction) for f in fields]
    kind = ""
    attrs: dict[str, str] = {}
    for item in fields:
        key, has_value, setting = item.partition("=")
        if not has_value:
            raise UsageError(f"invalid value {item}", option=option)
        key = key.strip().lower()
        if key == "type":
            kind = setting
        else:
            attrs[key] = setting
    if not kind:
        raise UsageError(f"type required form> {value!r}", option=option)
    return [check_cache_spec(CacheSpec(kind, tuple(attrs.items())), direction)]


def _check_values(spec: CacheSpec, option: str) -> None:
    attrs: Mapping[str, str] = dict(spec.attrs)
    mode = attrs.get("mode")
    if mode is not None and mode not in ("min", "max"):
        raise UsageError(f'invalid mode "{mode}" (use "min" or "max")', option=option)
    if spec.type == "inline" and mode == "max":
        raise UsageError("inline cache only supports mode=min", option=option)
    for name in _BOOLEANS:
        value = attrs.get(name)
        if value is not None and value not in _TRUE + _FALSE:
            raise UsageError(f"invalid boolean value for {name}: {value!r}", option=option)
    cache_mounts = attrs.get("cache-mounts")
    if cache_mounts is not None and cache_mounts not in _TRUE + _FALSE:
        raise UsageError(
            f"invalid value for cache-mounts: {cache_mounts!r} (true or false)", option=option
        )
    compression = attrs.get("compression")
    if compression is not None and compression not in _COMPRESSIONS:
        raise UsageError(
            f'unsupported compression "{compression}" (use {", ".join(_COMPRESSIONS)})',
            option=option,
        )
    for name in ("compression-level", "cache-mounts-max-size"):
        number = attrs.get(name)
        if number is not None and not number.isdigit():
            raise UsageError(f"invalid {name}: {number!r} (a whole number)", option=option)
    if spec.flag("image-manifest", False) and not spec.flag("oci-mediatypes", True):
        # BuildKit cache/remotecache/export.go: image manifests need OCI media types.
        raise UsageError("image-manifest requires oci-mediatypes=true", option=option)


def _option(direction: Direction) -> str:
    return "--cache-to" if direction == "to" else "--cache-from"

"""Inline cache: the cache records inside the image config (`--cache-to type=inline`).

BuildKit (`cache/remotecache/inline/inline.go`, `exporter/containerimage/writer.go`) puts
the records of the final result's chain (`mode=min` only) under the image config key
`moby.buildkit.cache.v0`, as the base64 of a JSON list of records. Their results are
`chains` of indexes into the image's own layers, so no blob is stored twice; the layers'
diffIDs come from the config's `rootfs` (`import.go` `importInlineCache`).
`--build-arg BUILDKIT_INLINE_CACHE=1` asks for it too (buildx `build/opt.go`).

`--cache-from <image>` reads them back (`read_inline_entries`): from the local image store
when it holds that name, else from the registry.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from strata.errors import StoreError
from strata.image.oci import Descriptor, canonical_json, diff_ids_of
from strata.remotecache.config import (
    ANNOTATION_UNCOMPRESSED,
    CacheEntry,
    decode_config,
    strata_field,
)
from strata.remotecache.exporter import select_results
from strata.remotecache.imported import ImportedHit
from strata.remotecache.spec import CacheSpec
from strata.solver.records import CacheRecords
from strata.solver.remote import CacheResult

INLINE_KEY = "moby.buildkit.cache.v0"
INLINE_BUILD_ARG = "BUILDKIT_INLINE_CACHE"


def wants_inline(cache_to: Sequence[CacheSpec], build_args: Mapping[str, str]) -> bool:
    """`--cache-to type=inline`, or `--build-arg BUILDKIT_INLINE_CACHE=<true>`."""
    if any(spec.type == "inline" for spec in cache_to):
        return True
    return build_args.get(INLINE_BUILD_ARG, "") in ("1", "t", "T", "TRUE", "true", "True")


def inline_cache_value(
    results: Sequence[CacheResult], final_chain: Sequence[str], records: CacheRecords
) -> str:
    """The config value: the records of the final chain, each result a prefix of the
    image's layers (`final_chain`, base first)."""
    position = {name: i for i, name in enumerate(final_chain)}
    out: list[dict[str, Any]] = []
    for result in select_results(results, "min", final_chain):
        assert result.snapshot is not None  # select_results keeps chain members only
        if isinstance(result.remote, ImportedHit):
            checksums = result.remote.entry.checksums
        else:
            checksums = tuple(records.checksums_of(result.snapshot))
        entry = CacheEntry(
            key=result.key,
            layers=(),
            kind=result.kind,
            description=result.description,
            components=result.components,
            checksums=checksums,
        )
        extra = strata_field(entry)
        extra["empty"] = False
        chain = list(range(position[result.snapshot] + 1))
        out.append({"digest": result.key, "chains": [{"layers": chain}], "strata": extra})
    out.sort(key=lambda record: str(record["digest"]))
    return base64.b64encode(canonical_json(out)).decode()


def read_inline_entries(
    config: Mapping[str, Any], layers: Sequence[Descriptor]
) -> list[CacheEntry]:
    """strata's records in an image config; [] when it carries none."""
    value = config.get(INLINE_KEY)
    if not isinstance(value, str) or not value:
        return []
    try:
        records = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise StoreError(f"inline cache: cannot decode {INLINE_KEY}: {exc}") from None
    if not isinstance(records, list):
        raise StoreError(f"inline cache: {INLINE_KEY} is not a list of records")
    diff_ids = diff_ids_of(dict(config))
    if len(diff_ids) != len(layers):
        raise StoreError("inline cache: the image's layers and diff_ids differ in number")
    descriptors: dict[str, Descriptor] = {}
    chain: list[dict[str, Any]] = []
    for index, (desc, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
        annotated: Descriptor = {
            "mediaType": desc["mediaType"],
            "digest": desc["digest"],
            "size": desc["size"],
            "annotations": {**desc.get("annotations", {}), ANNOTATION_UNCOMPRESSED: diff_id},
        }
        descriptors[desc["digest"]] = annotated
        chain.append({"blob": desc["digest"], "parent": index - 1})
    document = {"layers": chain, "records": records}
    return decode_config(canonical_json(document), descriptors)

"""BuildKit's cache config (`application/vnd.buildkit.cacheconfig.v0`), written and read.

The document (BuildKit `cache/remotecache/v1/spec.go`, `doc.go`)::

    {"layers":  [{"blob": "sha256:…", "parent": <index of the layer below, -1: none>}],
     "records": [{"digest": "<key>",
                  "layers": [{"layer": <index of the result's top layer>, "createdAt": "…"}],
                  "inputs": [...]}]}

`parent` is omitted when it is 0 (Go `omitempty`), so an absent parent means index 0.
A record's result is its top layer plus that layer's parents. The layers' diffIDs and
creation times live on the manifest's descriptors, as annotations
(`containerd.io/uncompressed`, `buildkit/createdat`; BuildKit `cache/refs.go`).

strata's keys are not BuildKit's (its digests are not LLB digests), so its records are
root records only (no `inputs`), the record `digest` is the strata cache key, and every
record carries one extra field, `strata`, that BuildKit's decoder ignores: the step's
kind and name, the key's components (to explain a miss against this cache) and the
content checksums known for its result (so a step reading files of a result need not
download it to find its own key). Records without that field (BuildKit's own) are
skipped on import: their digests are never strata keys.

Everything is sorted (layers by blob and chain, records by key) and encoded canonically,
so the same cache is the same bytes and digest (BuildKit `v1/utils.go` `sortConfig`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from strata.errors import StoreError
from strata.image.oci import Descriptor, canonical_json, is_digest, parse_json_object

CACHE_CONFIG_MEDIA_TYPE = "application/vnd.buildkit.cacheconfig.v0"
ANNOTATION_UNCOMPRESSED = "containerd.io/uncompressed"
ANNOTATION_CREATED_AT = "buildkit/createdat"
STRATA_FIELD = "strata"
STRATA_VERSION = 1


@dataclass(frozen=True)
class CacheLayer:
    """One layer blob of a cached result."""

    digest: str
    media_type: str
    size: int
    diff_id: str
    created: str = ""  # RFC 3339

    def descriptor(self, media_type: str | None = None) -> Descriptor:
        desc: Descriptor = {
            "mediaType": media_type or self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        annotations = {ANNOTATION_UNCOMPRESSED: self.diff_id}
        if self.created:
            annotations[ANNOTATION_CREATED_AT] = self.created
        desc["annotations"] = annotations
        return desc


@dataclass(frozen=True)
class CacheEntry:
    """One record: a cache key and its result's layer chain (base first; empty: the
    empty tree), with strata's explanation material."""

    key: str
    layers: tuple[CacheLayer, ...]
    created: str = ""
    kind: str = ""
    description: str = ""
    components: Mapping[str, Any] = field(default_factory=dict)
    checksums: tuple[tuple[str, str], ...] = ()


def rfc3339(timestamp: float) -> str:
    """A time as Go's time.Time marshals it (UTC, fractional seconds)."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_config(entries: Iterable[CacheEntry]) -> tuple[bytes, list[CacheLayer]]:
    """The config's bytes and its layers in config order (the manifest lists them so)."""
    ordered = sorted({e.key: e for e in entries}.values(), key=lambda e: e.key)
    chains: dict[tuple[str, ...], CacheLayer] = {}
    for entry in ordered:
        for depth in range(len(entry.layers)):
            prefix = tuple(layer.digest for layer in entry.layers[: depth + 1])
            chains.setdefault(prefix, entry.layers[depth])
    nodes = sorted(chains, key=lambda prefix: (prefix[-1], prefix))
    index = {prefix: i for i, prefix in enumerate(nodes)}
    layers_json: list[dict[str, Any]] = []
    for prefix in nodes:
        parent = index[prefix[:-1]] if len(prefix) > 1 else -1
        item: dict[str, Any] = {"blob": prefix[-1]}
        if parent != 0:
            item["parent"] = parent
        layers_json.append(item)
    records_json = [_record_json(entry, index) for entry in ordered]
    document = {"layers": layers_json, "records": records_json}
    # One descriptor per blob, in the order of the config's layers.
    blobs: dict[str, CacheLayer] = {}
    for prefix in nodes:
        blobs.setdefault(prefix[-1], chains[prefix])
    return canonical_json(document), list(blobs.values())


def _record_json(entry: CacheEntry, index: Mapping[tuple[str, ...], int]) -> dict[str, Any]:
    record: dict[str, Any] = {"digest": entry.key}
    if entry.layers:
        result: dict[str, Any] = {"layer": index[tuple(layer.digest for layer in entry.layers)]}
        if entry.created:
            result["createdAt"] = entry.created
        record["layers"] = [result]
    record[STRATA_FIELD] = strata_field(entry)
    return record


def strata_field(entry: CacheEntry) -> dict[str, Any]:
    """strata's extra record field (BuildKit's decoder ignores unknown fields)."""
    return {
        "v": STRATA_VERSION,
        "kind": entry.kind,
        "name": entry.description,
        "components": dict(entry.components),
        "checksums": [list(pair) for pair in sorted(entry.checksums)],
        "empty": not entry.layers,
    }


def decode_config(data: bytes, descriptors: Mapping[str, Descriptor]) -> list[CacheEntry]:
    """strata's records of a cache config; `descriptors` are the manifest's blobs by
    digest (their annotations give diffIDs). A record whose layers lack a descriptor or
    a diffID is left out; a document that is not a cache config is a StoreError."""
    document = parse_json_object(data, "cache config")
    layers = document.get("layers") or []
    records = document.get("records") or []
    if not isinstance(layers, list) or not isinstance(records, list):
        raise StoreError("cache config: layers and records must be lists")
    out: list[CacheEntry] = []
    for record in records:
        if not isinstance(record, dict):
            continue
        extra = record.get(STRATA_FIELD)
        key = record.get("digest")
        if not isinstance(extra, dict) or not isinstance(key, str) or not is_digest(key):
            continue
        chain = _result_chain(record, layers, descriptors)
        if chain is None or (not chain and not extra.get("empty")):
            continue
        created = ""
        results = record.get("layers")
        if isinstance(results, list) and results and isinstance(results[0], dict):
            created = str(results[0].get("createdAt") or "")
        components = extra.get("components")
        checksums = extra.get("checksums")
        out.append(
            CacheEntry(
                key=key,
                layers=tuple(chain),
                created=created,
                kind=str(extra.get("kind") or ""),
                description=str(extra.get("name") or ""),
                components=components if isinstance(components, dict) else {},
                checksums=tuple(
                    (str(p[0]), str(p[1]))
                    for p in (checksums if isinstance(checksums, list) else [])
                    if isinstance(p, list) and len(p) == 2
                ),
            )
        )
    return out


def _result_chain(
    record: Mapping[str, Any], layers: Sequence[Any], descriptors: Mapping[str, Descriptor]
) -> list[CacheLayer] | None:
    """The record's result as layers, base first ([] for none); None when unusable."""
    indexes: list[int] = []
    results = record.get("layers")
    chains = record.get("chains")
    if isinstance(results, list) and results:
        top = results[0].get("layer") if isinstance(results[0], dict) else None
        seen: set[int] = set()
        current = top
        while isinstance(current, int) and current >= 0:
            if current in seen or current >= len(layers) or not isinstance(layers[current], dict):
                return None
            seen.add(current)
            indexes.append(current)
            current = layers[current].get("parent", 0)
        indexes.reverse()
    elif isinstance(chains, list) and chains and isinstance(chains[0], dict):
        listed = chains[0].get("layers")
        if not isinstance(listed, list) or not all(isinstance(i, int) for i in listed):
            return None
        indexes = list(listed)
    chain: list[CacheLayer] = []
    for position in indexes:
        if not 0 <= position < len(layers):
            return None
        blob = layers[position].get("blob")
        desc = descriptors.get(blob) if isinstance(blob, str) else None
        if desc is None:
            return None
        layer = layer_of_descriptor(desc, layers[position].get("annotations"))
        if layer is None:
            return None
        chain.append(layer)
    return chain


def layer_of_descriptor(desc: Descriptor, fallback: Any = None) -> CacheLayer | None:
    """A cache layer from a manifest descriptor (diffID from its annotations, else from
    the config layer's `annotations`, as gha/s3 caches carry it); None without one."""
    annotations = desc.get("annotations") or {}
    diff_id = annotations.get(ANNOTATION_UNCOMPRESSED, "")
    created = annotations.get(ANNOTATION_CREATED_AT, "")
    if not diff_id and isinstance(fallback, dict):
        diff_id = str(fallback.get("diffID") or "")
        created = created or str(fallback.get("createdAt") or "")
    if not is_digest(diff_id):
        return None
    return CacheLayer(desc["digest"], desc["mediaType"], desc["size"], diff_id, created)

"""`--cache-to`: the steps of a build as a cache another machine can import.

Which records (BuildKit `solver/exporter.go`, §2.5 of the format notes):
- `mode=min` (the default): the steps whose result is in the final result's layer chain,
  i.e. what the image itself is made of;
- `mode=max`: every step solved, intermediate stages included.

Each record's result is its snapshot chain as layer blobs (written once per snapshot and
remembered, `solver.layers`); a remote hit is exported as it was imported, its layers
fetched from where it came from if it was never unpacked here. The blobs, the cache config and
the manifest (`manifest.py`) are then written to a layout directory (`write_layout`) or
handed to a registry pusher (`registry.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from strata.image.oci import Descriptor, descriptor, sha256_digest
from strata.remotecache.config import (
    CACHE_CONFIG_MEDIA_TYPE,
    CacheEntry,
    CacheLayer,
    encode_config,
    rfc3339,
)
from strata.remotecache.imported import ImportedHit
from strata.remotecache.layout import LayoutDir
from strata.remotecache.manifest import CacheDocument, cache_document, layer_media_type
from strata.remotecache.spec import CacheSpec
from strata.solver.layers import layer_for_snapshot, snapshot_chain
from strata.solver.records import CacheRecords
from strata.solver.remote import CacheResult
from strata.store.content import ContentStore
from strata.worker.snapshots.snapshotter import Snapshotter

# A progress line on the export's vertex: (text, done).
Status = Callable[[str, bool], None]


@dataclass(frozen=True)
class PreparedCache:
    """A cache ready to write: blobs (in the content store), config and top document."""

    layers: tuple[Descriptor, ...]
    config: bytes
    config_descriptor: Descriptor
    document: CacheDocument
    extra_blobs: tuple[Descriptor, ...] = ()  # not layers of results (cache mounts)


def select_results(
    results: Sequence[CacheResult], mode: str, final_chain: Sequence[str]
) -> list[CacheResult]:
    """The records `mode` exports, each key once (its first solve)."""
    chain = set(final_chain)
    chosen: dict[str, CacheResult] = {}
    for result in results:
        if result.key in chosen:
            continue
        if mode == "max" or (result.snapshot is not None and result.snapshot in chain):
            chosen[result.key] = result
    return list(chosen.values())


def cache_entries(
    results: Sequence[CacheResult],
    *,
    snapshotter: Snapshotter,
    records: CacheRecords,
    content: ContentStore,
) -> list[CacheEntry]:
    """Each result as a record with its layer chain; writes layer blobs not written yet
    and fetches a remote hit's blobs into the content store."""
    entries: list[CacheEntry] = []
    for result in results:
        remote = result.remote
        if isinstance(remote, ImportedHit):
            # Exported as it was imported (its blobs, times and checksums), whether or
            # not it was unpacked here: a runner re-exporting what it imported writes
            # the same cache, byte for byte.
            remote.fetch_blobs(content)
            entry = remote.entry
            entries.append(
                CacheEntry(
                    key=result.key,
                    layers=entry.layers,
                    created=entry.created,
                    kind=result.kind,
                    description=result.description,
                    components=result.components,
                    checksums=entry.checksums,
                )
            )
            continue
        layers: list[CacheLayer] = []
        created = ""
        checksums: list[tuple[str, str]] = []
        if result.snapshot is not None:
            if not snapshotter.exists(result.snapshot):
                continue  # pruned meanwhile: nothing to export
            for info in snapshot_chain(snapshotter, result.snapshot):
                row = layer_for_snapshot(snapshotter, records, content, info)
                layers.append(
                    CacheLayer(
                        row.digest, row.media_type, row.size, row.diff_id, rfc3339(info.created)
                    )
                )
            created = layers[-1].created if layers else ""
            checksums = records.checksums_of(result.snapshot)
        entries.append(
            CacheEntry(
                key=result.key,
                layers=tuple(layers),
                created=created,
                kind=result.kind,
                description=result.description,
                components=result.components,
                checksums=tuple(checksums),
            )
        )
    return entries


def prepare_cache(
    entries: Sequence[CacheEntry],
    spec: CacheSpec,
    extra_blobs: Sequence[Descriptor] = (),
) -> PreparedCache:
    """The config and manifest (or index) of these records, as `spec` asks them."""
    oci = spec.flag("oci-mediatypes", True)
    image_manifest = spec.flag("image-manifest", oci)
    config, layers = encode_config(entries)
    config_desc = descriptor(CACHE_CONFIG_MEDIA_TYPE, sha256_digest(config), len(config))
    blobs = [layer.descriptor(layer_media_type(layer.media_type, oci)) for layer in layers]
    extra = list(extra_blobs)
    document = cache_document(config_desc, [*blobs, *extra], image_manifest=image_manifest, oci=oci)
    return PreparedCache(tuple(blobs), config, config_desc, document, tuple(extra))


def write_layout(
    prepared: PreparedCache, spec: CacheSpec, content: ContentStore, status: Status
) -> None:
    """Write the cache into the OCI layout `dest` under `tag` (BuildKit's local cache)."""
    from pathlib import Path

    layout = LayoutDir(Path(spec.get("dest")))
    layout.prepare(reset=spec.flag("reset", False))
    for desc in (*prepared.layers, *prepared.extra_blobs):
        label = f"writing layer {desc['digest']}"
        status(label, False)
        layout.put_from_store(content, desc["digest"])
        status(label, True)
    label = f"writing config {prepared.config_descriptor['digest']}"
    status(label, False)
    layout.put_bytes(prepared.config_descriptor["digest"], prepared.config)
    status(label, True)
    document = prepared.document
    kind = (
        "cache image manifest"
        if document.media_type.endswith("manifest.v1+json")
        else ("cache manifest")
    )
    label = f"writing {kind} {document.descriptor['digest']}"
    status(label, False)
    layout.put_bytes(document.descriptor["digest"], document.body)
    layout.tag(document.descriptor, spec.get("tag", "latest") or "latest")
    status(label, True)

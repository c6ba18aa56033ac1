"""The image exporter: a solved target becomes an image in the local image store.

The config is the planner's (`BuildPlan.config`) plus what only the export knows
(BuildKit `exporter/containerimage/writer.go`, `patchImageConfig` and
`normalizeLayersAndHistory`):

- `rootfs.diff_ids` of the target snapshot's chain;
- `history`: the plan's entries, the non-empty ones matched to the layers from the end;
  a new layer's entry is dated by its snapshot's creation time, so a fully cached
  rebuild gives the same config and the same image ID; an empty-layer entry takes the
  time of the layer before it (leading ones the first new layer's); SOURCE_DATE_EPOCH
  clamps every new time;
- `created`: the last history entry's time, `null` when no entry has one.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from strata.gotext import format_rfc3339_nano
from strata.image.oci import (
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_MANIFEST,
    canonical_json,
    compression_of_media_type,
    descriptor,
)
from strata.plan.result import HistoryEntry
from strata.solver.layers import ChainLayer
from strata.store.images import ImageStore
from strata.store.reference import parse_reference


@dataclass(frozen=True)
class ExportedImage:
    """What the image exporter stored: IDs and the names it was given."""

    image_id: str
    manifest_digest: str
    config: dict[str, Any]
    names: tuple[str, ...]


def _clamp(when: float, epoch: int | None) -> float:
    return min(when, float(epoch)) if epoch is not None else when


def build_history(
    history: Sequence[HistoryEntry],
    layers: Sequence[ChainLayer],
    *,
    source_date_epoch: int | None,
    fallback_time: str | None,
) -> list[dict[str, Any]]:
    """The config's `history`: plan entries with `created` filled in as BuildKit does."""
    layer_entries = [i for i, entry in enumerate(history) if not entry.empty_layer]
    # Match non-empty entries to layers from the end (the base's own history may be
    # shorter or longer than its layers).
    layer_time: dict[int, float] = {}
    for entry_index, layer in zip(reversed(layer_entries), reversed(layers), strict=False):
        layer_time[entry_index] = _clamp(layer.snapshot.created, source_date_epoch)
    new_times = [layer_time[i] for i in sorted(layer_time) if history[i].created is None]
    first_new = new_times[0] if new_times else None
    out: list[dict[str, Any]] = []
    previous: str | None = None
    for index, entry in enumerate(history):
        created = entry.created
        if created is None:
            if index in layer_time:
                created = format_rfc3339_nano(layer_time[index])
                previous = created
            elif previous is not None:
                created = previous
            elif first_new is not None:
                created = format_rfc3339_nano(first_new)
            elif source_date_epoch is not None:
                created = format_rfc3339_nano(float(source_date_epoch))
            else:
                created = fallback_time
        item: dict[str, Any] = {}
        if created is not None:
            item["created"] = created
        if entry.author:
            item["author"] = entry.author
        item["created_by"] = entry.created_by
        if entry.comment:
            item["comment"] = entry.comment
        if entry.empty_layer:
            item["empty_layer"] = True
        out.append(item)
    return out


def image_config(
    plan_config: dict[str, Any],
    history: Sequence[HistoryEntry],
    layers: Sequence[ChainLayer],
    *,
    source_date_epoch: int | None = None,
    base_created: str | None = None,
) -> dict[str, Any]:
    """The full OCI image config of the target."""
    config = copy.deepcopy(plan_config)
    entries = build_history(
        history, layers, source_date_epoch=source_date_epoch, fallback_time=base_created
    )
    config["rootfs"] = {"type": "layers", "diff_ids": [item.layer.diff_id for item in layers]}
    config["history"] = entries
    if "created" not in config:
        # With no time anywhere (`FROM scratch` and only metadata instructions) BuildKit
        # writes `"created": null`: patchImageConfig marshals a nil *time.Time.
        config["created"] = next(
            (e["created"] for e in reversed(entries) if "created" in e), base_created
        )
    return config


def store_image(
    images: ImageStore,
    config: dict[str, Any],
    layers: Sequence[ChainLayer],
    names: Sequence[str],
) -> ExportedImage:
    """Commit the image and point every name at it."""
    manifest = images.commit_image(config, [item.layer for item in layers])
    stored = images.image(manifest)
    given: list[str] = []
    for name in names:
        images.put(name, manifest)
        given.append(str(parse_reference(name)))
    return ExportedImage(
        image_id=stored.config_digest,
        manifest_digest=manifest,
        config=stored.config,
        names=tuple(given),
    )


def write_unstored_image(
    images: ImageStore,
    config: dict[str, Any],
    layers: Sequence[ChainLayer],
    *,
    hold: str,
) -> ExportedImage:
    """Write the image's config and manifest blobs without making it an image of the
    store: for `-o type=docker|oci,dest=...`, which BuildKit writes straight to the
    destination. The blobs (layers too) are held by the content-store lease `hold`
    only, so they are swept once nothing else refers to them."""
    content = images.content
    content.add_refs(hold, [item.layer.digest for item in layers])
    for item in layers:
        compression = compression_of_media_type(item.layer.media_type)
        if compression is not None:
            content.record_layer(
                digest=item.layer.digest,
                diff_id=item.layer.diff_id,
                compression=compression,
                media_type=item.layer.media_type,
                uncompressed_size=item.layer.uncompressed_size,
            )
    config_bytes = canonical_json(config)
    config_digest = content.ingest_bytes(config_bytes, hold=hold)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": descriptor(MEDIA_OCI_CONFIG, config_digest, len(config_bytes)),
        "layers": [
            descriptor(item.layer.media_type, item.layer.digest, item.layer.size) for item in layers
        ],
    }
    manifest_digest = content.ingest_bytes(canonical_json(manifest), hold=hold)
    return ExportedImage(
        image_id=config_digest,
        manifest_digest=manifest_digest,
        config=images.image(manifest_digest).config,
        names=(),
    )

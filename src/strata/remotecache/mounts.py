"""Cache mounts in the remote cache (`--cache-to ...,cache-mounts=true`): strata's own.

BuildKit never exports `RUN --mount=type=cache` directories (moby/buildkit#1512: they are
"not tracked by cache key"), so a fresh CI runner downloads every package again. strata
exports each cache mount the build used as one more blob of the cache manifest:

- a zstd tar of the directory, under the standard OCI layer media type, so registries
  take it; no cache record names it, so BuildKit's importer ignores it;
- annotated `dev.strata.cachemount.id`, `.base` (the mount's base key: empty, or its
  uid/gid/mode, or the checksum of its `from` seed), `.size` (bytes of the tar) and
  `.created`;
- the tar is written in a stable order with the files' own times, so an unchanged mount
  is the same blob and is not sent again (a registry answers the HEAD, a layout has it);
- `cache-mounts-max-size=BYTES` leaves out larger mounts, with a warning.

On import (automatic when the cache has them) a mount is restored only when this state
root has no directory for that id and base: never over local content. It happens when a
RUN using it is about to run, so a fully cached build downloads none of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from strata.image.apply import apply_layer
from strata.image.layer import write_layer
from strata.image.oci import Descriptor
from strata.plan.ops import ExecOp, MountType, Vertex
from strata.remotecache.config import ANNOTATION_UNCOMPRESSED, rfc3339
from strata.store.cachemounts import CacheMounts
from strata.store.content import ContentStore
from strata.store.root import StateRoot

PREFIX = "dev.strata.cachemount."
ANNOTATION_ID = PREFIX + "id"
ANNOTATION_BASE = PREFIX + "base"
ANNOTATION_SIZE = PREFIX + "size"
ANNOTATION_CREATED = PREFIX + "created"


@dataclass(frozen=True)
class MountBlob:
    """A cache mount held by an imported cache."""

    cache_id: str
    base: str
    descriptor: Descriptor


def used_cache_ids(vertices: Iterable[Vertex]) -> set[str]:
    """The ids of the cache mounts of every RUN in the build's graph."""
    ids: set[str] = set()
    for vertex in vertices:
        if isinstance(vertex.op, ExecOp):
            ids.update(m.cache_id for m in vertex.op.mounts[1:] if m.type == MountType.CACHE)
    return ids


def export_cache_mounts(
    root: StateRoot,
    content: ContentStore,
    cache_ids: Iterable[str],
    *,
    max_size: int | None,
    hold: str,
    warn: Callable[[str], None],
) -> list[Descriptor]:
    """One blob per (id, base) the build used, its newest directory, in the content
    store (held by `hold`); sorted, so the same mounts give the same manifest."""
    wanted = set(cache_ids)
    caches = CacheMounts(root, reap=False)
    newest: dict[tuple[str, str], tuple[float, int, float]] = {}
    for directory in caches.directories():
        if directory.cache_id not in wanted or directory.base_key.startswith("from:/"):
            continue  # a seed named by a host path is not portable
        key = (directory.cache_id, directory.base_key)
        if key not in newest or directory.last_used > newest[key][0]:
            newest[key] = (directory.last_used, directory.number, directory.created)
    out: list[Descriptor] = []
    for (cache_id, base), (_, number, created) in sorted(newest.items()):
        data = caches.data_dir(number)
        if max_size is not None:
            size = _tree_size(data)
            if size > max_size:
                warn(
                    f"cache mount {cache_id} not exported: {size} bytes is over"
                    f" cache-mounts-max-size={max_size}"
                )
                continue
        with content.writer(hold=hold) as blob:
            info = write_layer(data, cast(BinaryIO, blob), compression="zstd")
        out.append(
            {
                "mediaType": info.media_type,
                "digest": blob.digest,
                "size": blob.size,
                "annotations": {
                    ANNOTATION_UNCOMPRESSED: info.diff_id,
                    ANNOTATION_ID: cache_id,
                    ANNOTATION_BASE: base,
                    ANNOTATION_SIZE: str(info.uncompressed_size),
                    ANNOTATION_CREATED: rfc3339(created),
                },
            }
        )
    return out


def cache_mount_blobs(blobs: Sequence[Descriptor]) -> list[MountBlob]:
    """The cache mounts among a cache manifest's blobs."""
    out: list[MountBlob] = []
    for desc in blobs:
        annotations = desc.get("annotations") or {}
        cache_id = annotations.get(ANNOTATION_ID)
        if cache_id:
            out.append(MountBlob(cache_id, annotations.get(ANNOTATION_BASE, "empty"), desc))
    return out


def restore_cache_mount(
    root: StateRoot,
    blob: MountBlob,
    fetch: Callable[[Sequence[Descriptor], ContentStore], None],
) -> bool:
    """Make the cache mount from its blob unless this root has one; whether it did."""
    caches = CacheMounts(root, reap=False)
    content = ContentStore(root)

    def fill(directory: Path) -> None:
        fetch([blob.descriptor], content)
        with content.open(blob.descriptor["digest"]) as stream:
            apply_layer(stream, directory, mode="tree")
        _apply_base_permissions(directory, blob.base)

    return caches.seed(blob.cache_id, blob.base, fill)


def _apply_base_permissions(directory: os.PathLike[str], base: str) -> None:
    """A `perm:<uid>:<gid>:<mode>` base gives the directory those (as a new one gets)."""
    if not base.startswith("perm:"):
        return
    try:
        _, uid, gid, mode = base.split(":")
        os.chown(directory, int(uid), int(gid))
        os.chmod(directory, int(mode, 8))
    except (ValueError, OSError):
        return


def _tree_size(path: os.PathLike[str]) -> int:
    total = 0
    for parent, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                continue
    return total

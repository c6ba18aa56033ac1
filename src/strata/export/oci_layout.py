"""Writing OCI image layouts (image-spec `image-layout.md`), as a directory or a tar.

    oci-layout                 {"imageLayoutVersion": "1.0.0"}
    index.json                 one descriptor per (image, name)
    blobs/sha256/<hex>         manifests, configs and layers, byte for byte as stored

Blobs are copied verbatim, so every digest survives (a load → save round trip gives
the same manifest, config and layer digests). Each name is written twice on its
index entry, as containerd, Docker (≥ 25) and BuildKit do: the full name in
`io.containerd.image.name` and the tag in `org.opencontainers.image.ref.name`
(which `skopeo oci:<dir>:<tag>` and `umoci --image <dir>:<tag>` look up).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, cast

from strata.errors import StoreError
from strata.export.docker_archive import ExportEntry
from strata.image.oci import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    OCI_LAYOUT_VERSION,
    Descriptor,
    Index,
)
from strata.image.tarformat import TarStream
from strata.store.content import ContentStore


def layout_index(content: ContentStore, entries: Sequence[ExportEntry]) -> Index:
    """index.json for `entries`: one descriptor per name, one for an unnamed image."""
    manifests: list[Descriptor] = []
    for entry in entries:
        image = entry.image
        base: Descriptor = {
            "mediaType": str(image.manifest.get("mediaType") or MEDIA_OCI_MANIFEST),
            "digest": image.manifest_digest,
            "size": content.info(image.manifest_digest).size,
        }
        named = [n for n in entry.names if n.tag is not None]
        if not named:
            manifests.append(base)
        for name in named:
            assert name.tag is not None
            desc = dict(base)
            desc["annotations"] = {
                ANNOTATION_IMAGE_NAME: str(name),
                ANNOTATION_REF_NAME: name.tag,
            }
            manifests.append(desc)  # type: ignore[arg-type]
    return {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": manifests}


def layout_blobs(entries: Sequence[ExportEntry]) -> list[str]:
    """Every blob the layout holds, each once, in a fixed order."""
    return [digest for digest, _ in layout_blobs_of(entries)]


def layout_blobs_of(entries: Sequence[ExportEntry]) -> list[tuple[str, str]]:
    """`layout_blobs`, each with the image (`ExportEntry.label`) that first names it."""
    seen: dict[str, str] = {}
    for entry in entries:
        image = entry.image
        for digest in (
            image.manifest_digest,
            image.config_digest,
            *(layer.digest for layer in image.layers),
        ):
            seen.setdefault(digest, entry.label)
    return list(seen.items())


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def write_oci_archive(content: ContentStore, entries: Sequence[ExportEntry], out: BinaryIO) -> None:
    """The layout as one tar stream (what `skopeo oci-archive:` reads)."""
    tar = TarStream(out.write)
    tar.add_bytes("oci-layout", _json_bytes({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    tar.add_bytes("index.json", _json_bytes(layout_index(content, entries)))
    tar.add_dir("blobs")
    tar.add_dir("blobs/sha256")
    for digest, label in layout_blobs_of(entries):
        # Hashed as it streams: a corrupt blob fails here, named (store/content.py).
        with content.open_verified(digest, image=label) as fh:
            name = f"blobs/sha256/{digest.removeprefix('sha256:')}"
            tar.add_stream(name, fh.stored_size, cast(BinaryIO, fh))
    tar.close()


def write_oci_layout_dir(content: ContentStore, entries: Sequence[ExportEntry], dest: Path) -> None:
    """The layout as a directory; `dest` must be absent or empty."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise StoreError(f"{dest}: exists and is not an empty directory")
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for digest, label in layout_blobs_of(entries):
        target = blobs / digest.removeprefix("sha256:")
        with content.open_verified(digest, image=label) as src, open(target, "wb") as dst:
            shutil.copyfileobj(cast(BinaryIO, src), dst, 1 << 20)
    (dest / "oci-layout").write_bytes(_json_bytes({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    index_tmp = dest / ".index.json.tmp"
    index_tmp.write_bytes(_json_bytes(layout_index(content, entries)))
    os.rename(index_tmp, dest / "index.json")  # written last: a complete layout or none

"""Writing the docker-archive format: what `docker save` writes and `docker load` reads.

    <diff_id hex>/layer.tar    each layer, uncompressed (so its digest is its diff_id)
    <config hex>.json          each image config, byte for byte as stored
    manifest.json              [{"Config", "RepoTags", "Layers"}] per image
    repositories               {"repo": {"tag": "<top layer dir>"}} (legacy readers)

Docker's loader only reads manifest.json (moby `image/tarexport/load.go`); the v1
`json`/`VERSION` files per layer are not needed and not written. Output is
deterministic: fixed order, zero mtimes, one copy of a layer shared by images.
Layers stream through (decompressed when stored compressed): constant memory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from strata.errors import StoreError
from strata.image.compress import open_decompressed
from strata.image.tarformat import TarStream
from strata.store.content import ContentStore
from strata.store.images import Image
from strata.store.reference import Reference


@dataclass(frozen=True)
class ExportEntry:
    """An image to export and the names it is exported under (possibly none)."""

    image: Image
    names: Sequence[Reference] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        """How errors name the image: its first name, else its short ID."""
        if self.names:
            return self.names[0].familiar()
        return self.image.id.removeprefix("sha256:")[:12]


def write_docker_archive(
    content: ContentStore, entries: Sequence[ExportEntry], out: BinaryIO
) -> None:
    """Write `entries` to `out` as one docker-archive tar."""
    tar = TarStream(out.write)
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    for entry in entries:
        layer_paths: list[str] = []
        for layer in entry.image.layers:
            hex_id = layer.diff_id.removeprefix("sha256:")
            path = f"{hex_id}/layer.tar"
            layer_paths.append(path)
            if path in written:
                continue
            written.add(path)
            record = content.describe_layer(layer.digest, layer.media_type)
            if record.diff_id != layer.diff_id:
                raise StoreError(
                    f"layer {layer.digest} holds {record.diff_id}, config says {layer.diff_id}"
                )
            tar.add_dir(hex_id)
            # Hashed as it streams: a corrupt blob fails here, named (store/content.py).
            with content.open_verified(layer.digest, image=entry.label) as raw:
                stream, _ = open_decompressed(cast(BinaryIO, raw))
                tar.add_stream(path, record.uncompressed_size, stream)
        config_path = entry.image.config_digest.removeprefix("sha256:") + ".json"
        if config_path not in written:
            written.add(config_path)
            config = content.read_bytes(entry.image.config_digest, image=entry.label)
            tar.add_bytes(config_path, config)
        tags = [n.familiar() for n in entry.names if n.tag is not None]
        manifest.append({"Config": config_path, "RepoTags": tags or None, "Layers": layer_paths})
        for name in entry.names:
            if name.tag is not None and layer_paths:
                top = layer_paths[-1].split("/")[0]
                repositories.setdefault(name.familiar_name, {})[name.tag] = top
    tar.add_bytes("manifest.json", json.dumps(manifest, separators=(",", ":")).encode() + b"\n")
    if repositories:
        tar.add_bytes(
            "repositories",
            json.dumps(repositories, sort_keys=True, separators=(",", ":")).encode() + b"\n",
        )
    tar.close()

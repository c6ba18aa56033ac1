"""Reading image archives into the store: docker-archive and OCI layout (tar or directory).

A tar is read once, front to back (so `load -i -` works on a pipe): every file is
streamed into the content store (files under `blobs/sha256/` checked against their
names), and only the small index files (manifest.json, index.json, oci-layout,
repositories) are kept in memory. Then the index files say which blobs make which
image. Layer diff_ids are checked against each config. Blobs the archive carried but
no image uses are deleted again. Every blob is held by a content-store lease from the
moment it is stored (or found already stored) until an image holds it, so a concurrent
`rmi` of another image sharing a layer cannot delete that layer under this load. An archive holding both manifest.json and
index.json (Docker ≥ 25 writes both) is read as OCI, which keeps manifest digests.

Docker-archive images get a new OCI manifest over the archive's own config and layer
bytes, so the image ID (config digest) and every layer digest are kept.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from strata.errors import StoreError
from strata.hostplatform import host_platform
from strata.image.apply import forget_members
from strata.image.compress import open_decompressed, read_decompressed
from strata.image.oci import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    INDEX_MEDIA_TYPES,
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_MANIFEST,
    Descriptor,
    Manifest,
    canonical_json,
    descriptor,
    diff_ids_of,
    is_digest,
    layer_media_type,
    parse_index,
    parse_json_object,
    parse_manifest,
)
from strata.store.images import ImageStore
from strata.store.reference import Reference, parse_reference

INDEX_FILES = frozenset({"manifest.json", "index.json", "oci-layout", "repositories"})
INDEX_FILE_LIMIT = 16 << 20


@dataclass(frozen=True)
class LoadedImage:
    """One image an archive held: its name (if any) and what the name pointed at before."""

    name: Reference | None
    image_id: str
    manifest_digest: str
    replaced_id: str | None = None


class _Ingested:
    """Where each archive path went: blob digests, small index files, symlinks; and the
    lease holding those blobs until images do."""

    def __init__(self, lease: str) -> None:
        self.lease = lease
        self.blobs: dict[str, str] = {}
        self.index_files: dict[str, bytes] = {}
        self.links: dict[str, str] = {}
        self.created: list[str] = []

    def digest_of(self, path: str, what: str) -> str:
        clean = posixpath.normpath(path.lstrip("/"))
        for _ in range(16):  # follow (older docker save's) symlinked layer.tar files
            if clean in self.blobs:
                return self.blobs[clean]
            if clean not in self.links:
                break
            clean = self.links[clean]
        raise StoreError(f"archive is missing {what} {path!r}")


def load_archive(
    images: ImageStore, stream: BinaryIO, *, source: str | None = None
) -> list[LoadedImage]:
    """Load a docker-archive or OCI layout tar (optionally compressed) from `stream`.

    `source` (a file name, `stdin`) starts the message of every error about the archive.
    """
    try:
        with images.content.lease() as lease:
            ingested = _Ingested(lease)
            try:
                return _read_and_register(images, stream, ingested)
            finally:
                _cleanup(images, ingested)
    except StoreError as exc:
        if source is None:
            raise
        raise StoreError(f"{source}: {exc.message}") from exc


def _read_and_register(
    images: ImageStore, stream: BinaryIO, ingested: _Ingested
) -> list[LoadedImage]:
    try:
        raw, _ = open_decompressed(stream, allowed=("gzip", "zstd", "bzip2", "xz", "none"))
        archive = tarfile.open(fileobj=raw, mode="r|")  # noqa: SIM115
        for member in _members(archive):
            _ingest_member(images, archive, member, ingested)
    except tarfile.TarError as exc:
        raise StoreError(f"invalid archive: {exc}") from exc
    return _register(images, ingested)


def load_oci_layout_dir(images: ImageStore, path: Path) -> list[LoadedImage]:
    """Load every image an OCI layout directory's index.json names."""
    with images.content.lease() as lease:
        ingested = _Ingested(lease)
        try:
            return _load_layout_dir(images, path, ingested)
        finally:
            _cleanup(images, ingested)


def _load_layout_dir(images: ImageStore, path: Path, ingested: _Ingested) -> list[LoadedImage]:
    for name in ("index.json", "oci-layout"):
        file = path / name
        if file.is_file():
            ingested.index_files[name] = file.read_bytes()
    if "index.json" not in ingested.index_files:
        raise StoreError(f"{path}: not an OCI layout (no index.json)")
    blob_dir = path / "blobs" / "sha256"
    try:
        for digest in _reachable(images, ingested, lambda d: blob_dir / d.removeprefix("sha256:")):
            ingested.blobs[f"blobs/sha256/{digest.removeprefix('sha256:')}"] = digest
        return _register(images, ingested)
    except StoreError as exc:
        raise StoreError(f"{path}: {exc.message}") from exc


def _members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (member := archive.next()) is not None:
        yield member
        forget_members(archive)


def _ingest_member(
    images: ImageStore, archive: tarfile.TarFile, member: tarfile.TarInfo, ingested: _Ingested
) -> None:
    name = posixpath.normpath(member.name.lstrip("/"))
    if member.issym():
        ingested.links[name] = posixpath.normpath(
            posixpath.join(posixpath.dirname(name), member.linkname)
        )
        return
    if member.islnk():
        ingested.links[name] = posixpath.normpath(member.linkname.lstrip("/"))
        return
    if not member.isreg():
        return
    source = archive.extractfile(member)
    assert source is not None
    if name in INDEX_FILES:
        if member.size > INDEX_FILE_LIMIT:
            raise StoreError(f"archive file {name} is too large ({member.size} bytes)")
        ingested.index_files[name] = source.read()
        return
    expected = None
    parts = name.split("/")
    if len(parts) == 3 and parts[:2] == ["blobs", "sha256"]:
        expected = f"sha256:{parts[2]}"
        if not is_digest(expected):
            raise StoreError(f"archive blob {name!r} is not named by a sha256 digest")
    with images.content.writer(expected, hold=ingested.lease) as w:
        while chunk := read_decompressed(cast(BinaryIO, source), 1 << 20):
            w.write(chunk)
    ingested.blobs[name] = w.digest
    if w.created:
        ingested.created.append(w.digest)


def _cleanup(images: ImageStore, ingested: _Ingested) -> None:
    """Delete blobs this load brought in that no image ended up holding."""
    images.content.remove_refs(ingested.lease)
    if ingested.created:
        images.content.delete_unreferenced(ingested.created)


def _register(images: ImageStore, ingested: _Ingested) -> list[LoadedImage]:
    if "index.json" in ingested.index_files:
        return _register_oci(images, ingested)
    if "manifest.json" in ingested.index_files:
        return _register_docker(images, ingested)
    raise StoreError(
        "archive has no manifest.json or index.json: not a docker-archive or OCI layout"
    )


# -- OCI layout ---------------------------------------------------------------------------


def _reachable(images: ImageStore, ingested: _Ingested, path_of: Any) -> Iterator[str]:
    """For a layout directory: ingest the blobs index.json reaches, yield their digests."""
    index = parse_index(ingested.index_files["index.json"], "index.json")
    pending: list[Descriptor] = list(index["manifests"])
    while pending:
        desc = pending.pop(0)
        try:
            fh = open(path_of(desc["digest"]), "rb")  # noqa: SIM115 - closed just below
        except OSError as exc:
            raise StoreError(f"cannot read blob {desc['digest']}: {exc.strerror}") from exc
        with fh:
            w = images.content.ingest_stream(fh, desc["digest"], hold=ingested.lease)
        if w.created:
            ingested.created.append(w.digest)
        yield desc["digest"]
        media = desc.get("mediaType", "")
        if media in INDEX_MEDIA_TYPES:
            pending += parse_index(images.content.read_bytes(desc["digest"]))["manifests"]
        elif media in (MEDIA_OCI_MANIFEST,) or media.endswith("manifest.v2+json"):
            manifest = parse_manifest(images.content.read_bytes(desc["digest"]))
            pending += [manifest["config"], *manifest["layers"]]


def _register_oci(images: ImageStore, ingested: _Ingested) -> list[LoadedImage]:
    index = parse_index(ingested.index_files["index.json"], "index.json")
    loaded: list[LoadedImage] = []
    for desc in index["manifests"]:
        manifest_digest = _pick_manifest(images, desc)
        _check_layers(images, manifest_digest)
        image = images.register(manifest_digest)
        annotations = desc.get("annotations", {})
        name = _name_from_annotations(annotations)
        loaded.append(_name_image(images, name, image.config_digest, manifest_digest))
    return loaded


def _pick_manifest(images: ImageStore, desc: Descriptor) -> str:
    """An index entry's image manifest: itself, or this platform's in a nested index."""
    digest = desc["digest"]
    if not images.content.has(digest):
        raise StoreError(f"archive is missing blob {digest}")
    if desc.get("mediaType") not in INDEX_MEDIA_TYPES:
        return digest
    nested = parse_index(images.content.read_bytes(digest), f"index {digest}")["manifests"]
    os_name, arch, _ = host_platform()
    for candidate in nested:
        platform = candidate.get("platform", {})
        if platform.get("os") == os_name and platform.get("architecture") == arch:
            return _pick_manifest(images, candidate)
    if not nested:
        raise StoreError(f"index {digest} lists no manifests")
    return _pick_manifest(images, nested[0])


def _name_from_annotations(annotations: dict[str, str]) -> Reference | None:
    full = annotations.get(ANNOTATION_IMAGE_NAME)
    ref_name = annotations.get(ANNOTATION_REF_NAME, "")
    candidate = full or (ref_name if ("/" in ref_name or ":" in ref_name) else None)
    if candidate is None:
        return None
    try:
        ref = parse_reference(candidate)
    except StoreError:
        return None
    return ref if ref.digest is None else None


# -- docker-archive -----------------------------------------------------------------------


@dataclass(frozen=True)
class _DockerEntry:
    """One checked entry of a docker-archive's manifest.json."""

    config: str
    layers: tuple[str, ...]
    repo_tags: tuple[str, ...]


def _docker_entries(raw: bytes) -> list[_DockerEntry]:
    """manifest.json, its shape checked: an archive is user input, and a wrong type must
    be a StoreError naming the field, not a TypeError (or a string walked letter by
    letter as if it listed layers). Missing or null Layers/RepoTags mean none, as in
    docker's loader (image/tarexport/load.go)."""
    try:
        entries = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"manifest.json: invalid JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise StoreError("manifest.json: expected a JSON array")
    checked: list[_DockerEntry] = []
    for number, entry in enumerate(entries):
        where = f"manifest.json: entry {number}"
        if not isinstance(entry, dict):
            raise StoreError(f"{where}: expected a JSON object")
        config = entry.get("Config")
        if not isinstance(config, str) or not config:
            raise StoreError(f"{where}: Config must be a file name (a string)")
        checked.append(
            _DockerEntry(
                config,
                _string_list(entry.get("Layers"), f"{where}: Layers"),
                _string_list(entry.get("RepoTags"), f"{where}: RepoTags"),
            )
        )
    return checked


def _string_list(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StoreError(f"{where} must be a list of strings")
    return tuple(value)


def _register_docker(images: ImageStore, ingested: _Ingested) -> list[LoadedImage]:
    loaded: list[LoadedImage] = []
    content = images.content
    for entry in _docker_entries(ingested.index_files["manifest.json"]):
        config_digest = ingested.digest_of(entry.config, "config")
        config_bytes = content.read_bytes(config_digest)
        config = parse_json_object(config_bytes, f"config {entry.config}")
        layer_paths = entry.layers
        diff_ids = diff_ids_of(config)
        if len(diff_ids) != len(layer_paths):
            raise StoreError(
                f"{entry.config}: config lists {len(diff_ids)} layers,"
                f" manifest.json {len(layer_paths)}"
            )
        layers: list[Descriptor] = []
        for path, diff_id in zip(layer_paths, diff_ids, strict=True):
            digest = ingested.digest_of(path, "layer")
            record = content.describe_layer(digest)
            if record.diff_id != diff_id:
                raise StoreError(
                    f"layer {path} has diff_id {record.diff_id}, config says {diff_id}"
                )
            size = content.info(digest).size
            layers.append(descriptor(layer_media_type(record.compression), digest, size))
        manifest: Manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": descriptor(MEDIA_OCI_CONFIG, config_digest, len(config_bytes)),
            "layers": layers,
        }
        manifest_digest = content.ingest_bytes(canonical_json(manifest), hold=ingested.lease)
        images.register(manifest_digest)
        tags = entry.repo_tags
        if not tags:
            loaded.append(_name_image(images, None, config_digest, manifest_digest))
        for tag in tags:
            loaded.append(_name_image(images, parse_reference(tag), config_digest, manifest_digest))
    return loaded


def _check_layers(images: ImageStore, manifest_digest: str) -> None:
    """Every layer blob must hold the diff_id its config lists."""
    image = images.image(manifest_digest)
    for layer in image.layers:
        record = images.content.describe_layer(layer.digest, layer.media_type)
        if record.diff_id != layer.diff_id:
            raise StoreError(
                f"layer {layer.digest} has diff_id {record.diff_id}, config says {layer.diff_id}"
            )


def _name_image(
    images: ImageStore, name: Reference | None, image_id: str, manifest_digest: str
) -> LoadedImage:
    if name is None:
        return LoadedImage(None, image_id, manifest_digest)
    previous = images.put(str(name), manifest_digest)
    replaced = None
    if previous is not None:
        old = images.image(previous).config_digest
        replaced = old if old != image_id else None
    return LoadedImage(name, image_id, manifest_digest, replaced)

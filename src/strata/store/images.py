"""The image store: images as blobs in the content store, plus names pointing at them.

An image is a manifest blob (with its config and layer blobs); its ID, as in Docker,
is the config digest. Names are full references (`docker.io/library/busybox:latest`)
mapping to a manifest digest. An image whose last name moves elsewhere stays as a
dangling image (`<none>`), as in Docker, until `rmi` removes it.

Tables `images` and `image_names` (owner: `ImageStore`; see `store/schema.py`).
Each image holds its blobs through content-store references owned by
`image:<manifest digest>`, so removing an image deletes exactly the blobs that no
other image (or cache record) holds.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from strata.errors import StoreError
from strata.image.oci import (
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_MANIFEST,
    Manifest,
    canonical_json,
    check_digest,
    compression_of_media_type,
    descriptor,
    diff_ids_of,
    is_digest,
    parse_json_object,
    parse_manifest,
)
from strata.store.content import ContentStore
from strata.store.reference import Reference, parse_reference
from strata.store.root import StateRoot

NONE = "<none>"


class LayerLike(Protocol):
    """What `commit_image` needs of a layer: `LayerInfo` and `ImageLayer` both fit."""

    @property
    def digest(self) -> str: ...
    @property
    def diff_id(self) -> str: ...
    @property
    def media_type(self) -> str: ...
    @property
    def size(self) -> int: ...


@dataclass(frozen=True)
class ImageLayer:
    diff_id: str
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class Image:
    """A stored image, read: manifest and config documents and their layers in order."""

    manifest_digest: str
    config_digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    layers: list[ImageLayer]

    @property
    def id(self) -> str:
        return self.config_digest


@dataclass(frozen=True)
class ImageRecord:
    """One row of `strata images`."""

    name: str | None
    repository: str
    tag: str
    id: str
    manifest_digest: str
    created: datetime | None
    size: int


def parse_created(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Removal:
    """One thing `rmi` did: a name untagged (familiar form) or a digest deleted."""

    action: Literal["untagged", "deleted"]
    what: str

    def __str__(self) -> str:
        """Docker's line: `Untagged: busybox:latest`, `Deleted: sha256:...`."""
        return f"{self.action.capitalize()}: {self.what}"


class ImageStore:
    """Names and images of one state root."""

    def __init__(self, root: StateRoot, content: ContentStore | None = None) -> None:
        self.root = root
        self.content = content if content is not None else ContentStore(root)

    # -- reading images ------------------------------------------------------------------

    def image(self, manifest_digest: str) -> Image:
        """Read the image whose manifest is `manifest_digest` (checking its documents)."""
        manifest = parse_manifest(
            self.content.read_bytes(manifest_digest), f"manifest {manifest_digest}"
        )
        config_digest = manifest["config"]["digest"]
        config = parse_json_object(
            self.content.read_bytes(config_digest), f"image config {config_digest}"
        )
        diff_ids = diff_ids_of(config)
        if len(diff_ids) != len(manifest["layers"]):
            raise StoreError(
                f"image {config_digest}: config lists {len(diff_ids)} layers,"
                f" manifest {len(manifest['layers'])}"
            )
        layers = [
            ImageLayer(diff_id, desc["digest"], desc["mediaType"], desc["size"])
            for diff_id, desc in zip(diff_ids, manifest["layers"], strict=True)
        ]
        return Image(manifest_digest, config_digest, dict(manifest), config, layers)

    def load_image(self, name_or_id: str) -> Image:
        """The image a name, an ID (prefix) or a digest reference designates."""
        return self.image(self.resolve(name_or_id))

    def get(self, name: str) -> str | None:
        """The manifest digest `name` points at, or None."""
        full = str(parse_reference(name))
        row = (
            self._db()
            .execute("SELECT manifest FROM image_names WHERE name = ?", (full,))
            .fetchone()
        )
        return str(row[0]) if row else None

    def names_of(self, manifest_digest: str) -> list[Reference]:
        rows = self._db().execute(
            "SELECT name FROM image_names WHERE manifest = ? ORDER BY name", (manifest_digest,)
        )
        return [parse_reference(r[0]) for r in rows]

    def tagged_at(self, manifest_digest: str) -> float | None:
        row = (
            self._db()
            .execute("SELECT MAX(tagged) FROM image_names WHERE manifest = ?", (manifest_digest,))
            .fetchone()
        )
        return float(row[0]) if row and row[0] is not None else None

    def size_of(self, manifest_digest: str) -> int:
        row = (
            self._db()
            .execute("SELECT size FROM images WHERE manifest = ?", (manifest_digest,))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def resolve(self, text: str) -> str:
        """Manifest digest for a name, `name@digest`, image ID, ID prefix or manifest digest.

        Names win over ID prefixes, as in Docker's daemon (`GetImage`).
        """
        db = self._db()
        if is_digest(text):
            row = db.execute(
                "SELECT manifest FROM images WHERE config = ? OR manifest = ?"
                " ORDER BY (config = ?) DESC, added DESC LIMIT 1",
                (text, text, text),
            ).fetchone()
            if row:
                return str(row[0])
            raise StoreError(f"No such image: {text}")
        ref: Reference | None
        try:
            ref = parse_reference(text)
        except StoreError:
            ref = None
        if ref is not None:
            if ref.digest is not None:
                row = db.execute(
                    "SELECT manifest FROM images WHERE manifest = ?", (ref.digest,)
                ).fetchone()
            else:
                row = db.execute(
                    "SELECT manifest FROM image_names WHERE name = ?", (str(ref),)
                ).fetchone()
            if row:
                return str(row[0])
        prefix = text.removeprefix("sha256:")
        if prefix and len(prefix) <= 64 and all(c in "0123456789abcdef" for c in prefix):
            rows = db.execute(
                "SELECT config, manifest FROM images WHERE config LIKE ? ORDER BY added DESC",
                (f"sha256:{prefix}%",),
            ).fetchall()
            configs = {r[0] for r in rows}
            if len(configs) > 1:
                raise StoreError(f"ambiguous image ID prefix {text}: matches {len(configs)} images")
            if rows:
                return str(rows[0][1])
        shown = ref.familiar() if ref is not None else text
        raise StoreError(f"No such image: {shown}")

    # -- writing ------------------------------------------------------------------------

    def register(self, manifest_digest: str) -> Image:
        """Make a stored manifest an image of this store (dangling until named)."""
        image = self.image(manifest_digest)
        with self.root.transaction() as db:
            self._register_in(db, image)
        return image

    def _register_in(self, db: sqlite3.Connection, image: Image) -> None:
        """`register` inside the caller's transaction: each blob must be present then."""
        blobs = [
            image.manifest_digest,
            image.config_digest,
            *(layer.digest for layer in image.layers),
        ]
        size = 0
        for layer in image.layers:
            record = self.content.layer_record(layer.digest)
            size += record.uncompressed_size if record is not None else layer.size
        self.content.add_refs_in(db, _owner(image.manifest_digest), blobs)
        db.execute(
            "INSERT OR IGNORE INTO images(manifest, config, created, size, added)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                image.manifest_digest,
                image.config_digest,
                image.config.get("created"),
                size,
                time.time(),
            ),
        )

    def put(self, name: str, manifest_digest: str) -> str | None:
        """Point `name` at an image (registering it); returns the manifest it pointed at.

        Registering and naming are one transaction: a concurrent `rmi` of the same image
        either runs first (and this finds its blobs gone: an error) or sees the name.
        """
        ref = parse_reference(name)
        if ref.digest is not None:
            raise StoreError(f"refusing to create a tag with a digest reference: {name}")
        check_digest(manifest_digest)
        image = self.image(manifest_digest)
        with self.root.transaction() as db:
            self._register_in(db, image)
            row = db.execute("SELECT manifest FROM image_names WHERE name = ?", (str(ref),))
            previous = row.fetchone()
            db.execute(
                "INSERT INTO image_names(name, manifest, tagged) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET manifest = excluded.manifest,"
                " tagged = excluded.tagged",
                (str(ref), manifest_digest, time.time()),
            )
        old = str(previous[0]) if previous else None
        return old if old != manifest_digest else None

    def tag(self, source: str, target: str) -> None:
        """`strata tag`: `target` names the image `source` designates."""
        self.put(target, self.resolve(source))

    def commit_image(self, config: dict[str, Any], layers: Sequence[LayerLike]) -> str:
        """Store a config and an OCI manifest for `layers`; returns the manifest digest.

        The layer blobs must already be in the content store. `config["rootfs"]` is
        filled in when absent and must agree with `layers` when present.
        """
        diff_ids = [layer.diff_id for layer in layers]
        config = dict(config)
        if "rootfs" not in config:
            config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        elif diff_ids_of(config) != diff_ids:
            raise ValueError("config rootfs.diff_ids do not match the layers given")
        for layer in layers:
            uncompressed = getattr(layer, "uncompressed_size", None)
            compression = compression_of_media_type(layer.media_type)
            if isinstance(uncompressed, int) and compression is not None:
                self.content.record_layer(
                    digest=layer.digest,
                    diff_id=layer.diff_id,
                    compression=compression,
                    media_type=layer.media_type,
                    uncompressed_size=uncompressed,
                )
        config_bytes = canonical_json(config)
        # The lease keeps config and manifest (which may already exist, unreferenced)
        # from a concurrent sweep or rmi until the image holds them.
        with self.content.lease() as lease:
            config_digest = self.content.ingest_bytes(config_bytes, hold=lease)
            manifest: Manifest = {
                "schemaVersion": 2,
                "mediaType": MEDIA_OCI_MANIFEST,
                "config": descriptor(MEDIA_OCI_CONFIG, config_digest, len(config_bytes)),
                "layers": [descriptor(x.media_type, x.digest, x.size) for x in layers],
            }
            manifest_digest = self.content.ingest_bytes(canonical_json(manifest), hold=lease)
            self.register(manifest_digest)
        return manifest_digest

    def remove(self, name_or_id: str, *, force: bool = False) -> list[Removal]:
        """`strata rmi`: untag, and delete the image once nothing names it.

        Returns what happened, in Docker's order: each name untagged, then each digest
        deleted (the config first, then the blobs nobody else held). `Client` sweeps
        what crashed processes left afterwards (`strata.gc.prune.sweep_orphan_blobs`),
        so `rmi` is also how space comes back.
        """
        return self._remove(name_or_id, force=force)

    def _remove(self, name_or_id: str, *, force: bool) -> list[Removal]:
        lines: list[Removal] = []
        ref: Reference | None = None
        if not is_digest(name_or_id):
            try:
                ref = parse_reference(name_or_id)
            except StoreError:
                ref = None
        if ref is not None and ref.digest is None and self.get(str(ref)) is not None:
            manifest = self.get(str(ref))
            assert manifest is not None
            with self.root.transaction() as db:
                db.execute("DELETE FROM image_names WHERE name = ?", (str(ref),))
            lines.append(Removal("untagged", ref.familiar()))
            if not self.names_of(manifest):
                lines += self._delete(manifest)
            return lines
        manifest = self.resolve(name_or_id)
        config = self._config_of(manifest)
        manifests = [
            str(r[0])
            for r in self._db().execute("SELECT manifest FROM images WHERE config = ?", (config,))
        ]
        names = [n for m in manifests for n in self.names_of(m)]
        if len({n.name for n in names}) > 1 and not force:
            raise StoreError(
                f"conflict: unable to delete {config.removeprefix('sha256:')[:12]}"
                " (must be forced) - image is referenced in multiple repositories"
            )
        with self.root.transaction() as db:
            for name in names:
                db.execute("DELETE FROM image_names WHERE name = ?", (str(name),))
        lines += [Removal("untagged", n.familiar()) for n in names]
        for m in manifests:
            lines += self._delete(m)
        return lines

    def _delete(self, manifest_digest: str) -> list[Removal]:
        """Forget an image with no names and delete the blobs nobody else holds."""
        config = self._config_of(manifest_digest)
        with self.root.transaction() as db:
            if db.execute(
                "SELECT 1 FROM image_names WHERE manifest = ?", (manifest_digest,)
            ).fetchone():
                return []  # named again meanwhile
            db.execute("DELETE FROM images WHERE manifest = ?", (manifest_digest,))
            held = self.content.remove_refs_in(db, _owner(manifest_digest))
            deleted = self.content.delete_unreferenced_in(db, held)
        lines = [Removal("deleted", config)]
        lines += [Removal("deleted", d) for d in deleted if d not in (config, manifest_digest)]
        return lines

    # -- helpers ------------------------------------------------------------------------

    def _config_of(self, manifest_digest: str) -> str:
        row = (
            self._db()
            .execute("SELECT config FROM images WHERE manifest = ?", (manifest_digest,))
            .fetchone()
        )
        if row is None:
            raise StoreError(f"No such image: {manifest_digest}")
        return str(row[0])

    def _db(self) -> sqlite3.Connection:
        return self.root.connect()

    # -- listing ------------------------------------------------------------------------

    def manifests_with_first_name(self) -> list[tuple[str, str | None]]:
        """(manifest digest, its alphabetically first name or None) of every image."""
        rows = self._db().execute(
            "SELECT i.manifest, MIN(n.name) FROM images i"
            " LEFT JOIN image_names n ON n.manifest = i.manifest GROUP BY i.manifest"
        )
        return [(str(m), None if n is None else str(n)) for m, n in rows.fetchall()]

    def list(self) -> list[ImageRecord]:
        """Every name, plus every dangling image, newest first (as `docker images`)."""
        rows = (
            self._db()
            .execute(
                "SELECT n.name, i.manifest, i.config, i.created, i.size"
                " FROM images i LEFT JOIN image_names n ON n.manifest = i.manifest"
            )
            .fetchall()
        )
        records: list[ImageRecord] = []
        named_ids = {config for name, _, config, _, _ in rows if name is not None}
        for name, manifest, config, created, size in rows:
            if name is None and config in named_ids:
                continue  # another manifest of a named image (Docker shows images by ID)
            if name is None:
                repository, tag = NONE, NONE
            else:
                ref = parse_reference(name)
                repository, tag = ref.familiar_name, ref.tag or NONE
            records.append(
                ImageRecord(
                    name, repository, tag, config, manifest, parse_created(created), int(size)
                )
            )
        epoch = datetime.fromtimestamp(0, UTC)
        records.sort(key=lambda r: (r.repository, r.tag))
        records.sort(key=lambda r: r.created or epoch, reverse=True)
        return records


def _owner(manifest_digest: str) -> str:
    return f"image:{manifest_digest}"

"""A cache in a local directory: an OCI image layout (`type=local`).

The layout is what BuildKit's local cache writes (`client/solve.go`, `client/ociindex`):
`oci-layout`, `blobs/sha256/<hex>`, and `index.json` whose entry for the cache carries
`org.opencontainers.image.ref.name=<tag>` (default `latest`). Writing one tag replaces
that tag's entry and keeps the others, so several caches can share one directory; blobs
already there are not written again. `skopeo copy oci:DIR:<tag> ...` reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from strata.errors import StoreError
from strata.image.oci import (
    ANNOTATION_REF_NAME,
    MEDIA_OCI_INDEX,
    OCI_LAYOUT_VERSION,
    Descriptor,
    check_digest,
    parse_json_object,
)
from strata.store.content import ContentStore

MAX_DOCUMENT = 4 << 20  # manifests and configs (BuildKit reads 1 MiB, containerd 4)


class LayoutDir:
    """One OCI layout directory, for writing (`--cache-to`) or reading (`--cache-from`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def blob_path(self, digest: str) -> Path:
        check_digest(digest)
        return self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")

    # -- writing -----------------------------------------------------------------------

    def prepare(self, *, reset: bool = False) -> None:
        """Create the layout (`reset`: drop an index that was there)."""
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        _write_atomic(
            self.path / "oci-layout",
            json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}).encode(),
        )
        if reset:
            with contextlib.suppress(FileNotFoundError):
                (self.path / "index.json").unlink()

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put_bytes(self, digest: str, data: bytes) -> bool:
        """Write a blob unless it is there; True when it was written."""
        if self.has_blob(digest):
            return False
        _write_atomic(self.blob_path(digest), data)
        return True

    def put_from_store(self, content: ContentStore, digest: str) -> bool:
        """Copy a blob from the content store unless it is there; True when copied."""
        if self.has_blob(digest):
            return False
        target = self.blob_path(digest)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        try:
            shutil.copyfile(content.path(digest), tmp)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return True

    def tag(self, desc: Descriptor, tag: str) -> None:
        """Point `tag` at `desc` in index.json, keeping the other tags' entries."""
        index = self._index(missing_ok=True)
        kept = [
            entry
            for entry in index.get("manifests", [])
            if isinstance(entry, dict)
            and (entry.get("annotations") or {}).get(ANNOTATION_REF_NAME) != tag
        ]
        entry: dict[str, Any] = dict(desc)
        entry["annotations"] = {**desc.get("annotations", {}), ANNOTATION_REF_NAME: tag}
        kept.append(entry)
        document = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": kept}
        _write_atomic(self.path / "index.json", json.dumps(document, indent=2).encode())

    # -- reading -----------------------------------------------------------------------

    def find(self, *, tag: str = "latest", digest: str = "") -> Descriptor:
        """The index entry for `digest` (if given) or `tag`; a StoreError if none."""
        index = self._index(missing_ok=False)
        for entry in index.get("manifests", []):
            if not isinstance(entry, dict):
                continue
            if digest and entry.get("digest") == digest:
                return entry  # type: ignore[return-value]
            if not digest and (entry.get("annotations") or {}).get(ANNOTATION_REF_NAME) == tag:
                return entry  # type: ignore[return-value]
        wanted = digest or f"tag {tag}"
        raise StoreError(f"{self.path}: no cache {wanted} in index.json")

    def read(self, desc: Descriptor, limit: int = MAX_DOCUMENT) -> bytes:
        """A small blob (a manifest or config), checked against its digest."""
        import hashlib

        if desc["size"] > limit:
            raise StoreError(f"{self.path}: {desc['digest']} is too large ({desc['size']} bytes)")
        try:
            data = self.blob_path(desc["digest"]).read_bytes()
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read {desc['digest']}: {exc.strerror}") from None
        if "sha256:" + hashlib.sha256(data).hexdigest() != desc["digest"]:
            raise StoreError(f"{self.path}: blob {desc['digest']} does not match its digest")
        return data

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read {digest}: {exc.strerror}") from None

    def fetch(self, layers: Sequence[Descriptor], content: ContentStore) -> None:
        """Copy these blobs into the content store, each checked against its digest."""
        for desc in layers:
            if content.has(desc["digest"]):
                continue
            with self.open(desc["digest"]) as source:
                content.ingest_stream(source, desc["digest"])

    def _index(self, *, missing_ok: bool) -> dict[str, Any]:
        path = self.path / "index.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if missing_ok:
                return {}
            raise StoreError(f"{self.path}: not an OCI layout (no index.json)") from None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read index.json: {exc.strerror}") from None
        return parse_json_object(data, f"{path}")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()

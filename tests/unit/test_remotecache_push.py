"""Exporting a cache to a registry through the push verbs (`CacheUploader`), with a fake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strata.image.oci import MEDIA_OCI_LAYER_GZIP, Descriptor
from strata.remotecache.config import CacheEntry, CacheLayer
from strata.remotecache.exporter import prepare_cache
from strata.remotecache.registry import push_cache
from strata.remotecache.spec import CacheSpec
from strata.store.content import ContentStore
from strata.store.reference import Reference, parse_reference
from strata.store.root import StateRoot


class FakeRegistry:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.uploads: list[str] = []

    def blob_exists(self, ref: Reference, digest: str) -> bool:
        return digest in self.blobs

    def start_upload(self, ref: Reference, digest: str) -> Any:
        return digest

    def upload_blob(
        self, ref: Reference, session: Any, desc: Descriptor, path: Path, progress: Any = None
    ) -> None:
        self.uploads.append(desc["digest"])
        self.blobs[desc["digest"]] = path.read_bytes()

    def put_manifest(self, ref: Reference, reference: str, body: bytes, media_type: str) -> str:
        self.manifests[reference] = (body, media_type)
        return ""


def test_push_sends_missing_blobs_then_the_manifest_under_the_tag(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "root")
    try:
        content = ContentStore(root)
        digest = content.ingest_bytes(b"layer bytes")
        layer = CacheLayer(digest, MEDIA_OCI_LAYER_GZIP, 11, "sha256:" + "1" * 64)
        entry = CacheEntry("sha256:" + "2" * 64, (layer,), description="[1/1] RUN x")
        spec = CacheSpec("registry", (("ref", "127.0.0.1:5000/app:cache"),))
        prepared = prepare_cache([entry], spec)
        fake = FakeRegistry()
        statuses: list[str] = []
        ref = parse_reference("127.0.0.1:5000/app:cache")
        push_cache(prepared, ref, content, fake, lambda text, done: statuses.append(text))
        assert fake.blobs[digest] == b"layer bytes"
        assert fake.blobs[prepared.config_descriptor["digest"]] == prepared.config
        assert fake.manifests["cache"] == (prepared.document.body, prepared.document.media_type)
        assert f"writing layer {digest}" in statuses
        # A second export of the same cache sends no blob again (HEAD says it is there).
        fake.uploads.clear()
        push_cache(prepared, ref, content, fake, lambda text, done: None)
        assert fake.uploads == []
    finally:
        root.close()

"""Pushing images to registries: what to send, in which order, and how each blob gets there.

For each blob of the image (config and layers), as containerd's pusher does for BuildKit
(`ctd:core/remotes/docker/pusher.go` L100-345, `handler.go`):

1. `HEAD` in the target repository: 200 means it is there already ("Layer already exists");
2. when another repository of the same registry is known to hold it (`sources.py`: the
   repository a base image was pulled from, or an earlier push), a cross-repository mount
   `POST /blobs/uploads/?mount=<d>&from=<repo>`: 201 is done ("Mounted from <repo>"); 202
   means the registry opened an upload instead, which is used;
3. otherwise an upload, streamed from the content store file: one `PUT ?digest=`, or
   chunked `PATCH`es when the registry asks for them (`RegistryClient.upload_blob`).

A blob the content store lacks (a lazily pulled base layer nobody unpacked) is never
downloaded for a push to the registry it came from: it exists there (HEAD) or is mounted.
For another registry it is fetched first through `fetch_missing` (`ImagePuller.fetch_layers`).

Blobs go up to `max_concurrency` at once; manifests go after everything they name, an
index after its manifests (`ctd:core/remotes/handlers.go` `PushContent`: children first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Literal

from strata.errors import RegistryError, StrataError
from strata.image.oci import (
    INDEX_MEDIA_TYPES,
    Descriptor,
    parse_index,
    parse_json_object,
    parse_manifest,
)
from strata.registry.client import RegistryClient, UploadSession
from strata.registry.sources import BlobSources, mount_candidates
from strata.store.content import ContentStore
from strata.store.reference import Reference
from strata.store.root import StateRoot

__all__ = ["BlobEvent", "ImagePusher", "PushResult", "PushedBlob"]

BlobState = Literal["preparing", "pushing", "exists", "mounted", "pushed"]


@dataclass(frozen=True)
class BlobEvent:
    """One step of one blob's push: `done` of `size` bytes sent so far."""

    digest: str
    size: int
    state: BlobState
    done: int = 0
    mounted_from: str = ""  # the repository path, for "mounted"


@dataclass(frozen=True)
class PushedBlob:
    digest: str
    size: int
    how: Literal["exists", "mounted", "pushed"]
    mounted_from: str = ""


@dataclass(frozen=True)
class PushResult:
    """What one push of an image to one name did."""

    reference: Reference
    digest: str  # of the top document pushed (manifest, or index)
    size: int
    media_type: str
    blobs: tuple[PushedBlob, ...]
    manifests: tuple[str, ...]  # every manifest/index digest pushed, children first


# Fetch the blobs `descs` from the repository `source` (`<domain>/<path>`) into the store.
FetchMissing = Callable[[str, Sequence[Descriptor]], object]


class _Stopped(Exception):
    """Raised in an upload thread when another one failed."""


class ImagePusher:
    """Pushes images of one state root through one `RegistryClient`."""

    def __init__(
        self,
        root: StateRoot,
        client: RegistryClient,
        *,
        fetch_missing: FetchMissing | None = None,
        max_concurrency: int = 4,
    ) -> None:
        self.root = root
        self.client = client
        self.content = ContentStore(root)
        self.sources = BlobSources(root)
        self.fetch_missing = fetch_missing
        self.max_concurrency = max(1, max_concurrency)

    def push(
        self,
        top: Descriptor,
        target: Reference,
        progress: Callable[[BlobEvent], None] | None = None,
        *,
        by_digest: bool = False,
        before_manifests: Callable[[], object] | None = None,
    ) -> PushResult:
        """Push the manifest or index `top` (its documents and blobs in the content
        store, layers possibly only at their source) to `target`, tagged with its tag
        (`latest` when it has none), or by digest only with `by_digest` or a digest
        reference. `before_manifests` is called once every blob is there.
        RegistryErrors say `failed to push <target>: ...`."""
        try:
            return self._push(
                top, target, progress or (lambda event: None), by_digest, before_manifests
            )
        except RegistryError as exc:
            message = exc.message.removeprefix(f"{target}: ")
            raise RegistryError(f"failed to push {target}: {message}", registry=target.domain) from None

    def _push(
        self,
        top: Descriptor,
        target: Reference,
        progress: Callable[[BlobEvent], None],
        by_digest: bool,
        before_manifests: Callable[[], object] | None,
    ) -> PushResult:
        manifests, blobs = self._walk(top)
        pushed = self._push_blobs(target, blobs, progress)
        if before_manifests is not None:
            before_manifests()
        for desc in manifests:
            body = self.content.read_bytes(desc["digest"], limit=4 << 20)
            is_top = desc["digest"] == top["digest"]
            if is_top and not by_digest and target.digest is None:
                reference = target.tag or "latest"
            else:
                reference = desc["digest"]
            if not is_top and self.client.manifest_exists(target, desc):
                continue
            self.client.put_manifest(target, reference, body, desc["mediaType"])
        self.sources.remember(target.name, [d["digest"] for d in manifests])
        return PushResult(
            reference=target,
            digest=top["digest"],
            size=top["size"],
            media_type=top["mediaType"],
            blobs=tuple(pushed),
            manifests=tuple(d["digest"] for d in manifests),
        )

    # -- what to push ----------------------------------------------------------------------

    def _walk(self, top: Descriptor) -> tuple[list[Descriptor], list[Descriptor]]:
        """(manifests children first, then `top`; blobs: each config and layer once)."""
        manifests: list[Descriptor] = []
        blobs: dict[str, Descriptor] = {}

        def visit(desc: Descriptor, depth: int) -> None:
            if depth > 4:
                raise RegistryError(f"{desc['digest']}: indexes nested too deep")
            data = self.content.read_bytes(desc["digest"], limit=4 << 20)
            document = parse_json_object(data, f"manifest {desc['digest']}")
            media_type = desc.get("mediaType") or str(document.get("mediaType", ""))
            if media_type in INDEX_MEDIA_TYPES or "manifests" in document:
                for child in parse_index(data, f"index {desc['digest']}")["manifests"]:
                    visit(child, depth + 1)
            else:
                manifest = parse_manifest(data, f"manifest {desc['digest']}")
                blobs.setdefault(manifest["config"]["digest"], manifest["config"])
                for layer in manifest["layers"]:
                    blobs.setdefault(layer["digest"], layer)
            if all(m["digest"] != desc["digest"] for m in manifests):
                manifests.append(desc)

        visit(top, 0)
        return manifests, list(blobs.values())

    # -- blobs -----------------------------------------------------------------------------

    def _push_blobs(
        self,
        target: Reference,
        blobs: Sequence[Descriptor],
        progress: Callable[[BlobEvent], None],
    ) -> list[PushedBlob]:
        stop = threading.Event()

        def report(event: BlobEvent) -> None:
            if stop.is_set():
                raise _Stopped
            progress(event)

        for desc in blobs:
            progress(BlobEvent(desc["digest"], desc["size"], "preparing"))
        if not blobs:
            return []
        workers = min(self.max_concurrency, len(blobs))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="strata-push") as pool:
            futures = [pool.submit(self._push_blob, target, d, report) for d in blobs]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            finally:
                stop.set()
                for future in futures:
                    future.cancel()
        for future in futures:
            if future.done() and not future.cancelled():
                failure = future.exception()
                if failure is not None and not isinstance(failure, _Stopped):
                    raise failure
        return [f.result() for f in futures]

    def _push_blob(
        self, target: Reference, desc: Descriptor, report: Callable[[BlobEvent], None]
    ) -> PushedBlob:
        digest, size = desc["digest"], desc["size"]
        if self.client.blob_exists(target, digest):
            self.sources.remember(target.name, [digest])
            report(BlobEvent(digest, size, "exists", size))
            return PushedBlob(digest, size, "exists")
        known = self.sources.sources_of(digest)
        session: UploadSession | None = None
        for candidate in mount_candidates(known, target.domain, target.path)[:1]:
            session = self.client.mount_blob(target, digest, candidate)
            if session is None:
                self.sources.remember(target.name, [digest])
                report(BlobEvent(digest, size, "mounted", size, candidate))
                return PushedBlob(digest, size, "mounted", candidate)
        if not self.content.has(digest):
            self._fetch(desc, known)
        if session is None:
            session = self.client.start_upload(target, digest)
        report(BlobEvent(digest, size, "pushing", 0))
        self.client.upload_blob(
            target,
            session,
            desc,
            self.content.path(digest),
            lambda done, _total: report(BlobEvent(digest, size, "pushing", done)),
        )
        self.sources.remember(target.name, [digest])
        report(BlobEvent(digest, size, "pushed", size))
        return PushedBlob(digest, size, "pushed")

    def _fetch(self, desc: Descriptor, sources: Sequence[str]) -> None:
        """Bring a blob the store lacks in from a repository known to hold it."""
        failure: StrataError | None = None
        for source in sources:
            if self.fetch_missing is None:
                break
            try:
                self.fetch_missing(source, [desc])
            except StrataError as exc:
                failure = exc
                continue
            if self.content.has(desc["digest"]):
                return
        reason = f": {failure.message}" if failure is not None else ""
        raise RegistryError(
            f"blob {desc['digest']} is not in the content store and cannot be fetched{reason}"
        )

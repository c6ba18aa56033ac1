"""`strata.Client`: one state root and the verbs a user runs against it.

    import strata
    with strata.Client() as client:              # $STRATA_ROOT, /var/lib/strata, or XDG
        result = client.build(strata.BuildRequest(context=Path("."), tags=("demo",)))
        for image in client.images():
            print(image.repository, image.tag, image.id)

The client owns the policy of where the state root is (`default_root`) and opens it
once, on the first verb that needs it; every verb after that shares it. The module-level
functions of `strata.api` are one-line conveniences over a throwaway client. Results are
typed values (`strata.model`, and the records the stores define), never text to print:
printing is the CLI's job.

Imports of the engine happen inside the verbs, so `import strata` and a client that
only lists images never load the solver or the container runtime.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, get_args

from strata.errors import StoreError, StrataError, UsageError
from strata.model import (
    ZERO_TIME,
    ArchiveFormat,
    BuildRequest,
    BuildResult,
    DebugShell,
    ErrorCallback,
    RunRequest,
    SnapshotterName,
)

if TYPE_CHECKING:
    from strata.checkcall import CheckResult
    from strata.export.docker_archive import ExportEntry
    from strata.export.load import LoadedImage
    from strata.gc.check import CheckReport, ProblemCallback
    from strata.gc.prune import PruneReport, RemovedCallback, WaitCallback
    from strata.gc.usage import UsageRecord
    from strata.imagefilters import ImageFilters
    from strata.progress.bus import ProgressBus
    from strata.registry.hosts import RegistryConfig
    from strata.store.images import ImageRecord, ImageStore, Removal
    from strata.store.reference import Reference
    from strata.store.root import StateRoot


def default_root(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """`$STRATA_ROOT`, else `/var/lib/strata` for root, else `$XDG_DATA_HOME/strata`
    (`~/.local/share/strata` when XDG_DATA_HOME is unset)."""
    environ = os.environ if env is None else env
    explicit = environ.get("STRATA_ROOT")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/lib/strata")
    xdg = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "strata"


MEDIA_OCI_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"

# (blob digest, bytes done, bytes in all) as a pull goes.
PullProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PullResult:
    """What `Client.pull` did."""

    reference: str  # docker.io/library/alpine:3.20
    familiar: str  # alpine:3.20
    digest: str  # what the reference resolved to (an index or a manifest)
    manifest_digest: str
    image_id: str
    layers: tuple[str, ...]
    # Layers downloaded now (the others were already stored).
    fetched: tuple[str, ...]
    # False when the name already pointed at this image ("Image is up to date").
    updated: bool


# (blob digest, state, bytes done, bytes in all, repository mounted from) as a push goes;
# state: preparing, pushing, exists, mounted, pushed.
PushProgress = Callable[[str, str, int, int, str], None]


@dataclass(frozen=True)
class PushedLayer:
    """One blob of a push and what happened to it."""

    digest: str
    size: int
    how: str  # "pushed", "exists" (the registry had it) or "mounted"
    mounted_from: str = ""  # the repository it was mounted from (its path)


@dataclass(frozen=True)
class PushReport:
    """What `Client.push` did."""

    reference: str  # 127.0.0.1:5000/app:1
    repository: str  # 127.0.0.1:5000/app (docker.io/library/x is shown as docker.io/library/x)
    tag: str
    digest: str  # of the manifest pushed
    size: int  # its size in bytes
    layers: tuple[PushedLayer, ...]  # in the manifest's order
    config: PushedLayer


@dataclass(frozen=True)
class ImageDetails:
    """What `docker image inspect` shows of one image, as values (the CLI renders
    Docker's JSON document from it)."""

    id: str
    manifest_digest: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    comment: str
    created: str
    author: str
    config: dict[str, Any]
    architecture: str
    variant: str
    os: str
    size: int
    layers: tuple[str, ...]
    last_tag_time: str = ZERO_TIME
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HistoryRecord:
    """One entry of an image's history, newest first (`docker history`): the step
    that made it, when, and the size of the layer it added (0 for an empty layer).
    `id` is the image's ID on the newest entry and `<missing>` on the others, as
    Docker shows images it did not build step by step; `tags` are the image's names,
    on the newest entry only."""

    id: str
    created: datetime | None
    created_by: str
    size: int
    comment: str
    empty_layer: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImagePruneReport:
    """What `Client.prune_images` removed (names untagged, digests deleted, in order)
    and the bytes of blobs deleted."""

    removed: tuple[Removal, ...]
    reclaimed: int


MISSING_ID = "<missing>"


class Client:
    """A state root and its verbs; a context manager that closes the root.

    `root` is a directory (created if missing) or None for `default_root()`. Opening is
    lazy: constructing a client touches nothing on disk."""

    def __init__(
        self,
        root: Path | str | StateRoot | None = None,
        *,
        config: Path | str | None = None,
        snapshotter: SnapshotterName = "auto",
    ) -> None:
        from strata.store.root import StateRoot

        # How `run` stacks layers (`--snapshotter`); builds take theirs from the request.
        self.snapshotter = snapshotter
        # The registry configuration file (`--config`); None: $STRATA_CONFIG, then the
        # default path (`strata.registry.hosts.RegistryConfig.load`).
        self.config_path = Path(config) if config is not None else None
        self._registry_config: RegistryConfig | None = None
        self._opened: StateRoot | None = None
        self._owned = True
        if isinstance(root, StateRoot):
            self._opened = root
            self._owned = False
            self.root_path = root.path
        else:
            self.root_path = Path(root) if root is not None else default_root()

    # -- lifetime --------------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the state root if this client opened it (a root passed in stays open)."""
        if self._opened is not None and self._owned:
            self._opened.close()
            self._opened = None

    @property
    def state(self) -> StateRoot:
        """The open state root (opened on first use)."""
        if self._opened is None:
            import sqlite3

            from strata.privileges import state_root_error
            from strata.store.root import StateRoot

            try:
                self._opened = StateRoot.open(self.root_path)
            except StoreError as exc:
                if isinstance(exc.__cause__, OSError):
                    raise state_root_error(self.root_path, exc.__cause__) from None
                raise
            except (OSError, sqlite3.Error) as exc:
                raise state_root_error(self.root_path, exc) from None
        return self._opened

    @property
    def registry_config(self) -> RegistryConfig:
        """How registries are reached: mirrors, TLS, plain HTTP (read once)."""
        if self._registry_config is None:
            from strata.registry.hosts import RegistryConfig

            self._registry_config = RegistryConfig.load(self.config_path)
        return self._registry_config

    @contextlib.contextmanager
    def image_env(self) -> Iterator[Callable[[str, str | None], dict[str, str]] | None]:
        """A look-up of a stored image's ENV by name, for `--call=outline` (BuildKit
        reads the base's ENV there). Nothing is pulled: an image the store lacks gives an
        empty ENV, and a root that does not exist yet is not created just to look
        (None)."""
        if self._opened is None and not (self.root_path / "metadata.db").exists():
            yield None
            return
        images = self._images()

        def lookup(name: str, platform: str | None) -> dict[str, str]:
            try:
                config = images.load_image(name).config
            except StrataError:
                return {}
            runtime = config.get("config")
            env = runtime.get("Env") if isinstance(runtime, dict) else None
            pairs = (str(item).partition("=") for item in env or [])
            return {key: value for key, _, value in pairs}

        yield lookup

    def _images(self) -> ImageStore:
        from strata.store.images import ImageStore

        return ImageStore(self.state)

    # -- building --------------------------------------------------------------------------

    def build(
        self,
        request: BuildRequest,
        *,
        progress: ProgressBus | None = None,
        stdout: BinaryIO | None = None,
        debug_shell: DebugShell | None = None,
    ) -> BuildResult:
        """Build `request` (see `strata.builder`). Progress events go to `progress`;
        `-o -` outputs are written to `stdout`; with `on_error="shell"` a failed RUN is
        handed to `debug_shell` before the step's error is raised."""
        from strata import builder
        from strata.privileges import require_privileges

        builder.validate(request)
        require_privileges("strata build")
        return builder.build(
            request,
            root=self.state,
            bus=progress,
            stdout=stdout,
            debug_shell=debug_shell,
            registry_config=self.registry_config,
        )

    # -- containers ------------------------------------------------------------------------

    def run(
        self,
        request: RunRequest,
        *,
        on_pull: Callable[[str, PullResult | None], None] | None = None,
    ) -> int:
        """`docker run`: run `request.command` in a new container of `request.image`;
        returns its exit status. An image the store lacks is pulled first, as docker run
        does: `on_pull(name, None)` is told before and `on_pull(name, result)` after."""
        from strata.containers import run_container

        store = self._images()
        try:
            image = store.load_image(request.image)
        except StoreError as missing:
            ref = _pullable(store, request.image)
            if ref is None:
                raise missing from None
            if on_pull is not None:
                on_pull(ref.familiar(), None)
            result = self.pull(request.image)
            if on_pull is not None:
                on_pull(ref.familiar(), result)
            image = store.image(result.manifest_digest)
        return run_container(self.state, request, image, self.snapshotter)

    def remove_containers(
        self,
        names: Sequence[str],
        *,
        force: bool = False,
        on_removed: Callable[[str], None] | None = None,
    ) -> list[str]:
        """`docker rm`: remove the files `run` kept for named containers; with `force` a
        name that does not exist is no error. A running container is refused."""
        from strata.containers import remove_containers

        return remove_containers(
            self.state,
            names,
            force=force,
            default_snapshotter=self.snapshotter,
            on_removed=on_removed,
        )

    def lint(self, request: BuildRequest) -> CheckResult:
        """`docker buildx build --call=check` (`--check`): the lint findings of `request`'s target,
        its Dockerfile planned as a build would plan it (base images resolved), nothing
        run or stored."""
        from strata import builder
        from strata.checkcall import check

        builder.validate(request)
        return check(request, self.state, self.registry_config)

    # -- registries ------------------------------------------------------------------------

    def pull(
        self,
        name: str,
        *,
        platform: str | None = None,
        progress: PullProgress | None = None,
    ) -> PullResult:
        """`docker pull`: fetch the image `name` (every layer) from its registry and
        name it in the image store. `platform` (`linux/arm64`) picks from an index; the
        default is this machine's. `progress(digest, done, total)` sees each blob."""
        from strata.plan.platforms import native_platform, parse_platform
        from strata.registry.pull import ImagePuller

        ref = parse_name(name)
        wanted = parse_platform(platform) if platform else native_platform()
        puller = ImagePuller(self.state, config=self.registry_config, force=True)
        try:
            pulled = puller.pull(ref, wanted, progress)
        finally:
            puller.close()
        return PullResult(
            reference=str(ref),
            familiar=ref.familiar(),
            digest=pulled.resolved.digest,
            manifest_digest=pulled.resolved.manifest_digest,
            image_id=pulled.resolved.config_digest,
            layers=tuple(layer["digest"] for layer in pulled.layers),
            fetched=pulled.fetched,
            updated=pulled.before != pulled.resolved.manifest_digest,
        )

    def push(
        self,
        name: str,
        *,
        platform: str | None = None,
        progress: PushProgress | None = None,
    ) -> PushReport:
        """`docker push`: send the image stored as `name` to its registry (blobs the
        registry has are skipped, blobs another repository of it holds are mounted).
        `platform` checks that the image is for that platform. A registry that refuses
        is a RegistryError; the state root is not changed by a push, except for the
        memory of which repository holds which blob."""
        from strata.image.oci import Descriptor, parse_manifest
        from strata.plan.platforms import parse_platform
        from strata.registry.client import RegistryClient
        from strata.registry.credentials import CredentialStore
        from strata.registry.pull import ImagePuller
        from strata.registry.push import BlobEvent, ImagePusher

        ref = parse_name(name)
        store = self._images()
        manifest_digest = store.get(str(ref)) if ref.digest is None else None
        if ref.digest is not None and store.content.has(ref.digest):
            manifest_digest = ref.digest
        if manifest_digest is None:
            raise UsageError(f"An image does not exist locally with the tag: {ref.familiar_name}")
        image = store.image(manifest_digest)
        if platform is not None:
            wanted = parse_platform(platform)
            have = (image.config.get("os", ""), image.config.get("architecture", ""))
            if (wanted.os, wanted.architecture) != have:
                raise UsageError(
                    f"image with reference {ref.familiar()} was found but does not provide "
                    f"the specified platform ({platform})"
                )
        manifest = parse_manifest(store.content.read_bytes(manifest_digest))
        top: Descriptor = {
            "mediaType": str(manifest.get("mediaType") or MEDIA_OCI_MANIFEST_TYPE),
            "digest": manifest_digest,
            "size": store.content.info(manifest_digest).size,
        }

        def report(event: BlobEvent) -> None:
            if progress is not None:
                progress(event.digest, event.state, event.done, event.size, event.mounted_from)

        config = self.registry_config
        puller = ImagePuller(self.state, config=config)
        try:
            with RegistryClient(config, CredentialStore()) as client:
                pusher = ImagePusher(
                    self.state,
                    client,
                    fetch_missing=lambda source, descs: puller.fetch_layers(source, descs),
                    max_concurrency=config.max_concurrency,
                )
                pushed = pusher.push(top, ref, report)
        finally:
            puller.close()
        by_digest = {b.digest: b for b in pushed.blobs}

        def layer(digest: str) -> PushedLayer:
            blob = by_digest[digest]
            return PushedLayer(blob.digest, blob.size, blob.how, blob.mounted_from)

        return PushReport(
            reference=str(ref),
            repository=ref.name,
            tag=ref.tag or ref.digest or "latest",
            digest=pushed.digest,
            size=pushed.size,
            layers=tuple(layer(d["digest"]) for d in manifest["layers"]),
            config=layer(manifest["config"]["digest"]),
        )

    def login(self, server: str | None, username: str, password: str) -> str:
        """`docker login`: check the credentials against the registry, then store them
        as Docker does (`config.json` or its credential helper). Returns the server key
        they were stored under. `server` None is Docker Hub."""
        from strata.registry.login import login

        return login(self.registry_config, server, username, password)

    def logout(self, server: str | None) -> bool:
        """`docker logout`: erase the stored credentials; False when there were none."""
        from strata.registry.login import logout

        return logout(server)

    # -- images ----------------------------------------------------------------------------

    def import_image(
        self,
        source: BinaryIO,
        name: str | None = None,
        *,
        changes: Sequence[str] = (),
        message: str | None = None,
        source_name: str = "-",
    ) -> str:
        """`docker import`: store the root file system tar `source` as a one-layer image,
        named `name` if given; returns the image ID (its config digest). `changes` are
        Dockerfile instructions applied to its config (`-c`)."""
        from strata.export.tarball_import import import_tarball

        ref = parse_name(name) if name else None
        store = self._images()
        manifest = import_tarball(
            store, source, source=source_name, changes=list(changes), message=message
        )
        if ref is not None:
            store.put(str(ref), manifest)
        return store.image(manifest).config_digest

    def images(
        self, repository: str | None = None, *, filters: Sequence[str] = ()
    ) -> list[ImageRecord]:
        """`docker images [REPOSITORY[:TAG]] [--filter K=V]`: one record per name (and
        per unnamed image). Filters (`strata.imagefilters`): `dangling`, `reference`,
        `before`, `since`, `label`, `until`; an unknown key is a `UsageError`."""
        from strata.imagefilters import LIST_KEYS, parse_image_filters
        from strata.store.reference import parse_reference

        parsed = parse_image_filters(filters, keys=LIST_KEYS)
        records = self._images().list()
        if repository:
            wanted = parse_name(repository, default_tag=False)
            records = [
                r
                for r in records
                if r.name is not None
                and parse_reference(r.name).name == wanted.name
                and (wanted.tag is None or r.tag == wanted.tag)
            ]
        if parsed.values:
            records = self._filtered(records, parsed)
        return records

    def _filtered(self, records: list[ImageRecord], filters: ImageFilters) -> list[ImageRecord]:
        from strata.imagefilters import labels_match, reference_matches
        from strata.store.images import NONE

        store = self._images()
        now = time.time()

        def created_of(name: str) -> float:
            created = store.image(store.resolve(name)).config.get("created")
            when = _parse_created(created)
            return when.timestamp() if when is not None else 0.0

        before = [created_of(n) for n in filters.get("before")]
        since = [created_of(n) for n in filters.get("since")]
        until = filters.until(now)
        dangling = filters.dangling()
        kept: list[ImageRecord] = []
        for record in records:
            created = record.created.timestamp() if record.created is not None else 0.0
            if dangling is not None and (record.name is None) != dangling:
                continue
            references = filters.get("reference")
            if references and not any(
                record.name is not None
                and reference_matches(
                    p, record.repository, "" if record.tag == NONE else record.tag
                )
                for p in references
            ):
                continue
            if before and not created < min(before):
                continue
            if since and not created > max(since):
                continue
            if until is not None and not created < until:
                continue
            if filters.get("label") and not labels_match(
                filters.get("label"), _labels(store, record.manifest_digest)
            ):
                continue
            kept.append(record)
        return kept

    def history(self, name: str) -> list[HistoryRecord]:
        """`docker history`: the image's history entries, newest first, each non-empty
        one with the (uncompressed, when known) size of its layer."""
        store = self._images()
        manifest = store.resolve(name)
        image = store.image(manifest)
        entries = image.config.get("history") or []
        layers = list(image.layers)
        records: list[HistoryRecord] = []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            empty = bool(entry.get("empty_layer"))
            size = 0
            if not empty and layers:
                layer = layers.pop(0)
                known = store.content.layer_record(layer.digest)
                size = known.uncompressed_size if known is not None else layer.size
            records.append(
                HistoryRecord(
                    id=MISSING_ID,
                    created=_parse_created(entry.get("created")),
                    created_by=str(entry.get("created_by", "")),
                    size=size,
                    comment=str(entry.get("comment", "")),
                    empty_layer=empty,
                )
            )
        records.reverse()
        if records:
            tags = tuple(n.familiar() for n in store.names_of(manifest))
            records[0] = replace(records[0], id=image.id, tags=tags)
        return records

    def prune_images(self, *, all: bool = False, filters: Sequence[str] = ()) -> ImagePruneReport:
        """`docker image prune`: remove the dangling (unnamed) images, or with `all`
        every image (strata keeps no containers that would hold one), those `filters`
        select (`until`, `label`, `label!`)."""
        from strata.imagefilters import PRUNE_KEYS, labels_match, parse_image_filters

        parsed = parse_image_filters(filters, keys=PRUNE_KEYS)
        store = self._images()
        until = parsed.until(time.time())
        removals: list[Removal] = []
        reclaimed = 0
        done: set[str] = set()
        for record in store.list():
            if record.id in done or (not all and record.name is not None):
                continue
            too_new = record.created is not None and record.created.timestamp() >= (until or 0)
            if until is not None and too_new:
                continue
            if parsed.needs_labels:
                labels = _labels(store, record.manifest_digest)
                if parsed.get("label") and not labels_match(parsed.get("label"), labels):
                    continue
                if labels_match(parsed.get("label!"), labels):
                    continue
            done.add(record.id)
            image = store.image(record.manifest_digest)
            sizes = {layer.digest: layer.size for layer in image.layers}
            sizes[image.config_digest] = len(store.content.read_bytes(image.config_digest))
            for removal in store.remove(record.id, force=True):
                removals.append(removal)
                if removal.action == "deleted":
                    reclaimed += sizes.get(removal.what, 0)
        from strata.gc.prune import sweep_orphan_blobs

        sweep_orphan_blobs(self.state)
        return ImagePruneReport(tuple(removals), reclaimed)

    def tag(self, source: str, target: str) -> None:
        """`docker tag`: name `target` the image `source` names (a name or an ID)."""
        ref = parse_name(target)
        self._images().tag(source, str(ref))

    def remove_images(
        self,
        names: Sequence[str],
        *,
        force: bool = False,
        on_error: ErrorCallback | None = None,
    ) -> list[Removal]:
        """`docker rmi`: remove each image; returns what was untagged and deleted
        (`str()` of each is Docker's `Untagged:`/`Deleted:` line).

        Without `on_error` the first failure raises; with it, a failure is handed to it
        and the other names are still removed (as `docker rmi a b` goes on past a
        missing `a`). Afterwards blobs crashed processes left are swept."""
        from strata.gc.prune import sweep_orphan_blobs

        lines: list[Removal] = []
        store = self._images()
        try:
            for name in names:
                try:
                    lines.extend(store.remove(name, force=force))
                except StrataError as exc:
                    if on_error is None:
                        raise
                    on_error(exc)
        finally:
            sweep_orphan_blobs(self.state)
        return lines

    def inspect(
        self, names: Sequence[str], *, on_error: ErrorCallback | None = None
    ) -> list[ImageDetails]:
        """`docker image inspect`: the details of each image found. Failures raise, or
        with `on_error` are handed to it and the image left out."""
        found: list[ImageDetails] = []
        store = self._images()
        for name in names:
            try:
                found.append(_details(store, store.resolve(name)))
            except StrataError as exc:
                if on_error is None:
                    raise
                on_error(exc)
        return found

    def save(
        self, images: Sequence[str], dest: BinaryIO, *, format: ArchiveFormat = "docker"
    ) -> None:
        """`docker save`: write `images` to `dest` as a docker-archive (`docker load`
        reads it) or an OCI image layout tar. Every name is resolved before a byte is
        written, so an unknown image leaves `dest` untouched."""
        if format not in get_args(ArchiveFormat):
            raise UsageError(
                f'invalid format "{format}" (use "docker" or "oci")', option="--format"
            )
        from strata.export.docker_archive import write_docker_archive
        from strata.export.oci_layout import write_oci_archive

        store = self._images()
        entries = [_export_entry(store, name) for name in images]
        writer = write_oci_archive if format == "oci" else write_docker_archive
        writer(store.content, entries, dest)

    def load(self, source: BinaryIO | Path, *, source_name: str | None = None) -> list[LoadedImage]:
        """`docker load`: the images of a docker-archive or OCI layout, from a stream, a
        tar file or an OCI layout directory; each with its name and the ID it replaced."""
        from strata.export.load import load_archive, load_oci_layout_dir

        store = self._images()
        if isinstance(source, Path):
            if source.is_dir():
                return load_oci_layout_dir(store, source)
            with open(source, "rb") as stream:
                return load_archive(store, stream, source=source_name or str(source))
        return load_archive(store, source, source=source_name)

    # -- build cache -----------------------------------------------------------------------

    def prune(
        self,
        *,
        all: bool = False,
        filters: Sequence[str] = (),
        reserved_space: int | None = None,
        max_used_space: int | None = None,
        min_free_space: int | None = None,
        on_wait: WaitCallback | None = None,
        on_removed: RemovedCallback | None = None,
    ) -> PruneReport:
        """`docker buildx prune`: remove build cache (by default what nothing
        references; `all` also what images share), as `filters` (`KEY=VALUE`,
        `until=24h`) and the space limits say. `on_removed` sees each record as it goes;
        `on_wait` is told when running builds hold the cache."""
        from strata.gc.prune import parse_filters
        from strata.gc.prune import prune as prune_cache

        parsed = parse_filters(filters)
        return prune_cache(
            self.state,
            all=all,
            filters=parsed,
            reserved_space=reserved_space,
            max_used_space=max_used_space,
            min_free_space=min_free_space,
            on_wait=on_wait,
            on_removed=on_removed,
        )

    def check(
        self,
        *,
        repair: bool = False,
        on_problem: ProblemCallback | None = None,
        on_wait: WaitCallback | None = None,
    ) -> CheckReport:
        """`strata check`: verify every blob's digest and size, the snapshots' rows, the
        cache records and the images' blobs; with `repair`, drop corrupt blobs (the next
        load, import or pull replaces them) and records that name missing snapshots.
        `on_problem` hears of each problem as it is found (`strata.gc.check`); a
        repair waits for running builds, telling `on_wait`."""
        from strata.gc.check import check

        return check(self.state, repair=repair, on_problem=on_problem, on_wait=on_wait)

    def disk_usage(self, *, filters: Sequence[str] = ()) -> list[UsageRecord]:
        """`docker buildx du`: the build cache's records, oldest first, those `filters`
        select; `until` leaves out records used more recently than that (BuildKit's age
        limit)."""
        from strata.gc.prune import parse_filters
        from strata.gc.usage import disk_usage as cache_usage

        parsed = parse_filters(filters)
        records = cache_usage(self.state)
        cutoff = time.time() - parsed.until if parsed.until else None
        return [
            r
            for r in records
            if parsed.matches(r)
            and not (cutoff is not None and r.last_used is not None and r.last_used > cutoff)
        ]


def parse_name(text: str, *, default_tag: bool = True) -> Reference:
    """An image name typed by a user; an invalid one names itself, as Docker's CLI does."""
    from strata.store.reference import parse_reference

    try:
        return parse_reference(text, default_tag=default_tag)
    except StoreError as exc:
        raise StoreError(
            f'Error parsing reference: "{text}" is not a valid repository/tag: {exc.message}'
        ) from None


def _pullable(store: ImageStore, text: str) -> Reference | None:
    """The reference to pull for a `run` image the store lacks; None when `text` is no
    name (an ID) or names something the store has (so the error is about it)."""
    try:
        ref = parse_name(text)
    except StoreError:
        return None
    if store.get(str(ref)) is not None:
        return None
    if ref.digest is not None and store.content.has(ref.digest):
        return None
    return ref

def _parse_created(value: Any) -> datetime | None:
    from strata.store.images import parse_created

    return parse_created(value)


def _labels(store: ImageStore, manifest_digest: str) -> dict[str, str]:
    runtime = store.image(manifest_digest).config.get("config") or {}
    labels = runtime.get("Labels") if isinstance(runtime, dict) else None
    return {str(k): str(v) for k, v in (labels or {}).items()}


def _details(store: ImageStore, manifest_digest: str) -> ImageDetails:
    from strata.gotext import format_rfc3339_nano as rfc3339
    from strata.image.oci import diff_ids_of

    image = store.image(manifest_digest)
    config = image.config
    names = store.names_of(manifest_digest)
    history = config.get("history") or []
    comment = history[-1].get("comment", "") if history and isinstance(history[-1], dict) else ""
    tagged = store.tagged_at(manifest_digest)
    return ImageDetails(
        id=image.id,
        manifest_digest=manifest_digest,
        repo_tags=tuple(n.familiar() for n in names),
        repo_digests=tuple(sorted({f"{n.familiar_name}@{manifest_digest}" for n in names})),
        comment=comment,
        created=config.get("created") or ZERO_TIME,
        author=config.get("author", ""),
        config=config.get("config") or {},
        architecture=config.get("architecture", ""),
        variant=config.get("variant", ""),
        os=config.get("os", ""),
        size=store.size_of(manifest_digest),
        layers=tuple(diff_ids_of(config)),
        # Go's RFC 3339 (trailing zeros trimmed), Go's zero time if never tagged.
        last_tag_time=ZERO_TIME if tagged is None else rfc3339(tagged),
    )


def _export_entry(store: ImageStore, name: str) -> ExportEntry:
    """Saved by name: under that name. Saved by ID: no name, as `docker save <id>`."""
    from strata.export.docker_archive import ExportEntry
    from strata.store.reference import parse_reference

    manifest = store.resolve(name)
    image = store.image(manifest)
    names: list[Reference] = []
    try:
        ref = parse_reference(name)
    except StoreError:
        ref = None
    if ref is not None and ref.digest is None and store.get(str(ref)) == manifest:
        names.append(ref)
    return ExportEntry(image, names)


@contextlib.contextmanager
def open_client(root: Path | str | StateRoot | None) -> Iterator[Client]:
    """A throwaway client for the one-line conveniences of `strata.api`."""
    client = Client(root)
    try:
        yield client
    finally:
        client.close()

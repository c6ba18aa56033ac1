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
from dataclasses import dataclass, field
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
    from strata.export.docker_archive import ExportEntry
    from strata.export.load import LoadedImage
    from strata.progress.bus import ProgressBus
    from strata.registry.hosts import RegistryConfig
    from strata.store.check import CheckReport, ProblemCallback
    from strata.store.images import ImageRecord, ImageStore, Removal
    from strata.store.prune import PruneReport, RemovedCallback, WaitCallback
    from strata.store.reference import Reference
    from strata.store.root import StateRoot
    from strata.store.usage import UsageRecord


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
            from strata.store.root import StateRoot

            self._opened = StateRoot.open(self.root_path)
        return self._opened

    @property
    def registry_config(self) -> RegistryConfig:
        """How registries are reached: mirrors, TLS, plain HTTP (read once)."""
        if self._registry_config is None:
            from strata.registry.hosts import RegistryConfig

            self._registry_config = RegistryConfig.load(self.config_path)
        return self._registry_config

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

        builder.validate(request)
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

    def images(self, repository: str | None = None) -> list[ImageRecord]:
        """`docker images [REPOSITORY[:TAG]]`: one record per name (and per unnamed image)."""
        from strata.store.reference import parse_reference

        records = self._images().list()
        if not repository:
            return records
        wanted = parse_name(repository, default_tag=False)
        return [
            r
            for r in records
            if r.name is not None
            and parse_reference(r.name).name == wanted.name
            and (wanted.tag is None or r.tag == wanted.tag)
        ]

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
        missing `a`)."""
        lines: list[Removal] = []
        store = self._images()
        for name in names:
            try:
                lines.extend(store.remove(name, force=force))
            except StrataError as exc:
                if on_error is None:
                    raise
                on_error(exc)
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
        from strata.store.prune import parse_filters
        from strata.store.prune import prune as prune_cache

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
        `on_problem` hears of each problem as it is found (`strata.store.check`); a
        repair waits for running builds, telling `on_wait`."""
        from strata.store.check import check

        return check(self.state, repair=repair, on_problem=on_problem, on_wait=on_wait)

    def disk_usage(self, *, filters: Sequence[str] = ()) -> list[UsageRecord]:
        """`docker buildx du`: the build cache's records, oldest first, those `filters`
        select; `until` leaves out records used more recently than that (BuildKit's age
        limit)."""
        from strata.store.prune import parse_filters
        from strata.store.usage import disk_usage as cache_usage

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

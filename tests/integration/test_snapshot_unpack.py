"""Unpacking stored images into snapshot chains, for both snapshotters."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from pathlib import Path

from strata.store.content import ContentStore
from strata.store.images import ImageLayer, ImageStore
from strata.store.root import StateRoot
from strata.worker.snapshots.mount import mounted
from strata.worker.snapshots.snapshotter import Snapshotter
from strata.worker.unpack import chain_ids, unpack_image

TAR = "application/vnd.oci.image.layer.v1.tar"


def layer_tar(entries: dict[str, bytes | None]) -> bytes:
    """A layer: name -> content (None: a directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def store_image(root: StateRoot, name: str, layers: list[bytes]) -> None:
    content = ContentStore(root)
    refs = []
    for data in layers:
        digest = content.ingest_bytes(data)
        diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
        refs.append(ImageLayer(diff_id, digest, TAR, len(data)))
    images = ImageStore(root)
    manifest = images.commit_image({"architecture": "amd64", "os": "linux", "config": {}}, refs)
    images.put(name, manifest)


def two_layer_image(root: StateRoot) -> None:
    store_image(
        root,
        "layers:test",
        [
            layer_tar({"etc": None, "etc/a": b"a", "etc/b": b"b"}),
            layer_tar({"etc": None, "etc/.wh.a": b"", "etc/c": b"c"}),
        ],
    )


def test_chain_ids_follow_the_oci_formula() -> None:
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    second = "sha256:" + hashlib.sha256(f"{d1} {d2}".encode()).hexdigest()
    assert chain_ids([d1, d2]) == [d1, second]


def test_unpacked_chain_shows_the_image_with_whiteouts_applied(
    state_root: StateRoot, snapshotter: Snapshotter, tmp_path: Path
) -> None:
    two_layer_image(state_root)
    image = ImageStore(state_root).load_image("layers:test")
    top = unpack_image(state_root, snapshotter, image)
    assert top == chain_ids([layer.diff_id for layer in image.layers])[-1]
    target = tmp_path / "view"
    target.mkdir()
    with mounted(snapshotter.view("v", top), target):
        assert sorted(p.name for p in (target / "etc").iterdir()) == ["b", "c"]
    snapshotter.remove("v")


def test_second_unpack_reuses_the_snapshots(
    state_root: StateRoot, snapshotter: Snapshotter
) -> None:
    two_layer_image(state_root)
    image = ImageStore(state_root).load_image("layers:test")
    first = unpack_image(state_root, snapshotter, image)
    before = snapshotter.list()
    assert unpack_image(state_root, snapshotter, image) == first
    assert snapshotter.list() == before
    assert [s.kind for s in before] == ["committed", "committed"]


def test_concurrent_unpacks_of_one_image_do_not_collide(
    state_root: StateRoot, snapshotter: Snapshotter
) -> None:
    two_layer_image(state_root)
    image = ImageStore(state_root).load_image("layers:test")
    results: list[str | None] = []
    errors: list[BaseException] = []

    def unpack() -> None:
        try:
            results.append(unpack_image(state_root, snapshotter, image))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=unpack) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    assert len(snapshotter.list()) == 2

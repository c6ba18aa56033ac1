"""docker-archive and OCI layout: writing, reading back, and keeping every digest."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.errors import StoreError, UsageError
from strata.export.docker_archive import ExportEntry, write_docker_archive
from strata.export.load import load_archive, load_oci_layout_dir
from strata.export.oci_layout import write_oci_archive, write_oci_layout_dir
from strata.export.tarball_import import import_tarball
from strata.image.layer import write_layer
from strata.store.images import ImageStore
from strata.store.reference import parse_reference
from strata.store.root import StateRoot


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    root = StateRoot.open(tmp_path / "root")
    yield ImageStore(root)
    root.close()


@pytest.fixture
def other(tmp_path: Path) -> Iterator[ImageStore]:
    root = StateRoot.open(tmp_path / "other-root")
    yield ImageStore(root)
    root.close()


def two_layer_image(store: ImageStore, tmp_path: Path, name: str = "app:v1") -> str:
    layers = []
    for i in range(2):
        tree = tmp_path / f"layer{i}"
        (tree / "dir").mkdir(parents=True, exist_ok=True)
        (tree / "dir" / f"file{i}").write_bytes(bytes([i]) * 70_000)
        with store.content.writer() as w:
            layers.append(write_layer(tree, w, compression="gzip" if i else "zstd"))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-01T10:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
    }
    manifest = store.commit_image(config, layers)
    store.put(name, manifest)
    return manifest


def entries(store: ImageStore, *names: str) -> list[ExportEntry]:
    return [ExportEntry(store.load_image(n), [parse_reference(n)]) for n in names]


def tar_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {
            m.name: tf.extractfile(m).read()  # type: ignore[union-attr]
            for m in tf.getmembers()
            if m.isreg()
        }


def test_docker_archive_has_manifest_config_and_uncompressed_layers(
    store: ImageStore, tmp_path: Path
) -> None:
    two_layer_image(store, tmp_path)
    image = store.load_image("app:v1")
    out = io.BytesIO()
    write_docker_archive(store.content, entries(store, "app:v1"), out)
    files = tar_files(out.getvalue())
    manifest = json.loads(files["manifest.json"])
    assert manifest[0]["RepoTags"] == ["app:v1"]
    assert manifest[0]["Config"] == image.id.removeprefix("sha256:") + ".json"
    for path, layer in zip(manifest[0]["Layers"], image.layers, strict=True):
        assert "sha256:" + hashlib.sha256(files[path]).hexdigest() == layer.diff_id
    assert json.loads(files["repositories"]) == {"app": {"v1": manifest[0]["Layers"][-1][:64]}}


def test_archives_are_deterministic(store: ImageStore, tmp_path: Path) -> None:
    two_layer_image(store, tmp_path)
    for writer in (write_docker_archive, write_oci_archive):
        a, b = io.BytesIO(), io.BytesIO()
        writer(store.content, entries(store, "app:v1"), a)
        writer(store.content, entries(store, "app:v1"), b)
        assert a.getvalue() == b.getvalue()


def test_oci_archive_load_then_save_keeps_every_digest(
    store: ImageStore, other: ImageStore, tmp_path: Path
) -> None:
    manifest = two_layer_image(store, tmp_path)
    first = io.BytesIO()
    write_oci_archive(store.content, entries(store, "app:v1"), first)
    loaded = load_archive(other, io.BytesIO(first.getvalue()))
    assert [(str(x.name), x.manifest_digest) for x in loaded] == [
        ("docker.io/library/app:v1", manifest)
    ]
    second = io.BytesIO()
    write_oci_archive(other.content, entries(other, "app:v1"), second)
    assert second.getvalue() == first.getvalue()


def test_docker_archive_load_then_save_keeps_image_id_and_layers(
    store: ImageStore, other: ImageStore, tmp_path: Path
) -> None:
    two_layer_image(store, tmp_path)
    original = store.load_image("app:v1")
    first = io.BytesIO()
    write_docker_archive(store.content, entries(store, "app:v1"), first)
    loaded = load_archive(other, io.BytesIO(first.getvalue()))
    assert [x.image_id for x in loaded] == [original.id]
    again = other.load_image("app:v1")
    assert [layer.diff_id for layer in again.layers] == [x.diff_id for x in original.layers]
    second = io.BytesIO()
    write_docker_archive(other.content, entries(other, "app:v1"), second)
    assert second.getvalue() == first.getvalue()


def test_gzip_compressed_docker_archive_loads(
    store: ImageStore, other: ImageStore, tmp_path: Path
) -> None:
    two_layer_image(store, tmp_path)
    out = io.BytesIO()
    write_docker_archive(store.content, entries(store, "app:v1"), out)
    loaded = load_archive(other, io.BytesIO(gzip.compress(out.getvalue())))
    assert loaded[0].image_id == store.load_image("app:v1").id


def test_oci_layout_directory_round_trip(
    store: ImageStore, other: ImageStore, tmp_path: Path
) -> None:
    manifest = two_layer_image(store, tmp_path)
    layout = tmp_path / "layout"
    write_oci_layout_dir(store.content, entries(store, "app:v1"), layout)
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["annotations"] == {
        "io.containerd.image.name": "docker.io/library/app:v1",
        "org.opencontainers.image.ref.name": "v1",
    }
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    loaded = load_oci_layout_dir(other, layout)
    assert loaded[0].manifest_digest == manifest
    assert other.get("app:v1") == manifest


def test_layer_not_matching_config_diff_id_is_refused_and_leaves_no_blobs(
    store: ImageStore, other: ImageStore, tmp_path: Path
) -> None:
    two_layer_image(store, tmp_path)
    out = io.BytesIO()
    write_docker_archive(store.content, entries(store, "app:v1"), out)
    files = tar_files(out.getvalue())
    manifest = json.loads(files["manifest.json"])
    files[manifest[0]["Layers"][0]] = bytes(1024)  # an empty tar instead of the layer
    forged = io.BytesIO()
    with tarfile.open(fileobj=forged, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with pytest.raises(StoreError, match="config says"):
        load_archive(other, io.BytesIO(forged.getvalue()))
    assert other.list() == []
    assert list(other.root.blobs_dir.iterdir()) == []


def test_archive_without_index_files_is_refused(other: ImageStore) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("random.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(StoreError, match="not a docker-archive or OCI layout"):
        load_archive(other, io.BytesIO(buf.getvalue()))
    assert list(other.root.blobs_dir.iterdir()) == []


def test_corrupt_compressed_archive_is_a_store_error_naming_the_source(
    other: ImageStore,
) -> None:
    broken = b"\x1f\x8b\x08\x00" + bytes(6) + b"this is no deflate stream" * 40
    with pytest.raises(StoreError, match=r"^images\.tgz: corrupt compressed data"):
        load_archive(other, io.BytesIO(broken), source="images.tgz")
    assert list(other.root.blobs_dir.iterdir()) == []


def test_blob_whose_content_does_not_match_its_name_is_refused(other: ImageStore) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("blobs/sha256/" + "0" * 64)
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(StoreError, match="digest mismatch"):
        load_archive(other, io.BytesIO(buf.getvalue()))


def test_imported_tarball_is_one_gzip_layer_whose_diff_id_is_the_tar(
    store: ImageStore, tmp_path: Path
) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("./etc/motd")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"hello"))
    raw = buf.getvalue()
    manifest = import_tarball(
        store, io.BytesIO(gzip.compress(raw)), source="rootfs.tgz", changes=["CMD sh"]
    )
    image = store.image(manifest)
    assert image.layers[0].diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert image.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert image.config["config"] == {"Cmd": ["/bin/sh", "-c", "sh"]}
    assert image.config["history"][0]["comment"] == "Imported from rootfs.tgz"


def test_import_of_corrupt_gzip_names_the_file(store: ImageStore) -> None:
    broken = gzip.compress(b"x" * 4096)[:30] + b"garbage" * 100
    with pytest.raises(StoreError, match=r"^rootfs\.tgz: corrupt compressed data"):
        import_tarball(store, io.BytesIO(broken), source="rootfs.tgz")
    assert store.list() == []


def test_bad_change_line_fails_before_the_tarball_is_read(store: ImageStore) -> None:
    class Unreadable(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            raise AssertionError("the tarball was read")

    with pytest.raises(UsageError, match=r'^invalid --change "RUN make": RUN is not a valid'):
        import_tarball(store, Unreadable(), source="rootfs.tar", changes=["RUN make"])  # type: ignore[arg-type]


def test_import_of_something_that_is_not_a_tar_is_refused(store: ImageStore) -> None:
    with pytest.raises(StoreError, match=r"notes\.txt: not a tar archive"):
        import_tarball(store, io.BytesIO(b"just some notes\n" * 100), source="notes.txt")
    assert store.list() == []


def _archive_with_manifest(store: ImageStore, tmp_path: Path, change: dict[str, object]) -> bytes:
    """A real docker-archive of app:v1 whose manifest.json entry has `change` applied."""
    two_layer_image(store, tmp_path)
    out = io.BytesIO()
    write_docker_archive(store.content, entries(store, "app:v1"), out)
    files = tar_files(out.getvalue())
    manifest = json.loads(files["manifest.json"])
    manifest[0].update(change)
    files["manifest.json"] = json.dumps(manifest).encode()
    forged = io.BytesIO()
    with tarfile.open(fileobj=forged, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return forged.getvalue()


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"Layers": 5}, "entry 0: Layers must be a list of strings"),
        ({"Layers": "abc"}, "entry 0: Layers must be a list of strings"),
        ({"Layers": [{"path": "x"}]}, "entry 0: Layers must be a list of strings"),
        ({"RepoTags": [5]}, "entry 0: RepoTags must be a list of strings"),
        ({"RepoTags": "app:v1"}, "entry 0: RepoTags must be a list of strings"),
        ({"Config": ["config.json"]}, "entry 0: Config must be a file name"),
    ],
    ids=["layers-int", "layers-str", "layers-dicts", "tags-ints", "tags-str", "config-list"],
)
def test_docker_archive_manifest_of_the_wrong_shape_is_a_store_error_naming_the_file(
    store: ImageStore,
    other: ImageStore,
    tmp_path: Path,
    change: dict[str, object],
    complaint: str,
) -> None:
    forged = _archive_with_manifest(store, tmp_path, change)
    with pytest.raises(StoreError, match=r"^images\.tar: manifest\.json: ") as caught:
        load_archive(other, io.BytesIO(forged), source="images.tar")
    assert complaint in caught.value.message
    assert other.list() == []
    assert list(other.root.blobs_dir.iterdir()) == []


def test_docker_archive_entry_without_repo_tags_loads_unnamed(
    store: ImageStore, other: ImageStore, tmp_path: Path
) -> None:
    forged = _archive_with_manifest(store, tmp_path, {"RepoTags": None})
    loaded = load_archive(other, io.BytesIO(forged))
    assert [image.name for image in loaded] == [None]
    assert loaded[0].image_id == store.load_image("app:v1").config_digest

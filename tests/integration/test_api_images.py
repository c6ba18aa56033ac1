"""An image's whole life through `strata.api` alone, across two state roots: import a
root file system tar, list, tag, inspect, save, load elsewhere, remove, prune."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from strata import api
from tests.rootfs import make_busybox_rootfs

pytestmark = pytest.mark.integration


def busybox_tar(tmp_path: Path) -> io.BytesIO:
    """The test busybox root file system as a tarball, as `tar -C rootfs -cf - .` makes."""
    rootfs = tmp_path / "rootfs"
    make_busybox_rootfs(rootfs)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        tf.add(rootfs, arcname=".")
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("archive_format", ["docker", "oci"])
def test_an_image_made_saved_and_loaded_with_the_api_alone(
    tmp_path: Path, archive_format: api.ArchiveFormat
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"

    image_id = api.import_image(first, busybox_tar(tmp_path), "demo:1", changes=['CMD ["/bin/sh"]'])
    api.tag(first, "demo:1", "demo:2")
    listed = api.list_images(first)
    (doc,) = api.inspect(first, ["demo:2"])
    archive = io.BytesIO()
    api.save(first, ["demo:2"], archive, format=archive_format)
    archive.seek(0)
    loaded = api.load(second, archive)

    assert {(r.repository, r.tag, r.id) for r in listed} == {
        ("demo", "1", image_id),
        ("demo", "2", image_id),
    }
    assert doc.id == image_id
    assert doc.repo_tags == ("demo:1", "demo:2")
    assert doc.config["Cmd"] == ["/bin/sh"]
    assert [(str(item.name), item.image_id) for item in loaded] == [
        ("docker.io/library/demo:2", image_id)
    ]
    assert [(r.repository, r.tag, r.id) for r in api.list_images(second)] == [
        ("demo", "2", image_id)
    ]
    assert api.inspect(second, ["demo:2"])[0].layers == doc.layers

    removed = [str(r) for r in api.remove_images(first, ["demo:1", "demo:2"])]
    report = api.prune(first, all=True)

    assert removed[:2] == ["Untagged: demo:1", "Untagged: demo:2"]
    assert f"Deleted: {image_id}" in removed
    assert api.list_images(first) == []
    assert api.disk_usage(first) == []
    assert report.reclaimed >= 0
    # The other root's copy is its own: removing it from the first leaves it there.
    assert api.list_images(second)[0].id == image_id


def test_load_reads_an_oci_layout_directory_and_a_tar_file_by_path(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    image_id = api.import_image(first, busybox_tar(tmp_path), "demo")
    tar_path = tmp_path / "demo.tar"
    with open(tar_path, "wb") as out:
        api.save(first, ["demo"], out, format="oci")
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(tar_path) as tf:
        tf.extractall(layout, filter="tar")

    from_file = api.load(second, tar_path)
    api.remove_images(second, ["demo"])
    from_dir = api.load(second, layout)

    assert [item.image_id for item in from_file] == [image_id]
    assert [item.image_id for item in from_dir] == [image_id]
    assert [r.id for r in api.list_images(second)] == [image_id]

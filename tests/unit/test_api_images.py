"""strata.api's image and cache functions on a fresh state root, without root privileges:
an imported tar is listed, named, inspected, saved and removed through the API alone."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from strata import api
from strata.errors import StoreError, StrataError, UsageError
from strata.store.root import StateRoot


def rootfs_tar(text: bytes = b"hello\n") -> io.BytesIO:
    """A one-file root file system tarball."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        info = tarfile.TarInfo("./etc/greeting")
        info.size = len(text)
        tf.addfile(info, io.BytesIO(text))
    buffer.seek(0)
    return buffer


def test_import_image_returns_the_id_list_images_shows_under_its_name(tmp_path: Path) -> None:
    image_id = api.import_image(tmp_path, rootfs_tar(), "demo:1")

    records = api.list_images(tmp_path)

    assert [(r.repository, r.tag, r.id) for r in records] == [("demo", "1", image_id)]


def test_list_images_keeps_only_the_repository_and_tag_asked_for(tmp_path: Path) -> None:
    api.import_image(tmp_path, rootfs_tar(b"a"), "one:latest")
    api.import_image(tmp_path, rootfs_tar(b"b"), "two:latest")
    api.tag(tmp_path, "two:latest", "two:old")

    assert [r.tag for r in api.list_images(tmp_path, "two")] == ["latest", "old"]
    assert [r.repository for r in api.list_images(tmp_path, "two:old")] == ["two"]


def test_an_open_state_root_is_used_and_left_open(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path)
    try:
        image_id = api.import_image(root, rootfs_tar(), "kept")
        assert api.inspect(root, ["kept"])[0].id == image_id
        assert api.list_images(root)[0].id == image_id
    finally:
        root.close()


def test_inspect_of_an_unknown_image_raises_unless_errors_are_collected(tmp_path: Path) -> None:
    api.import_image(tmp_path, rootfs_tar(), "known")
    with pytest.raises(StoreError):
        api.inspect(tmp_path, ["missing"])

    errors: list[StrataError] = []
    found = api.inspect(tmp_path, ["missing", "known"], on_error=errors.append)

    assert [doc.repo_tags for doc in found] == [("known:latest",)]
    assert len(errors) == 1


def test_remove_images_goes_on_past_a_missing_name_when_errors_are_collected(
    tmp_path: Path,
) -> None:
    api.import_image(tmp_path, rootfs_tar(), "gone")
    errors: list[StrataError] = []

    lines = [
        str(r) for r in api.remove_images(tmp_path, ["nothere", "gone"], on_error=errors.append)
    ]

    assert lines[0] == "Untagged: gone:latest"
    assert any(line.startswith("Deleted: sha256:") for line in lines)
    assert len(errors) == 1
    assert api.list_images(tmp_path) == []


def test_save_of_an_unknown_image_writes_nothing(tmp_path: Path) -> None:
    out = io.BytesIO()
    with pytest.raises(StoreError):
        api.save(tmp_path, ["missing"], out)
    assert out.getvalue() == b""


def test_save_refuses_an_unknown_format(tmp_path: Path) -> None:
    api.import_image(tmp_path, rootfs_tar(), "demo")
    with pytest.raises(UsageError):
        api.save(tmp_path, ["demo"], io.BytesIO(), format="zip")  # type: ignore[arg-type]


def test_tag_with_an_invalid_target_names_it(tmp_path: Path) -> None:
    api.import_image(tmp_path, rootfs_tar(), "demo")
    with pytest.raises(StoreError, match='"Bad:Name" is not a valid repository/tag'):
        api.tag(tmp_path, "demo", "Bad:Name")


def test_disk_usage_of_a_fresh_root_is_empty_and_prune_reclaims_nothing(tmp_path: Path) -> None:
    assert api.disk_usage(tmp_path) == []
    report = api.prune(tmp_path, all=True)
    assert (report.removed, report.reclaimed) == ([], 0)


def test_a_bad_filter_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(StrataError):
        api.disk_usage(tmp_path, filters=["nonsense"])

"""Independent tools read what strata writes: skopeo (docker-archive, OCI) and umoci."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.image.layer import write_layer
from strata.store.images import ImageStore
from strata.store.root import StateRoot
from tests.integration.image_fixtures import strata, tree_differences, tree_state
from tests.rootfs import busybox_available, make_busybox_rootfs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (owners, umoci unpack)"),
    pytest.mark.skipif(
        not (shutil.which("skopeo") and shutil.which("umoci") and busybox_available()),
        reason="needs skopeo, umoci and busybox-static",
    ),
]


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{args[0]} failed: {done.stderr}"
    return done.stdout


def make_rootfs(path: Path) -> Path:
    make_busybox_rootfs(path)
    (path / "home" / "app" / "notes.txt").write_text("hello\n")
    os.chown(path / "home" / "app" / "notes.txt", 1000, 1000)
    os.link(path / "bin" / "busybox", path / "bin" / "busybox-hardlink")
    os.chmod(path / "bin" / "busybox-hardlink", 0o4755)
    os.setxattr(path / "home" / "app" / "notes.txt", "user.kind", b"note")
    for p in [*path.rglob("*"), path]:
        os.utime(p, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    return path


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A state root holding `tools/app:v1`, built from a busybox tree; and that tree."""
    base = tmp_path_factory.mktemp("tools")
    rootfs = make_rootfs(base / "rootfs")
    root = StateRoot.open(base / "root")
    images = ImageStore(root)
    with images.content.writer() as w:
        layer = write_layer(rootfs, w)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
    }
    images.put("tools/app:v1", images.commit_image(config, [layer]))
    root.close()
    yield base / "root", rootfs


def save(root: Path, dest: Path, fmt: str) -> Path:
    done = strata(root, "save", "-o", str(dest), "--format", fmt, "tools/app:v1")
    assert done.returncode == 0, done.stderr
    return dest


def inspect_id(root: Path, name: str) -> str:
    done = strata(root, "inspect", name)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)[0]["Id"])


def test_skopeo_inspects_our_docker_archive(image_root: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = image_root
    archive = save(root, tmp_path / "app.tar", "docker")
    info = json.loads(run("skopeo", "inspect", f"docker-archive:{archive}"))
    config = json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{archive}"))
    assert config["config"]["Cmd"] == ["/bin/sh"]
    assert info["Layers"] == config["rootfs"]["diff_ids"]  # uncompressed layers
    assert info["Created"].startswith("2024-01-02T03:04:05")


def test_skopeo_inspects_our_oci_archive_with_stored_digests(
    image_root: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = image_root
    archive = save(root, tmp_path / "app-oci.tar", "oci")
    info = json.loads(run("skopeo", "inspect", f"oci-archive:{archive}:v1"))
    with tarfile.open(archive) as tf:
        index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
    assert info["Digest"] == index["manifests"][0]["digest"]
    assert info["Env"] == ["PATH=/bin"]


def test_skopeo_copies_our_archives_and_we_load_its_output(
    image_root: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = image_root
    image_id = inspect_id(root, "tools/app:v1")
    docker = save(root, tmp_path / "app.tar", "docker")
    oci = save(root, tmp_path / "app-oci.tar", "oci")
    run("skopeo", "copy", f"docker-archive:{docker}", f"oci:{tmp_path / 'layout'}:copied")
    copied = tmp_path / "copied.tar"
    run("skopeo", "copy", f"oci-archive:{oci}:v1", f"docker-archive:{copied}:copied/app:v2")
    other = tmp_path / "other-root"
    done = strata(other, "load", "-i", str(copied))
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "Loaded image: copied/app:v2\n"
    assert inspect_id(other, "copied/app:v2") == image_id


def test_umoci_unpacks_our_oci_layout_to_the_same_tree(
    image_root: tuple[Path, Path], tmp_path: Path
) -> None:
    root, rootfs = image_root
    archive = save(root, tmp_path / "app-oci.tar", "oci")
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(archive) as tf:
        tf.extractall(layout, filter="tar")
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{layout}:v1", str(bundle))
    assert tree_differences(tree_state(rootfs), tree_state(bundle / "rootfs")) == {}


def test_load_then_save_keeps_every_digest(image_root: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = image_root
    for fmt in ("oci", "docker"):
        first = save(root, tmp_path / f"first-{fmt}.tar", fmt)
        other = tmp_path / f"root-{fmt}"
        done = strata(other, "load", "-i", str(first))
        assert done.returncode == 0, done.stderr
        second = save(other, tmp_path / f"second-{fmt}.tar", fmt)
        assert second.read_bytes() == first.read_bytes()


def test_docker_schema2_images_load_and_save_with_their_manifest_unchanged(
    image_root: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = image_root
    image_id = inspect_id(root, "tools/app:v1")
    layout = tmp_path / "v2s2"
    docker = save(root, tmp_path / "app.tar", "docker")
    run("skopeo", "copy", "--format", "v2s2", f"docker-archive:{docker}", f"oci:{layout}:v1")
    [entry] = json.loads((layout / "index.json").read_text())["manifests"]
    assert entry["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    archive = tmp_path / "v2s2.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(layout, arcname=".")
    other = tmp_path / "other-root"
    done = strata(other, "load", "-i", str(archive))
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == f"Loaded image ID: {image_id}\n"
    again = tmp_path / "again.tar"
    done = strata(other, "save", "--format", "oci", "-o", str(again), image_id)
    assert done.returncode == 0, done.stderr
    with tarfile.open(again) as tf:
        [saved] = json.load(tf.extractfile("index.json"))["manifests"]  # type: ignore[arg-type]
    assert (saved["mediaType"], saved["digest"]) == (entry["mediaType"], entry["digest"])
    info = json.loads(run("skopeo", "inspect", f"oci-archive:{again}"))
    assert info["Env"] == ["PATH=/bin"]

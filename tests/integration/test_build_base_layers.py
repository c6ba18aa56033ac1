"""Base image layers leave a build as they came: the same blobs, whatever their compression."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]


def manifest_layers(oci_archive: Path) -> list[tuple[str, str]]:
    """(digest, media type) of each layer of the one image in an OCI archive."""
    with tarfile.open(oci_archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(tar.extractfile(f"blobs/sha256/{digest}"))  # type: ignore[arg-type]
    return [(layer["digest"], layer["mediaType"]) for layer in manifest["layers"]]


def test_an_uncompressed_base_layer_is_exported_with_its_own_digest(
    build_root: Path, tmp_path: Path
) -> None:
    # `save --format docker` writes uncompressed layer.tar files; `load` keeps them so.
    archive = tmp_path / "base.tar"
    strata(build_root, "save", "--format", "docker", "-o", str(archive), BUSYBOX_IMAGE, check=True)
    other = tmp_path / "other-root"
    strata(other, "load", "-i", str(archive), check=True)
    project = write_project(tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN echo built > /built\n", {})
    strata(other, "build", "-q", "-t", "derived:1", str(project), check=True)
    out = tmp_path / "derived.tar"
    strata(other, "save", "--format", "oci", "-o", str(out), "derived:1", check=True)
    strata(
        other, "save", "--format", "oci", "-o", str(tmp_path / "b.tar"), BUSYBOX_IMAGE, check=True
    )
    base_layers = manifest_layers(tmp_path / "b.tar")
    derived_layers = manifest_layers(out)
    assert derived_layers[: len(base_layers)] == base_layers
    assert len(derived_layers) == len(base_layers) + 1

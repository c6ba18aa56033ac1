"""The image store over the content store, OCI documents and `--change` lines."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.client import Client
from strata.errors import StoreError, UsageError
from strata.image.changes import apply_changes
from strata.image.layer import LayerInfo, write_layer
from strata.image.oci import canonical_json, sha256_digest
from strata.store.content import ORPHAN_GRACE_SECONDS, ContentStore
from strata.store.images import ImageStore
from strata.store.root import StateRoot


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    root = StateRoot.open(tmp_path / "root")
    yield ImageStore(root)
    root.close()


def add_layer(store: ImageStore, tmp_path: Path, name: str, content: str) -> LayerInfo:
    tree = tmp_path / f"tree-{name}"
    tree.mkdir()
    (tree / name).write_text(content)
    with store.content.writer() as w:
        info = write_layer(tree, w, source_date_epoch=0)
    return info


def make_image(store: ImageStore, tmp_path: Path, tag: str, content: str) -> str:
    layer = add_layer(store, tmp_path, tag.replace(":", "_").replace("/", "_"), content)
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": [content]}}
    return store.commit_image(config, [layer])


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": "é", "c": None}]}) == (
        '{"a":[1,{"c":null,"d":"é"}],"b":1}'.encode()
    )


def test_committed_image_has_oci_manifest_and_config_with_diff_ids(
    store: ImageStore, tmp_path: Path
) -> None:
    layer = add_layer(store, tmp_path, "a", "x")
    manifest_digest = store.commit_image({"os": "linux", "architecture": "amd64"}, [layer])
    image = store.image(manifest_digest)
    assert image.manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert image.manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert image.config["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id]}
    assert image.layers[0].digest == layer.digest
    assert image.id == sha256_digest(store.content.read_bytes(image.config_digest))
    assert store.content.layer_for_diff(layer.diff_id, "gzip") == layer.digest


def test_names_resolve_by_tag_id_prefix_and_digest(store: ImageStore, tmp_path: Path) -> None:
    manifest = make_image(store, tmp_path, "app", "one")
    store.put("me/app:v1", manifest)
    image = store.image(manifest)
    assert store.resolve("me/app:v1") == manifest
    assert store.resolve("docker.io/me/app:v1") == manifest
    assert store.resolve(image.id) == manifest
    assert store.resolve(image.id.removeprefix("sha256:")[:8]) == manifest
    assert store.resolve(f"me/app@{manifest}") == manifest
    with pytest.raises(StoreError, match=r"No such image: me/app:latest"):
        store.resolve("me/app")


def test_list_shows_names_newest_first_and_dangling_images(
    store: ImageStore, tmp_path: Path
) -> None:
    first = make_image(store, tmp_path, "first", "1")
    second = make_image(store, tmp_path, "second", "2")
    store.put("app", first)
    store.put("app", second)  # `first` loses its only name: dangling, as in Docker
    store.put("other:v2", second)
    rows = {(r.repository, r.tag, r.id) for r in store.list()}
    assert rows == {
        ("app", "latest", store.image(second).id),
        ("other", "v2", store.image(second).id),
        ("<none>", "<none>", store.image(first).id),
    }


def test_rmi_untags_then_deletes_blobs_no_other_image_holds(
    store: ImageStore, tmp_path: Path
) -> None:
    shared = add_layer(store, tmp_path, "shared", "s")
    own = add_layer(store, tmp_path, "own", "o")
    keep = store.commit_image({"os": "linux"}, [shared])
    drop = store.commit_image({"os": "linux", "x": 1}, [shared, own])
    store.put("keep", keep)
    store.put("drop", drop)
    store.put("drop:alias", drop)
    drop_id = store.image(drop).id
    assert [str(r) for r in store.remove("drop")] == ["Untagged: drop:latest"]
    lines = [str(r) for r in store.remove("drop:alias")]
    assert lines == ["Untagged: drop:alias", f"Deleted: {drop_id}", f"Deleted: {own.digest}"]
    assert not store.content.has(own.digest)
    assert not store.content.has(drop)
    assert store.content.has(shared.digest)
    assert store.load_image("keep").layers[0].digest == shared.digest


def test_rmi_by_id_with_names_in_two_repositories_needs_force(
    store: ImageStore, tmp_path: Path
) -> None:
    manifest = make_image(store, tmp_path, "x", "x")
    store.put("one", manifest)
    store.put("two", manifest)
    image_id = store.image(manifest).id
    with pytest.raises(StoreError, match=r"must be forced\) - image is referenced in multiple"):
        store.remove(image_id[7:19])
    layer = store.image(manifest).layers[0].digest
    lines = [str(r) for r in store.remove(image_id[7:19], force=True)]
    assert lines == [
        "Untagged: one:latest",
        "Untagged: two:latest",
        f"Deleted: {image_id}",
        f"Deleted: {layer}",
    ]
    assert store.list() == []


def test_rmi_also_sweeps_old_blobs_that_nothing_holds(store: ImageStore, tmp_path: Path) -> None:
    store.put("x", make_image(store, tmp_path, "x", "x"))
    leftover = store.content.ingest_bytes(b"stored by a load that was killed")
    recent = store.content.ingest_bytes(b"stored by a build a moment ago")
    then = time.time() - ORPHAN_GRACE_SECONDS - 60
    os.utime(store.content.path(leftover), (then, then))
    Client(store.root).remove_images(["x"])
    assert not store.content.has(leftover)
    assert store.content.has(recent)


def test_rmi_of_unknown_image_says_no_such_image(store: ImageStore) -> None:
    with pytest.raises(StoreError, match="No such image: ghost:latest"):
        store.remove("ghost")


def test_tag_points_a_new_name_at_the_same_manifest(store: ImageStore, tmp_path: Path) -> None:
    manifest = make_image(store, tmp_path, "src", "x")
    store.put("src:1", manifest)
    store.tag("src:1", "localhost:5000/dst:2")
    assert store.get("localhost:5000/dst:2") == manifest
    with pytest.raises(StoreError, match="refusing to create a tag with a digest"):
        store.tag("src:1", f"dst@{manifest}")


def test_commit_refuses_rootfs_that_disagrees_with_layers(
    store: ImageStore, tmp_path: Path
) -> None:
    layer = add_layer(store, tmp_path, "a", "x")
    with pytest.raises(ValueError, match="diff_ids"):
        store.commit_image({"rootfs": {"type": "layers", "diff_ids": []}}, [layer])


def test_changes_set_cmd_entrypoint_env_label_expose_workdir_user() -> None:
    config = apply_changes(
        {"Env": ["A=old", "PATH=/bin"]},
        [
            'CMD ["sh", "-c", "echo hi"]',
            "ENTRYPOINT /init --flag",
            "ENV A=new B='two words'",
            "ENV C legacy form value",
            'LABEL org.x="y z" k=v',
            "EXPOSE 80 53/udp",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER app:staff",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ],
    )
    assert config["Entrypoint"] == ["/bin/sh", "-c", "/init --flag"]
    assert "Cmd" not in config  # ENTRYPOINT after CMD resets it, as in a Dockerfile
    assert config["Env"] == ["PATH=/bin", "A=new", "B=two words", "C=legacy form value"]
    assert config["Labels"] == {"org.x": "y z", "k": "v"}
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert config["WorkingDir"] == "/srv/app"
    assert config["User"] == "app:staff"
    assert config["Volumes"] == {"/data": {}}
    assert config["StopSignal"] == "SIGINT"


def test_cmd_json_form_is_kept_as_given() -> None:
    assert apply_changes({}, ['CMD ["/bin/sh"]'])["Cmd"] == ["/bin/sh"]


def test_unknown_change_instruction_is_a_usage_error_naming_it() -> None:
    with pytest.raises(UsageError, match="RUN is not a valid change command") as err:
        apply_changes({}, ["RUN echo"])
    assert err.value.option == "--change"


def test_manifest_bytes_are_canonical_json(store: ImageStore, tmp_path: Path) -> None:
    manifest = make_image(store, tmp_path, "c", "c")
    raw = store.content.read_bytes(manifest)
    assert raw == canonical_json(json.loads(raw))


def test_content_store_is_shared_with_images(store: ImageStore) -> None:
    assert isinstance(store.content, ContentStore)


def test_rmi_results_are_values_that_print_as_docker_lines(
    store: ImageStore, tmp_path: Path
) -> None:
    manifest = make_image(store, tmp_path, "v", "v")
    store.put("v", manifest)
    image_id = store.image(manifest).id

    removed = store.remove("v")

    assert removed[0].action == "untagged" and removed[0].what == "v:latest"
    assert removed[1].action == "deleted" and removed[1].what == image_id

"""Several strata processes on one state root: `rmi` and `load` of images sharing a layer."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from strata.image.layer import LayerInfo, write_layer
from strata.store.images import ImageStore
from strata.store.root import StateRoot
from tests.integration.image_fixtures import STRATA, strata

pytestmark = pytest.mark.integration

MIB = 1 << 20


def layer_of(images: ImageStore, tree: Path, files: dict[str, bytes]) -> LayerInfo:
    tree.mkdir()
    for name, data in files.items():
        (tree / name).write_bytes(data)
    with images.content.writer() as w:
        return write_layer(tree, w, compression="none", source_date_epoch=0)


def make_images(tmp_path: Path) -> Path:
    """A root with `a:1` (base + small layer) and `b:1` (the same base + a 24 MiB layer)."""
    path = tmp_path / "source-root"
    root = StateRoot.open(path)
    images = ImageStore(root)
    base = layer_of(images, tmp_path / "base", {"base.bin": os.urandom(MIB)})
    small = layer_of(images, tmp_path / "a", {"a.txt": b"a"})
    big = layer_of(images, tmp_path / "b", {"b.bin": os.urandom(24 * MIB)})
    for name, layers in (("a:1", [base, small]), ("b:1", [base, big])):
        config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": [name]}}
        images.put(name, images.commit_image(config, layers))
    root.close()
    return path


def ok(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def ingest_sizes(root: Path) -> list[int]:
    sizes = []
    for path in (root / "tmp").glob("*/ingest-*"):
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:
            continue
    return sizes


def test_rmi_during_a_load_keeps_the_layer_the_loaded_image_shares(tmp_path: Path) -> None:
    source = make_images(tmp_path)
    a_tar, b_tar = tmp_path / "a.tar", tmp_path / "b.tar"
    ok(strata(source, "save", "-o", str(a_tar), "a:1"))
    ok(strata(source, "save", "-o", str(b_tar), "b:1"))
    root = tmp_path / "root"
    ok(strata(root, "load", "-i", str(a_tar)))
    [a_doc] = json.loads(ok(strata(root, "inspect", "a:1")))
    base_diff_id = a_doc["RootFS"]["Layers"][0]

    archive = b_tar.read_bytes()
    load = subprocess.Popen(
        [str(STRATA), "--root", str(root), "load"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert load.stdin is not None
        # Half the archive: the shared base layer (found already stored) and part of
        # the big one. Wait until the big one is being written, so the base is past.
        load.stdin.write(archive[: len(archive) // 2])
        load.stdin.flush()
        deadline = time.monotonic() + 60
        while not any(size > 2 * MIB for size in ingest_sizes(root)):
            assert load.poll() is None, load.stderr.read() if load.stderr else ""
            assert time.monotonic() < deadline, "the load never reached the big layer"
            time.sleep(0.01)
        removed = ok(strata(root, "rmi", "a:1"))
        load.stdin.write(archive[len(archive) // 2 :])
        load.stdin.close()
        load.wait(timeout=120)
        assert load.stdout is not None and load.stderr is not None
        out, err = load.stdout.read(), load.stderr.read()
    finally:
        load.kill()
        load.wait()
        for stream in (load.stdout, load.stderr):
            if stream is not None:
                stream.close()
    assert load.returncode == 0, err.decode()
    assert out.decode() == "Loaded image: b:1\n"
    assert removed.startswith("Untagged: a:1\nDeleted: sha256:")
    [b_doc] = json.loads(ok(strata(root, "inspect", "b:1")))
    assert b_doc["RootFS"]["Layers"][0] == base_diff_id
    # Every blob b:1 needs is there and intact: it saves, and loads elsewhere the same.
    again = tmp_path / "again.tar"
    ok(strata(root, "save", "-o", str(again), "b:1"))
    assert again.read_bytes() == archive
    for blob in (root / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def test_concurrent_loads_and_removals_of_images_sharing_a_layer_all_succeed(
    tmp_path: Path,
) -> None:
    source = make_images(tmp_path)
    archives = {}
    for name in ("a:1", "b:1"):
        archives[name] = tmp_path / f"{name[0]}.tar"
        ok(strata(source, "save", "-o", str(archives[name]), name))
    root = tmp_path / "root"
    ok(strata(root, "load", "-i", str(archives["a:1"])))
    for _ in range(3):
        # b is loaded while a is removed, then the other way round.
        for present, loaded in (("a:1", "b:1"), ("b:1", "a:1")):
            procs = [
                subprocess.Popen(
                    [str(STRATA), "--root", str(root), *args],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                for args in (("load", "-i", str(archives[loaded])), ("rmi", present))
            ]
            results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else b"") for p in procs]
            for proc in procs:
                for stream in (proc.stdout, proc.stderr):
                    if stream is not None:
                        stream.close()
            assert [code for code, _ in results] == [0, 0], results
            saved = tmp_path / "check.tar"
            ok(strata(root, "save", "-o", str(saved), loaded))
            assert saved.read_bytes() == archives[loaded].read_bytes()
            assert ok(strata(root, "images", "-q")).count("\n") == 1

"""A corrupt blob is never exported: save and `-o type=docker` refuse it by name, `strata
check` finds it, `--repair` drops it, and loading a good archive brings it back."""

from __future__ import annotations

from pathlib import Path

from tests.integration.guide_fixtures import build_root, busybox_tarball, strata, write_project

__all__ = ["build_root", "busybox_tarball"]

APP = """\
FROM busybox:strata-test
RUN echo hello > /greeting && seq 1 2000 > /numbers
"""


def top_layer(root: Path, name: str) -> str:
    from strata.store.images import ImageStore
    from strata.store.root import StateRoot

    state = StateRoot.open(root)
    try:
        return ImageStore(state).load_image(name).layers[-1].digest
    finally:
        state.close()


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def error_lines(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode().splitlines() if line.strip()]


def test_a_flipped_byte_is_refused_found_repaired_and_restored(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", APP)
    strata(build_root, "build", "-t", "app:1", str(project), check=True)
    good = tmp_path / "good.tar"
    strata(build_root, "save", "--format", "oci", "-o", str(good), "app:1", check=True)
    digest = top_layer(build_root, "app:1")
    blob = build_root / "blobs" / "sha256" / digest.removeprefix("sha256:")
    flip_a_byte(blob)

    saved = tmp_path / "bad.tar"
    for fmt in ("oci", "docker"):
        run = strata(build_root, "save", "--format", fmt, "-o", str(saved), "app:1")
        assert run.returncode == 1, fmt
        lines = error_lines(run.stderr)
        assert len(lines) == 1, lines
        assert digest in lines[0] and "app:1" in lines[0] and "strata check --repair" in lines[0]
        assert "Traceback" not in run.stderr.decode()
        assert not saved.exists()
        assert list(tmp_path.glob(".bad.tar.*")) == []

    exported = strata(
        build_root, "build", "-o", f"type=docker,dest={tmp_path / 'out.tar'}", str(project)
    )
    assert exported.returncode == 1
    assert digest in exported.stderr.decode()
    assert "strata check --repair" in exported.stderr.decode()

    found = strata(build_root, "check")
    assert found.returncode == 1
    assert f"corrupt-blob: {digest}" in found.stdout.decode()
    assert blob.exists()

    repaired = strata(build_root, "check", "--repair")
    assert f"corrupt-blob: {digest}" in repaired.stdout.decode()
    assert "(repaired)" in repaired.stdout.decode()
    assert not blob.exists()
    # The image now lacks the blob: reported, not repairable here.
    assert repaired.returncode == 1
    assert "image-incomplete: app:1" in repaired.stdout.decode()

    strata(build_root, "load", "-i", str(good), check=True)
    assert blob.exists()
    clean = strata(build_root, "check", check=True)
    assert "no problems" in clean.stdout.decode()
    strata(build_root, "save", "--format", "oci", "-o", str(saved), "app:1", check=True)
    assert saved.read_bytes() == good.read_bytes()


def test_load_replaces_a_blob_whose_content_does_not_match_its_name(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", APP)
    strata(build_root, "build", "-t", "app:1", str(project), check=True)
    good = tmp_path / "good.tar"
    strata(build_root, "save", "--format", "oci", "-o", str(good), "app:1", check=True)
    digest = top_layer(build_root, "app:1")
    blob = build_root / "blobs" / "sha256" / digest.removeprefix("sha256:")
    flip_a_byte(blob)

    strata(build_root, "load", "-i", str(good), check=True)
    assert "no problems" in strata(build_root, "check", check=True).stdout.decode()


def test_check_drops_records_of_a_snapshot_whose_files_are_gone(
    build_root: Path, tmp_path: Path
) -> None:
    import shutil

    project = write_project(tmp_path / "app", APP)
    strata(build_root, "build", "-t", "app:1", str(project), check=True)
    numbered = sorted(
        (p for p in (build_root / "snapshots").iterdir() if p.name.isdigit()),
        key=lambda p: int(p.name),
    )
    shutil.rmtree(numbered[-1])  # the RUN step's snapshot, the last one made

    more = write_project(tmp_path / "more", APP + "RUN cat /greeting > /again\n")
    failed = strata(build_root, "build", str(more))
    assert failed.returncode == 1 and "Traceback" not in failed.stderr.decode()
    last = failed.stderr.decode().strip().splitlines()[-1]
    assert "snapshot(s) are missing" in last and "strata check --repair" in last

    found = strata(build_root, "check")
    assert found.returncode == 1
    assert "missing-snapshot" in found.stdout.decode()
    repaired = strata(build_root, "check", "--repair")
    assert repaired.returncode == 0, repaired.stdout.decode()
    assert "missing-snapshot" in repaired.stdout.decode()
    assert "no problems" in strata(build_root, "check", check=True).stdout.decode()
    # The next build runs the step again instead of failing on the missing files.
    out = tmp_path / "out"
    strata(build_root, "build", "-o", str(out), str(project), check=True)
    assert (out / "greeting").read_text() == "hello\n"


def test_a_missing_layer_blob_is_named_reported_and_restored_by_load(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", APP)
    strata(build_root, "build", "-t", "app:1", str(project), check=True)
    good = tmp_path / "good.tar"
    strata(build_root, "save", "--format", "oci", "-o", str(good), "app:1", check=True)
    digest = top_layer(build_root, "app:1")
    blob = build_root / "blobs" / "sha256" / digest.removeprefix("sha256:")
    blob.unlink()

    for fmt in ("oci", "docker"):
        run = strata(build_root, "save", "--format", fmt, "-o", str(tmp_path / "x.tar"), "app:1")
        lines = error_lines(run.stderr)
        assert run.returncode == 1 and len(lines) == 1, lines
        assert digest in lines[0] and "app:1" in lines[0] and "missing" in lines[0]

    found = strata(build_root, "check")
    assert found.returncode == 1
    assert f"missing-blob: {digest}" in found.stdout.decode()
    assert f"image-incomplete: app:1: lacks blob {digest}" in found.stdout.decode()
    strata(build_root, "check", "--repair")
    strata(build_root, "load", "-i", str(good), check=True)
    assert "no problems" in strata(build_root, "check", check=True).stdout.decode()
    strata(build_root, "save", "-o", str(tmp_path / "x.tar"), "app:1", check=True)

"""The image commands as a user runs them: real processes against one state root."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.integration.image_fixtures import STRATA, strata

pytestmark = pytest.mark.integration


def rootfs_tar(path: Path, *, files: int = 3, payload: int = 100) -> Path:
    """A small root file system tarball, as `tar -C rootfs -cf - .` would make."""
    with tarfile.open(path, "w") as tf:
        for name in ("./", "./etc/", "./bin/"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tf.addfile(info)
        for i in range(files):
            data = hashlib.sha256(str(i).encode()).digest() * (payload // 32 + 1)
            info = tarfile.TarInfo(f"./etc/file{i}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def ok(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def test_import_prints_the_image_id_and_images_lists_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    tarball = rootfs_tar(tmp_path / "rootfs.tar")
    image_id = ok(strata(root, "import", str(tarball), "me/base:1", "--change", "CMD sh")).strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    lines = ok(strata(root, "images")).splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert lines[0].index("TAG") == lines[1].index("1")
    row = lines[1].split()
    assert row[:3] == ["me/base", "1", image_id[7:19]]
    assert row[-1] == "10.2kB"  # the uncompressed layer tar
    assert ok(strata(root, "images", "-q")) == image_id[7:19] + "\n"


def test_import_from_stdin_with_changes_sets_the_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    data = rootfs_tar(tmp_path / "rootfs.tar").read_bytes()
    ok(
        strata(
            root,
            "import",
            "-",
            "piped",
            "-c",
            'ENTRYPOINT ["/bin/app"]',
            "-c",
            "ENV MODE=prod",
            "-c",
            "EXPOSE 8080",
            stdin=data,
        )
    )
    [doc] = json.loads(ok(strata(root, "inspect", "piped")))
    assert doc["RepoTags"] == ["piped:latest"]
    assert doc["Config"] == {
        "Entrypoint": ["/bin/app"],
        "Env": ["MODE=prod"],
        "ExposedPorts": {"8080/tcp": {}},
    }
    assert doc["Comment"] == "Imported from -"
    assert doc["RootFS"]["Type"] == "layers"
    assert doc["RootFS"]["Layers"] == ["sha256:" + hashlib.sha256(data).hexdigest()]
    assert doc["Id"].startswith("sha256:")
    assert doc["Metadata"]["LastTagTime"].endswith("Z")


def test_tag_rmi_and_their_messages(tmp_path: Path) -> None:
    root = tmp_path / "root"
    image_id = ok(strata(root, "import", str(rootfs_tar(tmp_path / "r.tar")), "a")).strip()
    assert ok(strata(root, "tag", "a", "localhost:5000/b:v2")) == ""
    assert ok(strata(root, "rmi", "a")) == "Untagged: a:latest\n"
    out = ok(strata(root, "rmi", "localhost:5000/b:v2")).splitlines()
    assert out[:2] == ["Untagged: localhost:5000/b:v2", f"Deleted: {image_id}"]
    assert ok(strata(root, "images")).splitlines()[1:] == []


def test_unknown_image_is_an_error_with_exit_status_1(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for args in (("rmi", "ghost"), ("inspect", "ghost"), ("tag", "ghost", "x")):
        done = strata(root, *args)
        assert done.returncode == 1
        assert "ERROR: No such image: ghost:latest" in done.stderr.decode()


def test_bad_reference_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    root = tmp_path / "root"
    tarball = str(rootfs_tar(tmp_path / "r.tar"))
    done = strata(root, "import", tarball, "Bad Name")
    assert done.returncode == 1
    assert "invalid reference format" in done.stderr.decode()
    done = strata(root, "import", str(tmp_path / "absent.tar"), "x")
    assert done.returncode == 1
    assert "absent.tar" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def one_error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    """The command failed with status 1 and said why on exactly one `ERROR:` line."""
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert err.startswith("ERROR: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("import", "{tmp}/absent.tar", "x"), "open {tmp}/absent.tar: No such file or directory"),
        (("import", "{tmp}/notes.txt", "x"), "{tmp}/notes.txt: not a tar archive"),
        (("import", "{tmp}/broken.tgz", "x"), "{tmp}/broken.tgz: corrupt compressed data"),
        (("import", "{tmp}/r.tar", "a:b:c"), '"a:b:c" is not a valid repository/tag'),
        (("import", "{tmp}/r.tar", "Bad"), "invalid reference format: repository name"),
        (("import", "{tmp}/r.tar", "x", "-c", "RUN make"), 'invalid --change "RUN make"'),
        (("import", "{tmp}/r.tar", "x", "-c", "EXPOSE http"), "invalid containerPort: http"),
        (("load", "-i", "{tmp}/absent.tar"), "open {tmp}/absent.tar: No such file or directory"),
        (("load", "-i", "{tmp}/notes.txt"), "{tmp}/notes.txt: invalid archive"),
        (("load", "-i", "{tmp}/broken.tgz"), "{tmp}/broken.tgz: corrupt compressed data"),
        (("load", "-i", "{tmp}/r.tar"), "{tmp}/r.tar: archive has no manifest.json"),
        (("load", "-i", "{tmp}"), "{tmp}: not an OCI layout (no index.json)"),
        (("tag", "ghost", "y"), "No such image: ghost:latest"),
        (("tag", "base", "a:b:c"), '"a:b:c" is not a valid repository/tag'),
        (("rmi", "ghost"), "No such image: ghost:latest"),
        (("inspect", "ghost"), "No such image: ghost:latest"),
        (("save", "-o", "{tmp}/out.tar", "ghost"), "No such image: ghost:latest"),
        (("save", "-o", "{tmp}", "base"), "-o {tmp} is a directory"),
        (("save", "-o", "{tmp}/no/such/dir/out.tar", "base"), "cannot write {tmp}/no/such/dir"),
    ],
)
def test_bad_input_is_one_error_line_naming_it_and_exit_status_1(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    root = tmp_path / "root"
    tarball = rootfs_tar(tmp_path / "r.tar")
    (tmp_path / "notes.txt").write_text("not a tar\n" * 200)
    (tmp_path / "broken.tgz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(6) + b"junk" * 300)
    ok(strata(root, "import", str(tarball), "base"))
    err = one_error_line(strata(root, *(a.format(tmp=tmp_path) for a in args)))
    assert expected.format(tmp=tmp_path) in err


def test_save_without_output_to_a_terminal_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ok(strata(root, "import", str(rootfs_tar(tmp_path / "r.tar")), "x"))
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [str(STRATA), "--root", str(root), "save", "x"],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.PIPE,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert one_error_line(done) == (
        "ERROR: cowardly refusing to save to a terminal. Use the -o flag or redirect\n"
    )


def test_save_to_stdout_then_load_from_stdin(tmp_path: Path) -> None:
    root = tmp_path / "root"
    image_id = ok(strata(root, "import", str(rootfs_tar(tmp_path / "r.tar")), "x:1")).strip()
    archive = strata(root, "save", "x:1")
    assert archive.returncode == 0
    other = tmp_path / "other"
    assert ok(strata(other, "load", stdin=archive.stdout)) == "Loaded image: x:1\n"
    assert json.loads(ok(strata(other, "inspect", "x:1")))[0]["Id"] == image_id


def test_load_reads_an_oci_layout_directory(tmp_path: Path) -> None:
    root = tmp_path / "root"
    image_id = ok(strata(root, "import", str(rootfs_tar(tmp_path / "r.tar")), "x:1")).strip()
    archive = tmp_path / "x.tar"
    ok(strata(root, "save", "--format", "oci", "-o", str(archive), "x:1"))
    layout = tmp_path / "layout"
    with tarfile.open(archive) as tf:
        tf.extractall(layout, filter="data")
    other = tmp_path / "other"
    assert ok(strata(other, "load", "-i", str(layout))) == "Loaded image: x:1\n"
    assert json.loads(ok(strata(other, "inspect", "x:1")))[0]["Id"] == image_id
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    layer = json.loads((blobs / manifest[7:]).read_text())["layers"][0]["digest"]
    (blobs / layer[7:]).unlink()
    err = one_error_line(strata(tmp_path / "third", "load", "-i", str(layout)))
    assert err == f"ERROR: {layout}: cannot read blob {layer}: No such file or directory\n"


def test_save_by_id_loads_as_an_unnamed_image(tmp_path: Path) -> None:
    root = tmp_path / "root"
    image_id = ok(strata(root, "import", str(rootfs_tar(tmp_path / "r.tar")), "x:1")).strip()
    out = tmp_path / "by-id.tar"
    ok(strata(root, "save", "-o", str(out), "--format", "oci", image_id[7:15]))
    assert ok(strata(tmp_path / "other", "load", "-i", str(out))) == (
        f"Loaded image ID: {image_id}\n"
    )


def blobs_are_intact(root: Path) -> None:
    for blob in (root / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def test_sigkill_during_import_leaves_a_root_the_next_command_uses(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ok(strata(root, "import", str(rootfs_tar(tmp_path / "small.tar")), "before"))
    big = rootfs_tar(tmp_path / "big.tar", files=40, payload=1 << 20).read_bytes()
    proc = subprocess.Popen(
        [str(STRATA), "--root", str(root), "import", "-", "crashed"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(big[: len(big) // 2])
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while not list((root / "tmp").glob(f"{proc.pid}-*/ingest-*")):
            assert time.monotonic() < deadline, "import never started writing"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    listing = ok(strata(root, "images"))
    assert "crashed" not in listing and "before" in listing
    assert not list((root / "tmp").glob(f"{proc.pid}-*"))  # reaped by the next open
    blobs_are_intact(root)
    ok(strata(root, "import", "-", "after", stdin=big))
    assert "after" in ok(strata(root, "images"))


def test_two_concurrent_imports_into_one_root_both_succeed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ok(strata(root, "images"))  # create the root before the race
    tarballs = [rootfs_tar(tmp_path / f"r{i}.tar", files=20, payload=256 << 10) for i in range(2)]
    procs = [
        subprocess.Popen(
            [str(STRATA), "--root", str(root), "import", str(tarballs[i % 2]), f"img{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(4)  # two pairs import the same content: same blobs, at once
    ]
    results = [(*p.communicate(), p.returncode) for p in procs]
    assert [r[2] for r in results] == [0, 0, 0, 0], [r[1] for r in results]
    listing = ok(strata(root, "images"))
    for i in range(4):
        assert f"img{i}" in listing
    blobs_are_intact(root)
    assert os.listdir(root / "tmp") == []

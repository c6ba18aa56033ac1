"""Layer tars: writing them deterministically and applying them safely (no root needed)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from strata.errors import StoreError
from strata.image.apply import apply_layer
from strata.image.layer import write_layer


def make_tree(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("box\n")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"\x7fELF" + bytes(range(256)) * 10)
    os.chmod(root / "bin" / "tool", 0o4755)
    os.link(root / "bin" / "tool", root / "bin" / "tool-again")
    os.symlink("tool", root / "bin" / "alias")
    os.symlink("/nowhere/at/all", root / "dangling")
    deep = root / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / ("f" * 90)).write_text("long name")
    os.mkfifo(root / "pipe")
    for path in sorted(root.rglob("*")):
        os.utime(path, (1_600_000_000, 1_600_000_000), follow_symlinks=False)
    return root


def layer_bytes(tree: Path, **kwargs: object) -> tuple[bytes, object]:
    out = io.BytesIO()
    info = write_layer(tree, out, **kwargs)  # type: ignore[arg-type]
    return out.getvalue(), info


def members(blob: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tf:
        return tf.getmembers()


def test_same_files_give_the_same_layer_bytes(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "a")
    first, info1 = layer_bytes(tree)
    second, info2 = layer_bytes(tree)
    assert first == second
    assert info1 == info2


def test_digests_are_hashes_of_compressed_and_uncompressed_bytes(tmp_path: Path) -> None:
    blob, info = layer_bytes(make_tree(tmp_path / "a"))
    raw = gzip.decompress(blob)
    assert info.digest == "sha256:" + hashlib.sha256(blob).hexdigest()  # type: ignore[attr-defined]
    assert info.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()  # type: ignore[attr-defined]
    assert info.size == len(blob)  # type: ignore[attr-defined]
    assert info.uncompressed_size == len(raw)  # type: ignore[attr-defined]
    assert info.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"  # type: ignore[attr-defined]


def test_zstd_and_uncompressed_layers_share_the_diff_id(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "a")
    _, gz_info = layer_bytes(tree, compression="gzip")
    zs, zs_info = layer_bytes(tree, compression="zstd")
    plain, plain_info = layer_bytes(tree, compression="none")
    assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(zs)).read() == plain
    assert gz_info.diff_id == zs_info.diff_id == plain_info.diff_id  # type: ignore[attr-defined]
    assert plain_info.digest == plain_info.diff_id  # type: ignore[attr-defined]
    assert zs_info.media_type.endswith("+zstd")  # type: ignore[attr-defined]


def test_entries_are_sorted_depth_first_with_numeric_owners_only(tmp_path: Path) -> None:
    blob, _ = layer_bytes(make_tree(tmp_path / "a"))
    entries = members(blob)
    names = [m.name for m in entries]
    assert names[:6] == ["bin", "bin/alias", "bin/tool", "bin/tool-again", "dangling", "d" * 60]
    assert all(m.uname == "" and m.gname == "" for m in entries)
    assert all(m.mtime == 1_600_000_000 for m in entries)


def test_hard_links_symlinks_fifos_and_long_names_are_recorded(tmp_path: Path) -> None:
    blob, _ = layer_bytes(make_tree(tmp_path / "a"))
    by_name = {m.name: m for m in members(blob)}
    assert by_name["bin/tool-again"].islnk()
    assert by_name["bin/tool-again"].linkname == "bin/tool"
    assert by_name["bin/alias"].issym() and by_name["bin/alias"].linkname == "tool"
    assert by_name["pipe"].isfifo()
    assert by_name["bin/tool"].mode == 0o4755
    long_name = f"{'d' * 60}/{'e' * 60}/{'f' * 90}"
    assert by_name[long_name].size == len("long name")


def test_source_date_epoch_clamps_newer_mtimes_only(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "a")
    os.utime(tree / "etc" / "hostname", (1_000, 1_000))
    blob, _ = layer_bytes(tree, source_date_epoch=1_500_000_000)
    by_name = {m.name: m for m in members(blob)}
    assert by_name["etc/hostname"].mtime == 1_000
    assert by_name["bin/tool"].mtime == 1_500_000_000


def test_sparse_file_round_trips_content_and_size_and_stays_sparse(tmp_path: Path) -> None:
    tree = tmp_path / "a"
    tree.mkdir()
    with open(tree / "sparse", "wb") as fh:
        fh.truncate(64 << 20)
        fh.seek(40 << 20)
        fh.write(b"middle")
    blob, info = layer_bytes(tree)
    assert info.uncompressed_size > 64 << 20  # type: ignore[attr-defined]
    assert len(blob) < 1 << 20
    dest = tmp_path / "out"
    apply_layer(io.BytesIO(blob), dest, mode="tree" if dest.exists() else "overlay")
    out = dest / "sparse"
    assert out.stat().st_size == 64 << 20
    with open(out, "rb") as fh:
        fh.seek((40 << 20) - 2)
        assert fh.read(10) == b"\0\0middle\0\0"
    assert out.stat().st_blocks * 512 < 1 << 20


def test_applied_layer_reproduces_the_tree(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "a")
    blob, info = layer_bytes(tree)
    dest = tmp_path / "out"
    diff_id = apply_layer(io.BytesIO(blob), dest, mode="overlay")
    assert diff_id == info.diff_id  # type: ignore[attr-defined]
    again, _ = layer_bytes(dest)
    assert again == blob  # same files, metadata and links: same bytes


def test_user_xattrs_round_trip(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "a")
    try:
        os.setxattr(tree / "etc" / "hostname", "user.note", b"\xffbinary\x00value")
    except OSError:
        pytest.skip("file system without user xattrs")
    blob, _ = layer_bytes(tree)
    dest = tmp_path / "out"
    apply_layer(io.BytesIO(blob), dest, mode="overlay")
    assert os.getxattr(dest / "etc" / "hostname", "user.note") == b"\xffbinary\x00value"


# -- refusing malicious layers ----------------------------------------------------------------


def tar_of(*entries: tuple[str, str, bytes | str]) -> io.BytesIO:
    """A tar from (type, name, content-or-linkname) triples: type is f, d, l (sym) or h."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, name, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "f":
                assert isinstance(data, bytes)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE}[kind]
            if kind in "lh":
                assert isinstance(data, str)
                info.linkname = data
            tf.addfile(info)
    buf.seek(0)
    return buf


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ((("f", "../escape", b"x"),), "'..'"),
        ((("f", "a/../../escape", b"x"),), "'..'"),
        ((("f", "/etc/escape", b"x"),), "absolute path"),
        ((("l", "link", "/"), ("f", "link/escape", b"x")), "symbolic link 'link'"),
        ((("l", "up", "../.."), ("f", "up/escape", b"x")), "symbolic link 'up'"),
        ((("d", "d", b""), ("l", "d/s", ".."), ("d", "d/s/x", b"")), "symbolic link 'd/s'"),
        ((("h", "hard", "../../etc/passwd"),), "'..'"),
        ((("l", "s", "/etc"), ("h", "hard", "s/passwd")), "symbolic link 's'"),
    ],
)
def test_entries_escaping_the_destination_are_refused_and_nothing_is_left(
    tmp_path: Path, entries: tuple[tuple[str, str, bytes | str], ...], why: str
) -> None:
    (tmp_path / "escape").mkdir()
    dest = tmp_path / "box" / "dest"
    dest.parent.mkdir()
    with pytest.raises(StoreError, match="refusing layer entry") as err:
        apply_layer(tar_of(*entries), dest, mode="overlay")
    assert why in str(err.value)
    assert entries[-1][1] in str(err.value)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # staging removed too
    assert list((tmp_path / "escape").iterdir()) == []


def test_symlink_replaced_by_directory_write_cannot_follow_it(tmp_path: Path) -> None:
    """A later symlink over an already-checked directory must be re-checked."""
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = tar_of(
        ("d", "d", b""),
        ("f", "d/one", b"1"),
        ("l", "d", str(outside)),
        ("f", "d/two", b"2"),
    )
    with pytest.raises(StoreError, match="symbolic link 'd'"):
        apply_layer(layer, dest, mode="overlay")
    assert list(outside.iterdir()) == []


def test_tree_mode_whiteouts_delete_lower_files_but_not_the_layers_own(tmp_path: Path) -> None:
    dest = tmp_path / "tree"
    (dest / "gone").mkdir(parents=True)
    (dest / "gone" / "file").write_text("x")
    (dest / "keep.txt").write_text("x")
    (dest / "opq").mkdir()
    (dest / "opq" / "old").write_text("x")
    layer = tar_of(
        ("f", ".wh.gone", b""),
        ("d", "opq", b""),
        ("f", "opq/new", b"n"),
        ("f", "opq/.wh..wh..opq", b""),
        ("f", "fresh", b"f"),
        ("f", ".wh.fresh", b""),
    )
    apply_layer(layer, dest, mode="tree")
    assert sorted(p.name for p in dest.iterdir()) == ["fresh", "keep.txt", "opq"]
    assert sorted(p.name for p in (dest / "opq").iterdir()) == ["new"]


def test_tree_mode_failure_removes_the_half_applied_tree(tmp_path: Path) -> None:
    dest = tmp_path / "tree"
    dest.mkdir()
    (dest / "base").write_text("x")
    with pytest.raises(StoreError):
        apply_layer(tar_of(("f", "ok", b"1"), ("f", "../bad", b"2")), dest, mode="tree")
    assert not dest.exists()


def test_overlay_mode_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "x").write_text("x")
    with pytest.raises(StoreError, match="not an empty directory"):
        apply_layer(tar_of(("f", "a", b"1")), dest, mode="overlay")


def test_garbage_is_not_a_layer(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="invalid layer tar"):
        apply_layer(io.BytesIO(b"this is not a tar" * 100), tmp_path / "d", mode="overlay")
    assert not (tmp_path / "d").exists()


def test_corrupt_gzip_is_refused(tmp_path: Path) -> None:
    blob = gzip.compress(tar_of(("f", "a", b"1" * 5000)).getvalue())
    broken = blob[:40] + bytes(len(blob) - 40)
    with pytest.raises(StoreError):
        apply_layer(io.BytesIO(broken), tmp_path / "d", mode="overlay")
    assert not (tmp_path / "d").exists()


def test_empty_directory_gives_an_empty_but_valid_layer(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    blob, info = layer_bytes(tmp_path / "empty")
    assert gzip.decompress(blob) == bytes(1024)
    assert apply_layer(io.BytesIO(blob), tmp_path / "out", mode="overlay") == info.diff_id  # type: ignore[attr-defined]

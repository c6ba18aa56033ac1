"""A snapshot with everything a layer can carry survives write_layer → apply_layer exactly.

Needs root: whiteouts and devices are made with mknod, owners with chown, and the
opaque flag and capabilities are trusted./security. xattrs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from strata.image.apply import apply_layer
from strata.image.layer import write_layer
from tests.integration.image_fixtures import tree_differences, tree_state

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chown, trusted xattrs)"),
]

GIB = 1 << 30
# cap_net_bind_service=ep, as `setcap` writes it (VFS_CAP_REVISION_2)
CAPABILITY = bytes.fromhex("0100000200040000000000000000000000000000")


def build_upper_dir(root: Path) -> Path:
    """An overlay upper dir: 10,000 files, a 1 GiB sparse file, links, xattrs, whiteouts."""
    root.mkdir()
    many = root / "many"
    many.mkdir()
    for i in range(100):
        sub = many / f"d{i:03}"
        sub.mkdir()
        for j in range(100):
            (sub / f"f{j:03}").write_bytes(b"%d-%d\n" % (i, j))
    with open(root / "sparse.img", "wb") as fh:
        fh.truncate(GIB)
        fh.seek(GIB // 2)
        fh.write(b"a needle in the middle")
    (root / "bin").mkdir()
    tool = root / "bin" / "tool"
    tool.write_bytes(b"#!/bin/sh\necho tool\n")
    os.chown(tool, 1000, 50)
    os.chmod(tool, 0o4755)
    os.setxattr(tool, "security.capability", CAPABILITY)
    os.setxattr(tool, "user.origin", b"\x00\xffbinary")
    os.setxattr(tool, "trusted.note", b"kept")
    os.link(tool, root / "bin" / "tool-hardlink")
    os.link(tool, root / "many" / "d050" / "tool-third-link")
    os.symlink("tool", root / "bin" / "relative-link")
    os.symlink("/etc/does-not-exist", root / "bin" / "absolute-link")
    os.mknod(root / "bin" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(root / "bin" / "loop", stat.S_IFBLK | 0o660, os.makedev(7, 0))
    os.mkfifo(root / "bin" / "fifo", 0o640)
    # deletions, in overlayfs' own format
    os.mknod(root / "deleted-file", stat.S_IFCHR, os.makedev(0, 0))
    os.mknod(root / "bin" / "deleted-too", stat.S_IFCHR, os.makedev(0, 0))
    opaque = root / "opaque-dir"
    opaque.mkdir(mode=0o750)
    os.setxattr(opaque, "trusted.overlay.opaque", b"y")
    (opaque / "only-this").write_text("new contents")
    os.chown(opaque, 1000, 1000)
    home = root / "home" / "app"
    home.mkdir(parents=True)
    os.chown(home, 1000, 1000)
    os.chmod(root / "home", 0o1777)
    for path in [*root.rglob("*"), root]:
        os.utime(path, (1_700_000_000, 1_650_000_000), follow_symlinks=False)
    return root


def test_everything_a_layer_carries_round_trips_exactly(tmp_path: Path) -> None:
    upper = build_upper_dir(tmp_path / "upper")
    blob = tmp_path / "layer.tar.gz"
    with open(blob, "wb") as out:
        info = write_layer(upper, out)
    assert info.uncompressed_size > GIB
    assert blob.stat().st_size < 16 << 20
    dest = tmp_path / "snapshot"
    with open(blob, "rb") as stream:
        diff_id = apply_layer(stream, dest, mode="overlay")
    assert diff_id == info.diff_id
    expected = tree_state(upper)
    got = tree_state(dest)
    assert len(got) > 10_000
    assert tree_differences(expected, got) == {}
    sparse = dest / "sparse.img"
    assert sparse.stat().st_blocks * 512 < 1 << 20  # still sparse on disk
    again = tmp_path / "again.tar.gz"
    with open(again, "wb") as out:
        assert write_layer(dest, out) == info  # the applied snapshot gives the same layer


def test_tree_mode_applies_whiteouts_as_deletions(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    os.mknod(upper / "old", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "etc").mkdir()
    os.setxattr(upper / "etc", "trusted.overlay.opaque", b"y")
    (upper / "etc" / "fresh").write_text("new")
    blob = tmp_path / "layer.tar"
    with open(blob, "wb") as out:
        write_layer(upper, out, compression="zstd")
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "stale").write_text("old")
    (tree / "old").write_text("old")
    (tree / "kept").write_text("kept")
    with open(blob, "rb") as stream:
        apply_layer(stream, tree, mode="tree")
    assert sorted(p.name for p in tree.iterdir()) == ["etc", "kept"]
    assert [p.name for p in (tree / "etc").iterdir()] == ["fresh"]
    assert "trusted.overlay.opaque" not in os.listxattr(tree / "etc")


def test_layer_cannot_set_overlay_xattrs(tmp_path: Path) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("dir")
        info.type = tarfile.DIRTYPE
        info.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/elsewhere"}
        tf.addfile(info)
    buf.seek(0)
    apply_layer(buf, tmp_path / "snap", mode="overlay")
    assert os.listxattr(tmp_path / "snap" / "dir") == []

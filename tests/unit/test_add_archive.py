"""ADD of local archives: detected by content, extracted safely, owners kept unless --chown."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from strata.errors import StrataError
from strata.worker.archive import extract_archive, is_archive
from strata.worker.fileops import CopyOptions, copy

ROOT = os.geteuid() == 0


def entry(name: str, data: bytes = b"", **attrs: object) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 1_500_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    if info.type != tarfile.REGTYPE:
        info.size = 0
        return info, None
    return info, data


def tar_bytes(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


SIMPLE = [
    entry("dir", type=tarfile.DIRTYPE, mode=0o750),
    entry("dir/file.txt", b"hello", uid=1000, gid=1001),
    entry("dir/link", type=tarfile.SYMTYPE, linkname="file.txt"),
    # a hard link entry's owner is applied to the shared inode too, so it matches
    entry("dir/hard", type=tarfile.LNKTYPE, linkname="dir/file.txt", uid=1000, gid=1001),
    entry(".wh.not-a-whiteout", b"plain"),
]

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda b: b,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    root.mkdir()
    return root


@pytest.fixture
def dst(tmp_path: Path) -> Path:
    root = tmp_path / "dst"
    root.mkdir()
    return root


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_archives_are_detected_by_content_and_extracted(kind: str, ctx: Path, dst: Path) -> None:
    (ctx / "bundle.bin").write_bytes(COMPRESSORS[kind](tar_bytes(SIMPLE)))
    assert is_archive(ctx / "bundle.bin")
    copy(ctx, ["bundle.bin"], dst, "/opt", options=CopyOptions(unpack=True, owner_reset=True))
    assert (dst / "opt/dir/file.txt").read_bytes() == b"hello"
    assert os.readlink(dst / "opt/dir/link") == "file.txt"
    assert os.stat(dst / "opt/dir/hard").st_ino == os.stat(dst / "opt/dir/file.txt").st_ino
    assert (dst / "opt/.wh.not-a-whiteout").read_bytes() == b"plain"
    assert stat.S_IMODE(os.stat(dst / "opt/dir").st_mode) == 0o750
    assert os.stat(dst / "opt/dir").st_mtime == 1_500_000_000
    assert stat.S_IMODE(os.stat(dst / "opt").st_mode) == 0o755


def test_non_archives_are_copied_as_files(ctx: Path, dst: Path) -> None:
    (ctx / "data.tar.gz").write_bytes(b"not really a tarball, just text" * 40)
    (ctx / "empty.tar").write_bytes(b"\0" * 1024)
    assert not is_archive(ctx / "data.tar.gz")
    assert not is_archive(ctx / "empty.tar")
    copy(ctx, ["data.tar.gz", "empty.tar"], dst, "/in/", options=CopyOptions(unpack=True))
    assert (dst / "in/data.tar.gz").is_file()
    assert (dst / "in/empty.tar").is_file()


def test_copy_without_unpack_keeps_the_archive_file(ctx: Path, dst: Path) -> None:
    (ctx / "a.tar").write_bytes(tar_bytes(SIMPLE))
    copy(ctx, ["a.tar"], dst, "/in/")
    assert (dst / "in/a.tar").read_bytes() == tar_bytes(SIMPLE)


def test_archive_inside_a_directory_source_is_not_extracted(ctx: Path, dst: Path) -> None:
    (ctx / "pkg").mkdir()
    (ctx / "pkg/a.tar").write_bytes(tar_bytes(SIMPLE))
    copy(ctx, ["pkg"], dst, "/in", options=CopyOptions(unpack=True))
    assert (dst / "in/a.tar").is_file()


@pytest.mark.skipif(not ROOT, reason="needs root to set owners")
def test_entry_owners_are_kept_unless_chown(ctx: Path, dst: Path) -> None:
    (ctx / "a.tar").write_bytes(tar_bytes(SIMPLE))
    copy(ctx, ["a.tar"], dst, "/kept", options=CopyOptions(unpack=True, owner_reset=True))
    st = os.stat(dst / "kept/dir/file.txt")
    assert (st.st_uid, st.st_gid) == (1000, 1001)
    copy(ctx, ["a.tar"], dst, "/owned", options=CopyOptions(unpack=True, chown=(7, 8)))
    st = os.lstat(dst / "owned/dir/link")
    assert (st.st_uid, st.st_gid) == (7, 8)
    assert os.stat(dst / "owned").st_uid == 7


def test_implied_parent_directories_are_created_0755(dst: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    archive.write_bytes(tar_bytes([entry("deep/er/file", b"x")]))
    extract_archive(archive, dst)
    assert stat.S_IMODE(os.stat(dst / "deep/er").st_mode) == 0o755
    assert (dst / "deep/er/file").read_bytes() == b"x"


def test_extraction_merges_into_existing_directories_and_replaces_files(
    dst: Path, tmp_path: Path
) -> None:
    (dst / "dir").mkdir()
    (dst / "dir/existing").write_text("stays")
    (dst / "dir/file.txt").mkdir()  # a directory where the archive has a file
    archive = tmp_path / "a.tar"
    archive.write_bytes(tar_bytes(SIMPLE))
    extract_archive(archive, dst)
    assert (dst / "dir/existing").read_text() == "stays"
    assert (dst / "dir/file.txt").read_bytes() == b"hello"


# -- malicious archives -------------------------------------------------------------------------


def test_dotdot_entry_is_rejected(dst: Path, tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    archive.write_bytes(tar_bytes([entry("a/../../escaped", b"x")]))
    with pytest.raises(StrataError, match="invalid entry name"):
        extract_archive(archive, dst)
    assert not (tmp_path / "escaped").exists()


def test_absolute_entry_lands_inside(dst: Path, tmp_path: Path) -> None:
    archive = tmp_path / "abs.tar"
    archive.write_bytes(tar_bytes([entry(str(tmp_path / "abs-target"), b"x")]))
    extract_archive(archive, dst)
    assert not (tmp_path / "abs-target").exists()
    assert (dst / str(tmp_path / "abs-target").lstrip("/")).read_bytes() == b"x"


def test_writing_through_a_symlink_entry_stays_inside(dst: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = tmp_path / "link.tar"
    archive.write_bytes(
        tar_bytes(
            [
                entry("esc", type=tarfile.SYMTYPE, linkname=str(outside)),
                entry("esc/pwned", b"x"),
                entry("rel", type=tarfile.SYMTYPE, linkname="../../../../.."),
                entry("rel/pwned2", b"y"),
            ]
        )
    )
    extract_archive(archive, dst)
    assert list(outside.iterdir()) == []
    assert (dst / str(outside).lstrip("/") / "pwned").read_bytes() == b"x"
    assert (dst / "pwned2").read_bytes() == b"y"


def test_absolute_symlink_in_destination_resolves_inside(dst: Path, tmp_path: Path) -> None:
    # BuildKit's testDockerfileAddArchiveThroughAbsoluteSymlink: var/run -> /run.
    (dst / "run").mkdir()
    (dst / "var").mkdir()
    os.symlink("/run", dst / "var/run")
    archive = tmp_path / "payload.tar"
    archive.write_bytes(
        tar_bytes(
            [
                entry("var/run/act/", type=tarfile.DIRTYPE, mode=0o755),
                entry("var/run/act/HEAD", b"ref: main\n"),
                entry("var/run/act/HEAD.link", type=tarfile.LNKTYPE, linkname="var/run/act/HEAD"),
            ]
        )
    )
    extract_archive(archive, dst)
    assert (dst / "run/act/HEAD").read_bytes() == b"ref: main\n"
    assert os.stat(dst / "run/act/HEAD.link").st_ino == os.stat(dst / "run/act/HEAD").st_ino


def test_hard_link_to_outside_is_rejected(dst: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s")
    archive = tmp_path / "hard.tar"
    archive.write_bytes(tar_bytes([entry("h", type=tarfile.LNKTYPE, linkname="../secret")]))
    with pytest.raises(StrataError, match="invalid hardlink target"):
        extract_archive(archive, dst)
    archive.write_bytes(tar_bytes([entry("h", type=tarfile.LNKTYPE, linkname=str(secret))]))
    with pytest.raises(StrataError, match="not found"):
        extract_archive(archive, dst)
    assert secret.stat().st_nlink == 1


def test_truncated_archive_is_an_error(dst: Path, tmp_path: Path) -> None:
    data = tar_bytes([entry("big", b"x" * 100_000)])
    archive = tmp_path / "cut.tar"
    archive.write_bytes(data[:5000])
    assert is_archive(archive)
    with pytest.raises(StrataError, match="failed to extract"):
        extract_archive(archive, dst)

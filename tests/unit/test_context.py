"""The build context: .dockerignore filtering, source resolution, and `build -` from stdin."""

from __future__ import annotations

import gzip
import io
import lzma
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from strata.dockerfile.ignore import PatternMatcher, read_ignore_patterns
from strata.errors import PatternSyntaxError, SourceNotFoundError, StrataError
from strata.worker.context import (
    BuildContext,
    ScanStats,
    clean_path,
    compile_match,
    read_stdin_context,
    resolve_in_root,
    split_wildcards,
)


def write(root: Path, rel: str, data: str = "") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    for rel in (
        "Dockerfile",
        "src/app.py",
        "src/test_app.py",
        "node_modules/x/index.js",
        "build/out.o",
        "build/keep.txt",
        "notes.md",
    ):
        write(root, rel, rel)
    return root


def test_files_honour_ignore_patterns_and_reinclusion(ctx: Path) -> None:
    patterns = read_ignore_patterns("node_modules\nbuild\n!build/keep.txt\n*.md\n")
    context = BuildContext(ctx, ignore=PatternMatcher(patterns))
    assert sorted(context.files()) == [
        "Dockerfile",
        "build",
        "build/keep.txt",
        "src",
        "src/app.py",
        "src/test_app.py",
    ]


def test_excluded_directory_is_not_read_when_nothing_can_be_reincluded(ctx: Path) -> None:
    for i in range(50):
        write(ctx, f"node_modules/pkg{i}/index.js")
    stats = ScanStats()
    context = BuildContext(ctx, ignore=PatternMatcher(["node_modules"]))
    assert not any(f.startswith("node_modules") for f in context.files(stats))
    # the root's 5 entries, src's 2 and build's 2: nothing below node_modules
    assert stats.lstat_calls == 9
    stats = ScanStats()
    reincluding = BuildContext(ctx, ignore=PatternMatcher(["node_modules", "!**/pkg7"]))
    assert "node_modules/pkg7/index.js" in list(reincluding.files(stats))
    assert stats.lstat_calls > 9


def test_resolve_cleans_paths_and_expands_wildcards(ctx: Path) -> None:
    context = BuildContext(ctx, ignore=PatternMatcher(["src/test_*"]))
    assert context.resolve("/../src/./app.py") == ["/src/app.py"]
    assert context.resolve("src/*.py") == ["/src/app.py"]
    assert context.resolve("*.nothing") == []
    with pytest.raises(SourceNotFoundError, match=r'^"/src/test_app.py": not found$'):
        context.resolve("src/test_app.py")


def test_context_files_are_owned_by_root_for_the_build(ctx: Path) -> None:
    assert BuildContext(ctx).owner_reset is True
    assert BuildContext(ctx, ignore=PatternMatcher(["*.md"])).is_ignored("notes.md")


def test_clean_path_stops_at_the_root() -> None:
    assert clean_path("../../a/./b/../c/") == "/a/c"
    assert clean_path("") == "/"


def test_split_wildcards_at_first_wildcard_segment() -> None:
    assert split_wildcards("/a/b*/c") == ("/a", "b*/c")
    assert split_wildcards("a/b") == ("/a/b", "")
    assert split_wildcards(r"a/x\*y/z?") == (r"/a/x\*y", "z?")


@pytest.mark.parametrize(
    ("pattern", "name", "matched"),
    [
        ("*.txt", "a.txt", True),
        ("*.txt", "d/a.txt", False),
        ("?", "/", False),
        ("[a-c]x", "bx", True),
        ("[^a-c]x", "dx", True),
        ("[^a-c]x", "ax", False),
        (r"arr[[]0]", "arr[0]", True),
        (r"a\*b", "a*b", True),
        (r"a\*b", "axb", False),
    ],
)
def test_go_path_match(pattern: str, name: str, matched: bool) -> None:
    assert bool(compile_match(pattern).fullmatch(name)) is matched


@pytest.mark.parametrize("pattern", ["[", "[]a]", "a\\", "[z-a]", "[a-]"])
def test_bad_patterns_are_go_syntax_errors(pattern: str) -> None:
    with pytest.raises(PatternSyntaxError, match=r"^syntax error in pattern$"):
        compile_match(pattern)


def test_resolve_in_root_treats_the_root_as_slash(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink("/real", tmp_path / "abs")
    os.symlink("../../../../real", tmp_path / "rel")
    os.symlink("loop", tmp_path / "loop")
    assert resolve_in_root(tmp_path, "/abs/x") == tmp_path / "real/x"
    assert resolve_in_root(tmp_path, "rel") == tmp_path / "real"
    assert resolve_in_root(tmp_path, "abs", follow_final=False) == tmp_path / "abs"
    with pytest.raises(StrataError, match="too many levels of symbolic links"):
        resolve_in_root(tmp_path, "loop")


# -- stdin ------------------------------------------------------------------------------------


def tar_bytes(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_entry(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_600_000_000
    info.uid = info.gid = 4242
    return info, data


def test_dockerfile_alone_on_stdin_gives_an_empty_context(tmp_path: Path) -> None:
    text = b"FROM scratch\nCOPY . /\n"
    result = read_stdin_context(io.BytesIO(text), tmp_path / "ctx")
    assert result.dockerfile == text
    assert list(result.directory.iterdir()) == []


def test_tar_on_stdin_is_the_context(tmp_path: Path) -> None:
    data = tar_bytes(
        [file_entry("Dockerfile", b"FROM scratch\n"), file_entry("a/b.sh", b"x", 0o755)]
    )
    result = read_stdin_context(io.BytesIO(data), tmp_path / "ctx")
    assert result.dockerfile is None
    assert (result.directory / "Dockerfile").read_bytes() == b"FROM scratch\n"
    st = os.stat(result.directory / "a/b.sh")
    assert st.st_mode & 0o777 == 0o755
    assert st.st_mtime == 1_600_000_000


def test_gzipped_tar_on_stdin_is_the_context(tmp_path: Path) -> None:
    data = gzip.compress(tar_bytes([file_entry("f", b"zipped")]))
    result = read_stdin_context(io.BytesIO(data), tmp_path / "ctx")
    assert (result.directory / "f").read_bytes() == b"zipped"


def test_stdin_tar_cannot_write_outside_the_context(tmp_path: Path) -> None:
    link = tarfile.TarInfo("esc")
    link.type = tarfile.SYMTYPE
    link.linkname = str(tmp_path)
    data = tar_bytes(
        [
            file_entry("../../evil", b"1"),
            file_entry("/abs", b"2"),
            (link, None),
            file_entry("esc/through-link", b"3"),
        ]
    )
    dest = tmp_path / "ctx"
    read_stdin_context(io.BytesIO(data), dest)
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "through-link").exists()
    assert (dest / "evil").read_bytes() == b"1"
    assert (dest / "abs").read_bytes() == b"2"
    assert (dest / str(tmp_path).lstrip("/") / "through-link").read_bytes() == b"3"


def test_corrupt_compressed_stdin_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StrataError, match="failed to read context from stdin"):
        read_stdin_context(io.BytesIO(b"\x1f\x8b\x08" + b"\0" * 600), tmp_path / "ctx")


@pytest.mark.parametrize(
    "corrupt",
    [
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 600,  # gzip, bad deflate
        b"\x28\xb5\x2f\xfd" + b"\xff" * 600,  # zstd frame with a bad header
        b"BZh9" + b"\xff" * 600,  # bzip2
        b"\xfd7zXZ\x00" + b"\xff" * 600,  # xz
    ],
    ids=["gzip", "zstd", "bzip2", "xz"],
)
def test_corrupt_compressed_stdin_of_any_format_is_one_strata_error(
    tmp_path: Path, corrupt: bytes
) -> None:
    with pytest.raises(StrataError, match="failed to read context from stdin"):
        read_stdin_context(io.BytesIO(corrupt), tmp_path / "ctx")


def test_zstd_and_xz_compressed_tars_on_stdin_are_the_context(tmp_path: Path) -> None:
    tar = tar_bytes([file_entry("f", b"packed")])
    for index, data in enumerate([zstandard.compress(tar), lzma.compress(tar)]):
        result = read_stdin_context(io.BytesIO(data), tmp_path / f"ctx{index}")
        assert (result.directory / "f").read_bytes() == b"packed"


def test_stdin_gzip_needs_its_deflate_byte_as_moby_reads_it() -> None:
    import io

    from strata.worker.context import decompressed

    assert decompressed(io.BytesIO(), b"\x1f\x8b\x07rest") is None
    assert decompressed(io.BytesIO(b""), b"\x1f\x8b\x08rest") is not None
    assert decompressed(io.BytesIO(b""), b"\x28\xb5\x2f\xfd..") is not None
    assert decompressed(io.BytesIO(b""), b"plain tar") is None

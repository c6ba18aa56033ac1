"""Source trees as COPY, ADD and the content hasher see them.

A COPY source names a path inside some tree on this machine: the build context directory,
a stage's snapshot, an extracted tar. This module owns the rules every reader of such a
tree shares, so the copy and its cache key can never disagree about which files exist:

- paths are cleaned against the tree's root (`/../a` is `/a`), and symlinks are resolved
  as if the root were `/`, so nothing reachable through a source path leaves the tree;
- wildcards follow Go's `path.Match`, split at the first segment holding a wildcard
  (BuildKit `cache/contenthash/checksum.go` `splitWildcards`, fsutil `copy/copy.go`);
- `.dockerignore`d context paths are absent, and `--exclude`/`--parents` patterns select
  entries relative to each source, with parent directories kept for surviving entries.

`BuildContext` is the build context itself: a directory plus its ignore matcher, whose
files arrive owned by 0:0 (the BuildKit client resets owners before sending). The
Dockerfile-on-stdin and tar-on-stdin forms of `docker build -` land here too.

Pattern matchers are passed in, never built here: the worker layer does not import the
Dockerfile frontend that owns `.dockerignore` syntax (matching: `strata.patterns`).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast

import zstandard

from strata.errors import PatternSyntaxError, SourceNotFoundError, StoreError, StrataError
from strata.gotext import go_path_clean
from strata.image.compress import Sniffed, open_decompressed, sniff, sniff_archive

# Linux's own limit on symlinks followed while resolving one path (MAXSYMLINKS).
MAX_SYMLINKS = 40


class PathMatcher(Protocol):
    """What this module needs from a `.dockerignore`-style matcher (`strata.patterns`)."""

    def matches(self, rel_path: str) -> bool: ...

    @property
    def has_exclusions(self) -> bool: ...

    def may_skip_directory(self, rel_dir: str) -> bool: ...


# -- paths ---------------------------------------------------------------------------------


def clean_path(path: str) -> str:
    """`path` as an absolute, clean slash path; `..` stops at the root (Go `path.Join("/", p)`)."""
    return go_path_clean("/" + path)


def contains_wildcards(name: str) -> bool:
    """True if `name` has an unescaped `*`, `?` or `[`."""
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "*?[":
            return True
        i += 1
    return False


def split_wildcards(path: str) -> tuple[str, str]:
    """Split a cleaned path into its literal prefix and the pattern from the first wildcard.

    `/a/b*/c` → (`/a`, `b*/c`); a path without wildcards → (path, ``).
    """
    prefix: list[str] = []
    rest: list[str] = []
    for part in clean_path(path).split("/")[1:]:
        if rest or contains_wildcards(part):
            rest.append(part)
        else:
            prefix.append(part)
    return "/" + "/".join(prefix), "/".join(rest)


def compile_match(pattern: str) -> re.Pattern[str]:
    """A regex equal to Go's `path.Match(pattern, name)`: `*` and `?` never cross `/`."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "\\":
            if i + 1 >= n:
                raise PatternSyntaxError()
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif ch == "[":
            i += 1
            negate = i < n and pattern[i] == "^"
            if negate:
                i += 1
            ranges: list[str] = []
            while True:
                if i < n and pattern[i] == "]" and ranges:
                    i += 1
                    break
                lo, i = _class_char(pattern, i)
                hi = lo
                if i < n and pattern[i] == "-":
                    hi, i = _class_char(pattern, i + 1)
                    if hi < lo:
                        raise PatternSyntaxError()
                ranges.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
            out.append("[" + ("^" if negate else "") + "".join(ranges) + "]")
        else:
            out.append(re.escape(ch))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    # Go's getEsc: '-' and ']' must be escaped inside a class; a class must be closed.
    if i >= len(pattern) or pattern[i] in "-]":
        raise PatternSyntaxError()
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise PatternSyntaxError()
    return pattern[i], i + 1


def resolve_in_root(root: Path, path: str, *, follow_final: bool = True) -> Path:
    """The host path of `path` inside `root`, resolving symlinks as if `root` were `/`.

    An absolute link target restarts at `root`; `..` stops at `root`. Components that do
    not exist are joined lexically. With `follow_final=False` a final symlink is kept.
    This is containerd's `fs.RootPath` behaviour, which BuildKit uses for every path it
    reads or writes inside a snapshot.
    """
    pending = [p for p in path.split("/") if p not in ("", ".")]
    pending.reverse()
    current: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if current:
                current.pop()
            continue
        if not pending and not follow_final:
            current.append(part)
            break
        candidate = root.joinpath(*current, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            current.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            current.append(part)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise StrataError(f"{clean_path(path)}: too many levels of symbolic links")
        target = os.readlink(candidate)
        if target.startswith("/"):
            current = []
        parts = [p for p in target.split("/") if p not in ("", ".")]
        pending.extend(reversed(parts))
    return root.joinpath(*current)


def rel_to_root(root: Path, host_path: Path) -> str:
    """`host_path` relative to `root` as a slash path, `` for the root itself."""
    rel = os.path.relpath(host_path, root)
    return "" if rel == "." else rel


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


# -- filtered trees ------------------------------------------------------------------------


@dataclass
class ScanStats:
    """Counters a caller can read to see what a scan cost (tests and benchmarks use them)."""

    lstat_calls: int = 0
    files_read: int = 0
    bytes_read: int = 0
    cache_hits: int = 0


@dataclass(frozen=True)
class TreeFilter:
    """Which entries of a source survive.

    `ignore` is relative to the tree's root (the `.dockerignore` of a context); `include`
    and `exclude` are relative to the source being read (`--parents`, `--exclude`). An
    entry is selected when not ignored, matched by `include` (if any) and not matched by
    `exclude`; a directory that is not selected is kept only to hold selected entries.
    """

    ignore: PathMatcher | None = None
    include: PathMatcher | None = None
    exclude: PathMatcher | None = None

    @property
    def empty(self) -> bool:
        return self.ignore is None and self.include is None and self.exclude is None


@dataclass
class TreeNode:
    """One entry of a scanned source: its host path, lstat, and kept children (sorted)."""

    name: str
    path: str  # host path (a str: trees have thousands of nodes and Path is slow)
    st: os.stat_result
    selected: bool = True
    children: list[TreeNode] | None = None

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    def walk(self, rel: str = "") -> Iterator[tuple[str, TreeNode]]:
        """(relative path, node) for this node and every kept descendant, parents first."""
        yield rel, self
        for child in self.children or ():
            yield from child.walk(_join(rel, child.name))


def _name_key(name: str) -> bytes:
    return os.fsencode(name)


def list_dir(path: str | Path, stats: ScanStats | None) -> list[tuple[str, os.stat_result]]:
    """The entries of a directory with their lstat, in byte order of their names."""
    found: list[tuple[str, os.stat_result]] = []
    with os.scandir(path) as it:
        for entry in it:
            found.append((entry.name, entry.stat(follow_symlinks=False)))
    if stats is not None:
        stats.lstat_calls += len(found)
    found.sort(key=lambda item: _name_key(item[0]))
    return found


def scan_tree(
    path: Path,
    st: os.stat_result,
    *,
    root_rel: str,
    tree_filter: TreeFilter = TreeFilter(),
    stats: ScanStats | None = None,
) -> TreeNode:
    """Read the subtree at `path` (whose own lstat is `st`) through `tree_filter`.

    `root_rel` is `path` relative to the tree root, for the ignore matcher. The source
    itself is always kept: it was named, and its selection is the caller's business.
    """
    node = TreeNode(name=path.name, path=str(path), st=st, selected=tree_filter.include is None)
    if stat.S_ISDIR(st.st_mode):
        node.children = _scan_children(node.path, root_rel, "", tree_filter, stats)
    return node


def _scan_children(
    path: str, root_rel: str, src_rel: str, tf: TreeFilter, stats: ScanStats | None
) -> list[TreeNode]:
    kept: list[TreeNode] = []
    for name, st in list_dir(path, stats):
        r_rel = _join(root_rel, name)
        s_rel = _join(src_rel, name)
        ignored = tf.ignore is not None and tf.ignore.matches(r_rel)
        included = tf.include is None or tf.include.matches(s_rel)
        excluded = tf.exclude is not None and tf.exclude.matches(s_rel)
        node = TreeNode(name=name, path=f"{path}/{name}", st=st, selected=not (ignored or excluded))
        node.selected = node.selected and included
        if stat.S_ISDIR(st.st_mode):
            skip = (ignored and tf.ignore is not None and tf.ignore.may_skip_directory(r_rel)) or (
                excluded and tf.exclude is not None and tf.exclude.may_skip_directory(s_rel)
            )
            node.children = [] if skip else _scan_children(node.path, r_rel, s_rel, tf, stats)
            if node.selected or node.children:
                kept.append(node)
        elif node.selected:
            kept.append(node)
    return kept


def is_visible(root: Path, host_path: Path, st: os.stat_result, ignore: PathMatcher | None) -> bool:
    """Whether an existing path of a tree survives its ignore matcher.

    An ignored directory still exists when a `!` pattern re-includes something inside it:
    the client sends the parents of every file it sends.
    """
    if ignore is None:
        return True
    rel = rel_to_root(root, host_path)
    if rel == "" or not ignore.matches(rel):
        return True
    if not stat.S_ISDIR(st.st_mode) or ignore.may_skip_directory(rel):
        return False
    return bool(_scan_children(str(host_path), rel, "", TreeFilter(ignore=ignore), None))


def lookup_source(
    root: Path, path: str, *, follow_final: bool, ignore: PathMatcher | None = None
) -> tuple[Path, os.stat_result]:
    """Resolve a literal source path in `root`; raise `SourceNotFoundError` when absent."""
    cleaned = clean_path(path)
    host = resolve_in_root(root, cleaned, follow_final=follow_final)
    try:
        st = os.lstat(host)
    except (FileNotFoundError, NotADirectoryError):
        raise SourceNotFoundError(cleaned) from None
    if not is_visible(root, host, st, ignore):
        raise SourceNotFoundError(cleaned)
    return host, st


@dataclass(frozen=True)
class WildcardMatch:
    """A path matched by a wildcard source: as written under the prefix, and on the host."""

    path: str  # clean absolute path inside the tree, prefix kept as written
    host: Path
    st: os.stat_result


def resolve_wildcards(
    root: Path,
    source: str,
    *,
    ignore: PathMatcher | None = None,
    stats: ScanStats | None = None,
) -> list[WildcardMatch]:
    """Every path matching a wildcard source, in lexical order; none is not an error.

    The literal prefix is resolved (symlinks followed); below it, each entry whose path
    relative to the prefix matches the pattern is a match, and a matched directory is
    not searched further (fsutil `copy.ResolveWildcards`).
    """
    prefix, pattern = split_wildcards(source)
    regex = compile_match(pattern)
    depth = pattern.count("/") + 1
    base = resolve_in_root(root, prefix)
    try:
        if not stat.S_ISDIR(os.stat(base).st_mode):
            return []
    except (FileNotFoundError, NotADirectoryError):
        return []
    matches: list[WildcardMatch] = []

    def visit(directory: Path, rel: str, level: int) -> None:
        for name, st in list_dir(directory, stats):
            child_rel = _join(rel, name)
            host = directory / name
            if ignore is not None and not is_visible(root, host, st, ignore):
                continue
            if regex.fullmatch(child_rel):
                shown = prefix.rstrip("/") + "/" + child_rel
                matches.append(WildcardMatch(path=shown, host=host, st=st))
            elif stat.S_ISDIR(st.st_mode) and level < depth:
                visit(host, child_rel, level + 1)

    visit(base, "", 1)
    return matches


# -- the build context ---------------------------------------------------------------------


@dataclass
class BuildContext:
    """The build context: a directory whose ignored paths do not exist for the build.

    Files of a context reach the build owned by 0:0 whatever their owner on this machine
    (`owner_reset`), as BuildKit's client resets them before sending.
    """

    root: Path
    ignore: PathMatcher | None = None
    owner_reset: bool = field(default=True, init=False)

    def tree_filter(self) -> TreeFilter:
        return TreeFilter(ignore=self.ignore)

    def files(self, stats: ScanStats | None = None) -> Iterator[str]:
        """Relative paths of everything sent (directories included), parents first.

        Excluded directories are not read when the matcher says nothing inside them can
        be re-included (`may_skip_directory`).
        """
        st = os.lstat(self.root)
        tree = scan_tree(self.root, st, root_rel="", tree_filter=self.tree_filter(), stats=stats)
        for rel, _node in tree.walk():
            if rel:
                yield rel

    def is_ignored(self, rel_path: str) -> bool:
        """True if the path (relative to the context root) is not part of the context."""
        rel = clean_path(rel_path).lstrip("/")
        return bool(rel) and self.ignore is not None and self.ignore.matches(rel)

    def resolve(self, source: str) -> list[str]:
        """The context paths a COPY source names: the cleaned path, or every wildcard match.

        A missing literal path raises `SourceNotFoundError`; a wildcard matching nothing
        gives an empty list.
        """
        if contains_wildcards(source):
            return [m.path for m in resolve_wildcards(self.root, source, ignore=self.ignore)]
        lookup_source(self.root, source, follow_final=True, ignore=self.ignore)
        return [clean_path(source)]


# -- contexts from stdin -------------------------------------------------------------------


def decompressed(stream: IO[bytes], head: bytes) -> IO[bytes] | None:
    """A reader of `stream` decompressed by the algorithm its first bytes announce.

    None when `head` shows no known compression (gzip, bzip2, xz, zstd), as in
    moby/go-archive's `DecompressStream`.
    """
    reader: object
    kind = sniff_archive(head)
    if kind == "gzip":
        reader = gzip.GzipFile(fileobj=stream, mode="rb")
    elif kind == "bzip2":
        reader = bz2.BZ2File(stream, mode="rb")
    elif kind == "xz":
        reader = lzma.LZMAFile(stream, mode="rb")  # noqa: SIM115 - the caller owns it
    elif kind == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(stream)
    else:
        return None
    return cast(IO[bytes], reader)


def looks_like_tar(head: bytes) -> bool:
    """True if `head` (at least 512 bytes) starts with a valid tar header block."""
    if len(head) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(head[: tarfile.BLOCKSIZE], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


@dataclass(frozen=True)
class StdinContext:
    """What `docker build -` received: a context directory, and the Dockerfile if stdin held one."""

    directory: Path
    dockerfile: bytes | None


# What moby/go-archive's `DecompressStream` accepts, so `build -` takes the same inputs.
STDIN_COMPRESSIONS: tuple[Sniffed, ...] = ("gzip", "bzip2", "xz", "zstd", "none")


def read_stdin_context(stream: IO[bytes], dest_dir: Path) -> StdinContext:
    """Turn `build -` input into a context, as buildx does.

    A (possibly compressed) tar stream is the context, extracted into `dest_dir`. Anything
    else is the Dockerfile itself and the context is empty (`dest_dir` left empty).
    """
    buffered = io.BufferedReader(cast(BinaryIO, stream), buffer_size=1 << 16)  # type: ignore[type-var]
    head = buffered.peek(tarfile.BLOCKSIZE)[: tarfile.BLOCKSIZE]
    dest_dir.mkdir(parents=True, exist_ok=True)
    if sniff(head) != "none":
        # One decompressor for layers, imports and contexts: its format errors are
        # StoreErrors, which extract_context_tar words as a failed context read.
        try:
            reader, _ = open_decompressed(cast(BinaryIO, buffered), allowed=STDIN_COMPRESSIONS)
            extract_context_tar(reader, dest_dir)
        except StoreError as exc:
            raise StrataError(f"failed to read context from stdin: {exc.message}") from exc
        return StdinContext(directory=dest_dir, dockerfile=None)
    if looks_like_tar(head):
        extract_context_tar(buffered, dest_dir)
        return StdinContext(directory=dest_dir, dockerfile=None)
    return StdinContext(directory=dest_dir, dockerfile=buffered.read())


def extract_context_tar(stream: IO[bytes], dest_dir: Path) -> None:
    """Extract an (uncompressed) context tar into `dest_dir`, never writing outside it.

    Owners are not applied (context files are 0:0 to the build anyway). Entry names are
    cleaned against `dest_dir`; a hard link must name an entry already extracted; link
    and directory paths are resolved inside `dest_dir`. Devices are skipped.
    """
    dirs: list[tuple[Path, tarfile.TarInfo]] = []
    try:
        with tarfile.open(fileobj=stream, mode="r|", errors="surrogateescape") as tf:
            for member in tf:
                name = clean_path(member.name).lstrip("/")
                if not name:
                    continue
                parent = resolve_in_root(dest_dir, os.path.dirname(name))
                parent.mkdir(parents=True, exist_ok=True)
                target = parent / os.path.basename(name)
                _remove_unless_both_dirs(target, member.isdir())
                if member.isdir():
                    target.mkdir(exist_ok=True)
                    dirs.append((target, member))
                    continue
                if member.issym():
                    os.symlink(member.linkname, target)
                elif member.islnk():
                    source = resolve_in_root(
                        dest_dir, clean_path(member.linkname), follow_final=False
                    )
                    os.link(source, target, follow_symlinks=False)
                elif member.isfile():
                    data = tf.extractfile(member)
                    assert data is not None
                    with open(target, "wb") as out:
                        while chunk := data.read(1 << 20):
                            out.write(chunk)
                elif member.isfifo():
                    os.mkfifo(target)
                else:
                    continue
                if not member.issym():
                    os.chmod(target, member.mode & 0o7777)
                os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
    except (tarfile.TarError, EOFError, OSError, zstandard.ZstdError) as exc:
        raise StrataError(f"failed to read context from stdin: {exc}") from exc
    for path, member in reversed(dirs):
        os.chmod(path, member.mode & 0o7777)
        os.utime(path, (member.mtime, member.mtime))


def _remove_unless_both_dirs(target: Path, new_is_dir: bool) -> None:
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if new_is_dir:
            return
        shutil.rmtree(target)
    else:
        target.unlink()

"""Content checksums of COPY/ADD sources and bind-mount selectors (BuildKit `cache/contenthash`).

A step that reads files is keyed by what it reads, not by when the files were touched.
The digest of one entry covers what BuildKit's tarsum header covers (`tarsum.go`,
`filehash.go`): type, permission and setuid/setgid/sticky bits, uid/gid (0 for build
context files), size of regular files, symlink target, device numbers and xattrs (not
`security.*` except `security.capability`, not `system.*`), then the bytes of regular
files. Times and owner names are not covered. A directory's digest is its own header
plus the sorted (name, digest) of its children, so adding, removing or renaming anything
changes it. The digests are not byte-identical to BuildKit's; the invariants are.

Reading every file on every build would make a large context slow, so `DigestCache`
remembers each file's content digest (and its xattrs) in the state root's metadata,
keyed by the file's path, device, inode, size, mtime and ctime: an unchanged context
costs one `lstat` per entry and no reads. A file changed within `racy_window_ns` of
being hashed is not remembered, since a second write in the same timestamp tick would
otherwise go unseen (git's "racy clean" problem).
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from strata.errors import SourceNotFoundError
from strata.store.root import StateRoot
from strata.worker.context import (
    PathMatcher,
    ScanStats,
    TreeFilter,
    TreeNode,
    clean_path,
    contains_wildcards,
    lookup_source,
    rel_to_root,
    resolve_in_root,
    resolve_wildcards,
    scan_tree,
    split_wildcards,
)

EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"").hexdigest()
_EMPTY_HEX = hashlib.sha256(b"").hexdigest().encode()

_READ_CHUNK = 1 << 20


class _Known(NamedTuple):
    """What the cache (or this call) knows about one path, valid while its stat matches."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    content: bytes
    xattrs: bytes

    def still_valid(self, st: os.stat_result) -> bool:
        return (
            self.ino == st.st_ino
            and self.dev == st.st_dev
            and self.size == st.st_size
            and self.mtime_ns == st.st_mtime_ns
            and self.ctime_ns == st.st_ctime_ns
        )


class DigestCache:
    """File digests remembered across builds in the state root (table `contenthash_files`,
    which this class owns; see `store/schema.py`).

    One instance per state root; each `checksum` call reads the rows under the paths it
    visits in one query and writes what it learned in one transaction.
    """

    def __init__(self, root: StateRoot, *, racy_window_ns: int = 1_000_000_000) -> None:
        self.root = root
        self.racy_window_ns = racy_window_ns
        self._touched = False

    def touch(self) -> None:
        """Record a use (once per instance, which is once per build): the build
        context's du record shows it, and `prune --filter until=` keeps it
        (table `contenthash_usage`)."""
        if self._touched:
            return
        self._touched = True
        now = time.time()
        with self.root.transaction() as db:
            db.execute(
                "INSERT INTO contenthash_usage (id, created, last_used) VALUES (1, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET last_used = excluded.last_used",
                (now, now),
            )

    def used(self) -> tuple[float | None, float | None]:
        """(created, last used) of the remembered digests; None when never recorded."""
        row = (
            self.root.connect()
            .execute("SELECT created, last_used FROM contenthash_usage WHERE id = 1")
            .fetchone()
        )
        return (None, None) if row is None else (float(row[0]), float(row[1]))

    def load_under(self, directory: bytes) -> dict[bytes, _Known]:
        """Rows for `directory` and every path below it."""
        self.touch()
        low = directory.rstrip(b"/") + b"/"
        high = directory.rstrip(b"/") + b"0"  # '0' follows '/' in byte order
        rows = self.root.connect().execute(
            "SELECT path, dev, ino, size, mtime_ns, ctime_ns, content, xattrs"
            " FROM contenthash_files WHERE path = ? OR (path >= ? AND path < ?)",
            (directory, low, high),
        )
        make = _Known._make
        return {r[0]: make(r[1:]) for r in rows}

    def load_one(self, path: bytes) -> _Known | None:
        self.touch()
        row = (
            self.root.connect()
            .execute(
                "SELECT dev, ino, size, mtime_ns, ctime_ns, content, xattrs"
                " FROM contenthash_files WHERE path = ?",
                (path,),
            )
            .fetchone()
        )
        return None if row is None else _Known._make(row)

    def usage(self) -> tuple[int, int]:
        """(remembered files, approximate bytes their rows take), for du: the rows'
        bytes, since the database file shrinks only on VACUUM."""
        count, size = (
            self.root.connect()
            .execute(
                "SELECT COUNT(*),"
                " COALESCE(SUM(LENGTH(path) + LENGTH(content) + LENGTH(xattrs) + 40), 0)"
                " FROM contenthash_files"
            )
            .fetchone()
        )
        return int(count), int(size)

    def forget_all(self) -> None:
        """Drop every remembered digest (prune): the next build hashes its context again."""
        with self.root.transaction() as db:
            db.execute("DELETE FROM contenthash_files")
            db.execute("DELETE FROM contenthash_usage")

    def store(self, rows: dict[bytes, _Known], stale: Sequence[bytes]) -> None:
        """Write learned rows and forget vanished paths, in one transaction."""
        if not rows and not stale:
            return
        with self.root.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO contenthash_files"
                " (path, dev, ino, size, mtime_ns, ctime_ns, content, xattrs)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (p, k.dev, k.ino, k.size, k.mtime_ns, k.ctime_ns, k.content, k.xattrs)
                    for p, k in rows.items()
                ],
            )
            for path in stale:
                db.execute(
                    "DELETE FROM contenthash_files WHERE path = ? OR (path >= ? AND path < ?)",
                    (path, path + b"/", path + b"0"),
                )


def checksum(
    root_dir: Path,
    path: str,
    *,
    follow_top_symlink: bool = True,
    wildcard: bool = False,
    include: PathMatcher | None = None,
    exclude: PathMatcher | None = None,
    ignore: PathMatcher | None = None,
    required_paths: Sequence[str] = (),
    owner_reset: bool = False,
    cache: DigestCache | None = None,
    stats: ScanStats | None = None,
) -> str:
    """The content digest (`sha256:<hex>`) of `path` inside the tree at `root_dir`.

    - A literal path hashes the entry (a top-level symlink followed when asked); a
      missing one raises `SourceNotFoundError` (`"/<path>": not found`).
    - With `wildcard` and a path holding wildcards, the digest covers the list of
      (path under the literal prefix, digest) of every match and its subtree; a single
      match whose basename equals the pattern's gives that entry's digest; no match
      gives the digest of empty input.
    - `include`/`exclude` (relative to the source) keep only surviving entries and the
      headers of their parent directories; `ignore` (relative to `root_dir`) hides
      paths as if they were never there (the `.dockerignore` of a build context).
    - `required_paths` must each be present among the hashed paths (`--parents`).
    - `owner_reset` hashes every uid/gid as 0 (build context files).
    """
    hasher = _Hasher(root_dir, owner_reset=owner_reset, cache=cache, stats=stats)
    tree_filter = TreeFilter(ignore=ignore, include=include, exclude=exclude)
    if wildcard and contains_wildcards(path):
        entries = hasher.wildcard_entries(path, tree_filter)
        result = _list_digest(path, entries)
    elif include is not None or exclude is not None:
        entries = hasher.filtered_entries(path, tree_filter, follow=follow_top_symlink)
        result = _list_digest(path, entries)
    else:
        entries = None
        result = hasher.plain(path, ignore=ignore, follow=follow_top_symlink)
    for required in required_paths:
        wanted = clean_path(required)
        if entries is None:
            lookup_source(root_dir, wanted, follow_final=True, ignore=ignore)
        elif not any(p == wanted or p.startswith(wanted.rstrip("/") + "/") for p, _ in entries):
            # BuildKit checks required paths by prefix over the hashed entries.
            raise SourceNotFoundError(wanted)
    hasher.flush()
    return result


def _list_digest(path: str, entries: list[tuple[str, str]]) -> str:
    if not entries:
        return EMPTY_DIGEST
    if len(entries) == 1 and posixpath.basename(clean_path(path)) == posixpath.basename(
        entries[0][0]
    ):
        return entries[0][1]
    h = hashlib.sha256(b"strata.filelist.v1\0")
    prefix = _list_prefix(path)
    for full, digest in entries:
        rel = full[len(prefix) :] if full.startswith(prefix) else full
        h.update(os.fsencode(rel or "/") + b"\0" + digest.encode() + b"\0")
    return "sha256:" + h.hexdigest()


def _list_prefix(path: str) -> str:
    prefix, _ = split_wildcards(path)
    return "" if prefix == "/" else prefix


class _Hasher:
    """One checksum call: walks trees, consults and feeds the digest cache."""

    def __init__(
        self,
        root: Path,
        *,
        owner_reset: bool,
        cache: DigestCache | None,
        stats: ScanStats | None,
    ) -> None:
        self.root = root
        self.root_key = _key(root)
        self.owner_reset = owner_reset
        self.cache = cache
        self.stats = stats if stats is not None else ScanStats()
        self.known: dict[bytes, _Known] = {}
        self.loaded_dirs: set[bytes] = set()
        self.learned: dict[bytes, _Known] = {}
        self.seen: set[bytes] = set()
        self.listed: set[bytes] = set()
        self.by_inode: dict[tuple[int, int], bytes] = {}

    # -- public shapes ---------------------------------------------------------------------

    def plain(self, path: str, *, ignore: PathMatcher | None, follow: bool) -> str:
        host, st = lookup_source(self.root, path, follow_final=follow, ignore=ignore)
        self.stats.lstat_calls += 1
        if stat.S_ISDIR(st.st_mode):
            tree = self.scan(host, st, TreeFilter(ignore=ignore))
            return self.dir_digest(tree)
        return self.entry_digest(host, st)

    def filtered_entries(
        self, path: str, tree_filter: TreeFilter, *, follow: bool
    ) -> list[tuple[str, str]]:
        cleaned = clean_path(path)
        host, st = lookup_source(self.root, cleaned, follow_final=follow, ignore=tree_filter.ignore)
        self.stats.lstat_calls += 1
        if not stat.S_ISDIR(st.st_mode):
            return [(cleaned, self.entry_digest(host, st))]
        tree = self.scan(host, st, tree_filter)
        skip_own_header = path.endswith("/")
        return self.tree_entries(tree, cleaned, top_header=not skip_own_header)

    def wildcard_entries(self, path: str, tree_filter: TreeFilter) -> list[tuple[str, str]]:
        entries: list[tuple[str, str]] = []
        matches = resolve_wildcards(self.root, path, ignore=tree_filter.ignore, stats=self.stats)
        for match in matches:
            host, st = match.host, match.st
            if stat.S_ISLNK(st.st_mode):
                # A matched symlink is followed like a top-level source (checksum.go).
                target = resolve_in_root(self.root, rel_to_root(self.root, host))
                try:
                    st = os.lstat(target)
                except (FileNotFoundError, NotADirectoryError):
                    raise SourceNotFoundError(match.path) from None
                self.stats.lstat_calls += 1
                if stat.S_ISDIR(st.st_mode):
                    digest = self.dir_digest(self.scan(target, st, tree_filter))
                else:
                    digest = self.entry_digest(target, st)
                entries.append((match.path, digest))
            elif stat.S_ISDIR(st.st_mode):
                tree = self.scan(host, st, tree_filter)
                entries.extend(self.tree_entries(tree, match.path, top_header=True))
            else:
                entries.append((match.path, self.entry_digest(host, st)))
        return entries

    # -- trees -----------------------------------------------------------------------------

    def scan(self, host: Path, st: os.stat_result, tree_filter: TreeFilter) -> TreeNode:
        self.preload(host)
        tree = scan_tree(
            host,
            st,
            root_rel=rel_to_root(self.root, host),
            tree_filter=tree_filter,
            stats=self.stats,
        )
        if tree_filter.include is None and tree_filter.exclude is None:
            for _rel, node in tree.walk():
                if node.is_dir:
                    self.listed.add(_key(node.path))
        return tree

    def tree_entries(self, tree: TreeNode, base: str, *, top_header: bool) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for rel, node in tree.walk():
            full = base if not rel else base.rstrip("/") + "/" + rel
            if node is tree and not (top_header and (node.selected or node.children)):
                continue
            out.append((full, self.entry_digest(node.path, node.st)))
        return out

    def dir_digest(self, node: TreeNode) -> str:
        h = hashlib.sha256(b"strata.dir.v1\0")
        h.update(self.entry_digest(node.path, node.st).encode())
        for child in node.children or ():
            digest = (
                self.dir_digest(child) if child.is_dir else self.entry_digest(child.path, child.st)
            )
            h.update(os.fsencode(child.name) + b"\0" + digest.encode() + b"\0")
        return "sha256:" + h.hexdigest()

    # -- entries ---------------------------------------------------------------------------

    def entry_digest(self, host: str | Path, st: os.stat_result) -> str:
        """The header digest of one entry; for regular files it covers the bytes too."""
        key = _key(host)
        if key == self.root_key:
            # The root of a tree has no header of its own: BuildKit records a fixed empty
            # header for it, so the root's mode never reaches a key.
            return EMPTY_DIGEST
        mode = st.st_mode
        known = self.lookup(key, host, st)
        h = hashlib.sha256(b"strata.entry.v1\0")
        kind = _type_flag(mode)
        uid, gid = (0, 0) if self.owner_reset else (st.st_uid, st.st_gid)
        h.update(f"type={kind}\0mode={stat.S_IMODE(mode):o}\0uid={uid}\0gid={gid}\0".encode())
        if kind == "0":
            h.update(f"size={st.st_size}\0".encode())
        if kind in ("3", "4"):
            h.update(f"dev={os.major(st.st_rdev)},{os.minor(st.st_rdev)}\0".encode())
        h.update(b"xattrs\0" + known.xattrs)
        if kind == "2":
            h.update(b"link\0" + known.content + b"\0")
        elif kind == "0":
            # A socket is an empty regular file to the build (its bytes are no bytes).
            h.update(b"content\0" + (known.content if stat.S_ISREG(mode) else _EMPTY_HEX))
        return "sha256:" + h.hexdigest()

    def preload(self, directory: Path) -> None:
        if self.cache is None:
            return
        key = _key(directory)
        if any(key == d or key.startswith(d + b"/") for d in self.loaded_dirs):
            return
        self.known.update(self.cache.load_under(key))
        self.loaded_dirs.add(key)

    def lookup(self, key: bytes, host: str | Path, st: os.stat_result) -> _Known:
        self.seen.add(key)
        known = self.known.get(key)
        if known is None and self.cache is not None and not self._preloaded(key):
            known = self.cache.load_one(key)
        if known is not None and known.still_valid(st):
            self.stats.cache_hits += 1
            return known
        fresh = self.learn(host, st)
        self.known[key] = fresh
        if self.cache is not None and not self._racy(st):
            self.learned[key] = fresh
        return fresh

    def _preloaded(self, key: bytes) -> bool:
        return any(key.startswith(d + b"/") or key == d for d in self.loaded_dirs)

    def _racy(self, st: os.stat_result) -> bool:
        assert self.cache is not None
        window = self.cache.racy_window_ns
        return max(st.st_mtime_ns, st.st_ctime_ns) >= time.time_ns() - window

    def learn(self, host: str | Path, st: os.stat_result) -> _Known:
        content = b""
        if stat.S_ISLNK(st.st_mode):
            content = os.fsencode(os.readlink(host))
        elif stat.S_ISREG(st.st_mode):
            content = self.content_digest(host, st)
        return _Known(
            dev=st.st_dev,
            ino=st.st_ino,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            ctime_ns=st.st_ctime_ns,
            content=content,
            xattrs=_hashed_xattrs(host),
        )

    def content_digest(self, host: str | Path, st: os.stat_result) -> bytes:
        inode = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and inode in self.by_inode:
            return self.by_inode[inode]
        h = hashlib.sha256()
        with open(host, "rb") as fh:
            while chunk := fh.read(_READ_CHUNK):
                h.update(chunk)
                self.stats.bytes_read += len(chunk)
        self.stats.files_read += 1
        digest = h.hexdigest().encode()
        if st.st_nlink > 1:
            self.by_inode[inode] = digest
        return digest

    def flush(self) -> None:
        if self.cache is None:
            return
        stale = [p for p in self.known if p not in self.seen and os.path.dirname(p) in self.listed]
        self.cache.store(self.learned, stale)
        self.learned = {}


def _type_flag(mode: int) -> str:
    # tar type flags; a socket counts as an empty regular file, as BuildKit clears the
    # socket bit before building the header.
    if stat.S_ISDIR(mode):
        return "5"
    if stat.S_ISLNK(mode):
        return "2"
    if stat.S_ISCHR(mode):
        return "3"
    if stat.S_ISBLK(mode):
        return "4"
    if stat.S_ISFIFO(mode):
        return "6"
    return "0"


def _key(path: str | Path) -> bytes:
    """A path as the bytes the kernel sees (the digest cache's key)."""
    return os.fspath(path).encode("utf-8", "surrogateescape")


def _hashed_xattrs(host: str | Path) -> bytes:
    """The xattrs that enter a header, sorted and length-prefixed."""
    try:
        names = os.listxattr(host, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.ENOENT):
            return b""
        raise
    out = bytearray()
    for name in sorted(names):
        if name.startswith("system.") or (
            name.startswith("security.") and name != "security.capability"
        ):
            continue
        try:
            value = os.getxattr(host, name, follow_symlinks=False)
        except OSError:
            continue
        key = name.encode()
        out += f"{len(key)}:".encode() + key + f"{len(value)}:".encode() + value
    return bytes(out)

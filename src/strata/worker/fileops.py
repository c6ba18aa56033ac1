"""COPY, ADD, WORKDIR's mkdir, heredoc files and rm, applied to a directory tree.

The build engine mounts a destination snapshot and a source tree and calls these; they
know nothing of Dockerfiles. The rules are BuildKit's (`solver/llbsolver/file/backend.go`
`docopy`/`mkdir`/`mkfile`/`rm`, and fsutil `copy/copy.go`), summarised:

- Destination: a trailing `/` or `/.` makes it a directory (created if missing); a file
  source into an existing directory lands at `dest/<basename>`; a file source onto a
  missing path becomes that file; a directory source copies its *contents*.
- A top-level source symlink is followed (the copy is named after the link); symlinks
  inside copied directories stay symlinks; hard links among one source's files are
  recreated; devices and FIFOs are recreated; sockets become empty files.
- Mode, times and xattrs are kept; owners are kept, reset to 0:0 for context files, or
  set by `--chown`; `--chmod` applies to copied files and directories alike.
- Missing parents are created 0755 (or the octal `--chmod`), owned by `--chown` or 0:0.
- The destination is resolved like a chroot: a symlink in it never leads out of it.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from strata.errors import StrataError
from strata.worker.archive import extract_archive, is_archive
from strata.worker.chmod import Chmod
from strata.worker.context import (
    PathMatcher,
    TreeFilter,
    TreeNode,
    clean_path,
    contains_wildcards,
    lookup_source,
    rel_to_root,
    resolve_in_root,
    resolve_wildcards,
    scan_tree,
)
from strata.worker.users import parse_group, parse_passwd

if TYPE_CHECKING:
    from strata.worker.reuse import CopyReuse

DEFAULT_DIR_MODE = 0o755


@dataclass(frozen=True)
class CopyOptions:
    """How one COPY/ADD source list is copied; the defaults are a Dockerfile COPY's.

    `chown` is an already-resolved (uid, gid) (see `resolve_chown`). `ignore` hides
    paths relative to the source tree's root (a context's `.dockerignore`); `include`
    and `exclude` select relative to each source (`--parents`, `--exclude`).
    `required_paths` must exist (literal `--parents` sources). `unpack` extracts local
    tar archives (ADD). `timestamp_ns` overrides every copied entry's times.
    """

    follow_symlinks: bool = True
    dir_contents_only: bool = True
    allow_wildcard: bool = True
    allow_empty_wildcard: bool = True
    create_dest_path: bool = True
    chown: tuple[int, int] | None = None
    owner_reset: bool = False
    chmod: Chmod | None = None
    include: PathMatcher | None = None
    exclude: PathMatcher | None = None
    ignore: PathMatcher | None = None
    required_paths: tuple[str, ...] = ()
    unpack: bool = False
    timestamp_ns: int | None = None


@dataclass(frozen=True)
class ParentsSource:
    """A `COPY --parents` source split as BuildKit splits it (`convert_copy.go`)."""

    source: str  # the directory copied from (its path is not preserved)
    pattern: str  # include pattern relative to `source`; its path is preserved
    required: str | None  # a literal (wildcard-free) path that must exist


def parents_source(source: str) -> ParentsSource:
    """Split a `COPY --parents` source, as written, at its first `/./` into the directory
    copied from and the pattern kept below it: `./x/./y/*.txt` is (`/x`, `y/*.txt`),
    `/./x/./y` pivots at the root (`/`, `x/y`); without `/./` the root is used
    (BuildKit dockerfile2llb/convert_copy.go cuts the source before normalising it)."""
    parent, pivot, pattern = source.partition("/./")
    if not pivot:
        parent, pattern = "/", source
    pattern = clean_path(pattern).lstrip("/")
    parent = clean_path(parent)
    required = None
    if not contains_wildcards(parent) and not contains_wildcards(pattern):
        required = clean_path(f"{parent}/{pattern}")
    return ParentsSource(source=parent, pattern=pattern, required=required)


def copy(
    src_root: Path,
    sources: Sequence[str],
    dest_root: Path,
    dest: str,
    *,
    options: CopyOptions = CopyOptions(),
    reuse: CopyReuse | None = None,
    reuse_sources: bool = False,
) -> None:
    """Copy each source (in order) from the tree at `src_root` to `dest` in `dest_root`.

    With `reuse` (an incremental copy, `strata.worker.reuse`), every write is reported to
    it, and when `reuse_sources` (the sources are the build context it follows) a regular
    file unchanged since the previous copy is left for it to link instead of written."""
    for source in sources:
        _Copier(src_root, dest_root, options, reuse, reuse_sources).copy_source(source, dest)


@dataclass
class _Copier:
    src_root: Path
    dest_root: Path
    options: CopyOptions
    reuse: CopyReuse | None = None
    reuse_sources: bool = False
    links: dict[tuple[int, int], Path] = field(default_factory=dict)

    def copy_source(self, source: str, dest: str) -> None:
        opts = self.options
        for required in opts.required_paths:
            lookup_source(self.src_root, required, follow_final=True, ignore=opts.ignore)
        if opts.allow_wildcard and contains_wildcards(source):
            matches = resolve_wildcards(self.src_root, source, ignore=opts.ignore)
            if not matches:
                if opts.allow_empty_wildcard:
                    return
                raise StrataError(f"{clean_path(source)} not found")
            paths = [m.path for m in matches]
        else:
            paths = [clean_path(source)]
        if not opts.create_dest_path:
            parent = resolve_in_root(self.dest_root, clean_path(dest)).parent
            if not parent.exists():
                raise StrataError(f"failed to stat {dest}: no such file or directory")
        for path in paths:
            # Each wildcard match is its own fsutil Copy with a fresh inode map
            # (backend.go docopy), so hard links are recreated only within one match.
            self.links = {}
            if opts.unpack and self.unpack(path, dest):
                continue
            self.copy_one(path, dest)

    def unpack(self, path: str, dest: str) -> bool:
        opts = self.options
        host, st = lookup_source(self.src_root, path, follow_final=True, ignore=opts.ignore)
        if not stat.S_ISREG(st.st_mode) or not is_archive(host):
            return False
        target = self.make_dirs(clean_path(dest), DEFAULT_DIR_MODE, None)
        if self.reuse is not None:
            self.reuse.poison()
        extract_archive(host, target, chown=opts.chown)
        return True

    def copy_one(self, path: str, dest: str) -> None:
        opts = self.options
        dest_abs = clean_path(dest)
        ensure = dest_abs if _names_directory(dest) else clean_path(dest_abs + "/..")
        parent_mode = opts.chmod.parent_mode if opts.chmod else DEFAULT_DIR_MODE
        self.make_dirs(ensure, parent_mode, opts.timestamp_ns)

        src_host, src_st = lookup_source(
            self.src_root, path, follow_final=opts.follow_symlinks, ignore=opts.ignore
        )
        dest_host = resolve_in_root(self.dest_root, dest_abs)
        try:
            dest_st: os.stat_result | None = os.stat(dest_host)
        except (FileNotFoundError, NotADirectoryError):
            dest_st = self.reuse.pending_stat(dest_host) if self.reuse is not None else None
        src_is_dir = stat.S_ISDIR(src_st.st_mode)
        dest_is_dir = dest_st is not None and stat.S_ISDIR(dest_st.st_mode)
        target = dest_host
        if (not opts.dir_contents_only and src_is_dir and dest_st is not None) or (
            not src_is_dir and dest_is_dir
        ):
            target = dest_host / Path(path).name
        # A directory copied by contents onto a missing path becomes that path.
        into_new_dir = opts.dir_contents_only and src_is_dir and dest_st is None
        parent = target if into_new_dir else target.parent
        self.make_dirs("/" + rel_to_root(self.dest_root, parent), parent_mode, opts.timestamp_ns)
        tree = scan_tree(
            src_host,
            src_st,
            root_rel=rel_to_root(self.src_root, src_host),
            tree_filter=TreeFilter(ignore=opts.ignore, include=opts.include, exclude=opts.exclude),
        )
        self.copy_node(tree, target, top=True)

    # -- entries ---------------------------------------------------------------------------

    def shown(self, host: Path) -> str:
        return "/" + rel_to_root(self.dest_root, host)

    def make_dirs(self, path: str, mode: int, timestamp_ns: int | None) -> Path:
        """`make_dirs` in the destination; a file an incremental copy has yet to link
        counts as the file it will be (`mkdir`ing through it fails as it would)."""
        if self.reuse is not None:
            blocked = self.reuse.pending_in(resolve_in_root(self.dest_root, clean_path(path)))
            if blocked is not None:
                raise StrataError(f"mkdir {blocked}: not a directory")
        return make_dirs(self.dest_root, path, mode, self.options.chown, timestamp_ns)

    def copy_node(self, node: TreeNode, target: Path, *, top: bool) -> None:
        reuse = self.reuse
        pending = False
        try:
            existing: os.stat_result | None = os.lstat(target)
        except FileNotFoundError:
            existing = None
            if reuse is not None:
                # A file left for the incremental copy to link is there, as it would be.
                existing = reuse.pending_stat(target)
                pending = existing is not None
        if node.is_dir:
            self.copy_dir(node, target, existing, top=top)
            return
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                raise StrataError(f"cannot replace to directory {self.shown(target)} with file")
            if pending:
                assert reuse is not None
                reuse.cancel(target)
            else:
                target.unlink()
        mode = node.st.st_mode
        if reuse is not None and not (self.reuse_sources and stat.S_ISREG(mode)):
            reuse.touched(target)
        if stat.S_ISREG(mode):
            inode = (node.st.st_dev, node.st.st_ino)
            if node.st.st_nlink > 1 and inode in self.links:
                first = self.links[inode]
                if (
                    reuse is not None
                    and self.reuse_sources
                    and reuse.link_deferred(first, target, node.path, node.st)
                ):
                    return  # will be linked with `first`, whose metadata it shares
                os.link(first, target, follow_symlinks=False)
                if reuse is not None and self.reuse_sources:
                    reuse.wrote(target, node.path, node.st)
            else:
                if node.st.st_nlink > 1:
                    self.links[inode] = target
                if reuse is not None and self.reuse_sources:
                    mtime = self.options.timestamp_ns
                    if reuse.defer(
                        target, node.path, node.st, node.st.st_mtime_ns if mtime is None else mtime
                    ):
                        return
                    reuse.wrote(target, node.path, node.st)
                copy_file_content(node.path, target)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(node.path), target)
        elif stat.S_ISSOCK(mode):
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        else:
            os.mknod(target, stat.S_IFMT(mode) | 0o600, node.st.st_rdev)
        self.apply_metadata(node, target)

    def copy_dir(
        self, node: TreeNode, target: Path, existing: os.stat_result | None, *, top: bool
    ) -> None:
        created = existing is None
        if existing is None:
            os.mkdir(target, 0o700)
        elif not stat.S_ISDIR(existing.st_mode):
            raise StrataError(f"cannot copy to non-directory: {self.shown(target)}")
        for child in node.children or ():
            self.copy_node(child, target / child.name, top=False)
        if created or (not top and node.selected):
            # Directories below the top take the source's metadata even if they existed.
            self.apply_metadata(node, target)
        elif top:
            # The top directory keeps its owner and mode; only its times follow the
            # source (fsutil copy.go restores the timestamp after adding children).
            self.apply_times(node, target)
        else:
            return
        if self.reuse is not None:
            self.reuse.times_set(target)

    def apply_metadata(self, node: TreeNode, target: Path) -> None:
        opts = self.options
        st = node.st
        if opts.chown is not None:
            uid, gid = opts.chown
        elif opts.owner_reset:
            uid, gid = 0, 0
        else:
            uid, gid = st.st_uid, st.st_gid
        chown_quietly(target, uid, gid)
        if not stat.S_ISLNK(st.st_mode):
            mode = stat.S_IMODE(st.st_mode)
            if opts.chmod is not None:
                mode = opts.chmod.apply(mode, is_dir=stat.S_ISDIR(st.st_mode))
            os.chmod(target, mode)
        self.apply_times(node, target)
        copy_xattrs(node.path, target)

    def apply_times(self, node: TreeNode, target: Path) -> None:
        if self.options.timestamp_ns is not None:
            times = (self.options.timestamp_ns, self.options.timestamp_ns)
        else:
            times = (node.st.st_atime_ns, node.st.st_mtime_ns)
        os.utime(target, ns=times, follow_symlinks=False)


def _names_directory(dest: str) -> bool:
    """A destination written as a directory: trailing `/`, `/.`, `.` or empty."""
    return dest in ("", ".") or dest.endswith("/") or dest.endswith("/.")


def copy_file_content(source: str | Path, target: Path) -> None:
    """Copy bytes into a new file (never through an existing link), in-kernel when possible."""
    fd_out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with open(source, "rb") as fsrc:
            fd_in = fsrc.fileno()
            try:
                while os.copy_file_range(fd_in, fd_out, 1 << 30):
                    pass
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                os.lseek(fd_in, 0, os.SEEK_SET)
                os.ftruncate(fd_out, 0)
                os.lseek(fd_out, 0, os.SEEK_SET)
                with os.fdopen(os.dup(fd_out), "wb") as fdst:
                    shutil.copyfileobj(fsrc, fdst, 1 << 20)
    finally:
        os.close(fd_out)


def chown_quietly(path: Path, uid: int, gid: int) -> None:
    """lchown; without root an owner we cannot give is left as is (rootless test runs)."""
    try:
        os.lchown(path, uid, gid)
    except PermissionError:
        if os.geteuid() == 0:
            raise


def copy_xattrs(source: str | Path, target: Path) -> None:
    """Copy every xattr we may set; BuildKit logs and ignores failures here too."""
    try:
        names = os.listxattr(source, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        try:
            value = os.getxattr(source, name, follow_symlinks=False)
            os.setxattr(target, name, value, follow_symlinks=False)
        except OSError:
            continue


def make_dirs(
    dest_root: Path,
    path: str,
    mode: int,
    owner: tuple[int, int] | None,
    timestamp_ns: int | None,
) -> Path:
    """Create `path` (inside `dest_root`, chroot-resolved) and its missing parents.

    New directories get `mode` (umask ignored), `owner` if given and `timestamp_ns` if
    given; existing ones are left untouched. Returns the host path.
    """
    host = resolve_in_root(dest_root, clean_path(path))
    current = dest_root
    for part in host.relative_to(dest_root).parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o700)
            os.chmod(current, mode & 0o7777)
            if owner is not None:
                chown_quietly(current, *owner)
            if timestamp_ns is not None:
                os.utime(current, ns=(timestamp_ns, timestamp_ns))
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise StrataError(f"mkdir {'/' + rel_to_root(dest_root, current)}: not a directory")
    return host


# -- merging a layer (COPY --link) -------------------------------------------------------------


def lay_tree(layer: Path, dest_root: Path) -> None:
    """Put every entry of the tree `layer` at the same path in `dest_root`, as applying
    it as an image layer would: directories merge with directories (taking the layer's
    metadata), anything else replaces what was there, a directory included. Nothing in
    `dest_root` is followed, so its symlinks (absolute ones point at the host) are
    replaced rather than written through. Hard links within `layer` stay links.
    """
    links: dict[tuple[int, int], Path] = {}

    def visit(source: Path, target: Path) -> None:
        for entry in sorted(os.scandir(source), key=lambda e: e.name):
            st = entry.stat(follow_symlinks=False)
            here = target / entry.name
            try:
                existing: os.stat_result | None = os.lstat(here)
            except FileNotFoundError:
                existing = None
            if stat.S_ISDIR(st.st_mode):
                if existing is not None and not stat.S_ISDIR(existing.st_mode):
                    here.unlink()
                    existing = None
                if existing is None:
                    os.mkdir(here, 0o700)
                visit(Path(entry.path), here)
            else:
                if existing is not None:
                    if stat.S_ISDIR(existing.st_mode):
                        shutil.rmtree(here)
                    else:
                        here.unlink()
                if _place_entry(Path(entry.path), st, here, links):
                    continue
            _copy_metadata(Path(entry.path), st, here)

    visit(layer, dest_root)


def _place_entry(
    source: Path, st: os.stat_result, target: Path, links: dict[tuple[int, int], Path]
) -> bool:
    """Create the non-directory `target` like `source`; True if it is a hard link to an
    entry already placed (whose metadata it shares)."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        inode = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and inode in links:
            os.link(links[inode], target, follow_symlinks=False)
            return True
        if st.st_nlink > 1:
            links[inode] = target
        copy_file_content(source, target)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(source), target)
    else:
        os.mknod(target, stat.S_IFMT(mode) | 0o600, st.st_rdev)
    return False


def _copy_metadata(source: Path, st: os.stat_result, target: Path) -> None:
    chown_quietly(target, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode))
    copy_xattrs(source, target)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


# -- WORKDIR, heredocs, rm ------------------------------------------------------------------


def mkdir(
    dest_root: Path,
    path: str,
    mode: int = 0o755,
    uid: int = 0,
    gid: int = 0,
    *,
    make_parents: bool = True,
    mtime_ns: int | None = None,
) -> None:
    """Create a directory (WORKDIR); existing directories are left as they are."""
    if make_parents:
        make_dirs(dest_root, path, mode & 0o777, (uid, gid), mtime_ns)
        return
    host = resolve_in_root(dest_root, clean_path(path))
    try:
        os.mkdir(host, 0o700)
    except FileExistsError:
        return
    except FileNotFoundError:
        raise StrataError(f"mkdir {clean_path(path)}: no such file or directory") from None
    os.chmod(host, mode & 0o777)
    chown_quietly(host, uid, gid)
    if mtime_ns is not None:
        os.utime(host, ns=(mtime_ns, mtime_ns))


def mkfile(
    dest_root: Path,
    path: str,
    data: bytes,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    *,
    mtime_ns: int | None = None,
) -> None:
    """Write a file (a heredoc source); its parent directory must exist."""
    host = resolve_in_root(dest_root, clean_path(path))
    try:
        fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode & 0o777)
    except FileNotFoundError:
        raise StrataError(f"open {clean_path(path)}: no such file or directory") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(host, mode & 0o777)
    chown_quietly(host, uid, gid)
    if mtime_ns is not None:
        os.utime(host, ns=(mtime_ns, mtime_ns))


def rm(dest_root: Path, path: str, *, allow_not_found: bool = False) -> None:
    """Remove a path and everything below it; the final component is not followed."""
    cleaned = clean_path(path)
    if cleaned == "/":
        raise StrataError("rmPath: invalid empty path")
    host = resolve_in_root(dest_root, cleaned, follow_final=False)
    try:
        st = os.lstat(host)
    except (FileNotFoundError, NotADirectoryError):
        if allow_not_found:
            return
        raise StrataError(f"stat {cleaned}: no such file or directory") from None
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(host)
    else:
        host.unlink()


# -- --chown ----------------------------------------------------------------------------------


def resolve_chown(spec: str, rootfs: Path) -> tuple[int, int]:
    """`--chown=user[:group]` as (uid, gid), looked up in the destination's files.

    Numbers pass through (`user` alone gives gid = the same number); `root` is 0. Names
    are read from `rootfs`'s /etc/passwd and /etc/group with the parsers `USER` uses
    (runc's, which BuildKit's `readUser` calls too); an unknown name or a missing file
    silently gives 0, and a user name alone gives that user's primary group
    (BuildKit `solver/llbsolver/ops/user_linux.go` `readUser`, llb `WithUser`).
    """
    user, sep, group = spec.partition(":")
    uid = gid = 0
    user_id = _numeric_id(user)
    if user_id is not None:
        uid = gid = user_id
    else:
        passwd = _read_etc(rootfs, "/etc/passwd")
        users = [u for u in parse_passwd(passwd) if u.name == user] if passwd else []
        if users:
            uid, gid = users[0].uid, users[0].gid
    if sep:
        group_id = _numeric_id(group)
        if group_id is not None:
            gid = group_id
        else:
            text = _read_etc(rootfs, "/etc/group")
            groups = [g for g in parse_group(text) if g.name == group] if text else []
            if groups:
                gid = groups[0].gid
    return uid, gid


def _numeric_id(text: str) -> int | None:
    """llb's `parseUID`: `root`, or Go's `strconv.ParseInt(text, 10, 32)` (optional
    sign, ASCII digits only, 32-bit range); anything else is a name."""
    if text == "root":
        return 0
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):
        return None
    value = int(text)
    if not -(2**31) <= value < 2**31:
        return None
    return value


def _read_etc(rootfs: Path, file: str) -> str | None:
    """The text of `file` inside `rootfs` (symlinks resolved inside it), None when it
    does not exist."""
    host = resolve_in_root(rootfs, file)
    try:
        with open(host, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise StrataError(f"{file} is not a regular file")
            return fh.read(10 << 20).decode("utf-8", "surrogateescape")
    except (FileNotFoundError, NotADirectoryError):
        return None

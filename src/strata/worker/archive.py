"""What ADD does beyond COPY: local archives, URLs and git repositories.

- A local source whose *content* is a tar stream (plain, gzip, bzip2, xz or zstd) is
  extracted into the destination directory (`solver/llbsolver/file/unpack.go`). Entry
  owners are kept unless `--chown` is given; names, hard links and parent directories are
  resolved inside the destination, so no entry lands outside it. This is not layer
  application: `.wh.` files are ordinary files here.
- A URL is downloaded to one file named after its last path segment, mode 0600, mtime
  from `Last-Modified` (else the epoch), optionally checked against `--checksum`
  (`source/http/source.go`).
- A git URL is fetched with the `git` command and its tree checked out, `.git` dropped
  unless kept (`source/git/source.go`). The planner reads BuildKit's URL forms
  (`strata.plan.sources.parse_git_ref`); this module gets the parts.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import os
import posixpath
import shutil
import stat
import subprocess
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

import zstandard

from strata.errors import StrataError
from strata.worker.context import (
    clean_path,
    decompressed,
    looks_like_tar,
    resolve_in_root,
)

# -- local archives ------------------------------------------------------------------------


def _open_decompressed(fh: IO[bytes]) -> IO[bytes]:
    head = fh.read(8)
    fh.seek(0)
    reader = decompressed(fh, head)
    return reader if reader is not None else fh


def is_archive(path: Path) -> bool:
    """True if `path` is a regular file holding a tar stream, compressed or not.

    Detection is by content, as in BuildKit's `isArchivePath`: the first tar header must
    read cleanly after decompression. Anything unreadable is simply not an archive.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with open(path, "rb") as fh:
            reader = _open_decompressed(fh)
            head = reader.read(tarfile.BLOCKSIZE)
    except (OSError, EOFError, ValueError, zstandard.ZstdError):
        return False
    return looks_like_tar(head)


def newest_archive_time(path: Path) -> int | None:
    """The newest modification time of a regular file in the tar stream `path` (compressed
    or not); None when `path` is no archive or holds no regular file. BuildKit dates an
    HTTP source without Last-Modified this way (dockerfile2llb/epoch.go,
    archiveMaxTimeFromRef)."""
    if not is_archive(path):
        return None
    newest: int | None = None
    try:
        with (
            open(path, "rb") as raw,
            tarfile.open(fileobj=_open_decompressed(raw), mode="r|") as tar,
        ):
            for member in tar:
                if member.isreg() and (newest is None or int(member.mtime) > newest):
                    newest = int(member.mtime)
    except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError):
        return None  # BuildKit: a stream that stops being a tar dates nothing
    return newest


def extract_archive(archive: Path, dest_dir: Path, *, chown: tuple[int, int] | None = None) -> None:
    """Extract a (possibly compressed) tar into the existing directory `dest_dir`.

    Existing directories are merged; any other existing entry at a path is replaced.
    Owners come from the entries unless `chown` is given; parent directories implied by
    entry names are created 0755 and owned by 0:0, as moby/go-archive does.
    """
    dirs: list[tuple[Path, tarfile.TarInfo]] = []
    try:
        with (
            open(archive, "rb") as fh,
            tarfile.open(fileobj=_open_decompressed(fh), mode="r|", errors="surrogateescape") as tf,
        ):
            for member in tf:
                created = _extract_member(tf, member, dest_dir, chown)
                if created is not None and member.isdir():
                    dirs.append((created, member))
    except (tarfile.TarError, EOFError, zstandard.ZstdError) as exc:
        raise StrataError(f"failed to extract {archive.name}: {exc}") from exc
    for path, member in dirs:
        os.utime(path, (member.mtime, member.mtime))


def _entry_name(member: tarfile.TarInfo) -> str:
    name = posixpath.normpath(member.name.lstrip("/"))
    if name == ".." or name.startswith("../"):
        raise StrataError(f'invalid entry name "{member.name}"')
    return "" if name == "." else name


def _extract_member(
    tf: tarfile.TarFile, member: tarfile.TarInfo, dest_dir: Path, chown: tuple[int, int] | None
) -> Path | None:
    name = _entry_name(member)
    if not name or member.type in (tarfile.XGLTYPE,):
        return None
    parent = _implied_dirs(dest_dir, posixpath.dirname(name))
    target = parent / posixpath.basename(name)
    _clear_target(target, member.isdir())
    if member.isdir():
        if not target.is_dir():
            os.mkdir(target, 0o700)
    elif member.isreg():
        data = tf.extractfile(member)
        assert data is not None
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(data, out, 1 << 20)
    elif member.issym():
        os.symlink(member.linkname, target)
    elif member.islnk():
        link_name = posixpath.normpath(member.linkname.lstrip("/"))
        if link_name == ".." or link_name.startswith("../"):
            raise StrataError(f'invalid hardlink target "{member.linkname}"')
        source = resolve_in_root(dest_dir, clean_path(link_name), follow_final=False)
        if not os.path.lexists(source):
            raise StrataError(f'hardlink target "{member.linkname}" not found')
        os.link(source, target, follow_symlinks=False)
    elif member.ischr() or member.isblk():
        if os.geteuid() != 0:
            return None  # devices cannot be created without root; go-archive skips them too
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(target, kind | 0o600, os.makedev(member.devmajor, member.devminor))
    elif member.isfifo():
        os.mkfifo(target, 0o600)
    else:
        raise StrataError(f"unhandled tar header type {member.type!r}")

    uid, gid = chown if chown is not None else (member.uid, member.gid)
    _lchown(target, uid, gid)
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            # Best effort, as BuildKit asks go-archive for (BestEffortXattrs).
            with contextlib.suppress(OSError):
                os.setxattr(
                    target,
                    key[len("SCHILY.xattr.") :],
                    value.encode("utf-8", "surrogateescape"),
                    follow_symlinks=False,
                )
    if not member.issym():
        os.chmod(target, member.mode & 0o7777)
    if not member.isdir():
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
    return target


def _implied_dirs(dest_dir: Path, parent: str) -> Path:
    host = resolve_in_root(dest_dir, clean_path(parent))
    current = dest_dir
    for part in host.relative_to(dest_dir).parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            os.chmod(current, 0o755)
            _lchown(current, 0, 0)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise StrataError(f"mkdir {'/' + str(current.relative_to(dest_dir))}: not a directory")
    return host


def _clear_target(target: Path, new_is_dir: bool) -> None:
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not new_is_dir:
            shutil.rmtree(target)
    else:
        target.unlink()


def _lchown(path: Path, uid: int, gid: int) -> None:
    try:
        os.lchown(path, uid, gid)
    except PermissionError:
        if os.geteuid() == 0:
            raise


# -- URLs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchedFile:
    """A downloaded ADD source: where it is, its name, sha256 digest and Last-Modified."""

    path: Path
    filename: str
    digest: str
    last_modified: datetime | None
    etag: str | None = None


def url_filename(url: str) -> str:
    """The file name ADD gives a URL: its last path segment, or `__unnamed__`."""
    try:
        raw_path = urllib.parse.urlsplit(url).path
    except ValueError:  # urllib refuses some URLs Go accepts (`https://github.[com/x`)
        raw_path = url.split("?", 1)[0].split("#", 1)[0].partition("://")[2].partition("/")[2]
    path = urllib.parse.unquote(raw_path)
    base = posixpath.basename(path.rstrip("/")) if path.rstrip("/") else ""
    return base if base not in ("", ".", "/") else "__unnamed__"


def fetch_url(
    url: str,
    dest_dir: Path,
    *,
    checksum: str | None = None,
    filename: str | None = None,
    mode: int = 0o600,
    headers: dict[str, str] | None = None,
    timeout: float = 300.0,
) -> FetchedFile:
    """Download `url` into `dest_dir/<filename>` and check it against `checksum`.

    The body is hashed while it streams to disk (constant memory). A mismatch removes
    the file and raises `digest mismatch for <url>: <got> (expected: <want>)`.
    """
    name = filename or url_filename(url)
    if "/" in name or name in (".", ".."):
        raise StrataError(f"invalid file name {name!r} for {url}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    partial = dest_dir / f".partial-{uuid.uuid4().hex}"
    want_algo = checksum.partition(":")[0] if checksum else "sha256"
    if want_algo not in hashlib.algorithms_available:
        raise StrataError(f"unsupported digest algorithm: {want_algo}")
    sha256 = hashlib.sha256()
    wanted = hashlib.new(want_algo)
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=timeout) as resp, open(partial, "wb") as out:
            status = resp.status
            if status < 200 or status >= 400:
                raise StrataError(f"invalid response status {status}")
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                sha256.update(chunk)
                wanted.update(chunk)
            last_modified_text = resp.headers.get("Last-Modified")
            etag = resp.headers.get("ETag")
    except urllib.error.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise StrataError(f"invalid response status {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # ValueError: a URL Go accepts but urllib cannot use (`https://github.[com/x`).
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise StrataError(f"failed to fetch {url}: {reason}") from None
    digest = "sha256:" + sha256.hexdigest()
    if checksum:
        got = f"{want_algo}:{wanted.hexdigest()}"
        if got != checksum:
            partial.unlink(missing_ok=True)
            raise StrataError(f"digest mismatch for {url}: {got} (expected: {checksum})")
    last_modified: datetime | None = None
    if last_modified_text:
        try:
            last_modified = email.utils.parsedate_to_datetime(last_modified_text)
        except (TypeError, ValueError):
            last_modified = None
    target = dest_dir / name
    os.replace(partial, target)
    os.chmod(target, mode & 0o7777)
    stamp = last_modified.timestamp() if last_modified is not None else 0.0
    os.utime(target, (stamp, stamp))
    return FetchedFile(
        path=target, filename=name, digest=digest, last_modified=last_modified, etag=etag
    )


# -- git -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchedGit:
    """A checked-out git source: the tree's directory, the commit it holds and that
    commit's committer time (Unix seconds)."""

    path: Path
    commit: str
    commit_time: int = 0


def fetch_git(
    url: str,
    dest_dir: Path,
    *,
    ref: str = "",
    subdir: str = "",
    keep_git_dir: bool = False,
    checksum: str = "",
    submodules: bool = True,
    mtime: str = "checkout",
) -> FetchedGit:
    """Check out `ref` (default: the remote's HEAD) of `url` into `dest_dir`.

    `dest_dir` must be absent or empty. With `subdir`, only that directory's contents
    land in `dest_dir`. `checksum` is a commit hash prefix the resolved commit (or the
    annotated tag object) must start with: `expected checksum to match <want>, got <got>`.
    `mtime="commit"` stamps every file with the commit time instead of the checkout time.
    """
    if ref.startswith("-") or url.startswith("-"):
        raise StrataError(f"invalid git reference: {ref or url}")
    work = dest_dir.parent / f".{dest_dir.name}.git-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    try:
        git = _Git(work)
        git.run("init", "-q")
        git.run("remote", "add", "--", "origin", url)
        wanted = ref or "HEAD"
        # Shallow first; dumb HTTP and some servers refuse it, then fetch in full.
        if not git.attempt(
            "fetch", "-q", "--depth=1", "--no-tags", "origin", wanted
        ) and not git.attempt("fetch", "-q", "--no-tags", "origin", wanted):
            git.run(
                "fetch",
                "-q",
                "origin",
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*",
            )
            git.run("update-ref", "FETCH_HEAD", git.output("rev-parse", f"{ref}^{{commit}}"))
        fetched = git.output("rev-parse", "FETCH_HEAD")
        commit = git.output("rev-parse", "FETCH_HEAD^{commit}")
        if checksum and not commit.startswith(checksum):
            if fetched != commit and fetched.startswith(checksum):
                pass  # an annotated tag pinned by its own object hash
            elif fetched != commit:
                raise StrataError(
                    f"expected checksum to match {checksum}, got {commit} or {fetched}"
                )
            else:
                raise StrataError(f"expected checksum to match {checksum}, got {commit}")
        git.run("-c", "advice.detachedHead=false", "checkout", "-q", "--force", commit)
        if submodules and (work / ".gitmodules").exists():
            git.run("submodule", "update", "-q", "--init", "--recursive")
        commit_time = int(git.output("log", "-1", "--format=%ct", commit))
        if mtime == "commit":
            stamp = commit_time
            for dirpath, dirnames, filenames in os.walk(work):
                if ".git" in dirnames and Path(dirpath) == work:
                    dirnames.remove(".git")
                for entry in (*dirnames, *filenames):
                    os.utime(Path(dirpath) / entry, (stamp, stamp), follow_symlinks=False)
        if not keep_git_dir:
            shutil.rmtree(work / ".git")
        source = work
        if subdir:
            source = resolve_in_root(work, clean_path(subdir))
            if not source.is_dir():
                raise StrataError(f"subdir {subdir!r} not found in {url}")
        if dest_dir.exists():
            dest_dir.rmdir()
        os.rename(source, dest_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return FetchedGit(path=dest_dir, commit=commit, commit_time=commit_time)


class _Git:
    """The `git` command run in one repository, isolated from user and system config."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_PROTOCOL_FROM_USER": "0",
        }

    def _call(self, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-c", "protocol.file.allow=always", "-C", str(self.work), *args],
            env=self.env,
            capture_output=True,
            text=True,
            umask=0o022,
            check=False,
        )

    def attempt(self, *args: str) -> bool:
        return self._call(args).returncode == 0

    def run(self, *args: str) -> None:
        proc = self._call(args)
        if proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()
            raise StrataError(f"git {args[0]} failed: {detail[-1] if detail else proc.returncode}")

    def output(self, *args: str) -> str:
        proc = self._call(args)
        if proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()
            raise StrataError(f"git {args[0]} failed: {detail[-1] if detail else proc.returncode}")
        return proc.stdout.strip()

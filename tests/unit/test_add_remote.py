"""ADD from URLs and git repositories, against servers on 127.0.0.1 started by the tests."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.errors import StrataError
from strata.plan.sources import GitRef, parse_git_ref
from strata.worker.archive import fetch_git, fetch_url, url_filename

PAYLOAD = b"#!/bin/sh\necho fetched\n"
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_EPOCH = 1445412480


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/files/tool.sh":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.send_header("Last-Modified", LAST_MODIFIED)
            self.send_header("ETag", '"v1"')
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        else:
            super().do_GET()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A static HTTP server on 127.0.0.1 serving a directory (and /files/tool.sh)."""
    root = tmp_path_factory.mktemp("www")
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# -- URLs ------------------------------------------------------------------------------------


def test_url_filename_is_last_segment_or_unnamed() -> None:
    assert url_filename("https://example.com/a/b/tool.sh?x=1") == "tool.sh"
    assert url_filename("https://example.com/dir/") == "dir"
    assert url_filename("https://example.com") == "__unnamed__"
    assert url_filename("https://example.com/") == "__unnamed__"
    assert url_filename("https://example.com/a%20b") == "a b"


def test_fetch_url_writes_0600_file_with_last_modified(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    base, _ = server
    fetched = fetch_url(f"{base}/files/tool.sh", tmp_path / "out")
    assert fetched.path == tmp_path / "out/tool.sh"
    assert fetched.path.read_bytes() == PAYLOAD
    assert fetched.digest == "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
    assert fetched.etag == '"v1"'
    st = os.stat(fetched.path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_mtime == LAST_MODIFIED_EPOCH
    assert fetched.last_modified is not None
    assert int(fetched.last_modified.timestamp()) == LAST_MODIFIED_EPOCH


def test_fetch_url_without_last_modified_has_epoch_mtime(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    base, _ = server
    fetched = fetch_url(base, tmp_path / "out")
    assert fetched.filename == "__unnamed__"
    assert os.stat(fetched.path).st_mtime == 0
    assert fetched.last_modified is None


def test_fetch_url_checksum_match_and_mismatch(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    url = f"{base}/files/tool.sh"
    good = "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
    fetch_url(url, tmp_path / "ok", checksum=good)
    bad = "sha256:" + "0" * 64
    with pytest.raises(StrataError) as info:
        fetch_url(url, tmp_path / "bad", checksum=bad)
    assert str(info.value) == f"digest mismatch for {url}: {good} (expected: {bad})"
    assert list((tmp_path / "bad").iterdir()) == []


def test_fetch_url_http_error_status(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(StrataError, match=r"^invalid response status 404$"):
        fetch_url(f"{base}/missing", tmp_path / "out")


# -- git refs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("https://github.com/moby/buildkit.git", GitRef("https://github.com/moby/buildkit.git")),
        (
            "https://github.com/moby/buildkit.git#v0.10.1:docs",
            GitRef("https://github.com/moby/buildkit.git", ref="v0.10.1", subdir="docs"),
        ),
        (
            "git@github.com:moby/buildkit.git#main",
            GitRef("git@github.com:moby/buildkit.git", ref="main"),
        ),
        ("git://host/repo#:sub/../dir", GitRef("git://host/repo", subdir="dir")),
        (
            "https://host/r.git?tag=v1&subdir=a&keep-git-dir&checksum=abc",
            GitRef(
                "https://host/r.git",
                ref="refs/tags/v1",
                subdir="a",
                keep_git_dir=True,
                checksum="abc",
            ),
        ),
        (
            "ssh://git@host/r.git?branch=dev&submodules=false",
            GitRef("ssh://git@host/r.git", ref="refs/heads/dev"),
        ),
        ("https://example.com/file.tar.gz", None),
        (
            "github.com/moby/buildkit",
            GitRef("github.com/moby/buildkit", indistinguishable_from_local=True),
        ),
        ("./local/dir", None),
        ("ftp://host/r.git", None),
        ("plain/path", None),
    ],
)
def test_parse_git_ref(source: str, expected: GitRef | None) -> None:
    assert parse_git_ref(source) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("https://h/r.git?ref=a&ref=b", 'query "ref" has multiple values'),
        ("https://h/r.git?tag=", 'query "tag" has no value'),
        ("https://h/r.git?tag=a&branch=b", "branch conflicts with tag"),
        ("https://h/r.git?nope=1", 'unexpected query "nope"'),
        ("https://h/r.git?keep-git-dir=maybe", 'invalid keep-git-dir value: "maybe"'),
        ("https://h/r.git?ref=a#b", 'ref conflicts: "b" vs "a"'),
    ],
)
def test_parse_git_ref_errors(source: str, message: str) -> None:
    with pytest.raises(StrataError) as info:
        parse_git_ref(source)
    assert str(info.value) == message


# -- git checkout ---------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    proc = subprocess.run(
        ["git", *ident, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def repo(server: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A repository with two commits and a tag, published by dumb HTTP as `repo.git`."""
    base, www = server
    work = tmp_path_factory.mktemp("repo-work")
    git(work, "init", "-q")
    (work / "README").write_text("v1\n")
    (work / "sub").mkdir()
    (work / "sub/tool.sh").write_text("#!/bin/sh\n")
    os.chmod(work / "sub/tool.sh", 0o755)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "one")
    first = git(work, "rev-parse", "HEAD")
    git(work, "tag", "-a", "v1", "-m", "release one")
    (work / "README").write_text("v2\n")
    git(work, "commit", "-q", "-am", "two")
    second = git(work, "rev-parse", "HEAD")
    git(work, "clone", "-q", "--bare", str(work), str(www / "repo.git"))
    git(www / "repo.git", "update-server-info")
    return {
        "url": f"{base}/repo.git",
        "path": str(www / "repo.git"),
        "first": first,
        "second": second,
    }


def test_fetch_git_over_http_checks_out_default_branch(
    repo: dict[str, str], tmp_path: Path
) -> None:
    ref = parse_git_ref(repo["url"])
    assert ref is not None
    fetched = fetch_git(ref.remote, tmp_path / "out")
    assert fetched.commit == repo["second"]
    assert (tmp_path / "out/README").read_text() == "v2\n"
    assert stat.S_IMODE(os.stat(tmp_path / "out/sub/tool.sh").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "out/README").st_mode) == 0o644
    assert not (tmp_path / "out/.git").exists()


def test_fetch_git_tag_subdir_and_checksum(repo: dict[str, str], tmp_path: Path) -> None:
    ref = parse_git_ref(repo["url"] + "#v1:sub")
    assert ref is not None
    fetched = fetch_git(
        ref.remote, tmp_path / "out", ref=ref.ref, subdir=ref.subdir, checksum=repo["first"][:10]
    )
    assert fetched.commit == repo["first"]
    assert sorted(os.listdir(tmp_path / "out")) == ["tool.sh"]


def test_fetch_git_checksum_mismatch(repo: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(StrataError) as info:
        fetch_git(repo["path"], tmp_path / "out", ref="main", checksum=repo["first"])
    assert str(info.value) == (f"expected checksum to match {repo['first']}, got {repo['second']}")
    assert not (tmp_path / "out").exists()


def test_fetch_git_by_commit_keeping_git_dir(repo: dict[str, str], tmp_path: Path) -> None:
    fetched = fetch_git(
        "file://" + repo["path"], tmp_path / "out", ref=repo["first"], keep_git_dir=True
    )
    assert fetched.commit == repo["first"]
    assert (tmp_path / "out/README").read_text() == "v1\n"
    assert (tmp_path / "out/.git").is_dir()


def test_fetch_git_unknown_ref_fails(repo: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(StrataError, match="git"):
        fetch_git(repo["path"], tmp_path / "out", ref="no-such-branch")


def test_url_that_urllib_cannot_parse_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StrataError, match=r"failed to fetch https://github\.\[com/x"):
        fetch_url("https://github.[com/x", tmp_path)
    assert list(tmp_path.iterdir()) == []

"""ADD sources are told apart as BuildKit does, over Go's URL parsing, and never crash."""

from __future__ import annotations

import pytest

from strata.errors import DockerfileError, SourceError
from strata.plan.ops import CopyAction, FileOp, GitSource, HttpSource
from strata.plan.result import BuildPlan
from strata.plan.sources import url_filename, validate_digest
from strata.plan.urls import parse_go_url
from tests.unit.test_plan_support import plan


def _ops_of(result: BuildPlan, kind: type) -> list[object]:
    return [v.op for v in result.all_vertices() if isinstance(v.op, kind)]


def test_url_go_cannot_parse_is_a_download_named_unnamed() -> None:
    # Go's url.Parse rejects `[` inside a host, so BuildKit's ParseGitRef says "not git"
    # and the word is an http(s) download whose file name cannot be read from it.
    source = "https://github.[com/moby/buildkit.git#v0.10.1"
    result = plan(f"FROM busybox\nADD --keep-git-dir=true {source} /bk\n")
    downloads = _ops_of(result, HttpSource)
    assert downloads == [HttpSource(url=source, filename="__unnamed__")]
    assert _ops_of(result, GitSource) == []


def test_download_file_name_is_the_decoded_path_base() -> None:
    assert url_filename("https://example.com/dir/a%20b.tgz?x=1#frag") == "a b.tgz"
    assert url_filename("https://example.com/dir/") == "dir"
    assert url_filename("https://example.com") == "__unnamed__"
    assert url_filename("https://exa mple.com/file") == "__unnamed__"


def test_git_remote_is_written_back_as_go_does_and_subdir_is_cleaned() -> None:
    result = plan("FROM busybox\nADD https://host/a%20b.git#main:sub/../dir /x\n")
    assert _ops_of(result, GitSource) == [
        GitSource(remote="https://host/a%20b.git", ref="main", subdir="dir")
    ]


def test_upper_case_git_protocol_is_still_a_repository() -> None:
    # gitutil lower-cases the protocol; isHTTPSource compares case-sensitively.
    result = plan("FROM busybox\nADD HTTPS://host/repo.git /x\n")
    assert _ops_of(result, GitSource) == [GitSource(remote="https://host/repo.git")]


def test_github_shorthand_is_copied_from_the_context_but_its_query_is_checked() -> None:
    result = plan("FROM busybox\nADD github.com/o/r /x\n")
    assert _ops_of(result, GitSource) == []
    copy = _ops_of(result, FileOp)[0]
    assert isinstance(copy, FileOp) and isinstance(copy.actions[0], CopyAction)
    assert copy.actions[0].sources == ("/github.com/o/r",)
    with pytest.raises(DockerfileError) as caught:
        plan("FROM busybox\nADD github.com/o/r?x=1 /x\n")
    assert (caught.value.message, caught.value.line) == ('unexpected query "x"', 2)


def test_scp_like_word_with_a_malformed_query_is_a_context_path() -> None:
    result = plan("FROM busybox\nADD git@host:repo?x=%zz /x\n")
    assert _ops_of(result, GitSource) == []


def test_query_pairs_with_semicolons_are_dropped_like_go() -> None:
    result = plan("FROM busybox\nADD https://host/r.git?x=1;y /x\n")
    assert _ops_of(result, GitSource) == [GitSource(remote="https://host/r.git")]


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ("sha25]6:" + "0" * 64, "invalid checksum digest format"),
        ("md5:" + "0" * 32, "unsupported digest algorithm"),
        ("SHA256:" + "0" * 64, "invalid checksum digest format"),
        ("sha256:" + "0" * 63, "invalid checksum digest length"),
        ("sha256:" + "A" * 64, "invalid checksum digest format"),
        ("sha256:", "invalid checksum digest format"),
        (":" + "0" * 64, "invalid checksum digest format"),
    ],
)
def test_checksum_errors_use_go_digest_texts(digest: str, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        validate_digest(digest)
    assert caught.value.message == message


def test_bad_checksum_of_a_download_points_at_the_add() -> None:
    with pytest.raises(DockerfileError) as caught:
        plan("FROM busybox\nADD --checksum=sha25]6:00 https://host/file /x\n")
    assert (caught.value.message, caught.value.line) == ("invalid checksum digest format", 2)


@pytest.mark.parametrize(
    "raw",
    [
        "https://[::1/x",
        "https://a:xx/x",
        "https://a:1:2/x",
        "https://a%41/x",
        "https://a/b%zz",
        "https://a/b#%zz",
        "http://[1.2.3.4]/x",
        "https://a b/x",
        "https://a/\x01",
        ":x",
        "1a:b/c",
    ],
)
def test_go_url_parse_rejects_what_go_rejects(raw: str) -> None:
    assert parse_go_url(raw) is None


def test_go_url_parse_keeps_what_go_keeps() -> None:
    parsed = parse_go_url("ssh://u%41:p@host:22/a%2Fb c?q=1#fr%41g\x01")
    assert parsed is not None
    assert (parsed.scheme, parsed.host, parsed.path) == ("ssh", "host:22", "/a/b c")
    assert (parsed.raw_query, parsed.fragment) == ("q=1", "frAg\x01")
    assert parsed.without_options() == "ssh://uA:p@host:22/a/b%20c"

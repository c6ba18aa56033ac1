"""The planner's small helpers: Go formatting, paths, platforms, ports, signals, refs."""

from __future__ import annotations

import pytest

from strata.errors import ConfigError, ImageReferenceError, PlatformError
from strata.plan import paths
from strata.plan.buildargs import EnvList, predefined_args, proxy_env
from strata.plan.config import go_duration, go_quote_list, parse_exposed_port, validate_signal
from strata.plan.copy import validate_chmod
from strata.plan.naming import StepCounter, summarize_heredoc, uppercase_first_word
from strata.plan.ops import Platform
from strata.plan.platforms import format_platform, parse_platform
from strata.plan.references import check_reference
from strata.plan.sources import is_http_source, parse_git_ref, url_filename


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (250_000_000, "250ms"),
        (1_500_000_000, "1.5s"),
        (90 * 10**9, "1m30s"),
        (300 * 10**9, "5m0s"),
        (3600 * 10**9, "1h0m0s"),
        (3661 * 10**9 + 10**8, "1h1m1.1s"),
    ],
)
def test_go_duration_formats_like_time_duration_string(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_go_quote_list_escapes_like_percent_q() -> None:
    assert go_quote_list(["a b", 'say "hi"', "tab\there", "é"]) == (
        '["a b" "say \\"hi\\"" "tab\\there" "é"]'
    )
    assert go_quote_list([]) == "[]"


def test_env_list_moves_reassigned_keys_to_the_end() -> None:
    env = EnvList().set("A", "1").set("B", "2").set("A", "3")
    assert env.as_strings() == ("B=2", "A=3")
    assert dict(env) == {"B": "2", "A": "3"}


def test_predefined_args_follow_platforms_and_accept_overrides() -> None:
    args = predefined_args(
        target_platform=Platform("linux", "arm", "v7"),
        build_platform=Platform("linux", "amd64"),
        target_stage="",
        build_args={"BUILDARCH": "custom"},
    )
    assert args["TARGETPLATFORM"] == "linux/arm/v7"
    assert args["TARGETVARIANT"] == "v7"
    assert args["BUILDARCH"] == "custom"
    assert args["TARGETSTAGE"] == "default"


def test_proxy_env_adds_both_cases_except_declared() -> None:
    assert proxy_env({"no_proxy": "x", "OTHER": "y"}, {}) == ("NO_PROXY=x", "no_proxy=x")
    assert proxy_env({"FTP_PROXY": "f"}, {"FTP_PROXY": "f"}) == ("ftp_proxy=f",)


@pytest.mark.parametrize(
    ("raw", "ports"),
    [
        ("80", ["80/tcp"]),
        ("53/UDP", ["53/udp"]),
        ("132/sctp", ["132/sctp"]),
        ("7000-7002/tcp", ["7000/tcp", "7001/tcp", "7002/tcp"]),
        ("8080:80", ["80/tcp"]),
        ("0.0.0.0:8080:80/udp", ["80/udp"]),
        ("5-5", ["5/tcp"]),
    ],
)
def test_exposed_ports(raw: str, ports: list[str]) -> None:
    assert parse_exposed_port(raw) == ports


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("80/icmp", 'invalid port: "80/icmp": invalid proto: icmp'),
        ("/tcp", 'invalid port: "/tcp": no port specified'),
        ("9-3", "invalid containerPort: 9-3"),
        ("x:80", "invalid hostPort: x"),
    ],
)
def test_exposed_port_errors(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_exposed_port(raw)
    assert caught.value.message == message


@pytest.mark.parametrize("signal", ["SIGTERM", "term", "KILL", "9", "SIGRTMIN+3", "RTMAX"])
def test_valid_signals(signal: str) -> None:
    validate_signal(signal)


@pytest.mark.parametrize("signal", ["0", "SIGNOPE", "", "9x"])
def test_invalid_signals(signal: str) -> None:
    with pytest.raises(ConfigError, match=f"^invalid signal: {signal}$"):
        validate_signal(signal)


def test_chmod_validation() -> None:
    for good in ("755", "0644", "07777", "u+x", "go-w", "a+X", "u=rwX,go=rX"):
        validate_chmod(good)
    for numeric in ("8", "0999", "10000"):
        with pytest.raises(ConfigError, match="it should be octal string"):
            validate_chmod(numeric)
    with pytest.raises(ConfigError, match=r"^invalid syntax$"):
        validate_chmod("u+q")


def test_paths_clean_and_join_like_go() -> None:
    assert paths.clean("a/../../b/./c/") == "../b/c"
    assert paths.clean("/../x") == "/x"
    assert paths.clean("") == "."
    assert paths.join("/", "w", "") == "/w"
    assert paths.join("", "") == ""
    assert paths.base_name("/a/b/") == "b"


def test_workdir_normalization() -> None:
    assert paths.normalize_workdir("/a", "b/../c") == "/a/c"
    assert paths.normalize_workdir("/a", "") == "/a"
    assert paths.normalize_workdir("", "rel") == "/rel"
    assert paths.relative_to_workdir("/w", "") == "/w/"
    assert paths.relative_to_workdir("/", ".") == "/"


@pytest.mark.parametrize(
    ("spec", "platform"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/x86_64", Platform("linux", "amd64")),
        ("linux/aarch64", Platform("linux", "arm64")),
        ("linux/arm64/v8", Platform("linux", "arm64")),
        ("linux/arm", Platform("linux", "arm")),
        ("linux/arm/v6", Platform("linux", "arm", "v6")),
        ("arm64", Platform("linux", "arm64")),
    ],
)
def test_platform_parsing_normalizes_like_containerd(spec: str, platform: Platform) -> None:
    assert parse_platform(spec) == platform


def test_platform_errors_and_format() -> None:
    with pytest.raises(PlatformError):
        parse_platform("linux/*")
    with pytest.raises(PlatformError):
        parse_platform("nonsense")
    assert format_platform(Platform("linux", "arm", "v7")) == "linux/arm/v7"


def test_reference_checks() -> None:
    check_reference("alpine")
    check_reference("registry.local:5000/team/app:v1.2")
    check_reference("alpine@sha256:" + "a" * 64)
    with pytest.raises(ImageReferenceError, match="must be lowercase"):
        check_reference("Alpine:3")
    with pytest.raises(ImageReferenceError, match=r"^invalid reference format$"):
        check_reference("a b")
    with pytest.raises(ImageReferenceError, match="64-byte hexadecimal"):
        check_reference("a" * 64)


def test_source_kinds() -> None:
    assert is_http_source("https://example.com/file")
    assert not is_http_source("https://example.com/repo.git")
    assert parse_git_ref("ssh://git@host/repo") is not None
    assert parse_git_ref("git://host/repo#main") is not None
    assert parse_git_ref("./local") is None
    shorthand = parse_git_ref("github.com/o/r")
    assert shorthand is not None and shorthand.indistinguishable_from_local
    assert url_filename("https://e.com/a/b.tgz?x=1") == "b.tgz"
    assert url_filename("https://e.com/") == "__unnamed__"


def test_step_counter_and_text_helpers() -> None:
    counter = StepCounter("base", 10)
    assert counter.prefix("RUN x") == "[base  1/10] RUN x"
    assert counter.prefix("RUN y", onbuild=True) == "[base  2/10] ONBUILD RUN y"
    assert StepCounter("", 0).prefix("FROM x") == "FROM x"
    assert uppercase_first_word("copy a b") == "COPY a b"
    assert summarize_heredoc("\n  one\ntwo\n") == "one..."

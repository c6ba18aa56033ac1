"""strata.registry.hosts: the configuration file and the endpoints a domain resolves to."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.errors import UsageError
from strata.registry.hosts import (
    Endpoint,
    HostConfig,
    RegistryConfig,
    config_path,
    is_loopback,
    proxy_for,
    split_mirror,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "strata.toml"
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str) -> RegistryConfig:
    return RegistryConfig.load(write(tmp_path, text), env={})


FULL = """\
[system]
  max-registry-concurrency = 7

[registry."docker.io"]
  mirrors = ["127.0.0.1:5001", "mirror.example/some/path/"]

[registry."mirror.example"]
  ca = ["certs/ca.pem"]
  [[registry."mirror.example".keypair]]
    key = "/abs/client.key"
    cert = "/abs/client.cert"

[registry."reg.example:5000"]
  http = true

[registry."secure.example"]
  insecure = true
"""


def test_full_file_parses_into_host_tables(tmp_path: Path) -> None:
    config = load(tmp_path, FULL)
    assert config.max_concurrency == 7
    assert config.source == tmp_path / "strata.toml"
    assert config.hosts["docker.io"].mirrors == ("127.0.0.1:5001", "mirror.example/some/path/")
    mirror = config.hosts["mirror.example"]
    assert mirror.ca == (tmp_path / "certs/ca.pem",)  # relative to the file
    assert mirror.keypairs == ((Path("/abs/client.cert"), Path("/abs/client.key")),)
    assert config.hosts["reg.example:5000"].http is True
    assert config.hosts["reg.example:5000"].insecure is None


def test_buildkitd_spelling_of_concurrency_is_accepted(tmp_path: Path) -> None:
    assert load(tmp_path, "[system]\nmaxRegistryConcurrency = 2\n").max_concurrency == 2


def test_docker_io_dials_registry_1_and_mirrors_come_first_with_paths(tmp_path: Path) -> None:
    config = load(tmp_path, FULL)
    got = config.endpoints("docker.io")
    assert [(e.scheme, e.host, e.path, e.mirror) for e in got] == [
        ("http", "127.0.0.1:5001", "/v2", True),  # loopback mirror: http by default
        ("https", "mirror.example", "/v2/some/path", True),
        ("https", "registry-1.docker.io", "/v2", False),
    ]
    # the mirror takes TLS settings from its own table
    assert got[1].ca_files == (tmp_path / "certs/ca.pem",)
    assert got[1].client_cert == (Path("/abs/client.cert"), Path("/abs/client.key"))
    assert got[2].ca_files == ()


def test_push_never_goes_to_a_mirror(tmp_path: Path) -> None:
    got = load(tmp_path, FULL).endpoints("docker.io", push=True)
    assert [(e.host, e.mirror) for e in got] == [("registry-1.docker.io", False)]


def test_mirror_url_carries_the_origin_namespace_and_origin_does_not() -> None:
    mirror = Endpoint("https", "mirror:5001", "/v2/cache", True)
    origin = Endpoint("https", "registry-1.docker.io", "/v2", False)
    suffix = "/library/alpine/manifests/3.20"
    assert mirror.url(suffix, namespace="docker.io") == (
        "https://mirror:5001/v2/cache/library/alpine/manifests/3.20?ns=docker.io"
    )
    assert mirror.url("/x/blobs/uploads/?digest=a", namespace="docker.io").endswith(
        "?digest=a&ns=docker.io"
    )
    assert origin.url(suffix, namespace="docker.io") == (
        "https://registry-1.docker.io/v2/library/alpine/manifests/3.20"
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("10.0.0.1:5000", False),
        ("registry.example", False),
        ("localhost.example:5000", False),
    ],
)
def test_loopback_hosts_as_containerd_matches_them(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_unconfigured_loopback_is_http_and_remote_is_https() -> None:
    config = RegistryConfig()
    assert [(e.scheme, e.verify_tls) for e in config.endpoints("localhost:5000")] == [
        ("http", True)
    ]
    assert [(e.scheme, e.host) for e in config.endpoints("ghcr.io")] == [("https", "ghcr.io")]


def test_http_false_forces_https_on_loopback() -> None:
    config = RegistryConfig(hosts={"127.0.0.1:5000": HostConfig(http=False)})
    assert config.endpoints("127.0.0.1:5000")[0].scheme == "https"


def test_insecure_turns_verification_off_and_falls_back_only_with_http() -> None:
    config = RegistryConfig(
        hosts={
            "a.example": HostConfig(insecure=True),
            "b.example": HostConfig(insecure=True, http=True),
            "127.0.0.1:5000": HostConfig(insecure=True),
        }
    )
    (a,) = config.endpoints("a.example")
    assert (a.scheme, a.verify_tls, a.http_fallback) == ("https", False, False)
    (b,) = config.endpoints("b.example")
    assert (b.scheme, b.verify_tls, b.http_fallback) == ("https", False, True)
    (local,) = config.endpoints("127.0.0.1:5000")
    assert (local.scheme, local.verify_tls, local.http_fallback) == ("https", False, True)
    assert b.as_http() == Endpoint("http", "b.example", "/v2", False, verify_tls=False)


def test_per_command_insecure_replaces_the_domain_configuration(tmp_path: Path) -> None:
    got = load(tmp_path, FULL).endpoints("docker.io", insecure=True)
    assert len(got) == 1
    assert (got[0].host, got[0].scheme, got[0].verify_tls, got[0].http_fallback, got[0].mirror) == (
        "registry-1.docker.io",
        "https",
        False,
        True,
        False,
    )


def test_tlsconfigdir_supplies_cas_and_key_pairs(tmp_path: Path) -> None:
    certs = tmp_path / "certs.d" / "reg.example"
    certs.mkdir(parents=True)
    for name in ("ca.crt", "client.cert", "client.key", "README"):
        (certs / name).write_text("x")
    config = load(
        tmp_path,
        '[registry."reg.example"]\ntlsconfigdir = ["certs.d/reg.example", "missing"]\n',
    )
    (endpoint,) = config.endpoints("reg.example")
    assert endpoint.ca_files == (certs / "ca.crt",)
    assert endpoint.client_cert == (certs / "client.cert", certs / "client.key")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("mirror.example", ("mirror.example", "")),
        ("mirror.example:5000/a/b/", ("mirror.example:5000", "a/b")),
        ("https://mirror.example/path", ("mirror.example", "path")),
    ],
)
def test_split_mirror(raw: str, expected: tuple[str, str]) -> None:
    assert split_mirror(raw) == expected


# --- where the file is and what is wrong with it -------------------------------------


def test_missing_default_file_is_an_empty_config(tmp_path: Path) -> None:
    config = RegistryConfig.load(env={"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)})
    assert config.hosts == {}
    assert config.max_concurrency == 4
    assert config.source is None


def test_missing_explicit_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        RegistryConfig.load(env={"STRATA_CONFIG": str(tmp_path / "nope.toml")})
    with pytest.raises(UsageError, match=r"nope2\.toml does not exist"):
        RegistryConfig.load(tmp_path / "nope2.toml", env={})


def test_strata_config_env_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "[system]\nmax-registry-concurrency = 9\n")
    assert RegistryConfig.load(env={"STRATA_CONFIG": str(path)}).max_concurrency == 9


def test_default_location_depends_on_uid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/strata/strata.toml")
    assert config_path({"HOME": "/home/u"}) == Path("/home/u/.config/strata/strata.toml")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/etc/strata/strata.toml")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[registry."docker.io"]\nmirrors = [\n', ":2: invalid TOML"),
        ('[registry."docker.io"]\nhttp = yes\n', ":2: invalid TOML: Invalid value"),
        (
            '[registry."docker.io"]\n\nhttp = "yes"\n',
            ":3: registry.\"docker.io\".http: expected true or false, got 'yes'",
        ),
        (
            '[registry."docker.io"]\nmirrors = "m.example"\n',
            ':2: registry."docker.io".mirrors: expected a list',
        ),
        (
            '[registry."docker.io"]\nmirror = ["m"]\n',
            ":2: registry.\"docker.io\".mirror: unknown key 'mirror'",
        ),
        (
            "[system]\nmax-registry-concurrency = 0\n",
            ":2: system.max-registry-concurrency: expected a positive integer",
        ),
        ("[system]\nworkers = 2\n", ":2: system.workers: unknown key"),
        ("[registries]\n", ":1: registries: unknown key"),
        (
            '[registry."h"]\n[[registry."h".keypair]]\nkey = "k"\n',
            ":2: registry.h.keypair.cert: expected a file name",
        ),
        (
            '[registry."h"]\n[[registry."h".keypair]]\nkey = "k"\ncert = "c"\npass = "x"\n',
            ":5: registry.h.keypair.pass: unknown key",
        ),
        ("registry = 5\n", ":1: registry: expected a table"),
        ('[registry]\n"h".http = 1\n', ":2: registry.h.http: expected true or false, got int 1"),
        (
            '[registry]\n"h" = { insecure = "no" }\n',
            ":2: registry.h.insecure: expected true or false",
        ),
        ('[registry]\n"docker.io" = 5\n', ':2: registry."docker.io": expected a table'),
    ],
)
def test_malformed_file_is_one_usage_error_naming_file_line_and_key(
    tmp_path: Path, text: str, fragment: str
) -> None:
    with pytest.raises(UsageError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "strata.toml"))
    assert fragment in message
    assert "\n" not in message


# --- proxies ---------------------------------------------------------------------------

HTTPS = Endpoint("https", "reg.example:5000", "/v2", False)
HTTP = Endpoint("http", "reg.example", "/v2", False)


def test_proxy_per_scheme_and_case() -> None:
    env = {"HTTPS_PROXY": "proxy:3128", "http_proxy": "http://p2:8080"}
    assert proxy_for(HTTPS, env) == "http://proxy:3128"
    assert proxy_for(HTTP, env) == "http://p2:8080"
    assert proxy_for(HTTPS, {}) is None


def test_proxy_never_for_loopback() -> None:
    env = {"HTTPS_PROXY": "http://proxy:3128", "HTTP_PROXY": "http://proxy:3128"}
    for host in ("localhost:5000", "127.0.0.1:5000", "[::1]:5000"):
        assert proxy_for(Endpoint("http", host, "/v2", False), env) is None


@pytest.mark.parametrize(
    ("no_proxy", "host", "proxied"),
    [
        ("*", "reg.example", False),
        ("example", "reg.example", False),
        ("reg.example", "reg.example", False),
        (".reg.example", "reg.example", True),
        (".example", "reg.example", False),
        ("other.example, reg.example:443", "reg.example", False),
        ("reg.example:5000", "reg.example", True),
        ("10.0.0.0/8", "10.1.2.3:5000", False),
        ("10.1.2.3", "10.1.2.3", False),
        ("10.1.2.4", "10.1.2.3", True),
        ("xample", "reg.example", True),
    ],
)
def test_no_proxy_matching_as_go_does(no_proxy: str, host: str, proxied: bool) -> None:
    env = {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": no_proxy}
    got = proxy_for(Endpoint("https", host, "/v2", False), env)
    assert (got is not None) is proxied


# --- TLS context -----------------------------------------------------------------------


def test_ssl_context_verifies_by_default_and_not_when_insecure() -> None:
    import ssl

    from strata.registry.hosts import ssl_context

    secure = ssl_context(Endpoint("https", "reg.example", "/v2", False))
    assert (secure.verify_mode, secure.check_hostname) == (ssl.CERT_REQUIRED, True)
    loose = ssl_context(Endpoint("https", "reg.example", "/v2", False, verify_tls=False))
    assert (loose.verify_mode, loose.check_hostname) == (ssl.CERT_NONE, False)


def test_ssl_context_names_an_unreadable_ca(tmp_path: Path) -> None:
    from strata.registry.hosts import ssl_context

    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    endpoint = Endpoint("https", "reg.example", "/v2", False, ca_files=(bad,))
    with pytest.raises(UsageError, match=f"failed to read CA file {bad} for reg.example"):
        ssl_context(endpoint)
    assert endpoint.tls_key == (True, (bad,), None)


def test_registry_timeout_is_read_from_the_system_table(tmp_path: Path) -> None:
    assert load(tmp_path, "[system]\nregistry-timeout = 2.5\n").timeout == 2.5
    assert load(tmp_path, "").timeout == 30.0
    with pytest.raises(
        UsageError, match=r":2: system.registry-timeout: expected a positive number"
    ):
        load(tmp_path, "[system]\nregistry-timeout = 0\n")

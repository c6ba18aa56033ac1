"""strata.registry's Authorizer, credentials and hosts against real registries on 127.0.0.1
(Debian's docker-registry, a Python token server), with a minimal urllib3 `fetch` standing
in for the registry client."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import urllib3

from strata.errors import RegistryError
from strata.registry.auth import Authorizer, HttpAnswer, HttpFetch, repository_scope
from strata.registry.credentials import Credentials, CredentialStore
from strata.registry.hosts import Endpoint, RegistryConfig, ssl_context
from tests.integration.registry_servers import (
    RegistryServer,
    SeededImage,
    TokenServer,
    make_tls,
    registry_available,
    registry_server,
    seed_image,
    skopeo_available,
    token_server,
)

_missing = registry_available() or skopeo_available()
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")

MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
PASSWORD = "correct-horse-battery"
WRONG = "wrong-password-zzz"
IDENTITY = "refresh-token-for-alice"


def urllib3_fetch(endpoint: Endpoint) -> HttpFetch:
    """The smallest HttpFetch: one PoolManager with the endpoint's TLS settings."""
    pool = urllib3.PoolManager(
        ssl_context=ssl_context(endpoint),
        retries=False,
        timeout=urllib3.Timeout(total=30),
    )

    def fetch(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> HttpAnswer:
        try:
            answer = pool.request(method, url, headers=dict(headers), body=body, redirect=False)
        except urllib3.exceptions.HTTPError as e:
            raise RegistryError(
                f"failed to do request: {method} {url}: {type(e).__name__}"
            ) from None
        return HttpAnswer(
            answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.data
        )

    return fetch


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def get_manifest(
    authorizer: Authorizer,
    fetch: HttpFetch,
    endpoint: Endpoint,
    domain: str,
    repository: str,
    reference: str,
) -> HttpAnswer:
    """GET a manifest the way the client will: authorization(), on 401 unauthorized() and
    retry (bounded)."""
    scopes: Sequence[str] = [repository_scope(repository)]
    url = endpoint.url(f"/{repository}/manifests/{reference}", namespace=domain)
    for _ in range(4):
        headers = {"Accept": MANIFEST_ACCEPT, **authorizer.authorization(endpoint, domain, scopes)}
        answer = fetch("GET", url, headers, None)
        if answer.status != 401:
            return answer
        authorizer.unauthorized(endpoint, domain, scopes, answer.headers)
    raise AssertionError("the Authorizer kept retrying 401s")


def store_with(tmp_path: Path, domain: str, credentials: Credentials | None) -> CredentialStore:
    store = CredentialStore(tmp_path / "docker-config", env={"HOME": str(tmp_path), "PATH": ""})
    if credentials is not None:
        store.store(domain, credentials)
    return store


def pull(
    reg: RegistryServer,
    store: CredentialStore,
    repository: str,
    reference: str,
    *,
    clock: Clock | None = None,
    authorizer: Authorizer | None = None,
) -> tuple[HttpAnswer, Authorizer]:
    (endpoint,) = RegistryConfig().endpoints(reg.host)
    fetch = urllib3_fetch(endpoint)
    if authorizer is None:
        authorizer = Authorizer(store, fetch, clock=clock) if clock else Authorizer(store, fetch)
    return get_manifest(authorizer, fetch, endpoint, reg.host, repository, reference), authorizer


# --- token auth ----------------------------------------------------------------------------


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[tuple[TokenServer, RegistryServer, SeededImage]]:
    with (
        token_server(
            tmp_path, users={"alice": PASSWORD}, refresh_tokens={IDENTITY: "alice"}
        ) as tokens,
        registry_server(tmp_path, auth=tokens.registry_auth()) as reg,
    ):
        image = seed_image(reg, "team/app", "v1", tmp_path, creds=("alice", PASSWORD))
        tokens.grants.clear()
        yield tokens, reg, image


def test_anonymous_token_pull(
    tmp_path: Path, token_registry: tuple[TokenServer, RegistryServer, SeededImage]
) -> None:
    tokens, reg, image = token_registry
    answer, _ = pull(reg, store_with(tmp_path, reg.host, None), "team/app", "v1")
    assert answer.status == 200
    assert json.loads(answer.body)["config"]["digest"] == image.config_digest
    assert [(g.method, g.username, g.scopes) for g in tokens.grants] == [
        ("GET", "", ("repository:team/app:pull",))
    ]


def test_password_grant_is_a_post_with_client_id(
    tmp_path: Path, token_registry: tuple[TokenServer, RegistryServer, SeededImage]
) -> None:
    tokens, reg, _ = token_registry
    store = store_with(tmp_path, reg.host, Credentials("alice", PASSWORD))
    answer, _ = pull(reg, store, "team/app", "v1")
    assert answer.status == 200
    assert [
        (g.method, g.grant_type, g.username, g.client_id, g.service) for g in tokens.grants
    ] == [("POST", "password", "alice", "strata", tokens.service)]


def test_post_404_falls_back_to_get_with_basic(
    tmp_path: Path, token_registry: tuple[TokenServer, RegistryServer, SeededImage]
) -> None:
    tokens, reg, _ = token_registry
    tokens.post_404 = True
    store = store_with(tmp_path, reg.host, Credentials("alice", PASSWORD))
    answer, _ = pull(reg, store, "team/app", "v1")
    assert answer.status == 200
    assert [(g.method, g.username, g.status) for g in tokens.grants] == [
        ("POST", "", 404),
        ("GET", "alice", 200),
    ]


def test_identity_token_uses_the_refresh_grant(
    tmp_path: Path, token_registry: tuple[TokenServer, RegistryServer, SeededImage]
) -> None:
    tokens, reg, _ = token_registry
    store = store_with(tmp_path, reg.host, Credentials(identity_token=IDENTITY))
    answer, _ = pull(reg, store, "team/app", "v1")
    assert answer.status == 200
    assert [(g.method, g.grant_type, g.username) for g in tokens.grants] == [
        ("POST", "refresh_token", "alice")
    ]


def test_wrong_password_is_refused_without_showing_it(
    tmp_path: Path, token_registry: tuple[TokenServer, RegistryServer, SeededImage]
) -> None:
    tokens, reg, _ = token_registry
    store = store_with(tmp_path, reg.host, Credentials("alice", WRONG))
    with pytest.raises(RegistryError) as info:
        pull(reg, store, "team/app", "v1")
    assert "failed to authorize: failed to fetch oauth token: unexpected status from GET" in str(
        info.value
    )
    assert WRONG not in str(info.value)
    assert info.value.registry == reg.host
    # POST 401 -> GET with Basic 401, as containerd does
    assert [(g.method, g.status) for g in tokens.grants] == [("POST", 401), ("GET", 401)]


def test_anonymous_refused_when_the_server_wants_a_login(
    tmp_path: Path, token_registry: tuple[TokenServer, RegistryServer, SeededImage]
) -> None:
    tokens, reg, _ = token_registry
    tokens.allow_anonymous = False
    with pytest.raises(RegistryError, match="failed to fetch anonymous token"):
        pull(reg, store_with(tmp_path, reg.host, None), "team/app", "v1")


def test_insufficient_scope_retries_once_then_fails(
    tmp_path: Path, token_registry: tuple[TokenServer, RegistryServer, SeededImage]
) -> None:
    tokens, reg, _ = token_registry
    tokens.deny.add("team/app")
    with pytest.raises(RegistryError) as info:
        pull(reg, store_with(tmp_path, reg.host, None), "team/app", "v1")
    assert str(info.value) == (
        "pull access denied, repository does not exist or may require authorization: "
        "server message: insufficient_scope: authorization failed"
    )
    assert len(tokens.grants) == 2  # the first token, and one retry
    assert reg.count("GET", r"^/v2/team/app/manifests/v1$", status=401) == 3


def test_token_is_reused_until_it_expires(
    tmp_path: Path, token_registry: tuple[TokenServer, RegistryServer, SeededImage]
) -> None:
    tokens, reg, _ = token_registry
    tokens.expires_in = 10
    clock = Clock()
    store = store_with(tmp_path, reg.host, None)
    answer, authorizer = pull(reg, store, "team/app", "v1", clock=clock)
    answer, _ = pull(reg, store, "team/app", "v1", authorizer=authorizer)
    assert answer.status == 200
    assert len(tokens.grants) == 1
    clock.now += 10
    answer, _ = pull(reg, store, "team/app", "v1", authorizer=authorizer)
    assert answer.status == 200
    assert len(tokens.grants) == 2
    # the second and third pulls went out with a token at once: no 401 for them
    assert reg.count("GET", r"^/v2/team/app/manifests/v1$", status=401) == 1


# --- htpasswd ------------------------------------------------------------------------------


@pytest.fixture
def basic_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    with registry_server(tmp_path, htpasswd={"alice": PASSWORD}) as reg:
        seed_image(reg, "team/app", "v1", tmp_path, creds=("alice", PASSWORD))
        yield reg


def test_basic_auth_with_the_right_password(tmp_path: Path, basic_registry: RegistryServer) -> None:
    store = store_with(tmp_path, basic_registry.host, Credentials("alice", PASSWORD))
    answer, _ = pull(basic_registry, store, "team/app", "v1")
    assert answer.status == 200


def test_basic_auth_with_a_wrong_password(tmp_path: Path, basic_registry: RegistryServer) -> None:
    store = store_with(tmp_path, basic_registry.host, Credentials("alice", WRONG))
    with pytest.raises(RegistryError) as info:
        pull(basic_registry, store, "team/app", "v1")
    assert str(info.value).startswith("pull access denied")
    assert WRONG not in str(info.value)


def test_basic_auth_without_credentials(tmp_path: Path, basic_registry: RegistryServer) -> None:
    with pytest.raises(RegistryError, match="no basic auth credentials"):
        pull(basic_registry, store_with(tmp_path, basic_registry.host, None), "team/app", "v1")


def test_basic_auth_from_a_credential_helper(
    tmp_path: Path, basic_registry: RegistryServer
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-strata-test"
    reply = json.dumps({"Username": "alice", "Secret": PASSWORD})
    helper.write_text(
        f'#!/bin/sh\n[ "$1" = get ] || exit 1\n'
        f"[ \"$(cat)\" = {basic_registry.host} ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\n"
        f"echo '{reply}'\n"
    )
    helper.chmod(0o755)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credsStore": "strata-test"}))
    store = CredentialStore(
        config_dir, env={"HOME": str(tmp_path), "PATH": f"{bin_dir}:/usr/bin:/bin"}
    )
    answer, _ = pull(basic_registry, store, "team/app", "v1")
    assert answer.status == 200


def test_basic_auth_from_docker_auth_config(tmp_path: Path, basic_registry: RegistryServer) -> None:
    import base64

    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    env = {
        "HOME": str(tmp_path),
        "DOCKER_AUTH_CONFIG": json.dumps({"auths": {basic_registry.host: {"auth": auth}}}),
    }
    store = CredentialStore(tmp_path / "empty-config", env=env)
    answer, _ = pull(basic_registry, store, "team/app", "v1")
    assert answer.status == 200


# --- TLS -----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_needs_the_ca_from_the_config(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    with registry_server(tmp_path, tls=tls) as reg:
        seed_image(reg, "team/app", "v1", tmp_path)
        store = store_with(tmp_path, reg.host, None)
        config_file = tmp_path / "strata.toml"

        # loopback defaults to http; http = false makes it https, verified against the system CAs
        config_file.write_text(f'[registry."{reg.host}"]\nhttp = false\n')
        (endpoint,) = RegistryConfig.load(config_file, env={}).endpoints(reg.host)
        assert (endpoint.scheme, endpoint.ca_files) == ("https", ())
        fetch = urllib3_fetch(endpoint)
        with pytest.raises(RegistryError, match="SSLError"):
            get_manifest(Authorizer(store, fetch), fetch, endpoint, reg.host, "team/app", "v1")

        config_file.write_text(f'[registry."{reg.host}"]\nhttp = false\nca = ["{tls.ca_cert}"]\n')
        (endpoint,) = RegistryConfig.load(config_file, env={}).endpoints(reg.host)
        fetch = urllib3_fetch(endpoint)
        answer = get_manifest(Authorizer(store, fetch), fetch, endpoint, reg.host, "team/app", "v1")
        assert answer.status == 200

        # insecure = true: no verification at all
        config_file.write_text(f'[registry."{reg.host}"]\nhttp = false\ninsecure = true\n')
        (endpoint,) = RegistryConfig.load(config_file, env={}).endpoints(reg.host)
        fetch = urllib3_fetch(endpoint)
        answer = get_manifest(Authorizer(store, fetch), fetch, endpoint, reg.host, "team/app", "v1")
        assert answer.status == 200


# --- mirrors -------------------------------------------------------------------------------


def test_pull_through_mirror_gets_ns_and_no_origin_credentials(tmp_path: Path) -> None:
    with registry_server(tmp_path, name="origin") as origin:
        image = seed_image(origin, "team/app", "v1", tmp_path)
        with registry_server(tmp_path, name="mirror", proxy_remote=origin.url) as mirror:
            config_file = tmp_path / "strata.toml"
            config_file.write_text(f'[registry."{origin.host}"]\nmirrors = ["{mirror.host}"]\n')
            endpoints = RegistryConfig.load(config_file, env={}).endpoints(origin.host)
            assert [(e.host, e.mirror) for e in endpoints] == [
                (mirror.host, True),
                (origin.host, False),
            ]
            store = store_with(tmp_path, origin.host, Credentials("alice", PASSWORD))
            fetch = urllib3_fetch(endpoints[0])
            authorizer = Authorizer(store, fetch)
            answer = get_manifest(authorizer, fetch, endpoints[0], origin.host, "team/app", "v1")
            assert answer.status == 200
            assert json.loads(answer.body)["config"]["digest"] == image.config_digest
            (entry,) = [e for e in mirror.requests() if e.path == "/v2/team/app/manifests/v1"]
            assert entry.query == {"ns": [origin.host]}
            assert (
                authorizer.authorization(endpoints[0], origin.host, ["repository:team/app:pull"])
                == {}
            )
            assert origin.count("GET", r"^/v2/team/app/manifests/v1$") >= 1

"""strata.registry.auth: challenges, token grants and fallbacks, the token cache, and the
retry-once rule, against a fake `fetch`."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from strata.errors import RegistryError
from strata.registry.auth import (
    Authorizer,
    Challenge,
    HttpAnswer,
    normalize_scopes,
    parse_www_authenticate,
    repository_scope,
)
from strata.registry.credentials import Credentials, CredentialStore
from strata.registry.hosts import Endpoint

REALM = "https://auth.example/token"
ORIGIN = Endpoint("https", "reg.example", "/v2", False)
MIRROR = Endpoint("https", "mirror.example", "/v2", True)
SCOPE = "repository:library/alpine:pull"
PASSWORD = "pa55-w0rd-secret"
IDENTITY = "identity-token-secret"


class DictStore(CredentialStore):
    def __init__(self, entries: Mapping[str, Credentials]) -> None:
        super().__init__(Path("/nonexistent"), env={})
        self.entries = dict(entries)
        self.lookups: list[str] = []

    def get(self, domain: str) -> Credentials:
        self.lookups.append(domain)
        return self.entries.get(domain, Credentials())


@dataclass
class Call:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs((self.body or b"").decode())


@dataclass
class FakeTokenServer:
    """Answers token requests at REALM; records every call."""

    post_status: int = 200
    get_status: int = 200
    expires_in: int | None = 300
    issued_at: str | None = None
    body: bytes | None = None
    calls: list[Call] = field(default_factory=list)
    issued: int = 0

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> HttpAnswer:
        self.calls.append(Call(method, url, dict(headers), body))
        assert url.startswith(REALM)
        status = self.post_status if method == "POST" else self.get_status
        if status != 200:
            return HttpAnswer(status, {}, b"{}")
        if self.body is not None:
            return HttpAnswer(200, {}, self.body)
        self.issued += 1
        answer: dict[str, object] = {
            ("access_token" if method == "POST" else "token"): f"tok{self.issued}"
        }
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        if self.issued_at is not None:
            answer["issued_at"] = self.issued_at
        return HttpAnswer(200, {"content-type": "application/json"}, json.dumps(answer).encode())


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def bearer(scope: str = SCOPE, error: str | None = None) -> dict[str, str]:
    value = f'Bearer realm="{REALM}",service="reg.example",scope="{scope}"'
    if error:
        value += f',error="{error}"'
    return {"www-authenticate": value}


def make(
    entries: Mapping[str, Credentials] | None = None, server: FakeTokenServer | None = None
) -> tuple[Authorizer, FakeTokenServer, Clock, list[tuple[str, Sequence[str]]]]:
    server = server or FakeTokenServer()
    clock = Clock()
    tokens: list[tuple[str, Sequence[str]]] = []
    authorizer = Authorizer(
        DictStore(entries or {}),
        server,
        on_token=lambda host, scopes: tokens.append((host, tuple(scopes))),
        clock=clock,
    )
    return authorizer, server, clock, tokens


def challenge_then_authorize(
    authorizer: Authorizer, scopes: Sequence[str] = (SCOPE,), endpoint: Endpoint = ORIGIN
) -> dict[str, str]:
    assert authorizer.authorization(endpoint, "reg.example", scopes) == {}
    authorizer.unauthorized(endpoint, "reg.example", scopes, bearer(scopes[0]))
    return authorizer.authorization(endpoint, "reg.example", scopes)


# --- parsing -----------------------------------------------------------------------------


def test_parse_bearer_with_quoted_commas_and_a_second_challenge() -> None:
    got = parse_www_authenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope", '
        'Basic realm="say \\"hi\\""'
    )
    assert got == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:a/b:pull,push repository:c:pull",
                "error": "insufficient_scope",
            },
        ),
        Challenge("basic", {"realm": 'say "hi"'}),
    ]


def test_parse_bare_values_and_case() -> None:
    assert parse_www_authenticate("BASIC Realm=registry") == [
        Challenge("basic", {"realm": "registry"})
    ]
    assert parse_www_authenticate("") == []


def test_scopes() -> None:
    assert repository_scope("library/alpine") == "repository:library/alpine:pull"
    assert repository_scope("me/app", ("pull", "push")) == "repository:me/app:pull,push"
    assert normalize_scopes(["repository:b:push", "repository:a:pull", "repository:b:pull"]) == (
        "repository:a:pull",
        "repository:b:pull,push",
    )


# --- Bearer ------------------------------------------------------------------------------


def test_anonymous_token_is_a_get_with_service_and_every_scope() -> None:
    authorizer, server, _, tokens = make()
    scopes = ["repository:library/alpine:pull", "repository:other/base:pull"]
    headers = challenge_then_authorize(authorizer, scopes)
    assert headers == {"Authorization": "Bearer tok1"}
    (call,) = server.calls
    assert call.method == "GET"
    assert "Authorization" not in call.headers
    assert call.query == {"service": ["reg.example"], "scope": sorted(scopes)}
    assert tokens == [("reg.example", tuple(sorted(scopes)))]


def test_token_is_cached_per_scopes_until_ninety_percent_of_expiry() -> None:
    authorizer, server, clock, _ = make()
    challenge_then_authorize(authorizer)
    clock.now += 269  # expires_in 300: used until 270 s
    assert authorizer.authorization(ORIGIN, "reg.example", [SCOPE]) == {
        "Authorization": "Bearer tok1"
    }
    assert len(server.calls) == 1
    # another scope on the same host needs no new challenge, but its own token
    other = authorizer.authorization(ORIGIN, "reg.example", ["repository:x:pull"])
    assert other == {"Authorization": "Bearer tok2"}
    clock.now += 2
    assert authorizer.authorization(ORIGIN, "reg.example", [SCOPE]) == {
        "Authorization": "Bearer tok3"
    }


def test_expires_in_defaults_to_sixty_seconds() -> None:
    authorizer, server, clock, _ = make(server=FakeTokenServer(expires_in=None))
    challenge_then_authorize(authorizer)
    clock.now += 53
    authorizer.authorization(ORIGIN, "reg.example", [SCOPE])
    assert len(server.calls) == 1
    clock.now += 2
    authorizer.authorization(ORIGIN, "reg.example", [SCOPE])
    assert len(server.calls) == 2


def test_issued_at_counts_from_the_server_time() -> None:
    server = FakeTokenServer(expires_in=100, issued_at="2023-11-14T22:12:30.123456789Z")
    authorizer, server, clock, _ = make(server=server)
    clock.now = 1_700_000_000.0  # 2023-11-14T22:13:20Z: issued 50 s ago, usable until +90 s
    challenge_then_authorize(authorizer)
    clock.now += 39
    authorizer.authorization(ORIGIN, "reg.example", [SCOPE])
    assert len(server.calls) == 1
    clock.now += 2
    authorizer.authorization(ORIGIN, "reg.example", [SCOPE])
    assert len(server.calls) == 2


def test_password_grant_is_a_post_form() -> None:
    authorizer, server, _, _ = make({"reg.example": Credentials("alice", PASSWORD)})
    assert challenge_then_authorize(authorizer) == {"Authorization": "Bearer tok1"}
    (call,) = server.calls
    assert call.method == "POST"
    assert call.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert call.form == {
        "grant_type": ["password"],
        "username": ["alice"],
        "password": [PASSWORD],
        "service": ["reg.example"],
        "scope": [SCOPE],
        "client_id": ["strata"],
    }
    assert "Authorization" not in call.headers


def test_refresh_token_grant_with_identity_token() -> None:
    authorizer, server, _, _ = make({"reg.example": Credentials(identity_token=IDENTITY)})
    challenge_then_authorize(authorizer)
    (call,) = server.calls
    assert call.form["grant_type"] == ["refresh_token"]
    assert call.form["refresh_token"] == [IDENTITY]
    assert "username" not in call.form


@pytest.mark.parametrize("status", [404, 401, 400, 405])
def test_post_refused_falls_back_to_get_with_basic(status: int) -> None:
    server = FakeTokenServer(post_status=status)
    authorizer, server, _, _ = make({"reg.example": Credentials("alice", PASSWORD)}, server)
    assert challenge_then_authorize(authorizer) == {"Authorization": "Bearer tok1"}
    assert [c.method for c in server.calls] == ["POST", "GET"]
    expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert server.calls[1].headers["Authorization"] == expected
    assert server.calls[1].query["scope"] == [SCOPE]


def test_405_without_username_is_final() -> None:
    server = FakeTokenServer(post_status=405)
    authorizer, server, _, _ = make({"reg.example": Credentials(identity_token=IDENTITY)}, server)
    with pytest.raises(RegistryError) as info:
        challenge_then_authorize(authorizer)
    assert [c.method for c in server.calls] == ["POST"]
    message = str(info.value)
    assert message == (
        "failed to authorize: failed to fetch oauth token: unexpected status from POST request "
        "to https://auth.example/token: 405 Method Not Allowed"
    )
    assert info.value.registry == "reg.example"


def test_token_server_refusing_the_get_names_the_realm_not_the_secret() -> None:
    server = FakeTokenServer(post_status=404, get_status=401)
    authorizer, server, _, _ = make({"reg.example": Credentials("alice", PASSWORD)}, server)
    with pytest.raises(RegistryError) as info:
        challenge_then_authorize(authorizer)
    assert str(info.value) == (
        "failed to authorize: failed to fetch oauth token: unexpected status from GET request to "
        "https://auth.example/token?service=reg.example&scope=repository%3Alibrary%2Falpine%3Apull: "
        "401 Unauthorized"
    )


def test_anonymous_refused_is_failed_to_fetch_anonymous_token() -> None:
    authorizer, _, _, _ = make(server=FakeTokenServer(get_status=401))
    with pytest.raises(RegistryError, match="failed to fetch anonymous token: unexpected status"):
        challenge_then_authorize(authorizer)


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"token": ""}', b"[1]"])
def test_token_answer_without_a_token_is_an_error(body: bytes) -> None:
    authorizer, _, _, _ = make(server=FakeTokenServer(body=body))
    with pytest.raises(RegistryError, match="failed to authorize"):
        challenge_then_authorize(authorizer)


def test_registry_token_is_used_directly() -> None:
    authorizer, server, _, tokens = make({"reg.example": Credentials(registry_token="regtok-1")})
    assert challenge_then_authorize(authorizer) == {"Authorization": "Bearer regtok-1"}
    assert server.calls == []
    assert tokens == []


def test_challenge_scope_is_added_to_the_token_request() -> None:
    authorizer, server, _, _ = make()
    authorizer.authorization(ORIGIN, "reg.example", [SCOPE])
    authorizer.unauthorized(ORIGIN, "reg.example", [SCOPE], bearer("repository:extra/one:pull"))
    authorizer.authorization(ORIGIN, "reg.example", [SCOPE])
    assert server.calls[0].query["scope"] == ["repository:extra/one:pull", SCOPE]


@pytest.mark.parametrize("error", ["insufficient_scope", "invalid_token", None])
def test_refused_token_is_refetched_once_then_the_same_error_is_final(error: str | None) -> None:
    authorizer, server, _, _ = make()
    challenge_then_authorize(authorizer)
    authorizer.unauthorized(ORIGIN, "reg.example", [SCOPE], bearer(error=error))
    assert authorizer.authorization(ORIGIN, "reg.example", [SCOPE]) == {
        "Authorization": "Bearer tok2"
    }
    with pytest.raises(RegistryError) as info:
        authorizer.unauthorized(ORIGIN, "reg.example", [SCOPE], bearer(error=error))
    expected = "pull access denied, repository does not exist or may require authorization: "
    expected += (
        f"server message: {error}: authorization failed" if error else "authorization failed"
    )
    assert str(info.value) == expected
    assert len(server.calls) == 2


def test_a_different_error_gets_its_own_retry() -> None:
    authorizer, server, _, _ = make()
    challenge_then_authorize(authorizer)
    authorizer.unauthorized(ORIGIN, "reg.example", [SCOPE], bearer(error="invalid_token"))
    authorizer.authorization(ORIGIN, "reg.example", [SCOPE])
    authorizer.unauthorized(ORIGIN, "reg.example", [SCOPE], bearer(error="insufficient_scope"))
    authorizer.authorization(ORIGIN, "reg.example", [SCOPE])
    assert len(server.calls) == 3


def test_alternating_errors_still_end() -> None:
    authorizer, server, _, _ = make()
    challenge_then_authorize(authorizer)
    for error in ("invalid_token", "insufficient_scope"):
        authorizer.unauthorized(ORIGIN, "reg.example", [SCOPE], bearer(error=error))
        authorizer.authorization(ORIGIN, "reg.example", [SCOPE])
    with pytest.raises(RegistryError, match="server message: invalid_token"):
        authorizer.unauthorized(ORIGIN, "reg.example", [SCOPE], bearer(error="invalid_token"))
    assert len(server.calls) == 3


def test_push_scope_says_push_access_denied() -> None:
    authorizer, _, _, _ = make()
    scopes = ["repository:me/app:pull,push"]
    challenge_then_authorize(authorizer, scopes)
    authorizer.unauthorized(ORIGIN, "reg.example", scopes, bearer(scopes[0], "insufficient_scope"))
    authorizer.authorization(ORIGIN, "reg.example", scopes)
    with pytest.raises(RegistryError, match=r"^push access denied"):
        authorizer.unauthorized(
            ORIGIN, "reg.example", scopes, bearer(scopes[0], "insufficient_scope")
        )


def test_a_thread_whose_token_was_already_replaced_does_not_count_as_a_second_refusal() -> None:
    authorizer, server, _, _ = make()
    challenge_then_authorize(authorizer)  # this thread sent tok1

    def other_thread_sends_tok1_and_is_refused() -> None:
        assert authorizer.authorization(ORIGIN, "reg.example", [SCOPE]) == {
            "Authorization": "Bearer tok1"
        }
        authorizer.unauthorized(ORIGIN, "reg.example", [SCOPE], bearer(error="insufficient_scope"))
        assert authorizer.authorization(ORIGIN, "reg.example", [SCOPE]) == {
            "Authorization": "Bearer tok2"
        }

    worker = threading.Thread(target=other_thread_sends_tok1_and_is_refused)
    worker.start()
    worker.join()
    # this thread's tok1 is refused too, but it was already replaced: no error, use tok2
    authorizer.unauthorized(ORIGIN, "reg.example", [SCOPE], bearer(error="insufficient_scope"))
    assert authorizer.authorization(ORIGIN, "reg.example", [SCOPE]) == {
        "Authorization": "Bearer tok2"
    }
    assert len(server.calls) == 2


def test_concurrent_requests_share_one_token_fetch() -> None:
    authorizer, server, _, _ = make()
    challenge_then_authorize(authorizer, ["repository:warm:pull"])
    results: list[dict[str, str]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(authorizer.authorization(ORIGIN, "reg.example", [SCOPE]))
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.calls) == 2
    assert {r["Authorization"] for r in results} == {"Bearer tok2"}


# --- Basic -------------------------------------------------------------------------------


def test_basic_challenge_sends_the_stored_password() -> None:
    authorizer, server, _, _ = make({"reg.example": Credentials("alice", PASSWORD)})
    assert authorizer.authorization(ORIGIN, "reg.example", [SCOPE]) == {}
    authorizer.unauthorized(
        ORIGIN, "reg.example", [SCOPE], {"www-authenticate": 'Basic realm="Registry"'}
    )
    expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert authorizer.authorization(ORIGIN, "reg.example", [SCOPE]) == {"Authorization": expected}
    # refused again with the same password: wrong credentials, said without the password
    with pytest.raises(RegistryError) as info:
        authorizer.unauthorized(
            ORIGIN, "reg.example", [SCOPE], {"www-authenticate": 'Basic realm="Registry"'}
        )
    assert str(info.value).startswith(
        "pull access denied, repository does not exist or may require"
    )
    assert "'alice'" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert server.calls == []


def test_basic_challenge_without_credentials() -> None:
    authorizer, _, _, _ = make()
    with pytest.raises(RegistryError, match="no basic auth credentials"):
        authorizer.unauthorized(
            ORIGIN, "reg.example", [SCOPE], {"www-authenticate": "Basic realm=x"}
        )


def test_401_without_a_known_challenge() -> None:
    authorizer, _, _, _ = make()
    with pytest.raises(RegistryError, match="without a Basic or Bearer challenge"):
        authorizer.unauthorized(
            ORIGIN, "reg.example", [SCOPE], {"www-authenticate": "Negotiate abc"}
        )


# --- mirrors -----------------------------------------------------------------------------


def test_mirror_never_gets_the_origin_credentials() -> None:
    store = {"reg.example": Credentials("alice", PASSWORD)}
    authorizer, server, _, _ = make(store)
    assert challenge_then_authorize(authorizer, endpoint=MIRROR) == {"Authorization": "Bearer tok1"}
    (call,) = server.calls
    assert call.method == "GET"  # anonymous
    assert "Authorization" not in call.headers
    with pytest.raises(RegistryError, match=r"no basic auth credentials for mirror\.example"):
        authorizer.unauthorized(
            MIRROR, "reg.example", [SCOPE], {"www-authenticate": "Basic realm=x"}
        )


def test_mirror_uses_its_own_entry() -> None:
    store = {
        "reg.example": Credentials("alice", PASSWORD),
        "mirror.example": Credentials("m", "mpw"),
    }
    authorizer, server, _, _ = make(store)
    challenge_then_authorize(authorizer, endpoint=MIRROR)
    assert server.calls[0].form["username"] == ["m"]


def test_credentials_are_looked_up_once() -> None:
    store = DictStore({"reg.example": Credentials("alice", PASSWORD)})
    server = FakeTokenServer()
    authorizer = Authorizer(store, server)
    challenge_then_authorize(authorizer)
    authorizer.authorization(ORIGIN, "reg.example", ["repository:x:pull"])
    assert store.lookups == ["reg.example"]


def test_repr_shows_no_token() -> None:
    authorizer, _, _, _ = make()
    challenge_then_authorize(authorizer)
    assert "tok1" not in repr(authorizer)

"""Registry authentication: answering `401 WWW-Authenticate` challenges with Basic or
Bearer credentials, as containerd and BuildKit do.

The flow (`ctd:core/remotes/docker/authorizer.go`, `ctd:core/remotes/docker/auth/fetch.go`,
`bk:util/resolver/authorizer.go`; the token protocol is distribution's
`docs/spec/auth/token.md` and `oauth.md`):

1. A request goes out with whatever `authorization()` returns ({} for a host never
   challenged). A 401 comes back; the client hands its headers to `unauthorized()`.
2. `Basic realm=...`: the registry's own credentials go in `Authorization: Basic` on the
   retry; none stored is "no basic auth credentials".
3. `Bearer realm=...,service=...,scope=...`: a token is fetched from the realm for the
   request's scopes (plus the challenge's own `scope`):
   - no credentials: `GET realm?service=..&scope=..&scope=..` anonymously;
   - a password or an identity token: `POST realm` with a form (`grant_type=password`
     with username/password, or `grant_type=refresh_token` with the identity token;
     `service`, `scope`, `client_id=strata`); on 404, 401 or 400, or 405 when there is a
     username, the same `GET` with Basic credentials (registries without the OAuth
     endpoint: GCR answered 404, Artifactory 401, ACR 400);
   - a `registrytoken` from config.json is the bearer token itself.
   Tokens are cached per (host, scopes) until `issued_at + 0.9 * expires_in` (default
   60 s; the 0.9 is BuildKit's margin), one fetch at a time per key.
4. A 401 carrying `error=` (`insufficient_scope`, `invalid_token`) for a token we sent
   drops it and fetches a new one once; the same error again for that new token is final
   (containerd's `invalidAuthorization`). The same holds for a token refused without
   `error=`, and for Basic credentials refused a second time. A registry alternating
   between errors is given at most three tokens per (host, scopes) in a row.

To tell "the token I sent was refused" from "another thread already replaced it", the
Authorizer remembers, per thread, which `Authorization` value `authorization()` last gave
for each (host, scopes): a client calls `authorization()` and `unauthorized()` for one
request on one thread.

A mirror endpoint is never given the origin's credentials: its own entry (looked up by
the mirror's host) is used, or none, as the OCI distribution spec asks of clients.
Nothing here puts a credential or a token into a message.
"""

from __future__ import annotations

import base64
import datetime
import http
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from strata.errors import RegistryError
from strata.registry.credentials import Credentials, CredentialStore
from strata.registry.hosts import Endpoint

CLIENT_ID = "strata"
DEFAULT_EXPIRES_IN = 60  # seconds: distribution token spec, bk:util/resolver/authorizer.go
EXPIRY_MARGIN = 0.9  # use a token for 90% of its life (bk:util/resolver/authorizer.go fetchToken)
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
DENIED = "{op} access denied, repository does not exist or may require authorization"
MAX_TOKEN_RETRIES = 2  # a registry alternating between errors still ends after 3 tokens


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes


# method, url, headers, form body -> answer. Given by the client, so the token realm is
# dialled with the same TLS/proxy settings. Raises RegistryError on transport failure.
HttpFetch = Callable[[str, str, Mapping[str, str], bytes | None], HttpAnswer]


@dataclass(frozen=True)
class Challenge:
    """One challenge of a `WWW-Authenticate` header: scheme lower-cased, parameter
    names lower-cased, values unquoted."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)


def repository_scope(path: str, actions: Sequence[str] = ("pull",)) -> str:
    """`repository:library/alpine:pull` (`ctd:scope.go` `RepositoryScope`)."""
    return f"repository:{path}:{','.join(actions)}"


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Merge the actions of scopes naming the same resource and sort everything, so
    `repository:a:push` + `repository:a:pull` is `repository:a:pull,push` and the cache
    key does not depend on order (BuildKit's `parseScopes(...).normalize()`)."""
    merged: dict[tuple[str, str], set[str]] = {}
    odd: set[str] = set()
    for scope in scopes:
        for item in scope.split():
            kind, sep, rest = item.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not sep or not sep2 or not name:
                odd.add(item)
                continue
            merged.setdefault((kind, name), set()).update(a for a in actions.split(",") if a)
    out = [f"{k}:{n}:{','.join(sorted(a))}" for (k, n), a in merged.items()]
    return tuple(sorted(set(out) | odd))


# --- WWW-Authenticate --------------------------------------------------------------------

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})")
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*")
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_BARE_RE = re.compile(r"[^,\s]*")
_UNESCAPE_RE = re.compile(r"\\(.)")


def parse_www_authenticate(value: str) -> list[Challenge]:
    """Every challenge in a `WWW-Authenticate` value (several may be joined with commas,
    as an HTTP library does with repeated headers). Quoted values may hold commas and
    backslash escapes: `Bearer realm="https://a/token",scope="repository:x:pull,push"`."""
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(value):
        while pos < len(value) and value[pos] in ", \t":
            pos += 1
        m = _SCHEME_RE.match(value, pos)
        if m is None:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: dict[str, str] = {}
        while True:
            save = pos
            while pos < len(value) and value[pos] in ", \t":
                pos += 1
            p = _PARAM_RE.match(value, pos)
            if p is None:
                pos = save
                break
            name = p.group(1).lower()
            pos = p.end()
            q = _QUOTED_RE.match(value, pos)
            if q is not None:
                params[name] = _UNESCAPE_RE.sub(r"\1", q.group(1))
                pos = q.end()
            else:
                b = _BARE_RE.match(value, pos)
                assert b is not None  # matches the empty string at worst
                params[name] = b.group(0)
                pos = b.end()
        challenges.append(Challenge(scheme, params))
        if pos < len(value) and value[pos] not in ", \t":
            pos += 1  # skip a stray character rather than loop
    return challenges


# --- the Authorizer ----------------------------------------------------------------------


@dataclass
class _HostAuth:
    """What a host asked for in its last challenge."""

    scheme: str  # "basic" or "bearer"
    realm: str = ""
    service: str = ""


@dataclass
class _Token:
    header: str = field(repr=False)  # "Bearer <token>"
    expires: float  # clock time; inf for a configured registry token
    answers: str | None  # the `error=` this token was fetched to answer; None: first fetch
    retries: int = 0  # how many refused tokens came before this one


def basic_header(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")


def _operation(scopes: Sequence[str]) -> str:
    return "push" if any("push" in s.rpartition(":")[2].split(",") for s in scopes) else "pull"


def _public_url(url: str, *, keep_query: bool = False) -> str:
    """A token URL fit for a message: never user info; the query only when asked (a GET's
    query holds the service and scopes, which help; nothing secret goes in it)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query if keep_query else "", ""))


def _status_text(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class Authorizer:
    """Thread-safe; one per RegistryClient; caches tokens per (host, scopes) until expiry."""

    def __init__(
        self,
        credentials: CredentialStore,
        fetch: HttpFetch,
        *,
        on_token: Callable[[str, Sequence[str]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = credentials
        self._fetch = fetch
        self._on_token = on_token
        self._clock = clock
        self._lock = threading.Lock()
        self._hosts: dict[str, _HostAuth] = {}
        self._tokens: dict[tuple[str, tuple[str, ...]], _Token] = {}
        self._key_locks: dict[tuple[str, tuple[str, ...]], threading.Lock] = {}
        self._retry_for: dict[tuple[str, tuple[str, ...]], tuple[str, int]] = {}
        self._challenge_scopes: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}
        self._credentials: dict[str, Credentials] = {}
        self._sent = threading.local()

    def __repr__(self) -> str:
        return f"Authorizer(hosts={sorted(self._hosts)})"

    # --- the two verbs --------------------------------------------------------------

    def authorization(
        self, endpoint: Endpoint, domain: str, scopes: Sequence[str]
    ) -> dict[str, str]:
        """Headers to add to a request (maybe {}); for a mirror endpoint never the
        origin's credentials. May fetch a token (and raise `RegistryError`)."""
        key = (endpoint.host, normalize_scopes(scopes))
        with self._lock:
            host = self._hosts.get(endpoint.host)
        header: str | None = None
        if host is not None and host.scheme == "basic":
            creds = self._credentials_for(endpoint, domain)
            if creds.username and creds.secret:
                header = basic_header(creds.username, creds.secret)
        elif host is not None:
            header = self._bearer(endpoint, domain, key, host).header
        self._remember_sent(key, header)
        return {"Authorization": header} if header else {}

    def unauthorized(
        self, endpoint: Endpoint, domain: str, scopes: Sequence[str], headers: Mapping[str, str]
    ) -> None:
        """Learn from a 401 (its headers, keys lower-cased) what the next `authorization()`
        for this request returns. Raises `RegistryError` when nothing more can be tried."""
        key = (endpoint.host, normalize_scopes(scopes))
        op = _operation(key[1])
        value = next((v for k, v in headers.items() if k.lower() == "www-authenticate"), "")
        challenge = next(
            (c for c in parse_www_authenticate(value) if c.scheme in ("bearer", "basic")), None
        )
        sent = self._last_sent(key)
        if challenge is None:
            raise RegistryError(
                f"{DENIED.format(op=op)}: {endpoint.host} answered 401 without a Basic or Bearer challenge",
                registry=domain,
            )
        if challenge.scheme == "basic":
            self._basic_challenge(endpoint, domain, op, sent)
            return
        realm = challenge.params.get("realm", "")
        if not realm:
            raise RegistryError(
                "failed to authorize: no realm specified for token auth challenge", registry=domain
            )
        error = challenge.params.get("error", "")
        with self._lock:
            self._hosts[endpoint.host] = _HostAuth(
                "bearer", realm=realm, service=challenge.params.get("service", "")
            )
            wanted = tuple(challenge.params.get("scope", "").split())
            if wanted:
                self._challenge_scopes[key] = wanted
            if sent is None:
                return  # nothing was sent: the next authorization() fetches a token
            token = self._tokens.get(key)
            if token is None or token.header != sent:
                return  # another thread replaced (or dropped) the token we sent
            if token.answers == error or token.retries >= MAX_TOKEN_RETRIES:
                del self._tokens[key]
                reason = (
                    f"server message: {error}: authorization failed"
                    if error
                    else "authorization failed"
                )
                raise RegistryError(f"{DENIED.format(op=op)}: {reason}", registry=domain)
            del self._tokens[key]
            self._retry_for[key] = (error, token.retries + 1)

    # --- Basic ------------------------------------------------------------------------

    def _basic_challenge(self, endpoint: Endpoint, domain: str, op: str, sent: str | None) -> None:
        creds = self._credentials_for(endpoint, domain)
        if not (creds.username and creds.secret):
            raise RegistryError(
                f"{DENIED.format(op=op)}: no basic auth credentials for {endpoint.host}",
                registry=domain,
            )
        if sent is not None and sent == basic_header(creds.username, creds.secret):
            raise RegistryError(
                f"{DENIED.format(op=op)}: {endpoint.host} refused the credentials of user "
                f"{creds.username!r} (authorization failed)",
                registry=domain,
            )
        with self._lock:
            self._hosts[endpoint.host] = _HostAuth("basic")

    # --- Bearer -----------------------------------------------------------------------

    def _bearer(
        self, endpoint: Endpoint, domain: str, key: tuple[str, tuple[str, ...]], host: _HostAuth
    ) -> _Token:
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one fetch per key at a time; the others wait and reuse it
            with self._lock:
                token = self._tokens.get(key)
                if token is not None and token.expires > self._clock():
                    return token
                answers, retries = self._retry_for.pop(key, (None, 0))
                extra = self._challenge_scopes.pop(key, ())
            token = self._new_token(endpoint, domain, key, host, extra, answers)
            token.retries = retries
            with self._lock:
                self._tokens[key] = token
            return token

    def _new_token(
        self,
        endpoint: Endpoint,
        domain: str,
        key: tuple[str, tuple[str, ...]],
        host: _HostAuth,
        extra_scopes: tuple[str, ...],
        answers: str | None,
    ) -> _Token:
        creds = self._credentials_for(endpoint, domain)
        if creds.registry_token:
            return _Token(f"Bearer {creds.registry_token}", float("inf"), answers)
        scopes = normalize_scopes((*key[1], *extra_scopes))
        if creds.identity_token:
            username, secret = "", creds.identity_token
        else:
            username, secret = creds.username, creds.secret
        if secret:
            body = self._oauth_token(domain, host, scopes, username, secret)
        else:
            body = self._get_token(domain, host, scopes, None, "failed to fetch anonymous token")
        token_text, expires = self._read_token(domain, body)
        if self._on_token is not None:
            self._on_token(endpoint.host, scopes)
        return _Token(f"Bearer {token_text}", expires, answers)

    def _oauth_token(
        self, domain: str, host: _HostAuth, scopes: Sequence[str], username: str, secret: str
    ) -> dict[str, Any]:
        """POST the OAuth2 form; on the statuses registries without that endpoint give,
        fall back to GET with Basic (`ctd:authorizer.go` doBearerAuth)."""
        form: list[tuple[str, str]] = []
        if scopes:
            form.append(("scope", " ".join(scopes)))
        form += [("service", host.service), ("client_id", CLIENT_ID)]
        if username:
            form += [("grant_type", "password"), ("username", username), ("password", secret)]
        else:
            form += [("grant_type", "refresh_token"), ("refresh_token", secret)]
        answer = self._fetch(
            "POST", host.realm, {"Content-Type": FORM_CONTENT_TYPE}, urlencode(form).encode()
        )
        if 200 <= answer.status < 400:
            data = self._json(domain, answer, "failed to fetch oauth token")
            if not data.get("access_token"):
                raise RegistryError(
                    "failed to authorize: failed to fetch oauth token: "
                    "authorization server did not include a token in the response",
                    registry=domain,
                )
            return data
        if answer.status in (404, 401, 400) or (answer.status == 405 and username):
            return self._get_token(
                domain, host, scopes, basic_header(username, secret), "failed to fetch oauth token"
            )
        raise RegistryError(
            f"failed to authorize: failed to fetch oauth token: unexpected status from POST "
            f"request to {_public_url(host.realm)}: {_status_text(answer.status)}",
            registry=domain,
        )

    def _get_token(
        self,
        domain: str,
        host: _HostAuth,
        scopes: Sequence[str],
        authorization: str | None,
        what: str,
    ) -> dict[str, Any]:
        query: list[tuple[str, str]] = []
        if host.service:
            query.append(("service", host.service))
        query += [("scope", s) for s in scopes]
        url = host.realm
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        headers = {"Authorization": authorization} if authorization else {}
        answer = self._fetch("GET", url, headers, None)
        if not 200 <= answer.status < 400:
            # The URL with its query (service, scopes: public), as containerd shows it.
            raise RegistryError(
                f"failed to authorize: {what}: unexpected status from GET request to "
                f"{_public_url(url, keep_query=True)}: {_status_text(answer.status)}",
                registry=domain,
            )
        data = self._json(domain, answer, what)
        if data.get("access_token"):
            data["token"] = data["access_token"]
        if not data.get("token"):
            raise RegistryError(
                f"failed to authorize: {what}: authorization server did not include a token in the response",
                registry=domain,
            )
        return data

    def _json(self, domain: str, answer: HttpAnswer, what: str) -> dict[str, Any]:
        try:
            data = json.loads(answer.body)
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            raise RegistryError(
                f"failed to authorize: {what}: unable to decode token response", registry=domain
            )
        return data

    def _read_token(self, domain: str, data: Mapping[str, Any]) -> tuple[str, float]:
        """The token and the clock time to stop using it."""
        token = data.get("access_token") or data.get("token")
        if not isinstance(token, str):
            raise RegistryError(
                "failed to authorize: unable to decode token response", registry=domain
            )
        expires_in = data.get("expires_in")
        if (
            not isinstance(expires_in, int | float)
            or isinstance(expires_in, bool)
            or expires_in <= 0
        ):
            expires_in = DEFAULT_EXPIRES_IN
        now = self._clock()
        issued = _parse_time(data.get("issued_at"))
        start = issued if issued is not None else now
        expires = start + expires_in * EXPIRY_MARGIN
        if expires <= now:  # the server's clock is off: trust our own
            expires = now + expires_in * EXPIRY_MARGIN
        return token, expires

    # --- bookkeeping --------------------------------------------------------------------

    def _credentials_for(self, endpoint: Endpoint, domain: str) -> Credentials:
        """The origin's credentials for the origin; a mirror's own (by its host) for a
        mirror, never the origin's. Looked up once per Authorizer."""
        name = endpoint.host if endpoint.mirror else domain
        with self._lock:
            found = self._credentials.get(name)
        if found is None:
            found = self._store.get(name)
            with self._lock:
                self._credentials[name] = found
        return found

    def _remember_sent(self, key: tuple[str, tuple[str, ...]], header: str | None) -> None:
        sent: dict[tuple[str, tuple[str, ...]], str | None] | None = getattr(
            self._sent, "by_key", None
        )
        if sent is None:
            sent = self._sent.by_key = {}
        sent[key] = header

    def _last_sent(self, key: tuple[str, tuple[str, ...]]) -> str | None:
        sent: dict[tuple[str, tuple[str, ...]], str | None] = getattr(self._sent, "by_key", {})
        return sent.get(key)


_FRACTION_RE = re.compile(r"(\.\d{6})\d+")


def _parse_time(value: object) -> float | None:
    """An RFC 3339 `issued_at` as a POSIX time; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION_RE.sub(r"\1", value.strip()).replace("z", "Z")
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    if moment.year < 1971:  # Go's zero time: "not given"
        return None
    return moment.timestamp()

"""The registry client: pulls manifests, configs and blobs over the distribution API.

Layers of one request, each one concern (as httpx's `send` chain):

    RegistryClient verb (resolve, fetch_manifest, fetch_blob, ...)
      _request    walk the endpoints (mirrors first, then the origin), hold a slot
      _attempts   retries, auth challenges, HEAD→GET on 405
      _send       HTTPS→HTTP fallback for `http_fallback` endpoints
      _urlopen    one exchange on the right pool (TLS, proxy), redirects followed

Behaviour follows containerd's docker resolver as BuildKit uses it
(`ctd:core/remotes/docker/resolver.go`):

- endpoints are tried in order; on a mirror a transport error, 404, other 4xx or 5xx
  moves on to the next one; the last host's answer is the answer (L297-380, L863-900);
  mirrors get `?ns=<origin domain>` (`addNamespace`, spec "Registry Proxying");
- up to 5 attempts per host: 401 after the authorizer prepared new credentials, 405 on
  a manifest HEAD retried as GET, 408/429 always (after Retry-After when it asks for at
  most 10 s; a longer one is reported, not slept through),
  500/503/504 on the last host unless the previous answer had the same status
  (`retryRequest`); timeouts, resets and unexpected EOF after 50 ms, doubling
  (`doWithTransportRetries`);
- at most `max_concurrency` (default 4) requests per registry at once
  (`bk:util/resolver/limited/group.go` `DefaultMaxConcurrency`);
- HTTP(S)_PROXY / NO_PROXY from the environment, never for loopback hosts (Go's
  `http.ProxyFromEnvironment`); connect and read timeouts, so a registry that never
  answers is an error, not a hang.

The endpoint list and the authorizer come from `hosts.py` and `auth.py`; this module
names only the small Protocols below, which the real classes satisfy structurally.
"""

from __future__ import annotations

import email.utils
import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    InsecureRequestWarning,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from strata.errors import RegistryError, StoreError
from strata.image.oci import (
    Descriptor,
    Index,
    Manifest,
    parse_index,
    parse_manifest,
    sha256_digest,
)
from strata.plan.ops import Platform
from strata.registry.auth import HttpAnswer
from strata.registry.blobs import BlobStream, Progress, StreamBroken, download_blob
from strata.registry.credentials import CredentialStore
from strata.registry.manifests import (
    ACCEPT_MANIFESTS,
    KNOWN_MEDIA_TYPES,
    MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
    ResolvedImage,
    check_manifest_size,
    is_index,
    is_manifest,
    manifest_media_type,
    refuse_schema1,
    verify_body,
)
from strata.registry.platforms import available_platforms, choose_manifest, format_platform
from strata.store.content import ContentStore
from strata.store.reference import Reference

__all__ = [
    "AuthorizerLike",
    "EndpointLike",
    "EndpointSource",
    "RegistryClient",
    "ResolvedImage",
]

MAX_ATTEMPTS = 5
TRANSPORT_RETRY_DELAY = 0.05
MAX_RETRY_AFTER = 10.0
MAX_REDIRECTS = 10
MAX_INDEX_DEPTH = 4
MAX_ERROR_BODY = 64 << 10
MAX_AUTH_BODY = 1 << 20
BLOB_CHUNK = 1 << 20
DEFAULT_MAX_CONCURRENCY = 4
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class EndpointLike(Protocol):
    """The fields of `hosts.Endpoint` the client reads."""

    @property
    def scheme(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def mirror(self) -> bool: ...
    @property
    def verify_tls(self) -> bool: ...
    @property
    def ca_files(self) -> tuple[Path, ...]: ...
    @property
    def client_cert(self) -> tuple[Path, Path] | None: ...
    @property
    def http_fallback(self) -> bool: ...
    def url(self, suffix: str, *, namespace: str | None = None) -> str: ...


class EndpointSource(Protocol):
    """`hosts.RegistryConfig` as the client sees it."""

    @property
    def max_concurrency(self) -> int: ...
    def endpoints(
        self, domain: str, *, push: bool = False, insecure: bool = False
    ) -> Sequence[EndpointLike]: ...


class AuthorizerLike(Protocol):
    """`auth.Authorizer` as the client sees it. `endpoint` is typed `Any` because the
    real class takes its own `Endpoint`, which a parameter typed `EndpointLike` would
    refuse (parameters are contravariant)."""

    def authorization(
        self, endpoint: Any, domain: str, scopes: Sequence[str]
    ) -> dict[str, str]: ...
    def unauthorized(
        self, endpoint: Any, domain: str, scopes: Sequence[str], headers: Mapping[str, str]
    ) -> None: ...


class _Stopped(Exception):
    """Raised in a download thread of `fetch_blobs` when another one failed."""


class _Reply:
    """An answer whose body is still on the wire, plus what to release when done."""

    def __init__(
        self, response: urllib3.BaseHTTPResponse, endpoint: EndpointLike, method: str
    ) -> None:
        self.response = response
        self.status = response.status
        self.headers = _lower_headers(response)
        self.endpoint = endpoint
        self.method = method
        self.on_close: list[Callable[[], None]] = []
        self._closed = False

    def read(self, limit: int) -> bytes:
        """Up to `limit` + 1 bytes of the body (one more tells the caller it is too big)."""
        try:
            return self.response.read(limit + 1)
        except (HTTPError, OSError) as exc:
            raise RegistryError(
                f"{self.endpoint.host}: reading the answer failed: {_reason(exc)}"
            ) from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # Keep the connection for the next request when the body is done or short
            # (an error page, a 401 before the token dance); a blob abandoned half-way
            # is cut instead of read to its end.
            # (http.client wants the previous answer read to its end, even an empty
            # one, before the connection carries the next request.)
            remaining = getattr(self.response, "length_remaining", None)
            if remaining is not None and remaining <= MAX_ERROR_BODY:
                self.response.drain_conn()
            else:
                self.response.close()
            self.response.release_conn()
        finally:
            for release in self.on_close:
                release()

    def __enter__(self) -> _Reply:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RegistryClient:
    """Pulls from registries; thread-safe, one per command (it pools connections).

    `config` gives the endpoints of a domain (mirrors first) and the concurrency per
    registry; `credentials` is handed to the default authorizer
    (`strata.registry.auth.Authorizer`), built unless `authorizer` is given.
    """

    def __init__(
        self,
        config: EndpointSource,
        credentials: CredentialStore | None,
        *,
        insecure: bool = False,
        on_token: Callable[[str, Sequence[str]], None] | None = None,
        timeout: float = 30.0,
        authorizer: AuthorizerLike | None = None,
    ) -> None:
        self._config = config
        self._insecure = insecure
        self._timeout = timeout
        self._urllib3_timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._max_concurrency = max(1, int(config.max_concurrency or DEFAULT_MAX_CONCURRENCY))
        self._lock = threading.Lock()
        self._pools: dict[tuple[object, ...], urllib3.PoolManager] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._plain_http: set[str] = set()
        self._endpoint_lists: dict[str, list[EndpointLike]] = {}
        self._endpoint_by_host: dict[str, EndpointLike] = {}
        self._proxies = urllib.request.getproxies_environment()
        if authorizer is None:
            from strata.registry.auth import Authorizer

            authorizer = Authorizer(
                credentials if credentials is not None else CredentialStore(),
                self.http_fetch,
                on_token=on_token,
            )
        self._authorizer: AuthorizerLike = authorizer

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.clear()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- manifests ------------------------------------------------------------------------

    def resolve(self, ref: Reference) -> Descriptor:
        """The descriptor `ref` names now: HEAD with BuildKit's Accept list; a GET when
        the HEAD lacks the digest, the length or a manifest Content-Type, or is refused
        with 405 (handled in `_attempts`)."""
        return self._resolve(ref)[0]

    def _resolve(self, ref: Reference) -> tuple[Descriptor, bytes | None]:
        """`resolve`, plus the body when a GET was needed (verified: its digest is the
        descriptor's), so `resolve_image` does not fetch it twice (Docker Hub counts
        manifest GETs against pull limits)."""
        suffix = f"/{ref.path}/manifests/{ref.digest or ref.tag or 'latest'}"
        with self._request(ref, "HEAD", suffix, {"Accept": ACCEPT_MANIFESTS}) as reply:
            self._check_status(ref, reply, "manifest")
            body = self._read_manifest(ref, reply) if reply.method == "GET" else None
            desc = _resolved_descriptor(ref, reply.headers, body)
        if desc is not None:
            return desc, body
        with self._request(ref, "GET", suffix, {"Accept": ACCEPT_MANIFESTS}) as reply:
            self._check_status(ref, reply, "manifest")
            body = self._read_manifest(ref, reply)
            desc = _resolved_descriptor(ref, reply.headers, body)
        assert desc is not None  # a body always tells
        return desc, body

    def fetch_manifest(self, ref: Reference, desc: Descriptor) -> bytes:
        """The bytes of manifest or index `desc`, checked against its digest and size."""
        return self._fetch_manifest(ref, desc)[0]

    def _fetch_manifest(self, ref: Reference, desc: Descriptor) -> tuple[bytes, str]:
        check_manifest_size(desc["size"], ref)
        accept = f"{desc['mediaType']}, */*" if desc.get("mediaType") else ACCEPT_MANIFESTS
        suffix = f"/{ref.path}/manifests/{desc['digest']}"
        with self._request(ref, "GET", suffix, {"Accept": accept}) as reply:
            self._check_status(ref, reply, "manifest")
            body = self._read_manifest(ref, reply)
            headers = reply.headers
        verify_body(body, desc, ref)
        declared = desc.get("mediaType", "")
        media_type = declared if declared in KNOWN_MEDIA_TYPES else None
        media_type = media_type or manifest_media_type(headers, body) or ""
        refuse_schema1(media_type, ref.domain)
        return body, media_type

    def resolve_image(self, ref: Reference, platform: Platform) -> ResolvedImage:
        """Resolve `ref`, pick `platform`'s manifest (nested indexes too) and fetch its
        config: everything FROM needs except the layers themselves."""
        top, resolved_body = self._resolve(ref)
        desc = top
        if resolved_body is not None:
            body, media_type = resolved_body, top["mediaType"]
        else:
            body, media_type = self._fetch_manifest(ref, desc)
        for depth in range(MAX_INDEX_DEPTH + 1):
            if not is_index(media_type):
                break
            if depth == MAX_INDEX_DEPTH:
                raise RegistryError(
                    f"{ref}: indexes nested more than {MAX_INDEX_DEPTH} deep", registry=ref.domain
                )
            manifests = _parse_index(ref, body)["manifests"]
            child = choose_manifest(manifests, platform)
            if child is None:
                offered = ", ".join(available_platforms(manifests)) or "none"
                raise RegistryError(
                    f"{ref}: no match for platform {format_platform(platform)} in manifest "
                    f"{desc['digest']}: not found (available: {offered})",
                    registry=ref.domain,
                )
            desc = child
            body, media_type = self._fetch_manifest(ref, desc)
        if not is_manifest(media_type):
            raise RegistryError(
                f"{ref}: unsupported manifest media type {media_type or '(none)'}",
                registry=ref.domain,
            )
        manifest = _parse_manifest(ref, body)
        config = self._fetch_small_blob(ref, manifest["config"], MAX_CONFIG_SIZE)
        return ResolvedImage(
            reference=ref,
            digest=top["digest"],
            manifest_digest=desc["digest"],
            manifest=body,
            config=config,
            layers=tuple(manifest["layers"]),
            media_type=media_type,
            source=ref.name,
        )

    # -- blobs ----------------------------------------------------------------------------

    def fetch_blob(
        self,
        ref: Reference,
        desc: Descriptor,
        content: ContentStore,
        progress: Progress | None = None,
        *,
        hold: str | None = None,
    ) -> None:
        """Blob `desc` of `ref`'s repository into `content`, verified; resumes a partial
        download left by any process (see `blobs.py`). `hold` references it (a lease)."""
        download_blob(
            desc,
            content,
            lambda offset: self._open_blob(ref, desc, offset),
            what=ref.name,
            registry=ref.domain,
            progress=progress,
            hold=hold,
        )

    def fetch_blobs(
        self,
        ref: Reference,
        descs: Sequence[Descriptor],
        content: ContentStore,
        progress: Progress | None = None,
        *,
        hold: str | None = None,
        blob_progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Several blobs, up to `max_concurrency` at once; `progress(done, total)` counts
        bytes over all of them, `blob_progress(digest, done, size)` each one's. When one fails (or this thread is interrupted), the
        others stop at their next chunk, keeping their partial files for a resume, and
        the first real failure is raised."""
        unique = list({d["digest"]: d for d in descs}.values())
        if not unique:
            return
        total = sum(d["size"] for d in unique)
        done: dict[str, int] = {}
        guard = threading.Lock()
        stop = threading.Event()

        sizes = {d["digest"]: d["size"] for d in unique}

        def report(digest: str, amount: int) -> None:
            if stop.is_set():
                raise _Stopped
            if blob_progress is not None:
                blob_progress(digest, amount, sizes[digest])
            if progress is None:
                return
            with guard:
                done[digest] = amount
                reached = sum(done.values())
            progress(reached, total)

        def one(desc: Descriptor) -> None:
            self.fetch_blob(ref, desc, content, lambda n, _t: report(desc["digest"], n), hold=hold)

        workers = min(self._max_concurrency, len(unique))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="strata-pull") as pool:
            futures = [pool.submit(one, d) for d in unique]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            finally:
                stop.set()
                for future in futures:
                    future.cancel()
        failures = [
            f.exception() for f in futures if f.done() and not f.cancelled() and f.exception()
        ]
        for failure in failures:
            if failure is not None and not isinstance(failure, _Stopped):
                raise failure
        if any(f.cancelled() or isinstance(f.exception(), _Stopped) for f in futures):
            raise AssertionError("blob downloads stopped without a failure")

    def _open_blob(self, ref: Reference, desc: Descriptor, offset: int) -> BlobStream:
        headers = {"Accept": f"{desc.get('mediaType') or 'application/octet-stream'}, */*"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        reply = self._request(ref, "GET", f"/{ref.path}/blobs/{desc['digest']}", headers)
        try:
            self._check_status(ref, reply, f"blob {desc['digest']}")
            start = 0
            if reply.status == 206:
                first = _range_start(reply.headers.get("content-range", ""))
                if first is None:
                    raise RegistryError(
                        f"{ref}: blob {desc['digest']}: bad Content-Range "
                        f"{reply.headers.get('content-range', '')!r}",
                        registry=ref.domain,
                    )
                start = first
            return BlobStream(start, _chunks(reply), reply.close)
        except BaseException:
            reply.close()
            raise

    def _fetch_small_blob(self, ref: Reference, desc: Descriptor, limit: int) -> bytes:
        if desc["size"] > limit:
            raise RegistryError(
                f"{ref}: blob {desc['digest']} is too large to read ({desc['size']} bytes)",
                registry=ref.domain,
            )
        stream = self._open_blob(ref, desc, 0)
        try:
            data = b"".join(stream.chunks)
        except StreamBroken as exc:
            raise RegistryError(
                f"{ref}: blob {desc['digest']}: {exc}", registry=ref.domain
            ) from None
        finally:
            stream.close()
        verify_body(data, desc, ref, "blob")
        return data

    # -- login ------------------------------------------------------------------------------

    def check_access(self, domain: str) -> None:
        """`GET /v2/` at `domain`'s own host (never a mirror) with this client's
        credentials, answering its Basic or token challenge: what `docker login` checks.
        A refusal is a RegistryError naming the registry."""
        endpoints = list(self._config.endpoints(domain, push=True, insecure=self._insecure))
        if not endpoints:
            raise RegistryError(f"{domain}: no endpoint configured", registry=domain)
        endpoint = endpoints[-1]
        reply = self._attempts(
            endpoint, domain, (), "GET", endpoint.url("/"), {}, True, domain
        )
        try:
            if reply.status == 401:
                raise RegistryError(
                    f"login to {domain} failed: unauthorized: incorrect username or password",
                    registry=domain,
                )
            if not 200 <= reply.status < 300:
                raise RegistryError(
                    f"login to {domain} failed: unexpected status {reply.status}",
                    registry=domain,
                )
        finally:
            reply.close()

    # -- transport: endpoints ----------------------------------------------------------------

    def _request(
        self, ref: Reference, method: str, suffix: str, headers: Mapping[str, str]
    ) -> _Reply:
        """One pull request, walking the endpoints; the caller closes the reply, which
        also frees the registry's concurrency slot held meanwhile."""
        domain = ref.domain
        endpoints = self._endpoints(domain)
        if not endpoints:
            raise RegistryError(f"{domain}: no endpoint configured", registry=domain)
        scopes = (f"repository:{ref.path}:pull",)
        slot = self._slot(domain)
        slot.acquire()
        try:
            for position, endpoint in enumerate(endpoints):
                last = position == len(endpoints) - 1
                url = endpoint.url(suffix, namespace=domain)
                try:
                    reply = self._attempts(
                        endpoint, domain, scopes, method, url, headers, last, str(ref)
                    )
                except RegistryError:
                    if last:
                        raise
                    continue  # a mirror that fails hands over to the next host
                if last or 200 <= reply.status < 300:
                    reply.on_close.append(slot.release)
                    return reply
                reply.close()
        except BaseException:
            slot.release()
            raise
        raise AssertionError("unreachable: the last endpoint always answers or raises")

    def _endpoints(self, domain: str) -> list[EndpointLike]:
        """The config's endpoints for `domain`, asked once per client (it may read
        certificate directories)."""
        with self._lock:
            known = self._endpoint_lists.get(domain)
        if known is None:
            known = list(self._config.endpoints(domain, insecure=self._insecure))
            with self._lock:
                self._endpoint_lists[domain] = known
                for endpoint in known:
                    self._endpoint_by_host.setdefault(endpoint.host, endpoint)
        return known

    def _slot(self, domain: str) -> threading.BoundedSemaphore:
        with self._lock:
            slot = self._slots.get(domain)
            if slot is None:
                slot = self._slots[domain] = threading.BoundedSemaphore(self._max_concurrency)
            return slot

    # -- transport: retries and auth ---------------------------------------------------------

    def _attempts(
        self,
        endpoint: EndpointLike,
        domain: str,
        scopes: Sequence[str],
        method: str,
        url: str,
        headers: Mapping[str, str],
        last_host: bool,
        what: str,
    ) -> _Reply:
        previous_status: int | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            sent = dict(headers)
            sent.update(self._authorizer.authorization(endpoint, domain, scopes))
            try:
                response = self._send(endpoint, method, url, sent)
            except (HTTPError, OSError) as exc:
                if attempt < MAX_ATTEMPTS and _transient(exc):
                    time.sleep(_backoff(attempt))
                    continue
                raise self._transport_error(domain, endpoint, exc) from None
            reply = _Reply(response, endpoint, method)
            if attempt == MAX_ATTEMPTS:
                return reply
            status = reply.status
            delay: float | None = None
            if status == 401:
                reply.close()
                try:
                    self._authorizer.unauthorized(endpoint, domain, scopes, reply.headers)
                except RegistryError as exc:
                    raise RegistryError(_denied(what, exc.message), registry=domain) from None
                continue
            if status == 405 and method == "HEAD" and "/manifests/" in url:
                method = "GET"
                reply.close()
                continue
            if status in (408, 429):
                delay = _retry_after(reply.headers.get("retry-after", ""), attempt)
            elif status in (500, 503, 504) and last_host and status != previous_status:
                delay = _backoff(attempt)
            previous_status = status
            if delay is None:
                return reply
            reply.close()
            time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns its reply")

    def _transport_error(
        self, domain: str, endpoint: EndpointLike, exc: BaseException
    ) -> RegistryError:
        if _is_timeout(exc):
            return RegistryError(
                f"{domain}: {endpoint.host}: timeout: no answer within {self._timeout:g}s",
                registry=domain,
            )
        if isinstance(exc, SSLError):
            return RegistryError(
                f"{domain}: {endpoint.host}: TLS error: {_reason(exc)}", registry=domain
            )
        return RegistryError(
            f"{domain}: cannot reach {endpoint.host}: {_reason(exc)}", registry=domain
        )

    # -- transport: one exchange -------------------------------------------------------------

    def _send(
        self, endpoint: EndpointLike, method: str, url: str, headers: Mapping[str, str]
    ) -> urllib3.BaseHTTPResponse:
        """`_urlopen`, going over to plain HTTP for an endpoint allowed to when TLS or
        the connection fails, and remembering that for the host
        (`bk:util/resolver/resolver.go` `httpFallback`)."""
        fallback = endpoint.http_fallback and url.startswith("https://")
        if fallback and endpoint.host in self._plain_http:
            return self._urlopen(endpoint, method, "http://" + url[len("https://") :], headers)
        try:
            return self._urlopen(endpoint, method, url, headers)
        except (SSLError, NewConnectionError):
            if not fallback:
                raise
            with self._lock:
                self._plain_http.add(endpoint.host)
            return self._urlopen(endpoint, method, "http://" + url[len("https://") :], headers)

    def _urlopen(
        self,
        endpoint: EndpointLike | None,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """One exchange, following redirects (blob GETs often go to a CDN); the
        Authorization header is not carried to another host."""
        sent = dict(headers)
        for _ in range(MAX_REDIRECTS + 1):
            pool = self._pool(endpoint, url)
            response = pool.urlopen(
                method,
                url,
                body=body,
                headers=sent,
                redirect=False,
                retries=False,
                preload_content=False,
                timeout=self._urllib3_timeout,
            )
            location = response.headers.get("location")
            if response.status not in REDIRECT_STATUSES or not location:
                return response
            response.drain_conn()
            response.release_conn()
            target = urljoin(url, location)
            if urlsplit(target).netloc != urlsplit(url).netloc:
                sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
            if response.status == 303:
                method, body = "GET", None
            url = target
        raise RegistryError(f"{urlsplit(url).netloc}: more than {MAX_REDIRECTS} redirects")

    def _pool(self, endpoint: EndpointLike | None, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        proxy = self._proxy_for(parts.scheme, parts.hostname or "", parts.netloc)
        tls: tuple[object, ...] = (
            (endpoint.verify_tls, tuple(endpoint.ca_files), endpoint.client_cert)
            if endpoint is not None
            else (True, (), None)
        )
        key = (proxy, *tls)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = self._make_pool(proxy, endpoint)
            return pool

    def _make_pool(self, proxy: str | None, endpoint: EndpointLike | None) -> urllib3.PoolManager:
        context = ssl.create_default_context()
        kwargs: dict[str, Any] = {"maxsize": self._max_concurrency, "block": False}
        if endpoint is not None:
            try:
                for ca in endpoint.ca_files:
                    context.load_verify_locations(cafile=str(ca))
                if endpoint.client_cert is not None:
                    cert, key = endpoint.client_cert
                    context.load_cert_chain(str(cert), str(key))
            except (OSError, ssl.SSLError) as exc:
                raise RegistryError(
                    f"{endpoint.host}: cannot load TLS files: {exc}", registry=endpoint.host
                ) from None
            if not endpoint.verify_tls:
                # Asked for (`insecure = true`): BuildKit says nothing either, so
                # urllib3's per-request warning is turned off (its own class only).
                urllib3.disable_warnings(InsecureRequestWarning)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                kwargs.update(cert_reqs="CERT_NONE", assert_hostname=False)
        kwargs["ssl_context"] = context
        if proxy:
            return urllib3.ProxyManager(proxy, **kwargs)
        return urllib3.PoolManager(**kwargs)

    def _proxy_for(self, scheme: str, hostname: str, netloc: str) -> str | None:
        if hostname in LOOPBACK_HOSTS or hostname.startswith("127."):
            return None  # as Go's ProxyFromEnvironment: loopback is never proxied
        proxy = self._proxies.get(scheme)
        if not proxy or _no_proxy(self._proxies.get("no", ""), hostname, netloc):
            return None
        return proxy

    # -- for the authorizer ------------------------------------------------------------------

    def http_fetch(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> HttpAnswer:
        """One small request outside the registry API (a token realm), on the TLS and
        proxy settings of the registry endpoint with that host if one was used. Raises
        RegistryError when the server cannot be reached."""
        host = urlsplit(url).netloc
        with self._lock:
            endpoint = self._endpoint_by_host.get(host)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self._urlopen(endpoint, method, url, headers, body)
                try:
                    data = response.read(MAX_AUTH_BODY + 1)
                    if len(data) > MAX_AUTH_BODY:
                        response.close()  # not worth reading on: drop the connection
                        raise RegistryError(f"{host}: answer larger than {MAX_AUTH_BODY} bytes")
                finally:
                    response.release_conn()
                return HttpAnswer(response.status, _lower_headers(response), data)
            except (HTTPError, OSError) as exc:
                if attempt < MAX_ATTEMPTS and _transient(exc):
                    time.sleep(_backoff(attempt))
                    continue
                if _is_timeout(exc):
                    raise RegistryError(
                        f"{host}: timeout: no answer within {self._timeout:g}s"
                    ) from None
                raise RegistryError(f"cannot reach {host}: {_reason(exc)}") from None
        raise AssertionError("unreachable")

    # -- answers ---------------------------------------------------------------------------

    def _check_status(self, ref: Reference, reply: _Reply, what: str) -> None:
        """Raise the user-facing error for a refusal; 200 and 206 pass."""
        if reply.status in (200, 206):
            return
        detail = _server_message(reply.read(MAX_ERROR_BODY)) if reply.method != "HEAD" else ""
        if reply.status == 404:
            subject = str(ref) if what == "manifest" else f"{ref.name}: {what}"
            raise RegistryError(f"{subject}: not found", registry=ref.domain)
        if reply.status in (401, 403):
            reason = detail or f"{reply.status} from {reply.endpoint.host}"
            raise RegistryError(_denied(str(ref), reason), registry=ref.domain)
        suffix = f": {detail}" if detail else ""
        raise RegistryError(
            f"{ref}: {what}: unexpected status {reply.status} from {reply.endpoint.host}{suffix}",
            registry=ref.domain,
        )

    def _read_manifest(self, ref: Reference, reply: _Reply) -> bytes:
        length = reply.headers.get("content-length", "")
        if length.isdigit():
            check_manifest_size(int(length), ref)
        body = reply.read(MAX_MANIFEST_SIZE)
        check_manifest_size(len(body), ref)
        return body


# -- helpers --------------------------------------------------------------------------------


def _resolved_descriptor(
    ref: Reference, headers: Mapping[str, str], body: bytes | None
) -> Descriptor | None:
    """The descriptor a resolve answer gives, None when a GET is needed to know it."""
    media_type = manifest_media_type(headers, body)
    if media_type is None:
        return None
    refuse_schema1(media_type, ref.domain)
    header_digest = headers.get("docker-content-digest", "")
    if body is not None:
        digest, size = sha256_digest(body), len(body)
        if header_digest and header_digest != digest:
            raise RegistryError(
                f"{ref}: manifest digest mismatch: the registry says {header_digest}, "
                f"its content is {digest}",
                registry=ref.domain,
            )
    else:
        length = headers.get("content-length", "")
        digest = header_digest or ref.digest or ""
        if not digest or not length.isdigit():
            return None
        size = int(length)
        check_manifest_size(size, ref)
    if ref.digest is not None and digest != ref.digest:
        raise RegistryError(f"{ref}: manifest digest mismatch: got {digest}", registry=ref.domain)
    return {"mediaType": media_type, "digest": digest, "size": size}


def _parse_index(ref: Reference, body: bytes) -> Index:
    try:
        return parse_index(body, f"{ref}: index")
    except StoreError as exc:
        raise RegistryError(exc.message, registry=ref.domain) from None


def _parse_manifest(ref: Reference, body: bytes) -> Manifest:
    try:
        return parse_manifest(body, f"{ref}: manifest")
    except StoreError as exc:
        raise RegistryError(exc.message, registry=ref.domain) from None


def _chunks(reply: _Reply) -> Iterator[bytes]:
    # read1: whatever arrived, up to a chunk. `read(amt)` waits to fill the chunk and
    # loses the bytes it holds when the connection drops, which a resume needs.
    try:
        while data := reply.response.read1(BLOB_CHUNK):
            yield data
    except (HTTPError, OSError) as exc:
        raise StreamBroken(_reason(exc)) from None


def _range_start(content_range: str) -> int | None:
    """The first byte of `bytes <first>-<last>/<total>`."""
    unit, _, spec = content_range.strip().partition(" ")
    first = spec.partition("-")[0]
    return int(first) if unit == "bytes" and first.isdigit() else None


def _lower_headers(response: urllib3.BaseHTTPResponse) -> dict[str, str]:
    return {key.lower(): response.headers.get(key, "") for key in response.headers}


def _denied(what: str, reason: str) -> str:
    return (
        f"{what}: pull access denied, repository does not exist or may require "
        f"authorization: {reason}"
    )


def _server_message(body: bytes) -> str:
    """`server message: CODE: text` from a distribution error body, if it has one."""
    try:
        errors = json.loads(body).get("errors")
        first = errors[0]
        return f"server message: {first.get('code', '').lower()}: {first.get('message', '')}"
    except (ValueError, AttributeError, TypeError, IndexError, KeyError):
        return ""


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, NewConnectionError):
        return False
    return isinstance(exc, ReadTimeoutError | ConnectTimeoutError | TimeoutError)


def _transient(exc: BaseException) -> bool:
    """Worth another attempt: timeouts, resets, a connection closed mid-answer."""
    return _is_timeout(exc) or isinstance(exc, ProtocolError | ConnectionResetError)


def _backoff(attempt: int) -> float:
    return TRANSPORT_RETRY_DELAY * (1 << max(0, attempt - 1))


def _retry_after(value: str, attempt: int) -> float | None:
    """Seconds to wait before retrying a 408/429: Retry-After (seconds or an HTTP date),
    else the backoff. None when the server asks for longer than MAX_RETRY_AFTER: the
    answer then stands (a rate limit is better reported than slept through)."""
    value = value.strip()
    wait: float
    if value.isdigit():
        wait = float(value)
    elif value:
        try:
            wait = float(email.utils.parsedate_to_datetime(value).timestamp()) - time.time()
        except (TypeError, ValueError):
            return _backoff(attempt)
    else:
        return _backoff(attempt)
    return max(0.0, wait) if wait <= MAX_RETRY_AFTER else None


def _no_proxy(rules: str, hostname: str, netloc: str) -> bool:
    """Whether NO_PROXY exempts a host: `*`, exact `host` or `host:port`, or a domain
    suffix (`example.com` and `.example.com` both cover `a.example.com`)."""
    for rule in (r.strip().lower() for r in rules.split(",")):
        if not rule:
            continue
        if rule == "*" or rule in (hostname.lower(), netloc.lower()):
            return True
        suffix = rule if rule.startswith(".") else "." + rule
        if hostname.lower().endswith(suffix):
            return True
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Failed to establish a new connection: ", "Connection broken: "):
        if marker in text:
            return text.split(marker, 1)[1].rstrip("')\"")
    if "): " in text:  # "HTTPConnectionPool(host=..., port=...): Read timed out."
        return text.split("): ", 1)[1]
    return text or type(exc).__name__

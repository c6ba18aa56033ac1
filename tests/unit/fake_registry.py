"""A fault-injecting distribution registry in a thread, for the registry client's tests.

It serves what a test puts in it (`put_blob`, `put_manifest`) on 127.0.0.1 (port 0),
logs every request, counts the blob bytes it sends, and misbehaves on demand through
`faults`: cut a blob stream, ignore Range, answer statuses before serving, refuse
HEAD, leave out headers, serve wrong bytes, never answer, challenge for Basic or
Bearer auth (with a token endpoint at `/token`).

Also here: the stand-ins for `hosts.Endpoint`, `hosts.RegistryConfig` and
`auth.Authorizer` the tests build clients with (the real ones are written by another
helper; these satisfy the client's Protocols and nothing more).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from strata.errors import RegistryError

TOKEN = "fake-token-123"
_ROUTE = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$")
_UPLOAD_ROUTE = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)$")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Faults:
    """Switches; change them between requests (the server reads them per request)."""

    cut_after: int | None = None  # blob bodies: drop the connection after this many bytes
    cuts: int = 1  # ... for this many responses, then serve normally
    ignore_range: bool = False  # answer ranged blob GETs with 200 and the whole blob
    statuses: list[int] = field(default_factory=list)  # answered first, one per request
    status_path: str = ""  # ... only to requests whose path contains this
    retry_after: str | None = None  # sent with those statuses
    head_405: bool = False
    no_digest_header: bool = False
    no_content_type: bool = False
    content_type: str | None = None  # overrides the manifest's Content-Type
    wrong_body: dict[str, bytes] = field(default_factory=dict)  # digest -> bytes served
    hang: bool = False  # never answer (until the server closes)
    blob_delay: float = 0.0  # seconds before each blob body
    chunk_delay: float = 0.0  # blob bodies go out in 16 KiB pieces this many seconds apart
    redirect_blobs: str | None = None  # answer blob GETs with 307 to this base URL
    auth: Literal["basic", "bearer"] | None = None
    # Uploads (POST/PATCH/PUT): ask for chunks of at least this many bytes
    # (OCI-Chunk-Min-Length); answer the first PATCH starting at this byte with 416;
    # give absolute Locations (else relative, as distribution does); answer every
    # mount with 202 (open an upload instead).
    chunk_min: int | None = None
    patch_416_from: int | None = None
    absolute_location: bool = False
    refuse_mounts: bool = False
    username: str = "user"
    password: str = "secret"


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased keys
    client_port: int = 0  # which connection it came on


class FakeRegistry:
    """`tls=(cert, key)` serves HTTPS with that certificate (see `make_tls_files`)."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.faults = Faults()
        self.requests: list[Logged] = []
        self.bytes_served: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self._blobs: dict[str, bytes] = {}
        self._manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        # Blobs per repository (a blob put with `put_blob` is in every one).
        self.repo_blobs: dict[str, set[str]] = {}
        self.seeded: set[str] = set()
        self.uploads: dict[str, bytearray] = {}
        self.upload_bytes = 0  # blob bytes received by PATCH and PUT
        self.patches = 0
        self.upload_count = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        registry = self

        class Handler(_Handler):
            owner = registry

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- content ---------------------------------------------------------------------------

    def put_blob(self, data: bytes, repo: str | None = None) -> str:
        """A blob served in every repository, or only in `repo` when given."""
        digest = digest_of(data)
        self._blobs[digest] = data
        if repo is None:
            self.seeded.add(digest)
        else:
            self.repo_blobs.setdefault(repo, set()).add(digest)
        return digest

    def put_manifest(
        self, repo: str, body: bytes, media_type: str, tags: Sequence[str] = ()
    ) -> str:
        digest = digest_of(body)
        for key in (digest, *tags):
            self._manifests[(repo, key)] = (body, media_type)
        return digest

    def put_json_manifest(
        self, repo: str, value: Mapping[str, Any], tags: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Store a manifest given as JSON; returns its descriptor."""
        body = json.dumps(value).encode()
        media_type = str(value.get("mediaType", ""))
        digest = self.put_manifest(repo, body, media_type, tags)
        return {"mediaType": media_type, "digest": digest, "size": len(body)}

    def log(self, method: str | None = None, contains: str = "") -> list[Logged]:
        return [
            r
            for r in list(self.requests)
            if (method is None or r.method == method) and contains in r.path
        ]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (cut streams, TLS probes) are part of the tests


class _Handler(BaseHTTPRequestHandler):
    owner: FakeRegistry
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        reg = self.owner
        parts = urllib.parse.urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        reg.requests.append(
            Logged(
                self.command,
                parts.path,
                urllib.parse.parse_qs(parts.query),
                headers,
                self.client_address[1],
            )
        )
        with reg._lock:
            reg.in_flight += 1
            reg.max_in_flight = max(reg.max_in_flight, reg.in_flight)
        try:
            self._route(reg, parts, headers)
        finally:
            with reg._lock:
                reg.in_flight -= 1

    def _route(
        self, reg: FakeRegistry, parts: urllib.parse.SplitResult, headers: dict[str, str]
    ) -> None:
        f = reg.faults
        if f.hang:
            reg._stop.wait(30)
            self.close_connection = True
            return
        if parts.path == "/token":
            self._token(reg, headers, parts)
            return
        if f.statuses and f.status_path in parts.path:
            with reg._lock:
                status = f.statuses.pop(0) if f.statuses else 0
            if status:
                extra = {"Retry-After": f.retry_after} if f.retry_after is not None else {}
                self._send(status, b'{"errors":[{"code":"X","message":"injected"}]}', extra)
                return
        if f.auth is not None and not self._authorized(reg, headers, parts.path):
            return
        if parts.path == "/v2/":
            self._send(200, b"{}", {"Content-Type": "application/json"})
            return
        if parts.path.startswith("/cdn/"):
            self._blob(reg, parts.path.removeprefix("/cdn/"), headers)
            return
        upload = _UPLOAD_ROUTE.match(parts.path)
        if upload is not None:
            self._upload(reg, upload["name"], upload["id"] or "", parts, headers)
            return
        match = _ROUTE.match(parts.path)
        if match is not None and match["kind"] == "manifests" and self.command == "PUT":
            self._put_manifest(reg, match["name"], match["ref"], headers)
            return
        if match is None:
            self._send(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no route"}]}')
            return
        if match["kind"] == "manifests":
            self._manifest(reg, match["name"], match["ref"])
        else:
            self._blob(reg, match["ref"], headers, match["name"])

    # -- uploads ---------------------------------------------------------------------------

    def _body(self, headers: dict[str, str]) -> bytes:
        length = int(headers.get("content-length", "0") or 0)
        return self.rfile.read(length) if length else b""

    def _location(self, reg: FakeRegistry, name: str, upload_id: str) -> str:
        path = f"/v2/{name}/blobs/uploads/{upload_id}?_state=s{upload_id}"
        return f"http://{reg.host}{path}" if reg.faults.absolute_location else path

    def _upload(
        self,
        reg: FakeRegistry,
        name: str,
        upload_id: str,
        parts: urllib.parse.SplitResult,
        headers: dict[str, str],
    ) -> None:
        f = reg.faults
        query = urllib.parse.parse_qs(parts.query)
        body = self._body(headers)
        if self.command == "POST" and not upload_id:
            mount = query.get("mount", [""])[0]
            source = query.get("from", [""])[0]
            if mount and not f.refuse_mounts and mount in reg.repo_blobs.get(source, set()):
                reg.repo_blobs.setdefault(name, set()).add(mount)
                self._send(201, b"", {"Location": f"/v2/{name}/blobs/{mount}",
                                      "Docker-Content-Digest": mount})
                return
            with reg._lock:
                reg.upload_count += 1
                new_id = f"u{reg.upload_count}"
                reg.uploads[new_id] = bytearray()
            extra = {"Location": self._location(reg, name, new_id), "Range": "0-0"}
            if f.chunk_min is not None:
                extra["OCI-Chunk-Min-Length"] = str(f.chunk_min)
            self._send(202, b"", extra)
            return
        data = reg.uploads.get(upload_id)
        if data is None or query.get("_state") != [f"s{upload_id}"]:
            self._send(404, b'{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"unknown"}]}')
            return
        if self.command == "GET":
            self._send(204, b"", {"Location": self._location(reg, name, upload_id),
                                  "Range": f"0-{max(0, len(data) - 1)}"})
            return
        if self.command == "PATCH":
            reg.patches += 1
            first = int(headers.get("content-range", "0-0").split("-")[0])
            if f.patch_416_from is not None and f.patch_416_from == first:
                f.patch_416_from = None
                self._send(416, b'{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"range"}]}')
                return
            if first != len(data):
                self._send(416, b"")
                return
            data.extend(body)
            reg.upload_bytes += len(body)
            self._send(202, b"", {"Location": self._location(reg, name, upload_id),
                                  "Range": f"0-{len(data) - 1}"})
            return
        if self.command == "PUT":
            data.extend(body)
            reg.upload_bytes += len(body)
            digest = query.get("digest", [""])[0]
            if digest_of(bytes(data)) != digest:
                self._send(400, b'{"errors":[{"code":"DIGEST_INVALID","message":"bad"}]}')
                return
            reg._blobs[digest] = bytes(data)
            reg.repo_blobs.setdefault(name, set()).add(digest)
            del reg.uploads[upload_id]
            self._send(201, b"", {"Location": f"/v2/{name}/blobs/{digest}",
                                  "Docker-Content-Digest": digest})
            return
        self._send(405, b"")

    def _put_manifest(
        self, reg: FakeRegistry, name: str, ref: str, headers: dict[str, str]
    ) -> None:
        body = self._body(headers)
        value = json.loads(body)
        for child in [value.get("config", {}), *value.get("layers", [])]:
            known = reg.repo_blobs.get(name, set()) | reg.seeded
            if child and child["digest"] not in known:
                self._send(400, b'{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"x"}]}')
                return
        digest = reg.put_manifest(name, body, headers.get("content-type", ""), [ref])
        self._send(201, b"", {"Docker-Content-Digest": digest,
                              "Location": f"/v2/{name}/manifests/{digest}"})

    def _authorized(self, reg: FakeRegistry, headers: dict[str, str], path: str) -> bool:
        f = reg.faults
        given = headers.get("authorization", "")
        if f.auth == "basic":
            expected = base64.b64encode(f"{f.username}:{f.password}".encode()).decode()
            if given == f"Basic {expected}":
                return True
            challenge = 'Basic realm="fake"'
        else:
            if given == f"Bearer {TOKEN}":
                return True
            match = _ROUTE.match(path)
            scope = f"repository:{match['name']}:pull" if match else ""
            challenge = (
                f'Bearer realm="http://{reg.host}/token",service="fake-registry",scope="{scope}"'
            )
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        self._send(401, body, {"WWW-Authenticate": challenge})
        return False

    def _token(
        self, reg: FakeRegistry, headers: dict[str, str], parts: urllib.parse.SplitResult
    ) -> None:
        body = json.dumps({"token": TOKEN, "access_token": TOKEN, "expires_in": 300}).encode()
        self._send(200, body, {"Content-Type": "application/json"})

    def _manifest(self, reg: FakeRegistry, name: str, ref: str) -> None:
        f = reg.faults
        if self.command == "HEAD" and f.head_405:
            self._send(405, b"")
            return
        found = reg._manifests.get((name, ref))
        if found is None:
            self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}')
            return
        body, media_type = found
        digest = digest_of(body)
        body = f.wrong_body.get(digest, body)
        extra: dict[str, str] = {}
        if not f.no_digest_header:
            extra["Docker-Content-Digest"] = digest
        if not f.no_content_type:
            extra["Content-Type"] = f.content_type or media_type
        self._send(200, body, extra)

    def _blob(
        self, reg: FakeRegistry, digest: str, headers: dict[str, str], name: str = ""
    ) -> None:
        f = reg.faults
        if name and digest not in reg.seeded and digest not in reg.repo_blobs.get(name, set()):
            self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}')
            return
        if f.redirect_blobs is not None:
            self._send(307, b"", {"Location": f"{f.redirect_blobs}/cdn/{digest}"})
            return
        data = reg._blobs.get(digest)
        if data is None:
            self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}')
            return
        data = f.wrong_body.get(digest, data)
        if f.blob_delay:
            time.sleep(f.blob_delay)
        start = 0
        range_header = headers.get("range", "")
        match = re.fullmatch(r"bytes=(\d+)-", range_header)
        status = 200
        extra = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest}
        if match and not f.ignore_range:
            start = int(match[1])
            status = 206
            extra["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        cut: int | None = None
        with reg._lock:
            if f.cut_after is not None and f.cuts > 0 and self.command == "GET":
                f.cuts -= 1
                cut = f.cut_after
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = body if cut is None else body[:cut]
        piece = 16 << 10 if f.chunk_delay else max(1, len(sent))
        for at in range(0, len(sent), piece):
            try:
                self.wfile.write(sent[at : at + piece])
                self.wfile.flush()
            except OSError:
                self.close_connection = True
                return
            with reg._lock:
                reg.bytes_served[digest] = reg.bytes_served.get(digest, 0) + len(
                    sent[at : at + piece]
                )
            if f.chunk_delay:
                time.sleep(f.chunk_delay)
        if cut is not None:
            self.close_connection = True

    def _send(self, status: int, body: bytes, extra: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "strata test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# -- stand-ins for hosts.py / auth.py ---------------------------------------------------------


@dataclass(frozen=True)
class FakeEndpoint:
    scheme: Literal["https", "http"]
    host: str
    path: str = "/v2"
    mirror: bool = False
    verify_tls: bool = True
    ca_files: tuple[Path, ...] = ()
    client_cert: tuple[Path, Path] | None = None
    http_fallback: bool = False

    def url(self, suffix: str, *, namespace: str | None = None) -> str:
        url = f"{self.scheme}://{self.host}{self.path}{suffix}"
        if self.mirror and namespace:
            url += "?" + urllib.parse.urlencode({"ns": namespace})
        return url


@dataclass
class FakeConfig:
    """Endpoints by domain; a domain not listed dials itself over plain HTTP."""

    hosts: dict[str, list[FakeEndpoint]] = field(default_factory=dict)
    max_concurrency: int = 4

    def endpoints(
        self, domain: str, *, push: bool = False, insecure: bool = False
    ) -> list[FakeEndpoint]:
        return list(self.hosts.get(domain, [FakeEndpoint("http", domain)]))


class FakeAuthorizer:
    """Enough of auth.Authorizer for the client's tests: Basic from one user/password,
    Bearer by an anonymous GET of the realm through the client's `http_fetch`."""

    def __init__(self, username: str = "", password: str = "") -> None:
        self.username = username
        self.password = password
        self.fetch: Any = None
        self._headers: dict[str, dict[str, str]] = {}
        self._challenges: dict[str, int] = {}
        self._lock = threading.Lock()

    def authorization(self, endpoint: Any, domain: str, scopes: Sequence[str]) -> dict[str, str]:
        with self._lock:
            return dict(self._headers.get(endpoint.host, {}))

    def unauthorized(
        self, endpoint: Any, domain: str, scopes: Sequence[str], headers: Mapping[str, str]
    ) -> None:
        challenge = headers.get("www-authenticate", "")
        with self._lock:
            seen = self._challenges[endpoint.host] = self._challenges.get(endpoint.host, 0) + 1
        if seen > 2:
            raise RegistryError("authentication failed", registry=domain)
        if challenge.startswith("Basic"):
            if not self.username:
                raise RegistryError("no basic auth credentials", registry=domain)
            value = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            header = f"Basic {value}"
        elif challenge.startswith("Bearer"):
            params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
            query = urllib.parse.urlencode({"service": params["service"], "scope": params["scope"]})
            answer = self.fetch("GET", f"{params['realm']}?{query}", {}, None)
            header = "Bearer " + json.loads(answer.body)["token"]
        else:
            raise RegistryError("unknown challenge", registry=domain)
        with self._lock:
            self._headers[endpoint.host] = {"Authorization": header}

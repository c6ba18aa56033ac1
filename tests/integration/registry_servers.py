"""Real registries on 127.0.0.1 for integration tests: Debian's `docker-registry` (distribution
2.8) with no auth, htpasswd, token auth (a Python token server here), TLS, or as a
pull-through mirror; plus `seed_image`, which pushes a small image with skopeo.

Everything is made per test run (certificates, keys, passwords) and everything started is
stopped by the context managers, also when the test fails.

    with registry_server(tmp_path) as reg:                       # plain HTTP, no auth
        seed_image(reg, "test/img", "v1", tmp_path)
        reg.requests()                                            # access log entries
        reg.count("GET", r"/v2/test/img/blobs/")                  # how many blob GETs

    with token_server(tmp_path, users={"alice": "pw"}) as tokens, \\
         registry_server(tmp_path, auth=tokens.registry_auth()) as reg:
        tokens.grants                                             # what the token server saw

    with registry_server(tmp_path, htpasswd={"alice": "pw"}) as reg: ...
    tls = make_tls(tmp_path)                                      # CA + cert for IP:127.0.0.1
    with registry_server(tmp_path, tls=tls) as reg: ...           # reg.url is https://
    with registry_server(tmp_path, proxy_remote=origin.url) as mirror: ...

How distribution 2.8 checks tokens (`registry/auth/token/token.go` at v2.8.2): RS256 JWT
whose header `x5c` holds the signing certificate, which must chain to `rootcertbundle`;
claims `iss` (= issuer), `aud` (= service), `exp`/`nbf` (60 s leeway), `access` =
[{type, name, actions}]. A token without the needed action gives 401
`error="insufficient_scope"`; an unverifiable one `error="invalid_token"`.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REGISTRY_BINARY = "docker-registry"
LISTENING_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
ACCESS_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')
START_TIMEOUT = 30.0


def registry_available() -> str | None:
    """None when a registry can be started here, else the reason to skip."""
    if shutil.which(REGISTRY_BINARY) is None:
        return "needs docker-registry on PATH (Debian package docker-registry)"
    return None


def skopeo_available() -> str | None:
    return None if shutil.which("skopeo") else "needs skopeo on PATH"


# --- certificates ----------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    """PEM files: a CA, and a server certificate for IP:127.0.0.1 signed by it."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path


def _rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: Any, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _self_signed(key: Any, common_name: str, *, ca: bool) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(key, hashes.SHA256())


def make_tls(directory: Path, ip: str = "127.0.0.1") -> TLSFiles:
    """A per-run CA and a server certificate with subjectAltName IP:<ip>."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _rsa_key()
    ca_cert = _self_signed(ca_key, "strata test CA", ca=True)
    key = _rsa_key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(ip))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address(ip))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TLSFiles(
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca.key",
        cert=directory / "server.pem",
        key=directory / "server.key",
    )
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key, files.ca_key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, files.key)
    return files


def write_htpasswd(path: Path, users: Mapping[str, str]) -> Path:
    """An htpasswd file with bcrypt hashes (the only kind distribution accepts)."""
    import bcrypt

    lines = [
        f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"
        for user, password in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- docker-registry -------------------------------------------------------------------


@dataclass(frozen=True)
class AccessEntry:
    method: str
    uri: str  # path and query, as requested
    status: int

    @property
    def path(self) -> str:
        return self.uri.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.uri).query)


@dataclass
class RegistryServer:
    """A running `docker-registry serve`."""

    process: subprocess.Popen[bytes]
    port: int
    scheme: str
    directory: Path
    access_log: Path  # stdout: one combined-format line per request
    server_log: Path  # stderr: logrus lines

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`: the registry domain of references to it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def requests(self) -> list[AccessEntry]:
        """Every request the registry logged so far, in order."""
        out = []
        text = self.access_log.read_text(errors="replace") if self.access_log.exists() else ""
        for line in text.splitlines():
            m = ACCESS_RE.search(line)
            if m:
                out.append(AccessEntry(m["method"], m["uri"], int(m["status"])))
        return out

    def count(self, method: str, path_pattern: str, status: int | None = None) -> int:
        """How many `method` requests had a path matching `path_pattern` (re.search)."""
        return sum(
            1
            for e in self.requests()
            if e.method == method
            and re.search(path_pattern, e.path)
            and (status is None or e.status == status)
        )

    def log_text(self) -> str:
        return self.server_log.read_text(errors="replace") if self.server_log.exists() else ""

    def stop(self) -> None:
        _stop(self.process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def registry_server(
    tmp_path: Path,
    *,
    name: str | None = None,
    htpasswd: Mapping[str, str] | None = None,
    auth: Mapping[str, Any] | None = None,
    tls: TLSFiles | None = None,
    proxy_remote: str | None = None,
    proxy_username: str | None = None,
    proxy_password: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Iterator[RegistryServer]:
    """Start `docker-registry serve` on 127.0.0.1, port chosen by the kernel; stop it on exit.

    `htpasswd`: users and passwords for Basic auth; `auth`: a raw `auth:` section (e.g.
    `TokenServer.registry_auth()`); `tls`: serve HTTPS with that certificate;
    `proxy_remote`: be a pull-through cache of that registry URL.
    """
    directory = tmp_path / (name or f"registry-{uuid.uuid4().hex[:8]}")
    directory.mkdir(parents=True)
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(directory / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": "127.0.0.1:0", "secret": secrets.token_hex(16)},
    }
    if htpasswd is not None:
        path = write_htpasswd(directory / "htpasswd", htpasswd)
        config["auth"] = {"htpasswd": {"realm": "strata-test", "path": str(path)}}
    if auth is not None:
        config["auth"] = dict(auth)
    if tls is not None:
        config["http"]["tls"] = {"certificate": str(tls.cert), "key": str(tls.key)}
    if proxy_remote is not None:
        proxy: dict[str, str] = {"remoteurl": proxy_remote}
        if proxy_username is not None:
            proxy["username"] = proxy_username
            proxy["password"] = proxy_password or ""
        config["proxy"] = proxy
    if extra:
        config.update(extra)
    config_file = directory / "config.yml"
    config_file.write_text(json.dumps(config, indent=2))  # JSON is YAML
    access_log = directory / "access.log"
    server_log = directory / "registry.log"
    with open(access_log, "wb") as out, open(server_log, "wb") as err:
        process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config_file)],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        port = _wait_listening(process, server_log)
        yield RegistryServer(
            process=process,
            port=port,
            scheme="https" if tls is not None else "http",
            directory=directory,
            access_log=access_log,
            server_log=server_log,
        )
    finally:
        _stop(process)


def _wait_listening(process: subprocess.Popen[bytes], server_log: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        text = server_log.read_text(errors="replace") if server_log.exists() else ""
        m = LISTENING_RE.search(text)
        if m:
            return int(m.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited ({process.returncode}):\n{text[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"docker-registry did not start listening:\n{text[-2000:]}")
        time.sleep(0.02)


# --- token server ----------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One token request as the token server saw it (no password kept)."""

    method: str  # GET or POST
    grant_type: str  # "" for GET, else password / refresh_token
    username: str  # who authenticated ("" anonymous)
    scopes: tuple[str, ...]
    service: str
    client_id: str
    status: int  # what it answered


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """A distribution token server (GET with Basic or anonymous, POST OAuth2 grants).

    Switches, changeable while running: `post_404` (POST answers 404, so clients fall back
    to GET), `allow_anonymous`, `expires_in`, `deny` (repositories for which no action is
    ever granted: insufficient_scope). `users` are name -> password; `refresh_tokens`
    are token -> name. Anonymous callers get `pull`; users get what they ask for.
    """

    directory: Path
    users: dict[str, str] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    service: str = "strata-test-registry"
    issuer: str = "strata-test-issuer"
    post_404: bool = False
    allow_anonymous: bool = True
    expires_in: int = 300
    deny: set[str] = field(default_factory=set)
    grants: list[Grant] = field(default_factory=list)
    port: int = 0
    _key: Any = None
    _cert_der: bytes = b""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def root_cert(self) -> Path:
        return self.directory / "token-signer.pem"

    def registry_auth(self) -> dict[str, Any]:
        """The registry's `auth:` section trusting this server."""
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.root_cert),
            }
        }

    def grants_by(self, method: str) -> list[Grant]:
        with self._lock:
            return [g for g in self.grants if g.method == method]

    def start(self) -> None:
        from cryptography.hazmat.primitives import serialization

        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = _rsa_key()
        cert = _self_signed(self._key, "strata test token signer", ca=False)
        self._cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.root_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner._handle(self, "GET")

            def do_POST(self) -> None:
                owner._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- requests ---------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        if url.path != "/token":
            self._answer(request, 404, {"error": "not found"})
            return
        if method == "POST":
            length = int(request.headers.get("Content-Length") or 0)
            form = parse_qs(request.rfile.read(length).decode())
            self._post(request, form)
        else:
            self._get(request, query)

    def _get(self, request: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        scopes = tuple(query.get("scope", []))
        service = query.get("service", [""])[0]
        user = ""
        status = 200
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(name) == password and name:
                user = name
            elif not name and password in self.refresh_tokens:
                user = self.refresh_tokens[password]
            else:
                status = 401
        elif not self.allow_anonymous:
            status = 401
        self._record(
            Grant("GET", "", user, scopes, service, query.get("client_id", [""])[0], status)
        )
        if status != 200:
            self._answer(request, status, {"details": "incorrect username or password"})
            return
        token, issued = self._token(user, scopes)
        self._answer(
            request,
            200,
            {
                "token": token,
                "access_token": token,
                "expires_in": self.expires_in,
                "issued_at": issued,
            },
        )

    def _post(self, request: BaseHTTPRequestHandler, form: dict[str, list[str]]) -> None:
        def one(name: str) -> str:
            return form.get(name, [""])[0]

        grant_type = one("grant_type")
        scopes = tuple(one("scope").split())
        user = ""
        status = 200
        if self.post_404:
            status = 404
        elif grant_type == "password":
            if one("username") and self.users.get(one("username")) == one("password"):
                user = one("username")
            else:
                status = 401
        elif grant_type == "refresh_token":
            user = self.refresh_tokens.get(one("refresh_token"), "")
            status = 200 if user else 401
        else:
            status = 400
        self._record(
            Grant("POST", grant_type, user, scopes, one("service"), one("client_id"), status)
        )
        if status != 200:
            self._answer(request, status, {"error": "invalid_grant"})
            return
        token, issued = self._token(user, scopes)
        self._answer(
            request,
            200,
            {
                "access_token": token,
                "expires_in": self.expires_in,
                "issued_at": issued,
                "scope": " ".join(scopes),
            },
        )

    def _record(self, grant: Grant) -> None:
        with self._lock:
            self.grants.append(grant)

    def _answer(
        self, request: BaseHTTPRequestHandler, status: int, body: Mapping[str, Any]
    ) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _token(self, user: str, scopes: Sequence[str]) -> tuple[str, str]:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            asked = [a for a in actions.split(",") if a]
            allowed = asked if user else [a for a in asked if a == "pull"]
            if name in self.deny:
                allowed = []
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._cert_der).decode()]}
        claims = {
            "iss": self.issuer,
            "sub": user,
            "aud": self.service,
            "exp": now + max(self.expires_in, 1),
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        issued = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{signing_input}.{_b64url(signature)}", issued


@contextmanager
def token_server(tmp_path: Path, **options: Any) -> Iterator[TokenServer]:
    """A running `TokenServer` (options are its fields); stopped on exit."""
    server = TokenServer(directory=tmp_path / f"token-{uuid.uuid4().hex[:8]}", **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- images ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededImage:
    reference: str  # host/repo:tag
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]


def _blob(layout: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def make_oci_layout(
    layout: Path, files: Mapping[str, bytes], *, tag: str = "latest"
) -> SeededImage:
    """A one-layer linux/amd64 OCI image in an OCI layout directory (reproducible bytes)."""
    layout.mkdir(parents=True, exist_ok=True)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    compressed = gzip.compress(raw.getvalue(), mtime=0)
    layer = _blob(layout, compressed)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "strata test fixture"}],
        },
        sort_keys=True,
    ).encode()
    config_digest = _blob(layout, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer,
                    "size": len(compressed),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    manifest_digest = _blob(layout, manifest)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": manifest_digest,
                        "size": len(manifest),
                        "annotations": {"org.opencontainers.image.ref.name": tag},
                    }
                ],
            }
        )
    )
    return SeededImage(f"oci:{layout}:{tag}", manifest_digest, config_digest, (layer,))


def seed_image(
    registry: RegistryServer,
    repository: str,
    tag: str,
    workdir: Path,
    *,
    files: Mapping[str, bytes] | None = None,
    creds: tuple[str, str] | None = None,
    source: str | None = None,
) -> SeededImage:
    """Push an image to `registry` as `repository:tag` with `skopeo copy`.

    Without `source`, a one-layer image holding `files` (default: one small file naming
    the repository) is made as an OCI layout under `workdir`. `source` may be any skopeo
    transport (`oci:<dir>:<tag>`, `docker-archive:<tar>`); then the digests are those of
    the source's manifest as pushed. TLS is not verified (the registry may be https with a
    test CA, or http); `creds` are (user, password) for the registry.
    """
    image: SeededImage | None = None
    if source is None:
        layout = workdir / f"layout-{uuid.uuid4().hex[:8]}"
        image = make_oci_layout(
            layout, files or {"hello.txt": f"{repository}:{tag}\n".encode()}, tag=tag
        )
        source = image.reference
    destination = f"docker://{registry.host}/{repository}:{tag}"
    command = [
        "skopeo",
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--preserve-digests",
        source,
        destination,
    ]
    if creds is not None:
        command[4:4] = ["--dest-creds", f"{creds[0]}:{creds[1]}"]
    home = workdir / "skopeo-home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HOME=str(home), REGISTRY_AUTH_FILE=str(home / "auth.json"))
    env.pop("DOCKER_CONFIG", None)
    done = subprocess.run(command, capture_output=True, env=env, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"skopeo copy to {destination} failed ({done.returncode}): "
            f"{done.stderr.decode(errors='replace')[-2000:]}"
        )
    if image is not None:
        return SeededImage(
            f"{registry.host}/{repository}:{tag}",
            image.manifest_digest,
            image.config_digest,
            image.layer_digests,
        )
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", destination]
        + (["--creds", f"{creds[0]}:{creds[1]}"] if creds else []),
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    manifest = json.loads(raw)
    return SeededImage(
        f"{registry.host}/{repository}:{tag}",
        "sha256:" + hashlib.sha256(raw).hexdigest(),
        manifest.get("config", {}).get("digest", ""),
        tuple(layer["digest"] for layer in manifest.get("layers", [])),
    )

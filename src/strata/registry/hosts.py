"""Where a registry's requests go: mirrors, http or https, which CAs and client certificates.

strata reads a TOML file shaped like buildkitd.toml's registry section
(`bk:docs/buildkitd.toml.md`, `bk:util/resolver/config/config.go`)::

    [system]
      max-registry-concurrency = 4
      registry-timeout = 30        # seconds to connect, and between bytes of an answer
    [registry."docker.io"]
      mirrors = ["127.0.0.1:5001", "mirror.example/path"]
      http = true
      insecure = false
      ca = ["/path/ca.pem"]
      tlsconfigdir = ["/etc/strata/certs.d/host"]
      [[registry."docker.io".keypair]]
        key = "/path/client.key"
        cert = "/path/client.cert"

and turns a registry domain into the ordered list of `Endpoint`s to try, the way
BuildKit's `NewRegistryConfig` and `fillInsecureOpts` (`bk:util/resolver/resolver.go`)
and containerd's `ConfigureDefaultRegistries`/`MatchLocalhost`
(`ctd:core/remotes/docker/registry.go`) do:

- mirrors first, in order, for pulls only; each mirror takes its TLS/http settings from
  its own `[registry."<mirror host>"]` table;
- then the origin; `docker.io` is dialled as `registry-1.docker.io`;
- `http = true` means plain HTTP; `insecure = true` means HTTPS without verification,
  and both together mean "try HTTPS, fall back to HTTP"; with `http` unset, loopback
  hosts (localhost, 127.0.0.0/8, ::1) are HTTP.

The file is looked up as `$STRATA_CONFIG`, else `/etc/strata/strata.toml` for root,
else `${XDG_CONFIG_HOME:-~/.config}/strata/strata.toml`. Anything malformed in it is one
`UsageError` naming the file, the line when it can be found, and the key. Relative paths
in it (`ca`, `tlsconfigdir`, `keypair`) are taken relative to the file's directory.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from strata.errors import UsageError

DEFAULT_MAX_CONCURRENCY = 4  # bk:util/resolver/limited/group.go DefaultMaxConcurrency
DOCKER_HUB_DOMAIN = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"  # bk:util/resolver/resolver.go, ctd:registry.go
SYSTEM_CONFIG = Path("/etc/strata/strata.toml")
CONCURRENCY_KEYS = ("max-registry-concurrency", "maxRegistryConcurrency")
# strata's own key (BuildKit has none): how long a registry may stay silent, so a
# registry that never answers is an error after a bounded wait, not a hang.
TIMEOUT_KEY = "registry-timeout"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Endpoint:
    """One place a registry's requests go."""

    scheme: Literal["https", "http"]
    host: str  # host[:port] as dialled, e.g. "registry-1.docker.io", "127.0.0.1:5001"
    path: str  # API prefix: "/v2", or "/v2/<mirror path>" for a mirror given with a path
    mirror: bool  # pull/resolve only; add ?ns=<origin domain>; origin credentials never sent
    verify_tls: bool = True  # False when insecure=true
    ca_files: tuple[Path, ...] = ()  # extra CAs besides the system's
    client_cert: tuple[Path, Path] | None = None  # (cert, key)
    http_fallback: bool = False  # insecure+http: try https first, on TLS/connect error use http

    @property
    def base_url(self) -> str:
        """`https://host:port`, without the API path."""
        return f"{self.scheme}://{self.host}"

    def url(self, suffix: str, *, namespace: str | None = None) -> str:
        """The full URL of `suffix` (which starts with "/", below `/v2`).

        A mirror gets `ns=<origin domain>` so a proxy serving several registries knows
        which one is meant (`ctd:resolver.go` `addNamespace`, OCI distribution-spec
        "Registry Proxying"); the origin never does.
        """
        out = f"{self.base_url}{self.path}{suffix}"
        if self.mirror and namespace:
            out += ("&" if "?" in suffix else "?") + "ns=" + quote(namespace, safe="")
        return out

    @property
    def tls_key(self) -> tuple[bool, tuple[Path, ...], tuple[Path, Path] | None]:
        """What a connection pool's TLS depends on: endpoints with equal keys can share
        one urllib3 PoolManager (built with `ssl_context(endpoint)`)."""
        return (self.verify_tls, self.ca_files, self.client_cert)

    def as_http(self) -> Endpoint:
        """This endpoint over plain HTTP: what an `http_fallback` endpoint becomes once
        HTTPS failed with a TLS or connection error (BuildKit remembers that per host)."""
        return replace(self, scheme="http", http_fallback=False)


@dataclass(frozen=True)
class HostConfig:
    """One `[registry."<host>"]` table. `None` for `http`/`insecure` means "not set",
    which matters: an unset `http` lets loopback hosts default to HTTP."""

    mirrors: tuple[str, ...] = ()
    http: bool | None = None
    insecure: bool | None = None
    ca: tuple[Path, ...] = ()
    tlsconfigdir: tuple[Path, ...] = ()
    keypairs: tuple[tuple[Path, Path], ...] = ()  # (cert, key)


@dataclass(frozen=True)
class RegistryConfig:
    """The registry part of strata's configuration file."""

    hosts: Mapping[str, HostConfig] = field(
        default_factory=dict
    )  # parsed [registry."<host>"] tables
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY  # per registry
    timeout: float = DEFAULT_TIMEOUT  # seconds: connect, and each read
    source: Path | None = None

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> RegistryConfig:
        """Read the configuration file (see the module docstring for where it is looked up).

        A missing default file is an empty configuration; a missing file that was asked for
        (`path`, `$STRATA_CONFIG`) is a `UsageError`, as is anything malformed in it.
        """
        env = os.environ if env is None else env
        explicit = path is not None or bool(env.get("STRATA_CONFIG"))
        file = path if path is not None else config_path(env)
        try:
            text = file.read_bytes().decode("utf-8")
        except FileNotFoundError:
            if explicit:
                raise UsageError(f"configuration file {file} does not exist") from None
            return cls()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read configuration file {file}: {e}") from None
        return parse_config(text, file)

    def endpoints(
        self, domain: str, *, push: bool = False, insecure: bool = False
    ) -> list[Endpoint]:
        """The endpoints to try for `domain`, in order: mirrors (never for a push), then the
        origin.

        `insecure` is the per-command `registry.insecure=true` attribute. BuildKit answers it
        by replacing the domain's configuration with `insecure = true, http = true`
        (`bk:cache/remotecache/registry/registry.go` `registryConfig`): no mirrors, HTTPS
        without verification, falling back to HTTP.
        """
        origin_host = dial_host(domain)
        config = self.hosts.get(domain, HostConfig())
        if insecure:
            return [
                Endpoint(
                    scheme="https",
                    host=origin_host,
                    path="/v2",
                    mirror=False,
                    verify_tls=False,
                    client_cert=_tls_files(config)[1],
                    http_fallback=True,
                )
            ]
        out: list[Endpoint] = []
        if not push:
            for raw in config.mirrors:
                mirror_host, mirror_path = split_mirror(raw)
                mirror_config = self.hosts.get(mirror_host, HostConfig())
                path = "/v2" + (f"/{mirror_path}" if mirror_path else "")
                out.append(_endpoint(mirror_host, mirror_config, path, mirror=True))
        out.append(_endpoint(origin_host, config, "/v2", mirror=False))
        return out


def config_path(env: Mapping[str, str]) -> Path:
    """The configuration file strata reads when none is given."""
    if env.get("STRATA_CONFIG"):
        return Path(env["STRATA_CONFIG"])
    if os.geteuid() == 0:
        return SYSTEM_CONFIG
    base = env.get("XDG_CONFIG_HOME") or ""
    if not base:
        home = env.get("HOME") or str(Path.home())
        base = os.path.join(home, ".config")
    return Path(base) / "strata" / "strata.toml"


def dial_host(domain: str) -> str:
    """The host a domain's requests go to: only docker.io differs (registry-1.docker.io)."""
    return DOCKER_HUB_HOST if domain == DOCKER_HUB_DOMAIN else domain


def split_mirror(raw: str) -> tuple[str, str]:
    """`"mirror.example:5000/some/path/"` -> `("mirror.example:5000", "some/path")`.

    A scheme in front is ignored, as BuildKit's `extractMirrorHostAndPath`
    (`bk:util/resolver/utils.go`) ignores it: the mirror's own table decides http/https.
    """
    rest = raw.split("://", 1)[1] if "://" in raw else raw
    host, _, path = rest.partition("/")
    return host, path.strip("/")


def is_loopback(host: str) -> bool:
    """Whether `host[:port]` is localhost, 127.0.0.0/8 or ::1, as containerd's
    `MatchLocalhost` decides (`ctd:core/remotes/docker/registry.go`)."""
    name = _host_name(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(host: str) -> str:
    """The name or address in `host[:port]`, without brackets."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") > 1:  # a bare IPv6 address (no port possible)
        return host
    return host.partition(":")[0]


def _endpoint(host: str, config: HostConfig, path: str, *, mirror: bool) -> Endpoint:
    """One endpoint for `host` with its table's settings (BuildKit's `fillInsecureOpts`)."""
    ca_files, client_cert = _tls_files(config)
    plain_http = config.http is True or (config.http is None and is_loopback(host))
    if config.insecure:
        return Endpoint(
            scheme="https",
            host=host,
            path=path,
            mirror=mirror,
            verify_tls=False,
            client_cert=client_cert,
            http_fallback=plain_http,
        )
    if plain_http:
        return Endpoint(scheme="http", host=host, path=path, mirror=mirror)
    return Endpoint(
        scheme="https",
        host=host,
        path=path,
        mirror=mirror,
        ca_files=ca_files,
        client_cert=client_cert,
    )


def _tls_files(config: HostConfig) -> tuple[tuple[Path, ...], tuple[Path, Path] | None]:
    """CA files and the client key pair: `ca` and `keypair`, plus what each `tlsconfigdir`
    holds (`*.crt` are CAs, `*.cert` with a `*.key` beside are key pairs;
    `bk:util/resolver/resolver.go` `loadTLSConfig`). A missing or unreadable directory
    is skipped, as BuildKit skips it. Go would offer every pair; urllib3 takes one, so
    the first wins."""
    cas = list(config.ca)
    pairs = list(config.keypairs)
    for directory in config.tlsconfigdir:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if name.endswith(".crt"):
                cas.append(directory / name)
            elif name.endswith(".cert"):
                pairs.append((directory / name, directory / (name[: -len(".cert")] + ".key")))
    return tuple(cas), (pairs[0] if pairs else None)


def ssl_context(endpoint: Endpoint) -> ssl.SSLContext:
    """The TLS settings of an endpoint as an `ssl.SSLContext` for urllib3
    (`PoolManager(ssl_context=...)`): the system's CAs plus `ca_files`, the client key
    pair, or no verification at all for an insecure endpoint — BuildKit's
    `loadTLSConfig` plus `InsecureSkipVerify`. A CA or key file that cannot be loaded is a
    `UsageError` naming it (it comes from the configuration file)."""
    context = ssl.create_default_context()
    if not endpoint.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    for ca in endpoint.ca_files:
        try:
            context.load_verify_locations(cafile=str(ca))
        except (OSError, ssl.SSLError) as e:
            raise UsageError(f"failed to read CA file {ca} for {endpoint.host}: {e}") from None
    if endpoint.client_cert is not None:
        cert, key = endpoint.client_cert
        try:
            context.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as e:
            raise UsageError(f"failed to load keypair for {cert} ({endpoint.host}): {e}") from None
    return context


# --- proxies ---------------------------------------------------------------------------


def proxy_for(endpoint: Endpoint, env: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL for requests to `endpoint`, or None to connect directly.

    Go's `http.ProxyFromEnvironment` (golang.org/x/net/http/httpproxy), which BuildKit's
    registry transports use: HTTPS_PROXY for https, HTTP_PROXY for http (upper case
    first, then lower case), never for localhost or loopback addresses, and not for
    hosts NO_PROXY names (`*`; IP addresses or CIDR ranges; domains, which also match
    their subdomains, and `.domain`, which matches only subdomains; each optionally
    with `:port`). A proxy given without a scheme is `http://`. The URL may carry the
    proxy's own user:password: never print it.
    """
    env = os.environ if env is None else env
    names = (
        ("HTTPS_PROXY", "https_proxy")
        if endpoint.scheme == "https"
        else ("HTTP_PROXY", "http_proxy")
    )
    proxy = next((env[n] for n in names if env.get(n)), "")
    if not proxy:
        return None
    name = _host_name(endpoint.host).lower()
    port = _port_of(endpoint)
    if name == "localhost" or _is_loopback_ip(name):
        return None
    no_proxy = env.get("NO_PROXY") or env.get("no_proxy") or ""
    if _excluded(name, port, no_proxy):
        return None
    return proxy if "://" in proxy else "http://" + proxy


def _port_of(endpoint: Endpoint) -> str:
    host = endpoint.host
    if host.startswith("["):
        rest = host.partition("]")[2]
        port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        port = host.partition(":")[2]
    else:
        port = ""
    return port or ("443" if endpoint.scheme == "https" else "80")


def _is_loopback_ip(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _excluded(name: str, port: str, no_proxy: str) -> bool:
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if address is not None and address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry_host, entry_port = entry, ""
        if entry.startswith("["):
            entry_host = entry[1:].partition("]")[0]
            tail = entry.partition("]")[2]
            entry_port = tail[1:] if tail.startswith(":") else ""
        elif entry.count(":") == 1:
            entry_host, _, entry_port = entry.partition(":")
        if entry_port and entry_port != port:
            continue
        try:
            entry_address = ipaddress.ip_address(entry_host)
        except ValueError:
            entry_address = None
        if entry_address is not None:
            if address is not None and address == entry_address:
                return True
            continue
        if entry_host.startswith("*."):
            entry_host = entry_host[1:]
        if entry_host.startswith("."):
            if name.endswith(entry_host):
                return True
        elif name == entry_host or name.endswith("." + entry_host):
            return True
    return False


# --- parsing ---------------------------------------------------------------------------

_TOML_LINE = re.compile(r"\s*\(at (?:line (\d+), column \d+|end of document)\)\s*$")
_HOST_KEYS = ("mirrors", "http", "insecure", "ca", "tlsconfigdir", "keypair")


def parse_config(text: str, file: Path) -> RegistryConfig:
    """Parse the text of a configuration file; `file` names it in errors and anchors
    relative paths."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        found = _TOML_LINE.search(message)
        line = (found.group(1) or str(max(1, len(text.splitlines())))) if found else ""
        where = f"{file}:{line}" if line else str(file)
        problem = _TOML_LINE.sub("", message)
        raise UsageError(f"{where}: invalid TOML: {problem}") from None
    checker = _Checker(text, file)
    max_concurrency, timeout = DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT
    hosts: dict[str, HostConfig] = {}
    for key, value in data.items():
        if key == "system":
            max_concurrency, timeout = checker.system(value)
        elif key == "registry":
            checker.table(value, ("registry",), None)
            for host, table in value.items():
                hosts[host] = checker.host(host, table)
        else:
            checker.fail((), key, f"unknown key {key!r} (known: registry, system)")
    return RegistryConfig(
        hosts=hosts, max_concurrency=max_concurrency, timeout=timeout, source=file
    )


class _Checker:
    """Checks parsed TOML against the schema and raises the one-line `UsageError`."""

    def __init__(self, text: str, file: Path) -> None:
        self.lines = text.splitlines()
        self.file = file
        self.base = file.parent

    def fail(self, table: tuple[str, ...], key: str, problem: str) -> None:
        line = _locate(self.lines, table, key)
        where = f"{self.file}:{line}" if line else str(self.file)
        dotted = ".".join(_toml_key(k) for k in (*table, key))
        raise UsageError(f"{where}: {dotted}: {problem}", option=dotted)

    def table(self, value: Any, table: tuple[str, ...], key: str | None) -> None:
        if not isinstance(value, dict):
            parent, name = (table[:-1], table[-1]) if key is None else (table, key)
            self.fail(parent, name, f"expected a table, got {_describe(value)}")

    def system(self, value: Any) -> tuple[int, float]:
        """(max-registry-concurrency, registry-timeout) from the `[system]` table."""
        self.table(value, ("system",), None)
        result, timeout = DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT
        for key, item in value.items():
            if key == TIMEOUT_KEY:
                if not isinstance(item, int | float) or isinstance(item, bool) or item <= 0:
                    self.fail(
                        ("system",), key, f"expected a positive number, got {_describe(item)}"
                    )
                timeout = float(item)
                continue
            if key not in CONCURRENCY_KEYS:
                self.fail(
                    ("system",),
                    key,
                    f"unknown key {key!r} (known: {CONCURRENCY_KEYS[0]}, {TIMEOUT_KEY})",
                )
            if not isinstance(item, int) or isinstance(item, bool) or item < 1:
                self.fail(("system",), key, f"expected a positive integer, got {_describe(item)}")
            result = item
        return result, timeout

    def host(self, host: str, value: Any) -> HostConfig:
        where = ("registry", host)
        self.table(value, where, None)
        for key in value:
            if key not in _HOST_KEYS:
                self.fail(where, key, f"unknown key {key!r} (known: {', '.join(_HOST_KEYS)})")
        mirrors = self.strings(where, "mirrors", value.get("mirrors", []))
        for mirror in mirrors:
            if not split_mirror(mirror)[0]:
                self.fail(where, "mirrors", f"{mirror!r} names no host")
        return HostConfig(
            mirrors=tuple(mirrors),
            http=self.boolean(where, "http", value.get("http")),
            insecure=self.boolean(where, "insecure", value.get("insecure")),
            ca=tuple(self.path(p) for p in self.strings(where, "ca", value.get("ca", []))),
            tlsconfigdir=tuple(
                self.path(p)
                for p in self.strings(where, "tlsconfigdir", value.get("tlsconfigdir", []))
            ),
            keypairs=self.keypairs(where, value.get("keypair", [])),
        )

    def strings(self, table: tuple[str, ...], key: str, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(table, key, f"expected a list of non-empty strings, got {_describe(value)}")
        return list(value)

    def boolean(self, table: tuple[str, ...], key: str, value: Any) -> bool | None:
        if value is not None and not isinstance(value, bool):
            self.fail(table, key, f"expected true or false, got {_describe(value)}")
        return value  # type: ignore[no-any-return]

    def keypairs(self, table: tuple[str, ...], value: Any) -> tuple[tuple[Path, Path], ...]:
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            self.fail(table, "keypair", f"expected [[keypair]] tables, got {_describe(value)}")
        out = []
        for item in value:
            if not isinstance(item, dict):
                self.fail(table, "keypair", f"expected [[keypair]] tables, got {_describe(item)}")
            for key in item:
                if key not in ("key", "cert"):
                    self.fail((*table, "keypair"), key, f"unknown key {key!r} (known: key, cert)")
            for key in ("key", "cert"):
                if not isinstance(item.get(key), str) or not item[key]:
                    self.fail(
                        (*table, "keypair"),
                        key,
                        f"expected a file name, got {_describe(item.get(key))}",
                    )
            out.append((self.path(item["cert"]), self.path(item["key"])))
        return tuple(out)

    def path(self, text: str) -> Path:
        return self.base / os.path.expanduser(text)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return f"{type(value).__name__} {value!r}"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else '"' + key.replace('"', '\\"') + '"'


_BARE_OR_QUOTED = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*""")


def _split_dotted(text: str) -> tuple[str, ...] | None:
    """`registry."docker.io".keypair` -> ("registry", "docker.io", "keypair"); None if odd."""
    parts: list[str] = []
    pos = 0
    while True:
        m = _BARE_OR_QUOTED.match(text, pos)
        if m is None or m.end() == pos:
            return None
        parts.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
        if pos == len(text):
            return tuple(parts)
        if text[pos] != ".":
            return None
        pos += 1


def _locate(lines: list[str], table: tuple[str, ...], key: str) -> int:
    """The 1-based line where `key` is set inside `[table]` (0 when it cannot be found).

    tomllib reports lines only for syntax errors, so for a wrong type or an unknown key
    the line is found again here, by reading table headers and `key =` lines. Dotted keys
    and inline tables fall back to the line of the table's header, or of its parent's key."""
    current: tuple[str, ...] = ()
    header_line = 0
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith("["):
            inner = line.lstrip("[").split("]", 1)[0]
            parsed = _split_dotted(inner)
            current = parsed if parsed is not None else ()
            if current == table:
                header_line = header_line or number
            elif current[: len(table) + 1] == (*table, key):
                return number
            continue
        if current == table and "=" in line:
            parsed = _split_dotted(line.split("=", 1)[0])
            if parsed is not None and parsed[0] == key:
                return number
    if header_line == 0 and table:  # set inline or with a dotted key: where the parent says so
        return _locate(lines, table[:-1], table[-1])
    return header_line

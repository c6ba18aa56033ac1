"""`strata login` and `strata logout`: check credentials against a registry, then store
or erase them exactly where `docker login`/`docker logout` do (docker/cli
`cli/command/registry/login.go`, `logout.go`).

Docker Hub is the default server and is stored under `https://index.docker.io/v1/`.
A server may be typed as `host[:port]`, or as a URL (`https://host/v1/`), whose host is
what counts (docker/cli `ConvertToHostname`).
"""

from __future__ import annotations

from collections.abc import Mapping

from strata.registry.client import RegistryClient
from strata.registry.credentials import (
    HUB_ALIASES,
    Credentials,
    CredentialStore,
    auth_config_key,
    convert_to_hostname,
)
from strata.registry.hosts import RegistryConfig


def registry_domain(server: str | None) -> str:
    """The registry a typed server names: `docker.io` for none or Hub's aliases."""
    if not server:
        return "docker.io"
    host = convert_to_hostname(server.strip())
    return "docker.io" if host in HUB_ALIASES or server.strip() == auth_config_key("docker.io") else host


def server_address(server: str | None) -> str:
    """The server as docker prints it in `Removing login credentials for ...`."""
    return auth_config_key(registry_domain(server))


class _Given(CredentialStore):
    """The credentials being tried, for every registry the check talks to."""

    def __init__(self, credentials: Credentials, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env=env)
        self._given = credentials

    def get(self, domain: str) -> Credentials:
        return self._given


def login(config: RegistryConfig, server: str | None, username: str, password: str) -> str:
    """Check `username`/`password` at the registry (`GET /v2/`, with its Basic or token
    challenge), then store them; returns the key they were stored under. A refusal is a
    RegistryError naming the registry, and nothing is stored."""
    domain = registry_domain(server)
    given = Credentials(username=username, secret=password)
    with RegistryClient(config, _Given(given)) as client:
        client.check_access(domain)
    CredentialStore().store(domain, given)
    return auth_config_key(domain)


def logout(server: str | None) -> bool:
    """Erase the stored credentials of `server`; False when there were none."""
    return CredentialStore().erase(registry_domain(server))

"""What a step on a private network is given: its namespace by path in the spec, and a
resolv.conf whose nameservers it can reach through slirp4netns."""

from __future__ import annotations

from strata.worker.network import SLIRP_DNS, container_resolv_conf
from strata.worker.spec import build_spec
from strata.worker.users import ResolvedUser


def network_namespaces(**kw: object) -> list[dict[str, str]]:
    spec = build_spec(args=["true"], env=[], cwd="/", user=ResolvedUser(0, 0), **kw)  # type: ignore[arg-type]
    linux = spec["linux"]
    assert isinstance(linux, dict)
    return [ns for ns in linux["namespaces"] if ns["type"] == "network"]


def test_default_joins_the_private_namespace_host_shares_none_gets_a_new_one() -> None:
    assert network_namespaces(network="default", network_namespace="/b/netns") == [
        {"type": "network", "path": "/b/netns"}
    ]
    assert network_namespaces(network="default") == []  # fallback: the host's
    assert network_namespaces(network="host", network_namespace="/b/netns") == []
    assert network_namespaces(network="none") == [{"type": "network"}]


def test_loopback_and_ipv6_nameservers_become_the_slirp_forwarder_once() -> None:
    host = "search example.org\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.1.1.1\n"
    assert container_resolv_conf(host) == (
        f"search example.org\nnameserver {SLIRP_DNS}\nnameserver 10.1.1.1\n"
    )
    assert container_resolv_conf("nameserver 9.9.9.9\n") == "nameserver 9.9.9.9\n"
    assert (
        container_resolv_conf("options ndots:2\n") == f"options ndots:2\nnameserver {SLIRP_DNS}\n"
    )

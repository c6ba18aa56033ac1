"""What a build's flags change in every RUN container: extra /etc/hosts entries
(`--add-host`), `/dev/shm`'s size (`--shm-size`), rlimits (`--ulimit`), the parent
cgroup (`--cgroup-parent`) and resource limits (`--resource`, and the legacy `-m`,
`--cpu-shares`, ... that buildx turns into resources).

Parsed here with the rules and error texts of buildx and docker/cli, so the CLI, the
API and the planner agree; plain frozen values, so an op can carry them. BuildKit puts
hosts, ulimits, shm size and cgroup parent in the exec op's `Meta` (they are part of
its cache key: `solver/pb/ops.proto`); resource limits are not (a limit does not change
what a step produces). Every layer may import this module.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from strata.errors import UsageError
from strata.gotext import go_quote, parse_ram_in_bytes

__all__ = [
    "ResourceLimits",
    "SandboxOptions",
    "Ulimit",
    "parse_add_hosts",
    "parse_resources",
    "parse_shm_size",
    "parse_ulimit",
]

# go-units ulimit.go `ulimitNameMapping`: the names docker and buildx accept.
ULIMIT_NAMES = (
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
)
# buildx build/utils.go: `host-gateway` asks the driver for the host's address.
HOST_GATEWAY = "host-gateway"
HOST_GATEWAY_IP = "127.0.0.1"


@dataclass(frozen=True)
class Ulimit:
    """One `--ulimit name=soft[:hard]`; -1 is unlimited."""

    name: str
    soft: int
    hard: int

    def __str__(self) -> str:
        return f"{self.name}={self.soft}:{self.hard}"

    def oci(self) -> dict[str, object]:
        """The OCI `process.rlimits` entry (unlimited is the largest uint64)."""
        unlimited = 2**64 - 1

        def value(limit: int) -> int:
            return unlimited if limit < 0 else limit

        return {
            "type": f"RLIMIT_{self.name.upper()}",
            "soft": value(self.soft),
            "hard": value(self.hard),
        }


@dataclass(frozen=True)
class ResourceLimits:
    """`--resource KEY=VALUE` (buildx build/utils.go `ParseResourceLimits`): 0 or empty
    is unset; memory values are bytes, `memory_swap` -1 is unlimited swap."""

    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""

    def oci(self) -> dict[str, object]:
        """The OCI `linux.resources` entries these limits set (empty when none is)."""
        out: dict[str, object] = {}
        memory: dict[str, int] = {}
        if self.memory > 0:
            memory["limit"] = self.memory
        if self.memory_swap != 0:
            memory["swap"] = self.memory_swap
        if memory:
            out["memory"] = memory
        cpu: dict[str, object] = {}
        if self.cpu_shares > 0:
            cpu["shares"] = self.cpu_shares
        if self.cpu_period > 0:
            cpu["period"] = self.cpu_period
        if self.cpu_quota > 0:
            cpu["quota"] = self.cpu_quota
        if self.cpuset_cpus:
            cpu["cpus"] = self.cpuset_cpus
        if self.cpuset_mems:
            cpu["mems"] = self.cpuset_mems
        if cpu:
            out["cpu"] = cpu
        return out


def parse_add_hosts(values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """`--add-host host=ip` or `host:ip` as buildx reads it (build/utils.go
    `toBuildkitExtraHosts`): `=` is tried first, so IPv6 addresses need it; an address
    may be in square brackets; `host-gateway` is the host's own address (strata's RUN
    shares the host's network, so loopback)."""
    hosts: list[tuple[str, str]] = []
    for value in values:
        # A pflag stringSlice: each value is comma-separated items.
        for item in value.split(","):
            host, sep, ip = item.partition("=")
            if not sep:
                host, sep, ip = item.partition(":")
            if not sep or not host or not ip:
                raise UsageError(f"invalid host {item}", option="--add-host")
            if ip == HOST_GATEWAY:
                hosts.append((host, HOST_GATEWAY_IP))
                continue
            address = ip[1:-1] if len(ip) > 2 and ip[0] == "[" and ip[-1] == "]" else ip
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise UsageError(f"invalid host {item}", option="--add-host") from None
            hosts.append((host, address))
    return tuple(hosts)


def parse_shm_size(value: str) -> int:
    """`--shm-size 128m`: docker/cli `MemBytes` (go-units RAMInBytes, binary units)."""
    try:
        size = parse_ram_in_bytes(value)
    except ValueError:
        raise UsageError(
            f'invalid argument "{value}" for "--shm-size" flag: invalid size: {go_quote(value)}',
            option="--shm-size",
        ) from None
    return size


def parse_ulimit(value: str) -> Ulimit:
    """`--ulimit name=soft[:hard]` (go-units `ParseUlimit`): a single number sets both."""
    prefix = f'invalid argument "{value}" for "--ulimit" flag: '
    name, sep, limits = value.partition("=")
    if not sep:
        raise UsageError(prefix + f"invalid ulimit argument: {value}", option="--ulimit")
    if name not in ULIMIT_NAMES:
        raise UsageError(prefix + f"invalid ulimit type: {name}", option="--ulimit")
    soft_text, has_hard, hard_text = limits.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if has_hard else soft
    except ValueError:
        raise UsageError(prefix + f"invalid ulimit argument: {value}", option="--ulimit") from None
    if ":" in hard_text:
        raise UsageError(prefix + f"too many limit value arguments - {limits}", option="--ulimit")
    if soft > hard and hard != -1:
        raise UsageError(
            prefix + f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}",
            option="--ulimit",
        )
    return Ulimit(name, soft, hard)


def parse_resources(entries: Iterable[str]) -> ResourceLimits:
    """`--resource KEY=VALUE` entries, the legacy flags already turned into them
    (`-m 1g` is `memory=1g`), with buildx's keys and messages."""
    fields: dict[str, object] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep:
            raise UsageError(
                f"invalid resource {go_quote(entry)}, expected key=value", option="--resource"
            )
        key, value = key.strip(), value.strip()
        try:
            if key in ("memory", "memory-swap"):
                fields[key.replace("-", "_")] = _memory_value(value, swap=key == "memory-swap")
            elif key in ("cpu-shares", "cpu-period", "cpu-quota"):
                fields[key.replace("-", "_")] = int(value)
            elif key in ("cpuset-cpus", "cpuset-mems"):
                fields[key.replace("-", "_")] = value
            else:
                raise UsageError(f"unknown resource {go_quote(key)}", option="--resource")
        except ValueError:
            raise UsageError(
                f"invalid value {go_quote(value)} for resource {key}", option="--resource"
            ) from None
    return ResourceLimits(**fields)  # type: ignore[arg-type]


def _memory_value(value: str, *, swap: bool) -> int:
    """docker/cli `MemBytes` / `MemSwapBytes`: a size; swap also takes -1 (unlimited)."""
    if swap and value == "-1":
        return -1
    return parse_ram_in_bytes(value)


@dataclass(frozen=True)
class SandboxOptions:
    """Everything above for one build: what each of its RUN steps gets."""

    extra_hosts: tuple[tuple[str, str], ...] = ()
    ulimits: tuple[Ulimit, ...] = ()
    shm_size: int = 0
    cgroup_parent: str = ""
    resources: ResourceLimits = field(default_factory=ResourceLimits)

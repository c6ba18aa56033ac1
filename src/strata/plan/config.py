"""The image config a stage accumulates, and the history text BuildKit writes for it.

A stage starts from its base image's config (or the empty image's), and each instruction
changes it the way dockerfile2llb/convert.go's `dispatch*` functions do. History strings
reproduce Go's formatting (`%q`, `%v`, `%+v`, time.Duration) because they end up in the
image and people compare them with Docker's.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strata.errors import ConfigError
from strata.gotext import go_quote
from strata.plan.buildargs import DEFAULT_PATH, replace_env_entry, split_env
from strata.plan.ops import Platform
from strata.plan.result import HistoryEntry

HISTORY_COMMENT = "buildkit.dockerfile.v0"


def default_shell(os_name: str) -> list[str]:
    """The shell of shell-form RUN/CMD/ENTRYPOINT without SHELL (defaultshell.go)."""
    return ["cmd", "/S", "/C"] if os_name == "windows" else ["/bin/sh", "-c"]


@dataclass
class ImageState:
    """A stage's image metadata while it is being converted: config JSON and history."""

    image: dict[str, Any]
    history: list[HistoryEntry] = field(default_factory=list)
    epoch: str | None = None

    @property
    def config(self) -> dict[str, Any]:
        runtime = self.image.get("config")
        if not isinstance(runtime, dict):
            runtime = {}
            self.image["config"] = runtime
        return runtime

    @property
    def os(self) -> str:
        return str(self.image.get("os", ""))

    def clone(self) -> ImageState:
        return ImageState(copy.deepcopy(self.image), list(self.history), self.epoch)

    def commit(self, created_by: str, *, with_layer: bool) -> None:
        """Append a history entry (convert.go `commitToHistory`)."""
        self.history.append(
            HistoryEntry(
                created_by=created_by,
                empty_layer=not with_layer,
                comment=HISTORY_COMMENT,
                created=self.epoch,
            )
        )

    # -- instructions ------------------------------------------------------------------

    def shell(self) -> list[str]:
        shell = self.config.get("Shell")
        return list(shell) if shell else default_shell(self.os)

    def with_shell(self, args: Sequence[str]) -> list[str]:
        """Shell form: the shell's words then the command text joined by spaces."""
        return [*self.shell(), " ".join(args)]

    def set_env(self, key: str, value: str) -> None:
        self.config["Env"] = replace_env_entry(list(self.config.get("Env") or []), key, value)

    def set_label(self, key: str, value: str) -> None:
        labels = dict(self.config.get("Labels") or {})
        labels[key] = value
        self.config["Labels"] = dict(sorted(labels.items()))

    def add_ports(self, ports: Sequence[str]) -> None:
        exposed = dict(self.config.get("ExposedPorts") or {})
        for port in ports:
            exposed[port] = {}
        self.config["ExposedPorts"] = dict(sorted(exposed.items()))

    def add_volumes(self, volumes: Sequence[str]) -> None:
        existing = dict(self.config.get("Volumes") or {})
        for volume in volumes:
            existing[volume] = {}
        self.config["Volumes"] = dict(sorted(existing.items()))

    def set_optional(self, key: str, value: Any) -> None:
        """Set a config key, or drop it for an empty value (Go's omitempty)."""
        if value is None or value == "" or value == [] or value == {}:
            self.config.pop(key, None)
        else:
            self.config[key] = value


def empty_image(platform: Platform) -> dict[str, Any]:
    """The config of `FROM scratch` (image.go `emptyImage`)."""
    image: dict[str, Any] = {"architecture": platform.architecture, "os": platform.os}
    if platform.variant:
        image["variant"] = platform.variant
    runtime: dict[str, Any] = {"WorkingDir": "/"}
    if platform.os != "windows":
        runtime["Env"] = [f"PATH={DEFAULT_PATH}"]
    image["config"] = runtime
    return image


# The fields BuildKit's DockerOCIImage keeps when it reads a base config
# (moby/docker-image-spec specs-go/v1 image.go); anything else is dropped on the way.
_IMAGE_FIELDS = ("author", "architecture", "os", "os.version", "os.features", "variant")
_RUNTIME_FIELDS = (
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ArgsEscaped",
    "Healthcheck",
    "OnBuild",
    "Shell",
)
_HEALTHCHECK_FIELDS = ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries")


def _kept(value: Any) -> bool:
    return value not in (None, "", [], {}, False, 0)


def image_from_base(config: Mapping[str, Any]) -> tuple[dict[str, Any], list[HistoryEntry]]:
    """A base image's config as BuildKit carries it on, and the base history.

    `created`, `rootfs` and `history` are left out (the exporter writes them), and so is
    every field the OCI/Docker image types do not define (`container_config`, ...).
    """
    source = copy.deepcopy(dict(config))
    raw_history = source.get("history") or []
    image: dict[str, Any] = {k: source[k] for k in _IMAGE_FIELDS if _kept(source.get(k))}
    runtime_in = source.get("config")
    if isinstance(runtime_in, Mapping):
        runtime = {k: runtime_in[k] for k in _RUNTIME_FIELDS if _kept(runtime_in.get(k))}
        check = runtime.get("Healthcheck")
        if isinstance(check, Mapping):
            runtime["Healthcheck"] = {
                k: check[k] for k in _HEALTHCHECK_FIELDS if _kept(check.get(k))
            }
        image["config"] = runtime
    history = [
        HistoryEntry(
            created_by=str(item.get("created_by", "")),
            empty_layer=bool(item.get("empty_layer", False)),
            comment=str(item.get("comment", "")),
            created=item.get("created"),
            author=str(item.get("author", "")),
        )
        for item in raw_history
        if isinstance(item, Mapping)
    ]
    return image, history


def is_scratch_config(config: Mapping[str, Any]) -> bool:
    """An image with no layers at all is used as scratch (convert.go `resolveBaseImage`)."""
    rootfs = config.get("rootfs") or {}
    if rootfs.get("diff_ids"):
        return False
    return all(bool(item.get("empty_layer")) for item in config.get("history") or [])


def ensure_path(state: ImageState) -> None:
    """Append the default PATH when the env has none, except on Windows (#5445)."""
    env = state.config.get("Env") or []
    if any(split_env(entry)[0] == "PATH" for entry in env):
        return
    if state.os != "windows":
        state.config["Env"] = [*env, f"PATH={DEFAULT_PATH}"]


# -- Go formatting -------------------------------------------------------------------------


def go_quote_list(items: Sequence[str] | None) -> str:
    """`fmt.Sprintf("%q", []string{...})`: `["a" "b"]`."""
    return "[" + " ".join(go_quote(item) for item in items or ()) + "]"


def go_list(items: Sequence[str] | None) -> str:
    """`fmt.Sprintf("%v", []string{...})`: `[a b]`."""
    return "[" + " ".join(items or ()) + "]"


def _fraction(value: int, digits: int) -> str:
    whole, rest = divmod(value, 10**digits)
    if rest == 0:
        return str(whole)
    return f"{whole}.{str(rest).rjust(digits, '0').rstrip('0')}"


def go_duration(ns: int) -> str:
    """Go's time.Duration.String (`1m30s`, `1.5s`, `250ms`, `0s`)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    value = abs(ns)
    if value < 1_000:
        return f"{sign}{value}ns"
    if value < 1_000_000:
        return f"{sign}{_fraction(value, 3)}µs"
    if value < 1_000_000_000:
        return f"{sign}{_fraction(value, 6)}ms"
    hours, rest = divmod(value, 3_600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = f"{_fraction(rest, 9)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def healthcheck_history(check: Mapping[str, Any]) -> str:
    """`HEALTHCHECK %+v` of BuildKit's HealthcheckConfig struct."""
    return (
        "HEALTHCHECK {"
        f"Test:{go_list(check.get('Test'))} "
        f"Interval:{go_duration(int(check.get('Interval', 0)))} "
        f"Timeout:{go_duration(int(check.get('Timeout', 0)))} "
        f"StartPeriod:{go_duration(int(check.get('StartPeriod', 0)))} "
        f"StartInterval:{go_duration(int(check.get('StartInterval', 0)))} "
        f"Retries:{int(check.get('Retries', 0))}"
        "}"
    )


# -- EXPOSE --------------------------------------------------------------------------------


def _port_number(raw: str) -> int:
    if raw == "":
        raise ValueError("value is empty")
    if not re.fullmatch(r"[+-]?[0-9]+", raw):
        raise ValueError("invalid syntax")
    port = int(raw)
    if port < 0 or port > 65535:
        raise ValueError("value out of range (0–65535)")
    return port


def _port_range(ports: str) -> tuple[int, int]:
    if ports == "":
        raise ValueError("empty string specified for ports")
    start, dash, end = ports.partition("-")
    first = _port_number(start)
    if not dash or start == end:
        return first, first
    last = _port_number(end)
    if last < first:
        raise ValueError("invalid port range: " + ports)
    return first, last


def _split_port_parts(raw: str) -> tuple[str, str, str]:
    """`[ip:][host:]container` → (ip, host port, container part) (`splitParts`)."""
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _check_host_ip(ip: str) -> None:
    """The IP of an `ip:host:container` form must parse as Go's net.ParseIP does."""
    if ip.startswith("["):
        # BuildKit strips the brackets of an IPv6 address with net.SplitHostPort(ip + ":").
        if "]" not in ip:
            raise ConfigError(f"invalid IP address {ip}: address {ip}:: missing ']' in address")
        inner, _, rest = ip[1:].partition("]")
        if rest:
            reason = "too many colons" if rest.startswith(":") else "missing port"
            raise ConfigError(f"invalid IP address {ip}: address {ip}:: {reason} in address")
        ip = inner
    # Go's ParseIP takes no IPv6 zone; Python's parser would accept `%eth0`.
    try:
        if "%" in ip:
            raise ValueError(ip)
        ipaddress.ip_address(ip)
    except ValueError:
        raise ConfigError("invalid IP address: " + ip) from None


def parse_exposed_port(raw: str) -> list[str]:
    """One EXPOSE word → `<port>/<proto>` entries (convert_expose.go `parsePort`).

    Returns the ports; raises ConfigError with BuildKit's text. Checks run in BuildKit's
    order (protocol, IP, container port, host port) so the same word fails the same way.
    """
    ip, host_port, container = _split_port_parts(raw)
    port, _, proto = container.partition("/")
    if port == "":
        raise ConfigError(f'invalid port: "{raw}": no port specified')
    lowered = proto.lower()
    if lowered == "":
        lowered = "tcp"
    elif lowered not in ("tcp", "udp", "sctp"):
        raise ConfigError(f'invalid port: "{raw}": invalid proto: {proto}')
    if ip:
        _check_host_ip(ip)
    try:
        first, last = _port_range(port)
    except ValueError:
        raise ConfigError("invalid containerPort: " + port) from None
    if host_port:
        try:
            host_first, host_last = _port_range(host_port)
        except ValueError:
            raise ConfigError("invalid hostPort: " + host_port) from None
        if last - first != host_last - host_first and last != first:
            raise ConfigError(
                f"invalid ranges specified for container and host Ports: {port} and {host_port}"
            )
    return [f"{number}/{lowered}" for number in range(first, last + 1)]


# -- STOPSIGNAL ----------------------------------------------------------------------------

_SIGNALS = frozenset(
    [
        "ABRT",
        "ALRM",
        "BUS",
        "CHLD",
        "CLD",
        "CONT",
        "FPE",
        "HUP",
        "ILL",
        "INT",
        "IO",
        "IOT",
        "KILL",
        "PIPE",
        "POLL",
        "PROF",
        "PWR",
        "QUIT",
        "SEGV",
        "STKFLT",
        "STOP",
        "SYS",
        "TERM",
        "TRAP",
        "TSTP",
        "TTIN",
        "TTOU",
        "URG",
        "USR1",
        "USR2",
        "VTALRM",
        "WINCH",
        "XCPU",
        "XFSZ",
        "RTMIN",
        "RTMAX",
    ]
    + [f"RTMIN+{n}" for n in range(1, 16)]
    + [f"RTMAX-{n}" for n in range(1, 15)]
)


def validate_signal(raw: str) -> None:
    """Accept what moby/sys/signal ParseSignal accepts (Linux names, numbers but 0).

    A number is read with Go's strconv.Atoi, so one outside int64 is not a number and,
    being no signal name either, is invalid.
    """
    if re.fullmatch(r"[+-]?[0-9]+", raw) and -(2**63) <= int(raw) < 2**63:
        if int(raw) == 0:
            raise ConfigError(f"invalid signal: {raw}")
        return
    name = raw.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name not in _SIGNALS:
        raise ConfigError(f"invalid signal: {raw}")

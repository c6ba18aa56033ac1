"""Platform strings (`linux/arm64/v8`) as containerd reads and prints them.

The planner needs them for `FROM --platform`, the predefined `TARGET*`/`BUILD*` args and
the `os`/`architecture`/`variant` of the image config. The rules follow
containerd/platforms (`Parse`, `normalizeArch`, `Format`) as vendored by BuildKit.
"""

from __future__ import annotations

import platform as host_platform
import re

from strata.errors import StrataError
from strata.plan.ops import Platform

_KNOWN_OS = frozenset(
    {
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "wasip1",
        "windows",
        "zos",
    }
)
_KNOWN_ARCH = frozenset(
    {
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "ppc64",
        "ppc64le",
        "riscv64",
        "s390x",
        "wasm",
    }
)
_COMPONENT = re.compile(r"^[A-Za-z0-9_.-]+$")


class PlatformError(StrataError):
    """A platform string containerd would not parse; the caller adds where it came from."""


def normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    """Canonical architecture and variant names (containerd/platforms database.go)."""
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        return "arm64", variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
    return arch, variant


def native_platform() -> Platform:
    """The platform of this machine, the default target when none is requested."""
    machine = host_platform.machine() or "amd64"
    arch, variant = normalize_arch(machine, "")
    if arch == "arm" and machine.lower().startswith("armv6"):
        variant = "v6"
    return Platform(os="linux", architecture=arch, variant=variant)


def parse_platform(spec: str) -> Platform:
    """`os[/arch[/variant]]` → Platform, or PlatformError with containerd's reasons."""
    if "*" in spec:
        raise PlatformError(f'"{spec}": wildcards not yet supported: invalid argument')
    parts = spec.split("/", 3)
    os_name = parts[0].lower()
    if not _COMPONENT.match(parts[0]):
        raise PlatformError(
            f'"{parts[0]}" is an invalid OS component of "{spec}": invalid argument'
        )
    for part in parts[1:]:
        if not _COMPONENT.match(part):
            raise PlatformError(f'"{part}" is an invalid component of "{spec}": invalid argument')
    if os_name == "macos":
        os_name = "darwin"
    if len(parts) == 1:
        if os_name in _KNOWN_OS:
            native = native_platform()
            return Platform(os=os_name, architecture=native.architecture, variant=native.variant)
        arch, variant = normalize_arch(parts[0], "")
        if arch == "arm" and variant == "v7":
            variant = ""
        if arch in _KNOWN_ARCH:
            return Platform(os="linux", architecture=arch, variant=variant)
        raise PlatformError(f'"{spec}": unknown operating system or architecture: invalid argument')
    if len(parts) == 2:
        arch, variant = normalize_arch(parts[1], "")
        if arch == "arm" and variant == "v7":
            variant = ""
        return Platform(os=os_name, architecture=arch, variant=variant)
    if len(parts) == 3:
        arch, variant = normalize_arch(parts[1], parts[2])
        return Platform(os=os_name, architecture=arch, variant=variant)
    raise PlatformError(f'"{spec}": cannot parse platform specifier: invalid argument')


def format_platform(p: Platform) -> str:
    """`os/arch[/variant]` as containerd's Format prints it."""
    return "/".join(part for part in (p.os, p.architecture, p.variant) if part)

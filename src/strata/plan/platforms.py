"""Platform strings (`linux/arm64/v8`) as containerd reads and prints them.

The planner needs them for `FROM --platform`, the predefined `TARGET*`/`BUILD*` args and
the `os`/`architecture`/`variant` of the image config. The rules follow
containerd/platforms (`Parse`, `normalizeArch`, `Format`) as vendored by BuildKit.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from strata.errors import PlatformError, reraised_as
from strata.gotext import go_quote
from strata.hostplatform import host_platform
from strata.plan.ops import Platform

# containerd/platforms database.go (isKnownOS, isKnownArch) as vendored by BuildKit.
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
        "ppc64",
        "ppc64le",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
    }
)
# The patterns' sources appear in containerd's messages, so they are kept verbatim.
_COMPONENT_PATTERN = r"^[A-Za-z0-9_.-]+$"
_OS_PATTERN = r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$"
# Go's `$` is the end of the text; Python's would also accept a trailing newline.
_COMPONENT = re.compile(_COMPONENT_PATTERN.removesuffix("$") + r"\Z")
_OS_AND_VERSION = re.compile(_OS_PATTERN.removesuffix("$") + r"\Z")


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
    os_name, arch, variant = host_platform()
    arch, variant = normalize_arch(arch, variant)
    return Platform(os=os_name, architecture=arch, variant=variant)


def _decode_os_option(value: str) -> str:
    """containerd's decodeOSOption: %-escapes decoded as Go's PathUnescape, errors kept."""
    if "%" not in value:
        return value
    i = 0
    while i < len(value):
        if value[i] == "%":
            escape = value[i : i + 3]
            if len(escape) < 3 or not all(c in "0123456789abcdefABCDEF" for c in escape[1:]):
                raise PlatformError(f"invalid URL escape {go_quote(escape)}")
            i += 3
        else:
            i += 1
    return unquote(value, errors="replace")


def parse_platform(spec: str) -> Platform:
    """`os[(version[+feature...])][/arch[/variant]]` → Platform, or PlatformError.

    The rules and messages are containerd's Parse. The OS version and features are
    checked but not kept: strata's Platform has no place for them (Linux has neither).
    """
    if "*" in spec:
        raise PlatformError(f"{go_quote(spec)}: wildcards not yet supported: invalid argument")
    parts = spec.split("/", 3)
    os_match = _OS_AND_VERSION.match(parts[0])
    if os_match is None:
        raise PlatformError(
            f"{go_quote(parts[0])} is an invalid OS component of {go_quote(spec)}: "
            f"OSAndVersion specifier component must match {go_quote(_OS_PATTERN)}: "
            "invalid argument"
        )
    try:
        _decode_os_option(os_match.group(2) or "")
    except PlatformError as exc:
        # Not `reraised_as`: its prefix would be built before the call, and group(2)
        # may be None, which only a failing call rules out.
        raise PlatformError(
            f"{go_quote(spec)} has an invalid OS version {go_quote(os_match.group(2))}: "
            f"{exc.message}"
        ) from None
    for feature in (os_match.group(3) or "")[1:].split("+") if os_match.group(3) else ():
        with reraised_as(
            PlatformError,
            PlatformError,
            prefix=f"{go_quote(spec)} has invalid OS features: invalid os feature {go_quote(feature.strip())}: ",
        ):
            _decode_os_option(feature.strip())
    for part in parts[1:]:
        if not _COMPONENT.match(part):
            raise PlatformError(
                f"{go_quote(part)} is an invalid component of {go_quote(spec)}: "
                f"platform specifier component must match {go_quote(_COMPONENT_PATTERN)}: "
                "invalid argument"
            )
    os_name = os_match.group(1).lower()
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
        raise PlatformError(
            f"{go_quote(spec)}: unknown operating system or architecture: invalid argument"
        )
    if len(parts) == 2:
        arch, variant = normalize_arch(parts[1], "")
        if arch == "arm" and variant == "v7":
            variant = ""
        return Platform(os=os_name, architecture=arch, variant=variant)
    if len(parts) == 3:
        arch, variant = normalize_arch(parts[1], parts[2])
        return Platform(os=os_name, architecture=arch, variant=variant)
    raise PlatformError(f"{go_quote(spec)}: cannot parse platform specifier: invalid argument")


def format_platform(p: Platform) -> str:
    """`os/arch[/variant]` as containerd's Format prints it."""
    return "/".join(part for part in (p.os, p.architecture, p.variant) if part)

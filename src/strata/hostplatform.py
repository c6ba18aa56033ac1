"""This machine's platform in OCI words, for every layer (the frontend's BUILDPLATFORM,
the planner's default target, image imports).

It lives at the top of the package, beside `errors` and `gotext`, because both the
frontend and the lowest layers need it and the frontend may not import those layers.
"""

from __future__ import annotations

import platform
from types import MappingProxyType
from typing import Final

__all__ = ["host_platform"]


# `uname -m` words to Go's GOARCH and GOARM variant (what OCI platforms use); a machine
# missing here is taken as its own architecture name.
_MACHINE_ARCHITECTURES: Final = MappingProxyType(
    {
        "x86_64": ("amd64", ""),
        "amd64": ("amd64", ""),
        "aarch64": ("arm64", ""),
        "arm64": ("arm64", ""),
        "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"),
        "i686": ("386", ""),
        "i386": ("386", ""),
        "ppc64le": ("ppc64le", ""),
        "s390x": ("s390x", ""),
        "riscv64": ("riscv64", ""),
    }
)


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) of this machine in Go's GOOS/GOARCH words.

    The one table of machine names: the frontend's BUILDPLATFORM, the planner's default
    target and image imports all describe the host through it, so they cannot disagree
    (an armv7l host is `linux/arm/v7` everywhere).
    """
    machine = platform.machine().lower() or "x86_64"
    arch, variant = _MACHINE_ARCHITECTURES.get(machine, (machine, ""))
    return "linux", arch, variant

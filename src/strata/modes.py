"""The small closed vocabularies several layers share, each spelled once.

A RUN's `--network` and `--security`, a cache mount's `sharing` and the way a layer is
applied are words the frontend validates, the plan records, the solver passes on and
the worker acts on. Each is a `Literal` here, with the tuple of its values for checks
and messages (in BuildKit's order), so the layers cannot drift apart. This module
imports nothing of strata.
"""

from __future__ import annotations

from typing import Final, Literal

NetworkMode = Literal["default", "none", "host"]
"""`RUN --network` (BuildKit's NetMode); `default` is the build's own choice."""
NETWORK_MODES: Final[tuple[NetworkMode, ...]] = ("default", "none", "host")

SecurityMode = Literal["sandbox", "insecure"]
"""`RUN --security`: `insecure` needs the `security.insecure` entitlement."""
SECURITY_MODES: Final[tuple[SecurityMode, ...]] = ("sandbox", "insecure")

Sharing = Literal["shared", "private", "locked"]
"""`RUN --mount=type=cache,sharing=`: how concurrent builds share one cache directory."""
SHARING_MODES: Final[tuple[Sharing, ...]] = ("shared", "private", "locked")

ApplyMode = Literal["overlay", "tree"]
"""How a layer is applied into a directory: "overlay" keeps whiteouts as 0:0 character
devices (the directory is an overlay upper); "tree" deletes (it is a full tree)."""

Runtime = Literal["runc", "crun"]
"""The OCI runtime that runs containers (`--oci-runtime`)."""
RUNTIMES: Final[tuple[Runtime, ...]] = ("runc", "crun")

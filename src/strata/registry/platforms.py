"""Which manifest of an index a build uses: containerd's `platforms.Only(p)`.

BuildKit keeps the index entries whose platform matches (entries without a platform
pass too), sorts them by preference and takes the first
(`bk:util/imageutil/config.go` `childrenConfigHandler`, `images.LimitManifests(.., 1)`).
`Only` accepts, in this order, the platform itself and the ones it can run
(`containerd/platforms` `compare.go` `platformVector`):

- amd64/vN → amd64/v(N-1) … v1 → 386;
- arm/vN → arm/v(N-1) … v5;
- arm64/v9.x → v9.(x-1) … v9 → v8.(x+5) … v8 → arm/v8 … arm/v5;
  arm64/v8.x → v8.(x-1) … v8 → arm/v8 … v5; a variant-less arm64 is v8.

Matching compares normalised os/architecture/variant (`platforms.go` `matcher.Match`);
an entry that asks for OS features matches nothing here (strata's platforms have none).
Attestation manifests (BuildKit stores them as `unknown/unknown` entries annotated
`vnd.docker.reference.type`, `bk:docs/attestations/attestation-storage.md`) are never
chosen.

This module may not import `strata.plan.platforms` (it pulls in the frontend), so the
architecture normalisation of containerd's `database.go` is restated here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strata.image.oci import Descriptor
from strata.plan.ops import Platform

ATTESTATION_ANNOTATION = "vnd.docker.reference.type"


def normalize(p: Platform) -> Platform:
    """containerd's `Normalize`: canonical architecture and variant names."""
    os_name = p.os.lower()
    if os_name == "macos":
        os_name = "darwin"
    arch, variant = p.architecture.lower(), p.variant.lower()
    if arch == "i386":
        arch, variant = "386", ""
    elif arch in ("x86_64", "x86-64", "amd64"):
        arch = "amd64"
        if variant == "v1":
            variant = ""
    elif arch in ("aarch64", "arm64"):
        arch = "arm64"
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
    elif arch == "armhf":
        arch, variant = "arm", "v7"
    elif arch == "armel":
        arch, variant = "arm", "v6"
    elif arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
    return Platform(os=os_name, architecture=arch, variant=variant)


def _version(variant: str) -> int | None:
    digits = variant.removeprefix("v")
    return int(digits) if digits.isdigit() else None


def platform_vector(p: Platform) -> list[Platform]:
    """The platforms `p` accepts, most preferred first (before normalising each)."""
    vector = [p]
    same = {"os": p.os}
    if p.architecture == "amd64":
        level = _version(p.variant)
        if level is not None and level > 1:
            vector += [
                Platform(**same, architecture="amd64", variant=f"v{n}")
                for n in range(level - 1, 0, -1)
            ]
        vector.append(Platform(**same, architecture="386"))
    elif p.architecture == "arm":
        level = _version(p.variant)
        if level is not None and level > 5:
            vector += [
                Platform(**same, architecture="arm", variant=f"v{n}")
                for n in range(level - 1, 4, -1)
            ]
    elif p.architecture == "arm64":
        variant = p.variant or "v8"
        major_text, has_minor, minor_text = variant.partition(".")
        major = _version(major_text)
        if major is not None and major >= 8:
            minor = (
                int(minor_text) if has_minor and len(variant) == 4 and minor_text.isdigit() else 0
            )
            if major == 9:
                vector += [
                    Platform(**same, architecture="arm64", variant=f"v9.{n}" if n else "v9")
                    for n in range(minor - 1, -1, -1)
                ]
                # v9.0 branched from v8.5: v9.x runs what v8.(x+5) runs.
                major, minor = 8, minor + 5
                vector.append(Platform(**same, architecture="arm64", variant=f"v8.{minor}"))
            vector += [
                Platform(
                    **same, architecture="arm64", variant=f"v{major}.{n}" if n else f"v{major}"
                )
                for n in range(minor - 1, -1, -1)
            ]
        if variant.startswith(("v8.", "v9.")):
            variant = "v8"
        vector += platform_vector(Platform(**same, architecture="arm", variant=variant))
    return vector


def only(p: Platform) -> list[Platform]:
    """`platforms.Only(p)` as an ordered list of normalised platforms to accept."""
    return [normalize(q) for q in platform_vector(normalize(p))]


def descriptor_platform(desc: Descriptor) -> Platform | None:
    """The platform an index entry declares (None: it declares none)."""
    raw: Any = desc.get("platform")
    if not isinstance(raw, dict):
        return None
    return Platform(
        os=str(raw.get("os", "")),
        architecture=str(raw.get("architecture", "")),
        variant=str(raw.get("variant", "")),
    )


def is_attestation(desc: Descriptor) -> bool:
    annotations = desc.get("annotations") or {}
    if ATTESTATION_ANNOTATION in annotations:
        return True
    p = descriptor_platform(desc)
    return p is not None and p.os == "unknown" and p.architecture == "unknown"


def format_platform(p: Platform) -> str:
    return "/".join(part for part in (p.os, p.architecture, p.variant) if part)


def choose_manifest(manifests: Sequence[Descriptor], platform: Platform) -> Descriptor | None:
    """The entry `platforms.Only(platform)` prefers, or None when nothing matches.

    Entries with a matching platform rank by their place in `only(platform)`, ties in
    index order; entries without a platform come after all of them (containerd's
    `LimitManifests` sorts a nil platform last).
    """
    accepted = only(platform)
    best: tuple[int, int] | None = None
    chosen: Descriptor | None = None
    for position, desc in enumerate(manifests):
        if is_attestation(desc):
            continue
        declared = descriptor_platform(desc)
        if declared is None:
            rank = len(accepted)
        else:
            raw: Any = desc.get("platform")
            if raw.get("os.features"):
                continue
            candidate = normalize(declared)
            if candidate not in accepted:
                continue
            rank = accepted.index(candidate)
        if best is None or (rank, position) < best:
            best, chosen = (rank, position), desc
    return chosen


def available_platforms(manifests: Sequence[Descriptor]) -> list[str]:
    """The platforms an index offers (attestations left out), for error messages."""
    seen: list[str] = []
    for desc in manifests:
        p = descriptor_platform(desc)
        if p is None or is_attestation(desc):
            continue
        text = format_platform(p)
        if text not in seen:
            seen.append(text)
    return seen

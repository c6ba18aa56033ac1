"""Index entry choice as containerd's platforms.Only (vectors from `compare.go`)."""

from __future__ import annotations

from typing import Any

import pytest

from strata.image.oci import MEDIA_OCI_MANIFEST, Descriptor
from strata.plan.ops import Platform
from strata.registry.platforms import (
    available_platforms,
    choose_manifest,
    format_platform,
    only,
)

ARM_FROM_V8 = ["linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]


def spec(text: str) -> Platform:
    os_name, arch, *variant = text.split("/")
    return Platform(os_name, arch, variant[0] if variant else "")


def entry(n: int, platform: dict[str, Any] | None, **extra: Any) -> Descriptor:
    desc: dict[str, Any] = {
        "mediaType": MEDIA_OCI_MANIFEST,
        "digest": "sha256:" + f"{n:x}" * 64,
        "size": 100 + n,
        **extra,
    }
    if platform is not None:
        desc["platform"] = platform
    return desc  # type: ignore[return-value]


def plat(text: str, **extra: Any) -> dict[str, Any]:
    p = spec(text)
    out: dict[str, Any] = {"os": p.os, "architecture": p.architecture, **extra}
    if p.variant:
        out["variant"] = p.variant
    return out


@pytest.mark.parametrize(
    ("wanted", "vector"),
    [
        ("linux/amd64", ["linux/amd64", "linux/386"]),
        ("linux/amd64/v3", ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"]),
        ("linux/arm/v7", ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
        ("linux/arm", ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
        ("linux/arm/v5", ["linux/arm/v5"]),
        (
            "linux/arm64",
            ["linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"],
        ),
        (
            "linux/arm64/v8",
            ["linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"],
        ),
        (
            "linux/arm64/v8.2",
            ["linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64", *ARM_FROM_V8],
        ),
        (
            "linux/arm64/v9.1",
            [
                "linux/arm64/v9.1",
                "linux/arm64/v9",
                *(f"linux/arm64/v8.{n}" for n in range(6, 0, -1)),
                "linux/arm64",
                *ARM_FROM_V8,
            ],
        ),
        ("linux/s390x", ["linux/s390x"]),
    ],
)
def test_only_accepts_containerds_fallback_vector(wanted: str, vector: list[str]) -> None:
    assert [format_platform(p) for p in only(spec(wanted))] == vector


def test_exact_platform_wins_over_an_earlier_fallback() -> None:
    manifests = [entry(1, plat("linux/386")), entry(2, plat("linux/amd64"))]
    assert choose_manifest(manifests, spec("linux/amd64")) == manifests[1]


def test_amd64_falls_back_to_386() -> None:
    manifests = [entry(1, plat("linux/arm64")), entry(2, plat("linux/386"))]
    assert choose_manifest(manifests, spec("linux/amd64")) == manifests[1]


def test_amd64_v3_prefers_the_highest_level_it_runs() -> None:
    manifests = [
        entry(1, plat("linux/amd64")),
        entry(2, plat("linux/amd64/v4")),
        entry(3, plat("linux/amd64/v2")),
    ]
    assert choose_manifest(manifests, spec("linux/amd64/v3")) == manifests[2]


def test_variantless_arm64_matches_an_arm64_v8_entry() -> None:
    manifests = [entry(1, plat("linux/arm/v7")), entry(2, plat("linux/arm64/v8"))]
    assert choose_manifest(manifests, spec("linux/arm64")) == manifests[1]


def test_arm_v7_takes_v6_but_never_v8() -> None:
    manifests = [entry(1, plat("linux/arm/v8")), entry(2, plat("linux/arm/v6"))]
    assert choose_manifest(manifests, spec("linux/arm/v7")) == manifests[1]


def test_uname_names_are_normalised() -> None:
    manifests = [entry(1, {"os": "linux", "architecture": "aarch64"})]
    assert choose_manifest(manifests, spec("linux/arm64")) == manifests[0]
    manifests = [entry(2, {"os": "linux", "architecture": "x86_64"})]
    assert choose_manifest(manifests, spec("linux/amd64")) == manifests[0]


def test_entries_without_platform_pass_but_rank_last() -> None:
    bare = entry(1, None)
    fallback = entry(2, plat("linux/386"))
    assert choose_manifest([bare, fallback], spec("linux/amd64")) == fallback
    assert choose_manifest([bare, entry(3, plat("linux/arm64"))], spec("linux/amd64")) == bare


def test_attestation_manifests_are_never_chosen() -> None:
    attestation = entry(
        1,
        {"os": "unknown", "architecture": "unknown"},
        annotations={"vnd.docker.reference.type": "attestation-manifest"},
    )
    annotated_only = entry(2, None, annotations={"vnd.docker.reference.type": "x"})
    assert choose_manifest([attestation, annotated_only], spec("linux/amd64")) is None


def test_entries_requiring_os_features_do_not_match() -> None:
    manifests = [entry(1, plat("linux/amd64", **{"os.features": ["win32k"]}))]
    assert choose_manifest(manifests, spec("linux/amd64")) is None


def test_other_os_does_not_match() -> None:
    manifests = [entry(1, plat("windows/amd64"))]
    assert choose_manifest(manifests, spec("linux/amd64")) is None


def test_available_platforms_leave_out_attestations() -> None:
    manifests = [
        entry(1, plat("linux/amd64")),
        entry(2, {"os": "unknown", "architecture": "unknown"}),
        entry(3, plat("linux/arm/v7")),
        entry(4, None),
    ]
    assert available_platforms(manifests) == ["linux/amd64", "linux/arm/v7"]

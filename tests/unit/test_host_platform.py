"""The host's platform is described by one table, whichever layer asks."""

from __future__ import annotations

import platform

import pytest

from strata.dockerfile.stages import host_platform as frontend_host_platform
from strata.hostplatform import host_platform
from strata.plan.ops import Platform
from strata.plan.platforms import native_platform


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", Platform("linux", "amd64", "")),
        ("aarch64", Platform("linux", "arm64", "")),
        ("armv7l", Platform("linux", "arm", "v7")),
        ("armv6l", Platform("linux", "arm", "v6")),
        ("i686", Platform("linux", "386", "")),
        ("i386", Platform("linux", "386", "")),
        ("s390x", Platform("linux", "s390x", "")),
    ],
)
def test_every_layer_names_the_host_machine_alike(
    monkeypatch: pytest.MonkeyPatch, machine: str, expected: Platform
) -> None:
    # The machine word is the one thing that cannot be varied on this host for real.
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert host_platform() == (expected.os, expected.architecture, expected.variant)
    assert native_platform() == expected
    assert frontend_host_platform() == str(expected)


def test_unknown_machine_word_is_kept_as_the_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "loongarch64")
    assert native_platform() == Platform("linux", "loongarch64", "")
    assert frontend_host_platform() == "linux/loongarch64"

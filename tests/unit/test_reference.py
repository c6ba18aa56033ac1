from __future__ import annotations

import pytest

from strata.errors import StoreError
from strata.store.reference import familiar, normalize_name, parse_reference


@pytest.mark.parametrize(
    ("text", "full"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("me/app", "docker.io/me/app:latest"),
        ("index.docker.io/me/app:v1", "docker.io/me/app:v1"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/x", "localhost:5000/x:latest"),
        ("ghcr.io/a/b/c:tag-1.0_x", "ghcr.io/a/b/c:tag-1.0_x"),
        ("Registry/app", "Registry/app:latest"),
        ("[::1]:5000/app:v", "[::1]:5000/app:v"),
        ("a__b/c-d", "docker.io/a__b/c-d:latest"),
    ],
)
def test_names_normalise_as_docker_does(text: str, full: str) -> None:
    assert normalize_name(text) == full


def test_digest_reference_keeps_digest_and_gets_no_default_tag() -> None:
    digest = "sha256:" + "a" * 64
    ref = parse_reference(f"busybox@{digest}")
    assert ref.tag is None
    assert ref.digest == digest
    assert str(ref) == f"docker.io/library/busybox@{digest}"


def test_tag_and_digest_together_are_both_kept() -> None:
    digest = "sha256:" + "b" * 64
    ref = parse_reference(f"localhost:5000/x:v1@{digest}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "x", "v1", digest)


@pytest.mark.parametrize(
    ("full", "short"),
    [
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/me/app:v1", "me/app:v1"),
        ("docker.io/library/a/b:t", "library/a/b:t"),
        ("localhost:5000/x:latest", "localhost:5000/x:latest"),
    ],
)
def test_familiar_form_drops_docker_io_and_library(full: str, short: str) -> None:
    assert familiar(full) == short


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bad name",
        "UPPER",
        "a:b:c",
        "-start",
        "x/",
        "x//y",
        "busybox:" + "t" * 129,
        "a@sha256:12",
    ],
)
def test_malformed_references_are_invalid_reference_format(text: str) -> None:
    with pytest.raises(StoreError, match="invalid reference format"):
        parse_reference(text)


def test_uppercase_repository_says_it_must_be_lowercase() -> None:
    with pytest.raises(StoreError, match=r"repository name \(library/Busybox\) must be lowercase"):
        parse_reference("Busybox")


def test_sixty_four_hex_digits_cannot_be_a_repository_name() -> None:
    with pytest.raises(StoreError, match="cannot specify 64-byte hexadecimal strings"):
        parse_reference("a" * 64)


def test_overlong_repository_name_is_refused() -> None:
    with pytest.raises(StoreError, match="must not be more than 255 characters"):
        parse_reference("a/" * 130 + "b")

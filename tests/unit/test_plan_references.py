"""Image names are checked as BuildKit checks them: every stage's, needed or not.

BuildKit parses the base name of every stage and of every image a `COPY --from` or a
mount `from=` names with distribution/reference before it resolves only the needed ones,
so a malformed name anywhere in the file fails the build, with that library's reason.
"""

from __future__ import annotations

import pytest

from strata.errors import DockerfileError, ImageReferenceError
from strata.plan.references import check_reference
from tests.unit.test_plan_support import plan


def _failure(text: str, **options: object) -> tuple[str, int | None]:
    with pytest.raises(DockerfileError) as caught:
        plan(text, **options)
    return caught.value.message, caught.value.line


def test_malformed_base_of_a_stage_the_target_does_not_need_fails_at_its_from() -> None:
    assert _failure("FROM alpine}\nFROM alpine\n") == (
        'failed to parse stage name "alpine}": invalid reference format',
        1,
    )


def test_json_looking_base_name_is_reported_as_buildkit_reads_it() -> None:
    assert _failure('FROM scratch AS base\nFROM ["a"]\nFROM base AS t\n', target="t") == (
        'failed to parse stage name "[a]": invalid reference format',
        2,
    )


def test_malformed_copy_from_image_in_an_unneeded_stage_fails_at_the_copy() -> None:
    text = "FROM scratch AS other\nCOPY --from=bui]ld /a /b\nFROM busybox AS t\n"
    assert _failure(text, target="t") == (
        'failed to parse stage name "bui]ld": invalid reference format',
        2,
    )


def test_malformed_mount_image_fails_without_a_line_as_buildkit_gives_none() -> None:
    text = "FROM scratch AS other\nRUN --mount=from=Bad,target=/m true\nFROM busybox AS t\n"
    message, line = _failure(text, target="t")
    assert message == (
        'failed to parse stage name "Bad": invalid reference format: '
        "repository name (library/Bad) must be lowercase"
    )
    assert not line


def test_uppercase_message_names_the_normalised_repository_path() -> None:
    assert _failure("FROM scratch AS base\nFROM CMD\nFROM base AS t\n", target="t")[0] == (
        'failed to parse stage name "CMD": invalid reference format: '
        "repository name (library/CMD) must be lowercase"
    )


def test_stage_name_is_quoted_as_go_quotes() -> None:
    assert _failure('ARG N=a\\"b\nFROM $N\n')[0] == (
        'failed to parse stage name "a\\"b": invalid reference format'
    )


def test_huge_numeric_copy_from_is_a_name_not_a_stage_index() -> None:
    digits = "1" * 64
    message, line = _failure(f"FROM busybox\nCOPY --from={digits} /a /b\n")
    assert message == (
        f'failed to parse stage name "{digits}": invalid repository name ({digits}), '
        "cannot specify 64-byte hexadecimal strings"
    )
    assert line == 2


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a@sha256:" + "1" * 40, "invalid checksum digest length"),
        ("a@sha256:" + "A" * 64, "invalid checksum digest format"),
        ("a@md5:" + "1" * 32, "unsupported digest algorithm"),
        ("a@sha256:12", "invalid reference format"),
        ("busybox:é", "invalid reference format"),
        ("x/" + "a" * 260, "repository name must not be more than 255 characters"),
        ("localhost/A", "invalid reference format: repository name (A) must be lowercase"),
        ("foo/Bar", "invalid reference format: repository name (foo/Bar) must be lowercase"),
    ],
)
def test_reference_reasons_are_distribution_references(name: str, reason: str) -> None:
    with pytest.raises(ImageReferenceError) as caught:
        check_reference(name)
    assert caught.value.message == reason


@pytest.mark.parametrize(
    "name",
    ["busybox", "localhost:5000/a/b:t", "[::1]:5000/x", "a@sha256:" + "1" * 64, "Foo/bar"],
)
def test_well_formed_references_pass(name: str) -> None:
    check_reference(name)

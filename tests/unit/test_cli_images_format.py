"""How `strata images` and `strata image inspect` write times, as Docker's CLI does."""

from __future__ import annotations

from strata.cli.images import ZERO_TIME, rfc3339


def test_last_tag_time_drops_trailing_zeros_of_the_fraction_like_go() -> None:
    assert rfc3339(1.12) == "1970-01-01T00:00:01.12Z"
    assert rfc3339(1700000000.5) == "2023-11-14T22:13:20.5Z"


def test_whole_second_last_tag_time_has_no_fraction() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"


def test_never_tagged_image_shows_go_zero_time() -> None:
    assert rfc3339(None) == ZERO_TIME == "0001-01-01T00:00:00Z"

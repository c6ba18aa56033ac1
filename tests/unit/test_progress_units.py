"""Sizes and times printed the way BuildKit's printers print them."""

from __future__ import annotations

from strata.progress.units import (
    format_log_elapsed,
    format_progress,
    format_seconds,
    format_size,
    human_size,
)


def test_sizes_are_decimal_with_two_decimals_and_bare_bytes_below_a_kilobyte() -> None:
    assert format_size(0) == "0B"
    assert format_size(2) == "2B"
    assert format_size(999) == "999B"
    assert format_size(1000) == "1.00kB"
    assert format_size(1234) == "1.23kB"
    assert format_size(3_400_000) == "3.40MB"
    assert format_size(29_000_000_000) == "29.00GB"
    assert format_size(1_500_000_000_000) == "1.50TB"


def test_progress_shows_total_only_when_known_and_nothing_when_empty() -> None:
    assert format_progress(1020, 2040) == "1.02kB / 2.04kB"
    assert format_progress(0, 2040) == "0B / 2.04kB"
    assert format_progress(1020, 0) == "1.02kB"
    assert format_progress(0, 0) == ""


def test_log_elapsed_keeps_about_five_characters() -> None:
    assert format_log_elapsed(0.168) == "0.168"
    assert format_log_elapsed(9.9994) == "9.999"
    assert format_log_elapsed(12.345) == "12.35"
    assert format_log_elapsed(123.45) == "123.5"


def test_durations_have_one_decimal() -> None:
    assert format_seconds(0.0) == "0.0s"
    assert format_seconds(0.26) == "0.3s"
    assert format_seconds(12.0) == "12.0s"


def test_human_size_is_go_units_with_four_significant_digits_by_default() -> None:
    assert human_size(0) == "0B"
    assert human_size(999) == "999B"
    assert human_size(1000) == "1kB"
    assert human_size(1_234_567) == "1.235MB"
    assert human_size(10_360_000_000) == "10.36GB"


def test_human_size_with_precision_three_is_what_docker_images_prints() -> None:
    assert human_size(1_234_567, precision=3) == "1.23MB"
    assert human_size(4_260_000, precision=3) == "4.26MB"
    assert human_size(1_200_000_000, precision=3) == "1.2GB"
    assert human_size(10**30, precision=3) == "1e+06YB"

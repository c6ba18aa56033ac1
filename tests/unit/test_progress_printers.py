"""Choosing a printer from --progress."""

from __future__ import annotations

import io
import os

import pytest

from strata.errors import UsageError
from strata.progress.plain import PlainPrinter
from strata.progress.printers import make_printer
from strata.progress.quiet import QuietPrinter
from strata.progress.rawjson import RawJsonPrinter
from strata.progress.tty import TtyPrinter


def test_each_mode_gets_its_printer() -> None:
    stream = io.StringIO()
    assert isinstance(make_printer("plain", stream, env={}), PlainPrinter)
    assert isinstance(make_printer("rawjson", stream, env={}), RawJsonPrinter)
    assert make_printer("quiet", stream, env={}).mode == "quiet"
    assert isinstance(make_printer("none", stream, env={}), QuietPrinter)


def test_auto_is_plain_when_the_stream_is_not_a_terminal() -> None:
    assert make_printer("auto", io.StringIO(), env={}).mode == "plain"


def test_auto_is_tty_on_a_terminal() -> None:
    primary, secondary = os.openpty()
    try:
        with open(secondary, "w", closefd=False) as terminal:
            assert isinstance(make_printer("auto", terminal, env={}), TtyPrinter)
    finally:
        os.close(primary)
        os.close(secondary)


def test_tty_mode_refuses_a_stream_that_is_not_a_terminal() -> None:
    with pytest.raises(UsageError, match="failed to get console"):
        make_printer("tty", io.StringIO(), env={})


def test_unknown_mode_is_a_usage_error_with_buildkit_text() -> None:
    with pytest.raises(UsageError, match=r"^invalid progress mode fancy$"):
        make_printer("fancy", io.StringIO(), env={})


def test_buildkit_progress_variable_replaces_auto_only() -> None:
    env = {"BUILDKIT_PROGRESS": "rawjson"}
    assert make_printer("auto", io.StringIO(), env=env).mode == "rawjson"
    assert make_printer("plain", io.StringIO(), env=env).mode == "plain"

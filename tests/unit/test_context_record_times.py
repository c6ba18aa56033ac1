"""The build context's cache record has real times; prune/du refuse unknown filter keys."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from strata.errors import UsageError
from strata.gc.prune import parse_filters
from strata.gc.usage import disk_usage
from strata.store.root import StateRoot
from strata.worker.contenthash import DigestCache, checksum


def test_a_checksum_dates_the_context_record(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "a.txt").write_text("a")
    root = StateRoot.open(tmp_path / "root")
    try:
        cache = DigestCache(root, racy_window_ns=0)
        assert cache.used() == (None, None)
        before = time.time()
        checksum(context, "/a.txt", cache=cache)
        created, last_used = cache.used()
        assert created is not None and last_used is not None
        assert before <= created <= last_used <= time.time()
        (record,) = [r for r in disk_usage(root) if r.type == "source.local"]
        assert (record.created, record.last_used) == (created, last_used)
        cache.forget_all()
        assert cache.used() == (None, None)
    finally:
        root.close()


@pytest.mark.parametrize("item", ["colour=red", "colour!=red", "size~=1"])
def test_unknown_prune_filter_keys_are_errors(item: str) -> None:
    with pytest.raises(UsageError, match=r'unknown filter "(colour|size)"'):
        parse_filters([item])


def test_known_prune_filter_keys_parse() -> None:
    parsed = parse_filters(["type=regular", "inuse!=x", "description~=RUN", "unused-for=1h"])
    assert parsed.until == 3600
    assert len(parsed.selectors) == 3

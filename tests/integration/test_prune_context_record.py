"""The build context's du record (`source.local`, the remembered file digests) carries
real times, so `prune --filter until=` keeps a context used a minute ago; and a filter
key prune/du do not know is an error, not a filter that silently matches nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

CONTEXT = "local source for context"


def _records(root: Path) -> list[dict[str, object]]:
    done = strata(root, "du", "--format", "json")
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


def _context_record(root: Path) -> dict[str, object] | None:
    found = [r for r in _records(root) if str(r["Description"]).startswith(CONTEXT)]
    return found[0] if found else None


def test_context_record_has_times_and_survives_until(build_root: Path, tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nCOPY app.txt /app.txt\n", {"app.txt": "x"}
    )
    # Files changed (ctime) within the last second are not remembered: their digests
    # could still change unseen. Let the context settle first.
    time.sleep(1.2)
    before = time.time()
    strata(build_root, "build", str(project), check=True)
    record = _context_record(build_root)
    assert record is not None
    assert record["CreatedAt"] != "0001-01-01 00:00:00 +0000 UTC"
    assert str(record["CreatedAt"]).startswith(time.strftime("%Y-%m-%d", time.gmtime(before)))
    assert str(record["LastUsed"]).endswith(" ago")

    done = strata(build_root, "prune", "-af", "--filter", "until=1h")
    assert done.returncode == 0, done.stderr.decode()
    assert CONTEXT not in done.stdout.decode()
    assert _context_record(build_root) is not None

    done = strata(build_root, "prune", "-af")
    assert done.returncode == 0, done.stderr.decode()
    assert _context_record(build_root) is None


@pytest.mark.parametrize("command", [["du"], ["prune", "-f"]])
def test_an_unknown_filter_key_is_an_error(build_root: Path, command: list[str]) -> None:
    done = strata(build_root, *command, "--filter", "colour=red")
    err = done.stderr.decode()
    assert done.returncode == 1
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        'ERROR: unknown filter "colour" (known: until, id, parents, description, type,'
        " inuse, mutable, immutable, shared, private)"
    ]

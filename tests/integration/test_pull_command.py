"""`strata pull` by digest, as `docker pull name@sha256:...` reports it: the first pull
downloads, a second one is "up to date" and downloads nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.pull_support import run_strata
from tests.integration.registry_servers import (
    registry_available,
    registry_server,
    seed_image,
    skopeo_available,
)

_missing = registry_available() or skopeo_available()
pytestmark = [
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
    pytest.mark.timeout(300),
]


def test_a_second_pull_by_digest_is_up_to_date(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with registry_server(tmp_path) as reg:
        image = seed_image(reg, "app/pinned", "1", tmp_path)
        ref = f"{reg.host}/app/pinned@{image.manifest_digest}"
        first = run_strata(root, "pull", ref)
        blob_gets = reg.count("GET", r"/blobs/", status=200)
        second = run_strata(root, "pull", ref)
        blob_gets_again = reg.count("GET", r"/blobs/", status=200)

    assert first.returncode == 0, first.stderr.decode()
    assert f"Status: Downloaded newer image for {ref}" in first.stdout.decode()
    assert second.returncode == 0, second.stderr.decode()
    out = second.stdout.decode()
    assert f"Status: Image is up to date for {ref}" in out, out
    assert "Already exists" in out
    assert blob_gets_again == blob_gets

"""Cache keys do not change when the code is reorganised: a multi-stage project
(FROM an imported image, WORKDIR, COPY with --chmod, ARG/ENV, ADD of a tar, COPY
--from, FROM scratch) builds to exactly the keys recorded with strata before the
architecture rework (tests/fixtures/pinned-keys/README.md)."""

from __future__ import annotations

import platform
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.integration.image_fixtures import strata

FIXTURE = Path(__file__).parent.parent / "fixtures" / "pinned-keys"

# Keys of the eight steps, recorded on linux/amd64 (the platform is part of a base
# image's key).
RECORDED = [
    "sha256:00a9fe2223b16d422421a58e80a40fa50badad5eb2202dfe3c0e091fcea12d38",
    "sha256:103d42d31e83114b0c9268ff22bc2b967ab7a600dc25e7df20062aa33f42dca7",
    "sha256:11da1c5c82b16fc882f231be04b45cdb5df8b3fc5b2f6f70dbb4197f67b3dc9f",
    "sha256:76d5d13d1d01852376d165a4b8e85163a3214e63dfcbb8d73c0db8a23b7118f7",
    "sha256:990fff9add5de997d6f670ef931de79f8c37e2616cfeb1aa06fcdefbff9fb327",
    "sha256:b149b48fcbcec414c99f443db73d0ec50b8a90f4ae0b546cb85037eea5628e9f",
    "sha256:c2c731fbb72ef5783c1e128617285817b83be7acacd676e46b9b7426f1f11d96",
    "sha256:f3c53c8f72bb61e3320dc7b945cb94ecd1afd9cfe86c629fa5c5795f55b549e6",
]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the keys were recorded for linux/amd64")
def test_a_multi_stage_project_builds_to_the_keys_recorded_before_the_rework(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    context = tmp_path / "ctx"
    shutil.copytree(FIXTURE / "ctx", context)
    imported = strata(root, "import", str(FIXTURE / "base.tar"), "keybase:1")
    assert imported.returncode == 0, imported.stderr.decode()

    built = strata(
        root,
        "build",
        "-q",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1000",
        "-t",
        "keyed:1",
        str(context),
    )

    assert built.returncode == 0, built.stderr.decode()
    with sqlite3.connect(root / "metadata.db") as db:
        keys = sorted(str(row[0]) for row in db.execute("SELECT key FROM solver_cache"))
    assert keys == RECORDED

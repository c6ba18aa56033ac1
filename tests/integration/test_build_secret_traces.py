"""A build secret leaves no trace: not in a layer, a cache record, the image's history or
config, `strata inspect`/`du` output, the build's log, nor any file of the state root.

The RUN steps prove they read the secret (they store its SHA-256), both as a file and as
an environment variable, and the build runs twice (the second time from cache) so cache
lookups are covered too.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import zstandard

from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    build_root,
    busybox_tarball,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

DOCKERFILE = f"""\
FROM {BUSYBOX_IMAGE} AS uses
RUN --mount=type=secret,id=token sha256sum /run/secrets/token | cut -d' ' -f1 > /file-sum
RUN --mount=type=secret,id=token,env=TOKEN printf %s "$TOKEN" | sha256sum | cut -d' ' -f1 > /env-sum
RUN --mount=type=secret,id=token,target=/etc/app/token,required=true \\
    --mount=type=cache,target=/cache sha256sum /etc/app/token | cut -d' ' -f1 > /cache/sum
FROM {BUSYBOX_IMAGE}
COPY --from=uses /file-sum /env-sum /sums/
LABEL note="built with a secret"
"""


def decompressed(data: bytes) -> bytes:
    """A blob's bytes, gunzipped or un-zstd'd when it is compressed."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def files_below(directory: Path) -> Iterator[Path]:
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def members(archive: bytes) -> Iterator[tuple[str, bytes]]:
    """Every regular file of a tar (nested layer tars opened too), decompressed."""
    with tarfile.open(fileobj=io.BytesIO(decompressed(archive))) as tar:
        for member in tar:
            if not member.isfile():
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            data = decompressed(handle.read())
            yield member.name, data
            if data[257:262] == b"ustar":
                yield from members(data)


def test_a_secret_appears_nowhere_after_building_with_it(build_root: Path, tmp_path: Path) -> None:
    value = f"s3cr3t-{uuid.uuid4().hex}"
    needle = value.encode()
    expected_sum = hashlib.sha256(needle).hexdigest()
    secret = tmp_path / "token.txt"
    secret.write_bytes(needle)
    project = write_project(tmp_path / "p", DOCKERFILE)
    logs: list[bytes] = []
    for _ in range(2):  # built, then from cache
        built = strata(
            build_root,
            "build",
            "--progress=plain",
            "--secret",
            f"id=token,src={secret}",
            "-t",
            "with-secret:1",
            str(project),
        )
        assert built.returncode == 0, built.stderr.decode()
        logs += [built.stdout, built.stderr]
    assert b"CACHED" in logs[-1]

    saved = tmp_path / "saved.tar"
    strata(build_root, "save", "-o", str(saved), "with-secret:1", check=True)
    contents = dict(members(saved.read_bytes()))
    # The steps did read the secret, through the file and the environment variable.
    assert contents["sums/file-sum"].decode().strip() == expected_sum
    assert contents["sums/env-sum"].decode().strip() == expected_sum
    leaks = [name for name, data in contents.items() if needle in data]
    assert leaks == [], f"secret in the saved image: {leaks}"

    for command in (["inspect", "with-secret:1"], ["du", "-v"], ["images"]):
        shown = strata(build_root, *command, check=True)
        logs += [shown.stdout, shown.stderr]
    assert [log for log in logs if needle in log] == []

    # Every file of the state root: metadata.db (cache records with their key
    # components, image history), its WAL, snapshots, cache mounts, blobs.
    in_root = [
        str(path.relative_to(build_root))
        for path in files_below(build_root)
        if needle in decompressed(path.read_bytes())
    ]
    assert in_root == []
    # And the cache mount the third step wrote its sum to holds just that sum.
    sums = [p for p in files_below(build_root / "cachemounts") if p.name == "sum"]
    assert [p.read_text().strip() for p in sums] == [expected_sum]

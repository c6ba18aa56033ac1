"""The time of a `SOURCE_DATE_EPOCH=<stage>` source: what the planner's
`SourceEpochResolver` asks the engine for.

BuildKit resolves the stage's one remote source before it converts the Dockerfile
(dockerfile2llb/epoch.go, resolveSourceDateEpochFromState): a git source is dated by its
commit's committer time, an HTTP source by its Last-Modified header, and failing that, when
the download is a tar archive, by the newest regular file in it. Anything else dates
nothing, and the build then has no epoch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from strata.plan.ops import GitSource, HttpSource
from strata.worker.archive import fetch_git, fetch_url, newest_archive_time


def source_epoch(source: HttpSource | GitSource, scratch: Path) -> int | None:
    """Fetch `source` below the empty-or-absent directory `scratch` and return its time in
    Unix seconds (None when it carries none). `scratch` is removed afterwards."""
    try:
        if isinstance(source, GitSource):
            fetched_git = fetch_git(
                source.remote,
                scratch / "tree",
                ref=source.ref,
                subdir=source.subdir,
                checksum=source.checksum,
                submodules=False,
            )
            return fetched_git.commit_time
        fetched = fetch_url(
            source.url,
            scratch,
            checksum=source.checksum or None,
            filename=source.filename or None,
        )
        if fetched.last_modified is not None:
            return int(fetched.last_modified.timestamp())
        return newest_archive_time(fetched.path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

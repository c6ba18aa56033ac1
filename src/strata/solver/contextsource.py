"""The build context source: `ContextSourceRunner`.

The context is the directory the client sends. Solving its vertex hashes everything the
build reads from it, which is what BuildKit's client transfers (`transferring context`),
so the bytes actually read are what changed since the last build. Its result is the
context itself; the steps reading it are keyed by the checksums of the paths they read.
"""

from __future__ import annotations

import contextlib

from strata.errors import BuildError, SourceNotFoundError
from strata.plan.ops import ContextSource, sha256_json
from strata.progress.units import format_size
from strata.solver.checksums import ChecksumCache, keyed_by_content, requests_for
from strata.solver.results import ContextResult
from strata.solver.runner import CacheMap, CachePolicy, Outcome, Step


class ContextSourceRunner:
    """Solves a `ContextSource` against the build's one context (None: none given)."""

    def __init__(self, context: ContextResult | None, checksums: ChecksumCache) -> None:
        self.context = context
        self.checksums = checksums

    def cache_map(self, step: Step) -> CacheMap:
        op = step.vertex.op
        assert isinstance(op, ContextSource)
        if self.context is None:
            raise BuildError(f"build context {op.name!r} was not provided")
        key = sha256_json({"context": op.name, "include": op.include, "exclude": op.exclude})
        return CacheMap(key, {}, CachePolicy.RUNNER)

    def run(self, step: Step, cache: CacheMap) -> Outcome:
        context = self.context
        assert context is not None  # refused by `cache_map`
        digest = step.vertex.digest
        for user in step.users:
            for index, item in enumerate(user.inputs):
                if item.digest == digest and index in keyed_by_content(user):
                    for request in requests_for(user, index):
                        # A missing path is reported by the step that reads it.
                        with contextlib.suppress(SourceNotFoundError):
                            self.checksums.checksum(context, request)
        size = format_size(self.checksums.context_stats.bytes_read)
        step.status(f"transferring context: {size}", done=True)
        return Outcome(context)

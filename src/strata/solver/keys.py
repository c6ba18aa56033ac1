"""Cache keys: what a step's stored result is found by.

A vertex's key is the digest of its op's identity (`op_json`) plus, for each input,
either that input's own key or, for inputs the op reads only selected paths from
(`content_selectors`), the content checksums of those paths (BuildKit
`solver/llbsolver/ops/exec.go` and `file.go` `CacheMap`: `ComputeDigestFunc` over the
selectors). Content keying is what keeps a `COPY --from=build /out/app /` cached when the
`build` stage re-ran but produced the same `/out/app`.

Normalisations, as BuildKit's CacheMap does them:
- a cache mount keeps its id in the key only in the Dockerfile's default form (the id
  is the target, optionally `<namespace>/<target>`, with default sharing); any other id
  or sharing is blanked, so custom ids and sharing modes never change a key
  (`exec.go` `checkShouldClearCacheOpts`);
- a base image is keyed by the chain ID of its layers, not by the manifest digest that
  pins it, so a re-tagged or re-pushed image with the same layers still hits (§4.5).

The key's components are also returned as plain JSON for the cache record, so a later
build can say which one changed (`file requirements.txt`, `base image`, `command`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from strata.plan.ops import (
    CopyAction,
    ExecOp,
    FileOp,
    ImageSource,
    MergeOp,
    MountType,
    Sharing,
    Vertex,
    op_json,
    sha256_json,
)


@dataclass(frozen=True)
class InputKey:
    """How input `index` contributes to a key: its own `key`, or the content `checksums`
    of the paths read from it (then `key` is not used)."""

    index: int
    label: str
    key: str = ""
    checksums: tuple[tuple[str, str], ...] = ()

    def identity(self) -> dict[str, Any]:
        if self.checksums:
            return {"checksums": [list(pair) for pair in self.checksums]}
        return {"key": self.key}


def op_identity(vertex: Vertex) -> dict[str, Any]:
    """The op as key material, with the fields BuildKit leaves out of keys removed."""
    data = op_json(vertex.op)
    if isinstance(vertex.op, ExecOp):
        mounts = []
        for mount in data["mounts"]:
            entry = dict(mount)
            if entry["type"] == MountType.CACHE.value:
                if not _default_cache_mount(entry):
                    entry["cache_id"] = ""
                entry.pop("sharing", None)
            mounts.append(entry)
        data["mounts"] = mounts
    return data


def _default_cache_mount(mount: dict[str, Any]) -> bool:
    """Whether a cache mount is in the form a Dockerfile gives it by default: shared,
    with the id `<target>` or `<namespace>/<target>` (BuildKit keeps that id in keys)."""
    if mount["sharing"] != Sharing.SHARED.value:
        return False
    cache_id, target = mount["cache_id"], mount["target"]
    _, slash, after = cache_id.partition("/")
    return bool(cache_id == target or (slash and after == target))


def cache_key_for(vertex: Vertex, inputs: Sequence[InputKey]) -> tuple[str, dict[str, Any]]:
    """The cache key of `vertex` given how each input contributes, and its components."""
    identity = op_identity(vertex)
    op_digest = sha256_json(identity)
    ordered = sorted(inputs, key=lambda item: item.index)
    key = sha256_json({"op": op_digest, "inputs": [i.identity() for i in ordered]})
    components: dict[str, Any] = {
        "op": op_digest,
        "kind": identity["kind"],
        "inputs": [{"index": i.index, "label": i.label, **i.identity()} for i in ordered],
    }
    if isinstance(vertex.op, ExecOp):
        components["args"] = list(vertex.op.args)
        components["env"] = list(vertex.op.env)
        components["cwd"] = vertex.op.cwd
        components["user"] = vertex.op.user
    return key, components


def image_source_key(op: ImageSource, chain_id: str | None) -> tuple[str, dict[str, Any]]:
    """A base image's key: its layer chain (None: no layers) and platform (§4.5)."""
    platform = str(op.platform)
    key = sha256_json({"kind": "ImageSource", "chain": chain_id or "", "platform": platform})
    components = {
        "op": key,
        "kind": "ImageSource",
        "ref": op.ref,
        "manifest": op.manifest_digest,
        "chain": chain_id or "",
        "inputs": [],
    }
    return key, components


def forced_key(key: str, nonce: str) -> str:
    """The key dependents see for a step forced to run (`--no-cache`): never stored
    before, so anything keyed on it re-runs, while content-keyed readers may still hit."""
    return "sha256:" + hashlib.sha256(f"{key} forced {nonce}".encode()).hexdigest()


def combined_checksum(pairs: Sequence[tuple[str, str]]) -> str:
    return sha256_json([list(pair) for pair in pairs])


def input_label(vertex: Vertex, index: int, selectors: Sequence[str]) -> str:
    """A short human name for what input `index` is to this vertex."""
    op = vertex.op
    source = vertex.inputs[index]
    if selectors:
        shown = ", ".join(s.lstrip("/") or "." for s in selectors)
        kind = "file" if len(selectors) == 1 else "files"
        if isinstance(source.op, ImageSource):
            return f"{kind} {shown} from {source.op.ref}"
        return f"{kind} {shown}"
    if isinstance(op, ExecOp) and op.mounts and op.mounts[0].input == index:
        return "base image" if isinstance(source.op, ImageSource) else "previous step"
    if isinstance(op, FileOp) and op.base == index:
        return "base image" if isinstance(source.op, ImageSource) else "previous step"
    if isinstance(op, MergeOp):
        return "base" if index == 0 else "linked layer"
    if isinstance(op, FileOp) and any(
        isinstance(a, CopyAction) and a.source_input == index for a in op.actions
    ):
        return "copy source"
    return f"input {index}"

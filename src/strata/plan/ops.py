"""Build operations: the graph the planner produces and the solver runs.

As in BuildKit's LLB, a build is data before it is work. Every op is a frozen dataclass;
a `Vertex` wraps one op with the vertices it reads (`inputs`) and presentation-only
metadata (name, Dockerfile location, no-cache flag). A vertex's identity, `digest`, is the
SHA-256 of the canonical JSON of its op plus its inputs' digests: nothing in an op refers to
a file handle, a path on this machine or a time, so the same Dockerfile gives the same graph.

Conventions shared by the planner and the solver:
- Input indexes (`ExecMount.input`, `CopyAction.source_input`, `FileOp.base`) point into
  `Vertex.inputs`. `None` means scratch (an empty tree).
- `ExecOp.mounts[0]` is the root file system, target "/", and its result is the op's output.
- Which inputs are keyed by content rather than by their own cache key is derivable from the
  op (bind mounts other than root, cache-mount `from` seeds, copy sources): see
  `content_selectors`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

# One encoder for op identities and image documents alike, so the two can never drift.
from strata.image.oci import canonical_json
from strata.sandbox import Ulimit


def sha256_json(value: Any) -> str:
    """The digest of `value`'s canonical JSON: an op's identity."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


@dataclass(frozen=True)
class SourceLocation:
    """Where an op comes from in a Dockerfile (for error excerpts; never part of identity)."""

    file: str
    start_line: int
    end_line: int


# -- sources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSource:
    """A base image from the local store, pinned by its manifest digest."""

    ref: str
    manifest_digest: str
    platform: Platform = field(default_factory=Platform)


@dataclass(frozen=True)
class ContextSource:
    """A local directory sent by the client (the build context, or a named context).

    `include` lists the paths the build reads (BuildKit's FollowPaths); `exclude` holds the
    .dockerignore patterns. Both shape what is transferred and hashed.
    """

    name: str = "context"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class HttpSource:
    """ADD <url>: a single file fetched over HTTP(S)."""

    url: str
    checksum: str = ""
    filename: str = ""


@dataclass(frozen=True)
class GitSource:
    """ADD <git url>: a checked-out repository tree."""

    remote: str
    ref: str = ""
    subdir: str = ""
    keep_git_dir: bool = False
    checksum: str = ""


# -- exec ---------------------------------------------------------------------------------


class MountType(StrEnum):
    BIND = "bind"
    CACHE = "cache"
    TMPFS = "tmpfs"
    SECRET = "secret"
    SSH = "ssh"


class Sharing(StrEnum):
    SHARED = "shared"
    PRIVATE = "private"
    LOCKED = "locked"


@dataclass(frozen=True)
class ExecMount:
    """One mount of an exec op, with every option already expanded and validated."""

    target: str
    type: MountType = MountType.BIND
    input: int | None = None
    selector: str = "/"
    readonly: bool = False
    cache_id: str = ""
    sharing: Sharing = Sharing.SHARED
    uid: int | None = None
    gid: int | None = None
    mode: int | None = None
    size: int = 0
    secret_id: str = ""
    env: str = ""
    required: bool = False


@dataclass(frozen=True)
class ExecOp:
    """RUN: a process in a container whose root mount's changes are the result."""

    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str
    mounts: tuple[ExecMount, ...]
    hostname: str = "buildkitsandbox"
    network: str = "default"
    security: str = "sandbox"
    # Proxy variables reach the process but, as in BuildKit, never the cache key.
    proxy_env: tuple[str, ...] = field(default=(), compare=False)
    # The build's `--add-host`, `--ulimit`, `--shm-size`, `--cgroup-parent` (BuildKit's
    # `Meta` of an exec op: part of its key). Left out of the identity while unset, so
    # builds without these flags keep their keys.
    extra_hosts: tuple[tuple[str, str], ...] = ()
    ulimits: tuple[Ulimit, ...] = ()
    shm_size: int = 0
    cgroup_parent: str = ""


# -- file ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chown:
    """`--chown` as written (`user[:group]`), resolved against the destination's files at run."""

    user: str
    group: str = ""


@dataclass(frozen=True)
class CopyAction:
    source_input: int | None
    sources: tuple[str, ...]
    dest: str
    chown: Chown | None = None
    chmod: str = ""
    owner_reset: bool = False
    follow_symlinks: bool = True
    allow_wildcard: bool = True
    allow_empty_wildcard: bool = True
    create_dest_path: bool = True
    parents: bool = False
    exclude: tuple[str, ...] = ()
    unpack: bool = False


@dataclass(frozen=True)
class MkdirAction:
    path: str
    mode: int = 0o755
    chown: Chown | None = None
    make_parents: bool = True
    mtime: int | None = None


@dataclass(frozen=True)
class MkfileAction:
    path: str
    data: str
    mode: int = 0o644
    chown: Chown | None = None


@dataclass(frozen=True)
class RmAction:
    path: str
    allow_not_found: bool = False
    allow_wildcard: bool = False


FileAction = CopyAction | MkdirAction | MkfileAction | RmAction


@dataclass(frozen=True)
class FileOp:
    """COPY/ADD/WORKDIR: actions applied in order on `base` (an input index, None = scratch)."""

    actions: tuple[FileAction, ...]
    base: int | None = 0


@dataclass(frozen=True)
class MergeOp:
    """COPY --link: inputs[0]'s tree with inputs[1]'s changes laid on top as their own layer."""


Op = ImageSource | ContextSource | HttpSource | GitSource | ExecOp | FileOp | MergeOp


def op_kind(op: Op) -> str:
    return type(op).__name__


_EXEC_SANDBOX_FIELDS = ("extra_hosts", "ulimits", "shm_size", "cgroup_parent")


def op_json(op: Op) -> dict[str, Any]:
    """The op as identity data: its kind and fields (fields with compare=False dropped)."""
    data = asdict(op)
    if isinstance(op, ExecOp):
        data.pop("proxy_env", None)
        for name in _EXEC_SANDBOX_FIELDS:
            if not data[name]:
                del data[name]
    return {"kind": op_kind(op), **data}


@dataclass(frozen=True, eq=False)
class Vertex:
    """An op with its inputs. Identity (`digest`) ignores name, location and no_cache."""

    op: Op
    inputs: tuple[Vertex, ...] = ()
    name: str = ""
    location: SourceLocation | None = None
    no_cache: bool = False

    @cached_property
    def digest(self) -> str:
        return sha256_json({"op": op_json(self.op), "inputs": [i.digest for i in self.inputs]})

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vertex) and other.digest == self.digest


def content_selectors(vertex: Vertex) -> dict[int, tuple[str, ...]]:
    """Inputs whose contribution to the cache key is the content of selected paths.

    BuildKit keys these inputs by a checksum of what the op reads from them rather than
    by their own cache keys (solver/llbsolver/ops/exec.go and file.go `CacheMap`), so a
    stage that re-runs but yields identical files keeps later steps cached.
    """
    op = vertex.op
    selected: dict[int, list[str]] = {}
    if isinstance(op, ExecOp):
        for mount in op.mounts[1:]:
            if mount.input is not None and mount.type in (MountType.BIND, MountType.CACHE):
                selected.setdefault(mount.input, []).append(mount.selector)
    elif isinstance(op, FileOp):
        for action in op.actions:
            if isinstance(action, CopyAction) and action.source_input is not None:
                selected.setdefault(action.source_input, []).extend(action.sources)
    return {index: tuple(paths) for index, paths in selected.items()}


def post_order(target: Vertex) -> list[Vertex]:
    """Every vertex reachable from `target`, inputs before their users, each once.

    Iterative: a long Dockerfile makes a deep chain of root inputs."""
    done: dict[str, Vertex] = {}
    stack: list[tuple[Vertex, bool]] = [(target, False)]
    while stack:
        vertex, expanded = stack.pop()
        if vertex.digest in done:
            continue
        if expanded:
            done[vertex.digest] = vertex
            continue
        stack.append((vertex, True))
        stack.extend((item, False) for item in reversed(vertex.inputs))
    return list(done.values())

"""Why a step ran again: compare its cache-key components with the last build of it.

BuildKit only says that a step was not cached; strata says why, in one line naming the
first changed input (`cache miss: file go.sum changed`). To do that it remembers, per
*step* rather than per key, the components of the key the step had the last time it
was built in this state root (`solver_steps`). A step is "the same step" across builds
when it sits at the same position of the same stage of the same Dockerfile:
`step_id_for(scope, stage, position)`, or `step_id_from_name` from the vertex name the
planner gives it (`[build 3/5] RUN ...`).

The components are the solver's (`solver/keys.py`, `cache_key_for`): the op digest, the
exec op's `args`/`env`/`cwd`/`user`, and per input its `label` with either its `key`
(the input's own cache key) or its `checksums` (`[selector JSON, digest]` pairs of the
paths read from it). Optional: `arg_names`, the ARGs declared in the stage so far, which
tells a changed `--build-arg` from a changed ENV, and `fetched`, what a URL or git
source resolved to.

`remember_step` also counts uses of each key (`solver_key_uses`), which `strata du`
shows as the usage count.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from strata.store.root import StateRoot

NO_CACHE = "--no-cache"
INSTRUCTION_CHANGED = "instruction changed"
BASE_IMAGE_CHANGED = "base image changed"
PARENT_RAN = "parent step re-ran"
SOURCE_CHANGED = "source content changed"
RESULT_REMOVED = "previous result was pruned"

_NAME_PREFIX = re.compile(r"^\[(?:(?P<head>[^\]]*?) )?(?P<index>\d+)/(?P<total>\d+)\] ")


def step_id_for(scope: str, stage: str, position: int) -> str:
    """The identity of a step across builds: `scope` is the absolute Dockerfile path (or
    the context directory for a Dockerfile from stdin), `stage` the stage's name or
    index, `position` the step's number within the stage."""
    text = json.dumps([scope, stage, position])
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def step_id_from_name(scope: str, vertex_name: str) -> str | None:
    """`step_id_for` from a planner vertex name (`[build 3/5] RUN ...`, `[2/3] COPY ...`,
    `[linux/amd64 base 1/2] ...`): the text before the counter names the stage. None for
    vertices that are not Dockerfile steps (`[internal] ...`, unnamed)."""
    match = _NAME_PREFIX.match(vertex_name)
    if match is None:
        return None
    stage = (match.group("head") or "").strip()
    return step_id_for(scope, stage, int(match.group("index")))


class StepMemory:
    """What this state root remembers of steps across builds: the owner of tables
    `solver_steps` (per step: its last key and components) and `solver_key_uses` (per
    key: how often it was used); see `store/schema.py`."""

    def __init__(self, root: StateRoot) -> None:
        self.root = root

    def remember(self, step_id: str, key: str, components: Mapping[str, Any]) -> None:
        """Record that this build's `step_id` had cache key `key` with these components
        (call for every step, cached or not, after `explain_miss`)."""
        with self.root.transaction() as db:
            self.remember_in(db, step_id, key, components, time.time())

    @staticmethod
    def remember_in(
        db: sqlite3.Connection, step_id: str, key: str, components: Mapping[str, Any], now: float
    ) -> None:
        """`remember` inside the caller's transaction, so that a cache hit costs one
        write transaction (with `records.touch_record`) rather than two."""
        db.execute(
            "INSERT OR REPLACE INTO solver_steps (step_id, key, components, built_at)"
            " VALUES (?, ?, ?, ?)",
            (step_id, key, json.dumps(dict(components), sort_keys=True), now),
        )
        db.execute(
            "INSERT INTO solver_key_uses (key, uses, last_used) VALUES (?, 1, ?)"
            " ON CONFLICT(key) DO UPDATE SET uses = uses + 1, last_used = excluded.last_used",
            (key, now),
        )

    def previous(self, step_id: str) -> tuple[str, dict[str, Any]] | None:
        """(key, components) of the last build of `step_id`, if any."""
        row = (
            self.root.connect()
            .execute("SELECT key, components FROM solver_steps WHERE step_id = ?", (step_id,))
            .fetchone()
        )
        if row is None:
            return None
        components = json.loads(row[1])
        return str(row[0]), components if isinstance(components, dict) else {}

    def key_uses(self) -> dict[str, int]:
        """How often each cache key was used (du's usage count)."""
        rows = self.root.connect().execute("SELECT key, uses FROM solver_key_uses")
        return {str(k): int(n) for k, n in rows.fetchall()}


def remember_step(root: StateRoot, step_id: str, key: str, components: Mapping[str, Any]) -> None:
    """`StepMemory(root).remember(...)`."""
    StepMemory(root).remember(step_id, key, components)


def write_step(
    db: sqlite3.Connection, step_id: str, key: str, components: Mapping[str, Any], now: float
) -> None:
    """`StepMemory.remember_in`: inside the caller's transaction."""
    StepMemory.remember_in(db, step_id, key, components, now)


def previous_step(root: StateRoot, step_id: str) -> tuple[str, dict[str, Any]] | None:
    """`StepMemory(root).previous(step_id)`."""
    return StepMemory(root).previous(step_id)


def explain_miss(
    root: StateRoot,
    step_id: str,
    components: Mapping[str, Any],
    *,
    no_cache: bool,
    build_arg_names: Iterable[str] = (),
) -> list[str] | None:
    """Why `step_id` has to run now: every changed input, most telling first; None when
    this state root never built the step. `build_arg_names` (the build's `--build-arg`
    names) helps name build-args when the components lack `arg_names`."""
    previous = previous_step(root, step_id)
    if previous is None:
        return None
    return compare_components(
        previous[1], components, no_cache=no_cache, build_arg_names=build_arg_names
    )


def compare_components(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    no_cache: bool = False,
    build_arg_names: Iterable[str] = (),
) -> list[str]:
    """The reasons two builds of one step differ, most telling first; never empty (the
    same components mean the stored result was removed)."""
    reasons: list[str] = []
    if no_cache:
        reasons.append(NO_CACHE)
    own = _own_changes(old, new, build_arg_names)
    inputs = _input_changes(old, new)
    # The step's own definition first, then a new base image, then the files it read,
    # and last a parent that re-ran (a consequence, rarely the cause worth reading).
    reasons.extend(r for r in own if r == INSTRUCTION_CHANGED)
    reasons.extend(r for r in inputs if r == BASE_IMAGE_CHANGED)
    reasons.extend(r for r in own if r != INSTRUCTION_CHANGED)
    reasons.extend(r for r in inputs if r not in (BASE_IMAGE_CHANGED, PARENT_RAN))
    reasons.extend(r for r in inputs if r == PARENT_RAN)
    if not reasons:
        reasons.append(RESULT_REMOVED)
    return list(dict.fromkeys(reasons))


def _own_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], build_arg_names: Iterable[str]
) -> list[str]:
    """Changes of the op itself: command, environment, working dir, user, other fields."""
    reasons: list[str] = []
    if old.get("kind") != new.get("kind"):
        return [INSTRUCTION_CHANGED]
    explained = False
    if old.get("args") != new.get("args"):
        reasons.append(INSTRUCTION_CHANGED)
        explained = True
    arg_names = set(build_arg_names)
    for side in (old, new):
        names = side.get("arg_names")
        if isinstance(names, list):
            arg_names.update(str(n) for n in names)
    env_changes = _env_changes(old.get("env"), new.get("env"))
    for name in env_changes:
        reasons.append(f"build-arg {name} changed" if name in arg_names else f"env {name} changed")
        explained = True
    if old.get("cwd") != new.get("cwd"):
        reasons.append("WORKDIR changed")
        explained = True
    if old.get("user") != new.get("user"):
        reasons.append("USER changed")
        explained = True
    if old.get("fetched") != new.get("fetched"):
        reasons.append(SOURCE_CHANGED)
        explained = True
    if old.get("op") != new.get("op") and not explained:
        # Mounts, network, security, COPY flags or paths: parts of the instruction the
        # components do not spell out.
        reasons.append(INSTRUCTION_CHANGED)
    return reasons


def _env_map(value: Any) -> dict[str, str] | None:
    if not isinstance(value, list):
        return None
    out: dict[str, str] = {}
    for item in value:
        name, _, val = str(item).partition("=")
        out[name] = val
    return out


def _env_changes(old: Any, new: Any) -> list[str]:
    """Names whose value differs, was added or removed, in the new env's order."""
    before, after = _env_map(old), _env_map(new)
    if before is None or after is None:
        return []
    names = [n for n in after if before.get(n) != after[n]]
    names.extend(n for n in before if n not in after)
    return names


def _inputs_by_index(value: Any) -> dict[int, Mapping[str, Any]]:
    out: dict[int, Mapping[str, Any]] = {}
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("index"), int):
                out[item["index"]] = item
    return out


def _input_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    reasons: list[str] = []
    before = _inputs_by_index(old.get("inputs"))
    after = _inputs_by_index(new.get("inputs"))
    if set(before) != set(after):
        return [INSTRUCTION_CHANGED]
    for index in sorted(after):
        a, b = before[index], after[index]
        if "checksums" in b or "checksums" in a:
            reasons.extend(_checksum_changes(a.get("checksums"), b.get("checksums")))
            continue
        if a.get("key") == b.get("key"):
            continue
        label = str(b.get("label") or "")
        reasons.append(BASE_IMAGE_CHANGED if label == "base image" else PARENT_RAN)
    return reasons


def _checksum_pairs(value: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, list):
        for pair in value:
            if isinstance(pair, list | tuple) and len(pair) == 2:
                out[str(pair[0])] = str(pair[1])
    return out


def selector_path(selector: str) -> str:
    """The path a checksum selector reads, as a person writes it (`go.sum`, `src/`)."""
    try:
        decoded = json.loads(selector)
    except ValueError:
        decoded = selector
    path = decoded[0] if isinstance(decoded, list) and decoded else decoded
    text = str(path).lstrip("/")
    return text or "."


def _checksum_changes(old: Any, new: Any) -> Sequence[str]:
    before, after = _checksum_pairs(old), _checksum_pairs(new)
    if set(before) != set(after):
        return [INSTRUCTION_CHANGED]
    return [
        f"file {selector_path(selector)} changed"
        for selector, digest in after.items()
        if before[selector] != digest
    ]

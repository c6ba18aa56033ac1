"""Cache-miss explanations: each reason from a pair of key components, and the step table.

Components are made by the solver's own `cache_key_for` from real ops, so a change of
their format breaks these tests rather than the explanations in silence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strata.plan.ops import (
    ContextSource,
    CopyAction,
    ExecMount,
    ExecOp,
    FileOp,
    ImageSource,
    Vertex,
)
from strata.solver.explain import (
    compare_components,
    explain_miss,
    previous_step,
    remember_step,
    selector_path,
    step_id_for,
    step_id_from_name,
)
from strata.store.root import StateRoot

keys = pytest.importorskip("strata.solver.keys")

BASE = Vertex(ImageSource("docker.io/library/busybox:latest", "sha256:" + "1" * 64))
CONTEXT = Vertex(ContextSource())


@pytest.fixture
def root(tmp_path: Path) -> Iterator[StateRoot]:
    opened = StateRoot.open(tmp_path / "root")
    try:
        yield opened
    finally:
        opened.close()


def run_components(
    *,
    args: tuple[str, ...] = ("/bin/sh", "-c", "make"),
    env: tuple[str, ...] = ("PATH=/bin",),
    cwd: str = "/",
    user: str = "",
    parent_key: str = "sha256:parent",
    parent_label_image: bool = False,
    network: str = "default",
    arg_names: list[str] | None = None,
) -> dict[str, Any]:
    op = ExecOp(
        args=args, env=env, cwd=cwd, user=user, mounts=(ExecMount("/", input=0),), network=network
    )
    vertex = Vertex(op, (BASE,))
    label = keys.input_label(vertex, 0, ())
    if not parent_label_image:
        label = "previous step"
    _, components = keys.cache_key_for(vertex, [keys.InputKey(0, label, key=parent_key)])
    if arg_names is not None:
        components["arg_names"] = arg_names
    return dict(components)


def copy_components(checksums: dict[str, str], dest: str = "/app/") -> dict[str, Any]:
    sources = tuple(checksums)
    op = FileOp(actions=(CopyAction(source_input=1, sources=sources, dest=dest),), base=0)
    vertex = Vertex(op, (BASE, CONTEXT))
    selectors = [json.dumps([s, True, True, [], [], []]) for s in sources]
    pairs = tuple((sel, checksums[src]) for sel, src in zip(selectors, sources, strict=True))
    _, components = keys.cache_key_for(
        vertex,
        [
            keys.InputKey(0, "base image", key="sha256:base"),
            keys.InputKey(1, keys.input_label(vertex, 1, list(sources)), checksums=pairs),
        ],
    )
    return dict(components)


# -- each reason ---------------------------------------------------------------------------


def test_changed_copy_source_names_the_file() -> None:
    old = copy_components({"/go.mod": "sha256:a", "/go.sum": "sha256:b"})
    new = copy_components({"/go.mod": "sha256:a", "/go.sum": "sha256:c"})
    assert compare_components(old, new) == ["file go.sum changed"]


def test_every_changed_file_is_listed_in_source_order() -> None:
    old = copy_components({"/a.txt": "sha256:1", "/b.txt": "sha256:2"})
    new = copy_components({"/a.txt": "sha256:9", "/b.txt": "sha256:8"})
    assert compare_components(old, new) == ["file a.txt changed", "file b.txt changed"]


def test_changed_declared_arg_is_a_build_arg() -> None:
    old = run_components(env=("PATH=/bin", "VERSION=1"), arg_names=["VERSION"])
    new = run_components(env=("PATH=/bin", "VERSION=2"), arg_names=["VERSION"])
    assert compare_components(old, new) == ["build-arg VERSION changed"]


def test_build_arg_names_of_the_request_identify_build_args_without_arg_names() -> None:
    old = run_components(env=("VERSION=1",))
    new = run_components(env=("VERSION=2",))
    assert compare_components(old, new, build_arg_names=["VERSION"]) == [
        "build-arg VERSION changed"
    ]


def test_changed_env_entry_not_from_an_arg_is_an_env_change() -> None:
    old = run_components(env=("PATH=/bin", "MODE=debug"), arg_names=["VERSION"])
    new = run_components(env=("PATH=/bin", "MODE=release"), arg_names=["VERSION"])
    assert compare_components(old, new) == ["env MODE changed"]


def test_removed_env_entry_counts_as_changed() -> None:
    old = run_components(env=("PATH=/bin", "GONE=1"))
    new = run_components(env=("PATH=/bin",))
    assert compare_components(old, new) == ["env GONE changed"]


def test_changed_command_is_an_instruction_change() -> None:
    old = run_components(args=("/bin/sh", "-c", "make"))
    new = run_components(args=("/bin/sh", "-c", "make all"))
    assert compare_components(old, new) == ["instruction changed"]


def test_changed_flag_outside_the_spelled_out_fields_is_an_instruction_change() -> None:
    old = run_components(network="default")
    new = run_components(network="none")
    assert compare_components(old, new) == ["instruction changed"]


def test_changed_copy_destination_is_an_instruction_change() -> None:
    old = copy_components({"/go.sum": "sha256:b"}, dest="/app/")
    new = copy_components({"/go.sum": "sha256:b"}, dest="/src/")
    assert compare_components(old, new) == ["instruction changed"]


def test_changed_parent_key_means_the_parent_re_ran() -> None:
    old = run_components(parent_key="sha256:one")
    new = run_components(parent_key="sha256:two")
    assert compare_components(old, new) == ["parent step re-ran"]


def test_changed_base_image_key_is_a_base_image_change() -> None:
    old = run_components(parent_key="sha256:old-chain", parent_label_image=True)
    new = run_components(parent_key="sha256:new-chain", parent_label_image=True)
    assert compare_components(old, new) == ["base image changed"]


def test_workdir_and_user_changes_are_named() -> None:
    old = run_components(cwd="/", user="")
    new = run_components(cwd="/src", user="app")
    assert compare_components(old, new) == ["WORKDIR changed", "USER changed"]


def test_no_cache_comes_first_even_when_nothing_else_changed() -> None:
    same = run_components()
    assert compare_components(same, same, no_cache=True) == ["--no-cache"]


def test_identical_components_mean_the_result_was_pruned() -> None:
    same = run_components()
    assert compare_components(same, same) == ["previous result was pruned"]


def test_own_change_is_named_before_a_parent_that_re_ran() -> None:
    old = run_components(env=("V=1",), parent_key="sha256:p1", arg_names=["V"])
    new = run_components(env=("V=2",), parent_key="sha256:p2", arg_names=["V"])
    assert compare_components(old, new) == ["build-arg V changed", "parent step re-ran"]


def test_base_image_change_is_named_before_the_env_it_brought() -> None:
    old = run_components(env=("PATH=/bin",), parent_key="sha256:a", parent_label_image=True)
    new = run_components(
        env=("PATH=/usr/bin:/bin",), parent_key="sha256:b", parent_label_image=True
    )
    assert compare_components(old, new) == ["base image changed", "env PATH changed"]


def test_changed_fetched_source_is_a_source_change() -> None:
    old = {"op": "sha256:x", "kind": "HttpSource", "inputs": [], "fetched": "sha256:1 f"}
    new = {"op": "sha256:x", "kind": "HttpSource", "inputs": [], "fetched": "sha256:2 f"}
    assert compare_components(old, new) == ["source content changed"]


def test_selector_path_reads_the_solver_selector_json() -> None:
    assert selector_path(json.dumps(["/src/go.sum", True, True, [], [], []])) == "src/go.sum"
    assert selector_path(json.dumps(["/", False, True, [], [], []])) == "."
    assert selector_path("/plain") == "plain"


# -- the step table ----------------------------------------------------------------------------


def test_a_step_never_built_has_no_explanation(root: StateRoot) -> None:
    step = step_id_for("/ctx/Dockerfile", "build", 2)
    assert explain_miss(root, step, run_components(), no_cache=False) is None


def test_explanation_compares_with_the_last_remembered_build(root: StateRoot) -> None:
    step = step_id_for("/ctx/Dockerfile", "", 3)
    remember_step(root, step, "sha256:k1", run_components(args=("a",)))
    remember_step(root, step, "sha256:k2", run_components(args=("b",)))
    assert explain_miss(root, step, run_components(args=("b",)), no_cache=False) == [
        "previous result was pruned"
    ]
    assert explain_miss(root, step, run_components(args=("c",)), no_cache=False) == [
        "instruction changed"
    ]


def test_remembered_step_survives_reopening_the_root(tmp_path: Path) -> None:
    step = step_id_for("/ctx/Dockerfile", "", 1)
    first = StateRoot.open(tmp_path / "r")
    remember_step(first, step, "sha256:k", run_components())
    first.close()
    second = StateRoot.open(tmp_path / "r")
    try:
        found = previous_step(second, step)
        assert found is not None and found[0] == "sha256:k"
    finally:
        second.close()


def test_remember_step_counts_uses_of_each_key(root: StateRoot) -> None:
    for _ in range(3):
        remember_step(root, step_id_for("/d", "", 1), "sha256:k", run_components())
    remember_step(root, step_id_for("/d", "", 2), "sha256:other", run_components())
    rows = dict(root.connect().execute("SELECT key, uses FROM solver_key_uses").fetchall())
    assert rows == {"sha256:k": 3, "sha256:other": 1}


def test_step_ids_from_names_follow_stage_and_position() -> None:
    scope = "/ctx/Dockerfile"
    assert step_id_from_name(scope, "[build 3/5] RUN make") == step_id_for(scope, "build", 3)
    assert step_id_from_name(scope, "[2/3] COPY . .") == step_id_for(scope, "", 2)
    assert step_id_from_name(scope, "[ 3/12] RUN x") == step_id_for(scope, "", 3)
    assert step_id_from_name(scope, "[build  3/12] RUN x") == step_id_for(scope, "build", 3)
    # The total may change when steps are added later in the stage; the id does not.
    assert step_id_from_name(scope, "[build 3/6] RUN other") == step_id_for(scope, "build", 3)


def test_vertices_that_are_not_dockerfile_steps_have_no_step_id() -> None:
    assert step_id_from_name("/d", "[internal] load build context") is None
    assert step_id_from_name("/d", "") is None
    assert step_id_from_name("/d", "RUN echo") is None


def test_step_ids_differ_between_dockerfiles_and_stages() -> None:
    ids = {
        step_id_for("/a/Dockerfile", "", 1),
        step_id_for("/b/Dockerfile", "", 1),
        step_id_for("/a/Dockerfile", "build", 1),
        step_id_for("/a/Dockerfile", "", 2),
    }
    assert len(ids) == 4

"""Cache keys: what changes a step's key and what does not."""

from __future__ import annotations

from strata.plan.ops import (
    ContextSource,
    CopyAction,
    ExecMount,
    ExecOp,
    FileOp,
    ImageSource,
    MountType,
    Sharing,
    Vertex,
)
from strata.solver.checksums import keyed_by_content, requests_for
from strata.solver.keys import (
    InputKey,
    cache_key_for,
    forced_key,
    image_source_key,
    input_label,
)

IMAGE = Vertex(
    ImageSource(ref="docker.io/library/busybox:latest", manifest_digest="sha256:" + "a" * 64)
)
CONTEXT = Vertex(ContextSource())


def run_vertex(*, sharing: Sharing = Sharing.SHARED, command: str = "make") -> Vertex:
    op = ExecOp(
        args=("/bin/sh", "-c", command),
        env=("PATH=/bin",),
        cwd="/src",
        user="",
        mounts=(
            ExecMount(target="/", input=0),
            ExecMount(target="/src/go.sum", input=1, selector="/go.sum", readonly=True),
            ExecMount(target="/cache", type=MountType.CACHE, cache_id="/cache", sharing=sharing),
        ),
    )
    return Vertex(op, inputs=(IMAGE, CONTEXT), name="[2/2] RUN make")


def copy_vertex() -> Vertex:
    action = CopyAction(source_input=1, sources=("/app.txt", "/lib/*.py"), dest="/srv/")
    return Vertex(FileOp(actions=(action,), base=0), inputs=(IMAGE, CONTEXT))


def inputs_for(checksum: str, base_key: str = "sha256:base") -> list[InputKey]:
    return [
        InputKey(0, "base image", key=base_key),
        InputKey(1, "file go.sum", checksums=(("go.sum", checksum),)),
    ]


def test_same_op_and_inputs_give_the_same_key() -> None:
    assert (
        cache_key_for(run_vertex(), inputs_for("c1"))[0]
        == cache_key_for(run_vertex(), inputs_for("c1"))[0]
    )


def test_content_checksum_change_changes_the_key() -> None:
    assert (
        cache_key_for(run_vertex(), inputs_for("c1"))[0]
        != cache_key_for(run_vertex(), inputs_for("c2"))[0]
    )


def test_content_keyed_input_ignores_the_inputs_own_key() -> None:
    first = [InputKey(0, "base", key="k"), InputKey(1, "file", key="old", checksums=(("a", "c"),))]
    second = [InputKey(0, "base", key="k"), InputKey(1, "file", key="new", checksums=(("a", "c"),))]
    assert cache_key_for(run_vertex(), first)[0] == cache_key_for(run_vertex(), second)[0]


def test_base_key_and_command_change_the_key() -> None:
    base = cache_key_for(run_vertex(), inputs_for("c1"))[0]
    assert cache_key_for(run_vertex(), inputs_for("c1", base_key="sha256:other"))[0] != base
    assert cache_key_for(run_vertex(command="make all"), inputs_for("c1"))[0] != base


def cache_run(cache_id: str, sharing: Sharing = Sharing.SHARED, target: str = "/cache") -> str:
    op = ExecOp(
        args=("/bin/sh", "-c", "make"),
        env=(),
        cwd="/",
        user="",
        mounts=(
            ExecMount(target="/", input=0),
            ExecMount(target=target, type=MountType.CACHE, cache_id=cache_id, sharing=sharing),
        ),
    )
    vertex = Vertex(op, inputs=(IMAGE,))
    return cache_key_for(vertex, [InputKey(0, "base image", key="sha256:base")])[0]


def test_custom_cache_ids_and_sharing_are_blanked_in_the_key() -> None:
    # exec.go checkShouldClearCacheOpts
    custom = cache_run("/one")
    assert cache_run("/two", Sharing.PRIVATE) == custom
    assert cache_run("//cache", Sharing.LOCKED) == custom


def test_default_cache_id_stays_in_the_key() -> None:
    default = cache_run("//cache")
    assert default != cache_run("/one")
    assert cache_run("/cache") != cache_run("/one")  # an id equal to the target is kept too
    assert cache_run("ns//cache") != default  # BUILDKIT_CACHE_MOUNT_NS changes the key
    assert cache_run("ns//cache") != cache_run("/one")
    # a relative target: the id is the target as written, the mount point is absolute
    assert cache_run("/cache", target="/app/cache") == cache_run("/one", target="/app/cache")


def test_components_name_each_input_and_the_command() -> None:
    _, components = cache_key_for(run_vertex(), inputs_for("c1"))
    assert [i["label"] for i in components["inputs"]] == ["base image", "file go.sum"]
    assert components["inputs"][1]["checksums"] == [["go.sum", "c1"]]
    assert components["args"] == ["/bin/sh", "-c", "make"]
    assert components["kind"] == "ExecOp"


def test_base_image_key_follows_the_layer_chain_not_the_manifest() -> None:
    one = ImageSource(ref="docker.io/library/a:1", manifest_digest="sha256:" + "1" * 64)
    two = ImageSource(ref="docker.io/library/a:2", manifest_digest="sha256:" + "2" * 64)
    assert image_source_key(one, "sha256:chain")[0] == image_source_key(two, "sha256:chain")[0]
    assert image_source_key(one, "sha256:chain")[0] != image_source_key(one, "sha256:other")[0]


def test_forced_key_is_new_each_time() -> None:
    assert forced_key("sha256:k", "n1") != forced_key("sha256:k", "n2")
    assert forced_key("sha256:k", "n1") != "sha256:k"


def test_bind_and_copy_sources_are_keyed_by_content_but_the_root_is_not() -> None:
    assert keyed_by_content(run_vertex()) == {1}
    assert keyed_by_content(copy_vertex()) == {1}
    assert [r.path for r in requests_for(run_vertex(), 1)] == ["/go.sum"]
    copy_requests = requests_for(copy_vertex(), 1)
    assert [(r.path, r.wildcard) for r in copy_requests] == [
        ("/app.txt", True),
        ("/lib/*.py", True),
    ]


def test_input_labels_say_what_the_input_is() -> None:
    assert input_label(run_vertex(), 0, ()) == "base image"
    assert input_label(run_vertex(), 1, ["/go.sum"]) == "file go.sum"
    assert input_label(copy_vertex(), 1, ["/a", "/b"]) == "files a, b"

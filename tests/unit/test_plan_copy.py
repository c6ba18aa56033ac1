"""COPY and ADD: copy actions, their sources, and the context paths they read."""

from __future__ import annotations

import pytest

from strata.errors import DockerfileError
from strata.plan.ops import (
    Chown,
    ContextSource,
    CopyAction,
    FileOp,
    GitSource,
    HttpSource,
    ImageSource,
    MergeOp,
    MkfileAction,
)
from tests.unit.test_plan_support import FakeImages, last_file, plan, vertices_of


def copy_actions(text: str, **options: object) -> list[CopyAction]:
    op = last_file(plan(text, **options))  # type: ignore[arg-type]
    return [a for a in op.actions if isinstance(a, CopyAction)]


def test_context_copy_resets_owner_follows_symlinks_and_allows_wildcards() -> None:
    (action,) = copy_actions("FROM scratch\nCOPY src/*.py /app/\n")
    assert action.sources == ("/src/*.py",)
    assert action.dest == "/app/"
    assert action.owner_reset is True
    assert (action.follow_symlinks, action.allow_wildcard, action.allow_empty_wildcard) == (
        True,
        True,
        True,
    )
    assert action.unpack is False


def test_each_source_is_its_own_action_in_order() -> None:
    actions = copy_actions("FROM scratch\nCOPY b a /x\n")
    assert [a.sources for a in actions] == [("/b",), ("/a",)]


def test_destination_is_resolved_against_workdir_keeping_trailing_slash() -> None:
    cases = {
        "COPY a .": "/w/",
        "COPY a ./": "/w/",
        "COPY a sub/": "/w/sub/",
        "COPY a sub/.": "/w/sub/.",
        "COPY a file": "/w/file",
        "COPY a /abs/../x": "/abs/../x",
    }
    for line, dest in cases.items():
        (action,) = copy_actions(f"FROM scratch\nWORKDIR /w\n{line}\n")
        assert action.dest == dest, line


def test_chown_and_chmod_are_expanded_and_passed_on() -> None:
    (action,) = copy_actions("FROM scratch\nARG U=app\nCOPY --chown=$U:staff --chmod=0640 a /a\n")
    assert action.chown == Chown("app", "staff")
    assert action.chmod == "0640"


def test_symbolic_chmod_is_accepted() -> None:
    (action,) = copy_actions("FROM scratch\nCOPY --chmod=u=rwX,go=rX a /a\n")
    assert action.chmod == "u=rwX,go=rX"


def test_copy_from_stage_reads_its_root_and_keeps_owners() -> None:
    result = plan("FROM busybox AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /out\n")
    op = last_file(result)
    (action,) = op.actions
    assert isinstance(action, CopyAction)
    assert action.owner_reset is False
    assert result.target is not None and action.source_input is not None
    assert result.target.inputs[action.source_input].name.endswith("RUN make")
    assert op.base is None  # the scratch stage has no root yet


def test_copy_from_index_and_from_image() -> None:
    result = plan(
        "FROM busybox\nRUN a\nFROM scratch\nCOPY --from=0 /x /x\nCOPY --from=alpine:3 /y /y\n"
    )
    op = last_file(result)
    (action,) = op.actions
    assert result.target is not None
    source = result.target.inputs[action.source_input]  # type: ignore[index,union-attr]
    assert isinstance(source.op, ImageSource)
    assert source.op.ref == "docker.io/library/alpine:3"


def test_context_paths_are_collected_into_the_context_source() -> None:
    result = plan(
        "FROM busybox\nCOPY b/ /b\nCOPY a.txt *.md /x/\nRUN --mount=source=req.txt,target=/r true\n",
        dockerignore=["*.log"],
    )
    (context,) = vertices_of(result, ContextSource)
    assert isinstance(context.op, ContextSource)
    assert context.op.include == ("*.md", "a.txt", "b", "req.txt")
    assert context.op.exclude == ("*.log",)


def test_copy_of_whole_context_includes_everything() -> None:
    result = plan("FROM busybox\nCOPY a /a\nCOPY . /src\n")
    (context,) = vertices_of(result, ContextSource)
    assert isinstance(context.op, ContextSource) and context.op.include == ()


def test_copy_from_stage_does_not_read_the_context() -> None:
    result = plan("FROM busybox AS a\nFROM scratch\nCOPY --from=a /x /x\n")
    assert vertices_of(result, ContextSource) == []


def test_heredoc_sources_become_files_in_scratch_trees() -> None:
    result = plan("FROM scratch\nARG N=world\nCOPY <<A <<'B' /dir/\nhello $N\nA\nraw $N\nB\n")
    op = last_file(result)
    assert [a.sources for a in op.actions if isinstance(a, CopyAction)] == [("/A",), ("/B",)]
    documents = [
        v for v in result.all_vertices() if v.name == "[internal] preparing inline document"
    ]
    data = sorted(v.op.actions[0].data for v in documents)  # type: ignore[union-attr]
    assert data == ["hello world\n", "raw $N\n"]
    mkfile = documents[0].op.actions[0]  # type: ignore[union-attr]
    assert isinstance(mkfile, MkfileAction) and mkfile.mode == 0o644


def test_link_copies_onto_scratch_and_merges() -> None:
    result = plan("FROM busybox\nCOPY --link a /a\n")
    assert result.target is not None
    assert isinstance(result.target.op, MergeOp)
    lower, copied = result.target.inputs
    assert isinstance(lower.op, ImageSource)
    assert isinstance(copied.op, FileOp) and copied.op.base is None


def test_link_with_chmod_is_a_normal_copy() -> None:
    result = plan("FROM busybox\nCOPY --link --chmod=755 a /a\n")
    assert result.target is not None
    assert isinstance(result.target.op, FileOp)
    assert result.target.op.base == 0


def test_link_key_does_not_depend_on_earlier_layers() -> None:
    one = plan("FROM busybox\nRUN one\nCOPY --link a /a\n")
    two = plan("FROM busybox\nRUN two\nCOPY --link a /a\n")
    assert one.target is not None and two.target is not None
    assert one.target.inputs[1].digest == two.target.inputs[1].digest
    assert one.target.digest != two.target.digest


def test_parents_source_is_kept_as_written_and_exclude_patterns_pass_through() -> None:
    (action,) = copy_actions("FROM scratch\nCOPY --parents --exclude=*.tmp x/./y/*.txt /dst/\n")
    assert action.parents is True
    assert action.sources == ("x/./y/*.txt",)
    assert action.exclude == ("*.tmp",)


def test_parents_sources_that_differ_only_before_the_pivot_stay_distinct() -> None:
    # `./a/./b` pivots after `a`, `/./a/./b` at the root: made absolute, both would read
    # `/./a/./b` and copy alike.
    (relative,) = copy_actions("FROM scratch\nCOPY --parents ./a/./b /p/\n")
    (rooted,) = copy_actions("FROM scratch\nCOPY --parents /./a/./b /p/\n")
    assert (relative.sources, rooted.sources) == (("./a/./b",), ("/./a/./b",))


def test_add_local_unpacks_by_default_and_flag_turns_it_off() -> None:
    (default,) = copy_actions("FROM scratch\nADD a.tar /x/\n")
    assert default.unpack is True
    (off,) = copy_actions("FROM scratch\nADD --unpack=false a.tar /x/\n")
    assert off.unpack is False


def test_add_url_downloads_a_named_file() -> None:
    result = plan(
        "FROM scratch\nADD --checksum=sha256:" + "a" * 64 + " https://example.com/x/file.tgz /d/\n"
    )
    (http,) = vertices_of(result, HttpSource)
    assert http.op == HttpSource(
        url="https://example.com/x/file.tgz", checksum="sha256:" + "a" * 64, filename="file.tgz"
    )
    (action,) = last_file(result).actions
    assert isinstance(action, CopyAction)
    assert (action.sources, action.unpack) == (("/file.tgz",), False)


def test_add_url_without_path_is_unnamed() -> None:
    result = plan("FROM scratch\nADD https://example.com /d/\n")
    (http,) = vertices_of(result, HttpSource)
    assert isinstance(http.op, HttpSource) and http.op.filename == "__unnamed__"


def test_add_git_source_with_fragment_and_keep_git_dir() -> None:
    result = plan(
        "FROM scratch\nADD --keep-git-dir https://github.com/moby/buildkit.git#v0.12:docs /src\n"
    )
    (git,) = vertices_of(result, GitSource)
    assert git.op == GitSource(
        remote="https://github.com/moby/buildkit.git", ref="v0.12", subdir="docs", keep_git_dir=True
    )


def test_add_git_query_forms() -> None:
    result = plan("FROM scratch\nADD git@github.com:o/r.git?tag=v1&subdir=s /src\n")
    (git,) = vertices_of(result, GitSource)
    assert git.op == GitSource(remote="git@github.com:o/r.git", ref="refs/tags/v1", subdir="s")


def test_bare_github_path_is_a_local_path() -> None:
    (action,) = copy_actions("FROM scratch\nADD github.com/o/r /src\n")
    assert action.sources == ("/github.com/o/r",)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("COPY https://example.com/a /a", "source can't be a URL for COPY"),
        ("COPY https://example.com/r.git /a", "source can't be a git ref for COPY"),
        (
            "ADD --checksum=sha256:" + "a" * 64 + " a b /d/",
            "checksum can't be specified for multiple sources",
        ),
        (
            "ADD --checksum=sha256:" + "a" * 64 + " local /d",
            "checksum requires HTTP(S) or Git sources",
        ),
        ("ADD --checksum=md5:abc https://e.com/f /d", "unsupported digest algorithm"),
        ("ADD --checksum=sha256:abc https://e.com/f /d", "invalid checksum digest length"),
        ("ADD --checksum=nocolon https://e.com/f /d", "invalid checksum digest format"),
        (
            "COPY --chmod=0999 a /a",
            "invalid chmod parameter: '0999'. it should be octal string and between 0 and 07777",
        ),
        (
            "COPY --chmod=17777 a /a",
            "invalid chmod parameter: '17777'. it should be octal string and between 0 and 07777",
        ),
        ("COPY --chmod=bogus a /a", "invalid syntax"),
        (
            "COPY --from=$X a /a",
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
        ),
        ("COPY --from=7 a /a", "invalid stage index 7"),
    ],
)
def test_copy_and_add_errors(line: str, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan(f"FROM scratch\n{line}\n")
    assert caught.value.message == message
    assert (caught.value.line, caught.value.file) == (2, "Dockerfile")


def test_copy_from_later_stage_fails() -> None:
    with pytest.raises(DockerfileError) as caught:
        plan("FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\n", target="a")
    assert caught.value.message == (
        'cannot copy from stage "b", it needs to be defined before current stage "a"'
    )
    assert caught.value.line == 2


def test_copy_ignored_file_warns_when_dockerignore_excludes_it() -> None:
    result = plan("FROM scratch\nCOPY secret.key /k\n", dockerignore=["*.key"])
    assert [(w.rule, w.line) for w in result.warnings] == [("CopyIgnoredFile", 2)]


def test_image_used_by_copy_is_resolved_for_the_target_platform() -> None:
    images = FakeImages()
    plan("FROM scratch\nCOPY --from=alpine /a /a\n", images)
    assert [ref for ref, _ in images.calls] == ["alpine"]

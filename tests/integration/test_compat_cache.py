"""After the same edits, strata reuses or re-runs the same steps BuildKit would.

Each scenario builds a Dockerfile for real, edits the context, the Dockerfile or the
build options, builds again, and checks which steps came from the cache. The rules are
BuildKit's (`solver/llbsolver/ops/exec.go` and `file.go` `CacheMap`,
`cache/contenthash/checksum.go`, `client/solve.go` `resetUIDAndGID`,
`frontend/dockerfile/dockerfile2llb/convert.go`; tests `dockerfile_cache_test.go`,
`dockerfile_test.go` `testCopyChownCreateDest`/`testCacheMultiPlatformImportExport`),
summarised in docs/buildkit-semantics.md §4.
"""

from __future__ import annotations

import os

import pytest

from strata.api import BuildResult
from strata.store.images import ImageStore
from tests.integration.guide_fixtures import BUSYBOX_IMAGE, busybox_tarball
from tests.integration.test_compat_files import (
    BASE,
    FileServer,
    Project,
    file_server,
    project,
)

__all__ = ["busybox_tarball", "file_server", "project"]


def step(result: BuildResult, fragment: str) -> str:
    """'cached' or 'ran' for the one step whose name contains `fragment`."""
    cached = [n for n in result.stats.cached if fragment in n]
    ran = [n for n in result.stats.ran if fragment in n]
    assert len(cached) + len(ran) == 1, (fragment, result.stats)
    return "cached" if cached else "ran"


def steps(result: BuildResult, *fragments: str) -> list[str]:
    return [step(result, f) for f in fragments]


APP = (
    BASE + "RUN echo base > /base\n" + "COPY app.txt /srv/\n" + "RUN cat /srv/app.txt > /srv/copy\n"
)
APP_STEPS = ("RUN echo base", "COPY app.txt", "RUN cat /srv/app.txt")


def test_unchanged_rebuild_hits_every_step(project: Project) -> None:
    project.write("app.txt", "v1\n")
    first = project.build(APP).result
    assert steps(first, *APP_STEPS) == ["ran", "ran", "ran"]
    again = project.build(APP).result
    assert steps(again, *APP_STEPS) == ["cached"] * 3


def test_touching_a_copied_file_keeps_the_cache(project: Project) -> None:
    app = project.write("app.txt", "v1\n")
    project.build(APP)
    os.utime(app, (1_000_000, 1_000_000))
    again = project.build(APP).result
    assert steps(again, *APP_STEPS) == ["cached"] * 3


def test_editing_a_copied_file_reruns_that_copy_and_what_follows(project: Project) -> None:
    app = project.write("app.txt", "v1\n")
    project.build(APP)
    app.write_text("v2\n")
    again = project.build(APP)
    assert steps(again.result, *APP_STEPS) == ["cached", "ran", "ran"]
    assert (again.out / "srv/copy").read_text() == "v2\n"


def test_same_size_edit_with_the_old_mtime_is_still_seen(project: Project) -> None:
    # The digest memo is keyed by ctime too, so restoring mtime does not hide an edit.
    app = project.write("app.txt", "v1\n")
    before = os.stat(app)
    project.build(APP)
    app.write_text("v2\n")
    os.utime(app, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = project.build(APP).result
    assert steps(again, *APP_STEPS) == ["cached", "ran", "ran"]


def test_editing_an_unrelated_context_file_keeps_the_cache(project: Project) -> None:
    project.write("app.txt", "v1\n")
    other = project.write("other.txt", "x\n")
    project.build(APP)
    other.write_text("changed\n")
    project.write("new-file", "new\n")
    again = project.build(APP).result
    assert steps(again, *APP_STEPS) == ["cached"] * 3


def test_mode_change_of_a_copied_file_reruns_the_copy(project: Project) -> None:
    app = project.write("app.txt", "v1\n")
    project.build(APP)
    app.chmod(0o755)
    again = project.build(APP).result
    assert steps(again, *APP_STEPS) == ["cached", "ran", "ran"]


def test_owner_change_of_a_context_file_keeps_the_cache(project: Project) -> None:
    # The client sends context files as 0:0 (client/solve.go resetUIDAndGID).
    app = project.write("app.txt", "v1\n")
    project.build(APP)
    os.chown(app, 1234, 1234)
    again = project.build(APP).result
    assert steps(again, *APP_STEPS) == ["cached"] * 3


DIRECTORY = BASE + "COPY tree /srv/\nRUN ls -lR /srv > /listing\n"
DIRECTORY_STEPS = ("COPY tree", "RUN ls")


@pytest.mark.parametrize(
    "edit",
    [
        "add an empty file",
        "add an empty directory",
        "rename a file",
        "remove a file",
        "retarget a symlink",
        "replace a file by a hard link to another",
    ],
)
def test_structural_edits_inside_a_copied_directory_rerun_the_copy(
    project: Project, edit: str
) -> None:
    project.write("tree/a", "same\n")
    project.write("tree/b", "same\n")
    project.symlink("tree/l", "a")
    project.build(DIRECTORY)
    tree = project.directory / "tree"
    if edit == "add an empty file":
        project.write("tree/empty", "")
    elif edit == "add an empty directory":
        project.mkdir("tree/newdir")
    elif edit == "rename a file":
        (tree / "b").rename(tree / "c")
    elif edit == "remove a file":
        (tree / "b").unlink()
    elif edit == "retarget a symlink":
        (tree / "l").unlink()
        (tree / "l").symlink_to("b")
    else:
        (tree / "b").unlink()
        os.link(tree / "a", tree / "b")
    again = project.build(DIRECTORY).result
    expected = "cached" if edit.startswith("replace") else "ran"
    # Hard links hash like their source file (cache/contenthash): same bytes, same key.
    assert steps(again, *DIRECTORY_STEPS) == [expected, expected]


def test_touching_files_and_directories_inside_a_copied_directory_keeps_the_cache(
    project: Project,
) -> None:
    project.write("tree/sub/a", "a\n")
    project.build(DIRECTORY)
    for path in ("tree", "tree/sub", "tree/sub/a"):
        os.utime(project.directory / path, (5, 5))
    again = project.build(DIRECTORY).result
    assert steps(again, *DIRECTORY_STEPS) == ["cached", "cached"]


def test_ignored_and_excluded_files_do_not_change_keys(project: Project) -> None:
    project.write(".dockerignore", "tree/*.tmp\n")
    project.write("tree/a", "a\n")
    project.write("tree/x.log", "log\n")
    dockerfile = BASE + "COPY --exclude=*.log tree /ex/\nCOPY tree /srv/\nRUN ls /srv /ex\n"
    order = ("COPY --exclude", "COPY tree", "RUN ls")
    project.build(dockerfile)
    project.write("tree/scratch.tmp", "ignored\n")
    again = project.build(dockerfile).result
    assert steps(again, *order) == ["cached"] * 3
    project.write("tree/x.log", "edited log\n")
    third = project.build(dockerfile).result
    # the copy that excludes x.log hits; the one that reads it, and the RUN on top, re-run
    assert steps(third, *order) == ["cached", "ran", "ran"]


def test_wildcard_keys_cover_only_what_matches(project: Project) -> None:
    project.write("a.txt", "a\n")
    dockerfile = BASE + "COPY *.txt /srv/\nRUN ls /srv\n"
    project.build(dockerfile)
    project.write("b.md", "not matched\n")
    assert steps(project.build(dockerfile).result, "COPY *.txt", "RUN ls") == ["cached"] * 2
    project.write("b.txt", "matched\n")
    assert steps(project.build(dockerfile).result, "COPY *.txt", "RUN ls") == ["ran"] * 2


def test_wildcard_matching_nothing_stays_cached_until_something_matches(
    project: Project,
) -> None:
    dockerfile = BASE + "COPY *.whl /wheels/\nRUN echo after > /after\n"
    project.build(dockerfile)
    again = project.build(dockerfile).result
    assert steps(again, "COPY *.whl", "RUN echo after") == ["cached"] * 2
    project.write("pkg.whl", "w\n")
    third = project.build(dockerfile).result
    assert steps(third, "COPY *.whl", "RUN echo after") == ["ran"] * 2


def test_top_level_symlink_source_is_keyed_by_its_target(project: Project) -> None:
    project.write("real.txt", "v1\n")
    project.symlink("link.txt", "real.txt")
    dockerfile = BASE + "COPY link.txt /srv/\nRUN cat /srv/link.txt\n"
    project.build(dockerfile)
    project.write("real.txt", "v2\n")
    again = project.build(dockerfile).result
    assert steps(again, "COPY link.txt", "RUN cat") == ["ran", "ran"]


def test_editing_a_bind_mounted_file_reruns_only_the_run_that_mounts_it(
    project: Project,
) -> None:
    project.write("deps.txt", "v1\n")
    project.write("other.txt", "o\n")
    dockerfile = (
        BASE
        + "RUN --mount=type=bind,source=other.txt,target=/o cat /o > /other\n"
        + "RUN --mount=type=bind,source=deps.txt,target=/d cat /d > /deps\n"
        + "RUN --mount=type=bind,target=/ctx ls /ctx > /all\n"
        + "RUN echo last > /last\n"
    )
    order = ("target=/o", "target=/d", "target=/ctx", "RUN echo last")
    project.build(dockerfile)
    project.write("deps.txt", "v2\n")
    again = project.build(dockerfile)
    assert steps(again.result, *order) == ["cached", "ran", "ran", "ran"]
    assert (again.out / "deps").read_text() == "v2\n"


def test_env_change_reruns_every_later_run_used_or_not(project: Project) -> None:
    project.write("app.txt", "a\n")

    def dockerfile(value: str) -> str:
        return (
            BASE
            + "RUN echo before > /before\n"
            + f"ENV MODE={value}\n"
            + "COPY app.txt /srv/\n"
            + "RUN echo unused > /unused\n"
        )

    project.build(dockerfile("dev"))
    again = project.build(dockerfile("prod")).result
    assert steps(again, "RUN echo before", "COPY app.txt", "RUN echo unused") == [
        "cached",
        "cached",
        "ran",
    ]


def test_arg_value_change_reruns_from_the_first_run_after_the_arg(project: Project) -> None:
    project.write("app.txt", "a\n")
    dockerfile = (
        BASE
        + "RUN echo before > /before\n"
        + "ARG FLAVOUR=plain\n"
        + "COPY app.txt /srv/\n"
        + "RUN echo first-after > /first\n"
        + "RUN echo $FLAVOUR > /flavour\n"
    )
    # step names show expanded commands, as BuildKit's do
    order = ("RUN echo before", "COPY app.txt", "RUN echo first-after", "> /flavour")
    project.build(dockerfile)
    same_value = project.build(dockerfile, build_args={"FLAVOUR": "plain"}).result
    assert steps(same_value, *order) == ["cached"] * 4
    changed = project.build(dockerfile, build_args={"FLAVOUR": "spicy"})
    assert steps(changed.result, *order) == ["cached", "cached", "ran", "ran"]
    assert (changed.out / "flavour").read_text() == "spicy\n"


def test_undeclared_build_args_and_proxy_args_keep_the_cache(project: Project) -> None:
    project.write("app.txt", "v1\n")
    project.build(APP)
    again = project.build(
        APP, build_args={"NOT_DECLARED": "x", "HTTP_PROXY": "http://proxy:3128"}
    ).result
    assert steps(again, *APP_STEPS) == ["cached"] * 3


def test_declared_arg_without_value_changes_nothing_until_given_one(project: Project) -> None:
    dockerfile = BASE + "ARG OPTIONAL\nRUN echo run > /run\n"
    project.build(dockerfile)
    assert step(project.build(dockerfile).result, "RUN echo run") == "cached"
    given = project.build(dockerfile, build_args={"OPTIONAL": "1"}).result
    assert step(given, "RUN echo run") == "ran"


def test_global_arg_matters_only_where_redeclared(project: Project) -> None:
    dockerfile = (
        "ARG VERSION=1\n"
        + BASE.replace("\n", " AS plain\n")
        + "RUN echo plain > /plain\n"
        + BASE
        + "ARG VERSION\n"
        + "COPY --from=plain /plain /plain\n"
        + "RUN echo redeclared > /redeclared\n"
    )
    order = ("echo plain", "COPY --from=plain", "echo redeclared")
    project.build(dockerfile)
    again = project.build(dockerfile, build_args={"VERSION": "2"}).result
    assert steps(again, *order) == ["cached", "cached", "ran"]


def test_only_the_target_stage_chain_is_built(project: Project) -> None:
    dockerfile = (
        BASE.replace("\n", " AS unused\n")
        + "RUN echo unused > /unused\n"
        + BASE.replace("\n", " AS final\n")
        + "RUN echo final > /final\n"
    )
    result = project.build(dockerfile).result
    assert not any("unused" in name for name in result.stats.ran + result.stats.cached)
    assert step(result, "RUN echo final") == "ran"


def test_user_and_workdir_changes_rerun_later_runs(project: Project) -> None:
    def dockerfile(user: str, workdir: str) -> str:
        return BASE + "RUN echo first > /first\n" + f"USER {user}\nWORKDIR {workdir}\nRUN id\n"

    project.build(dockerfile("app", "/tmp"))
    assert steps(project.build(dockerfile("app", "/tmp")).result, "echo first", "RUN id") == [
        "cached",
        "cached",
    ]
    assert steps(project.build(dockerfile("nobody", "/tmp")).result, "echo first", "RUN id") == [
        "cached",
        "ran",
    ]
    assert steps(project.build(dockerfile("nobody", "/")).result, "echo first", "RUN id") == [
        "cached",
        "ran",
    ]


def test_comments_blank_lines_and_keyword_case_keep_the_cache(project: Project) -> None:
    project.write("app.txt", "v1\n")
    project.build(APP)
    reformatted = (
        "# syntax note: comments and blank lines move every step down\n\n"
        + BASE.lower().replace("from ", "FROM ")
        + "\n# the base marker\n"
        + "run echo base > /base\n\n"
        + "copy app.txt /srv/\n"
        + "# now read it\n"
        + "Run cat /srv/app.txt > /srv/copy\n"
    )
    again = project.build(reformatted).result
    assert [
        step(again, "echo base"),
        step(again, "app.txt /srv/"),
        step(again, "cat /srv/app.txt"),
    ] == ["cached"] * 3


def test_whitespace_inside_a_run_command_is_part_of_its_key(project: Project) -> None:
    project.build(BASE + "RUN echo  spaced > /out\n")
    assert step(project.build(BASE + "RUN echo  spaced > /out\n").result, "spaced") == "cached"
    assert step(project.build(BASE + "RUN echo spaced > /out\n").result, "spaced") == "ran"


def test_line_continuation_joins_text_as_written(project: Project) -> None:
    # parser.go keeps the text before `\` and the next line's leading blanks, so the
    # joined command is "echo one   two": the same key as that line written whole.
    project.build(BASE + "RUN echo one \\\n  two > /out\n")
    assert step(project.build(BASE + "RUN echo one   two > /out\n").result, "one") == "cached"
    assert step(project.build(BASE + "RUN echo one two > /out\n").result, "one") == "ran"


def test_metadata_instructions_create_no_steps_and_keep_the_cache(project: Project) -> None:
    project.write("app.txt", "v1\n")
    project.build(APP)
    dressed = APP + 'LABEL version=2\nEXPOSE 8080\nCMD ["cat", "/srv/copy"]\nSTOPSIGNAL SIGINT\n'
    again = project.build(dressed).result
    assert steps(again, *APP_STEPS) == ["cached"] * 3
    assert len(again.stats.ran) == 1  # only loading the context


def test_heredoc_body_is_part_of_the_key(project: Project) -> None:
    def dockerfile(body: str) -> str:
        return BASE + f"COPY <<EOF /conf\n{body}\nEOF\nRUN <<EOF\ncat /conf > /copy\nEOF\n"

    project.build(dockerfile("a=1"))
    assert steps(project.build(dockerfile("a=1")).result, "COPY <<EOF", "RUN <<EOF") == [
        "cached",
        "cached",
    ]
    assert steps(project.build(dockerfile("a=2")).result, "COPY <<EOF", "RUN <<EOF") == [
        "ran",
        "ran",
    ]


def test_rerun_stage_with_identical_output_keeps_copy_and_bind_readers_cached(
    project: Project,
) -> None:
    dockerfile = (
        BASE.replace("\n", " AS gen\n")
        + "ARG SALT=1\n"
        + "RUN echo $SALT > /salt && mkdir /out && echo stable > /out/file\n"
        + BASE
        + "COPY --from=gen /out /srv/\n"
        + "RUN --mount=type=bind,from=gen,source=/out,target=/gen cat /gen/file > /bound\n"
    )
    order = ("> /salt", "COPY --from=gen", "RUN --mount=type=bind,from=gen")
    project.build(dockerfile)
    again = project.build(dockerfile, build_args={"SALT": "2"}).result
    assert steps(again, *order) == ["ran", "cached", "cached"]


def test_copy_from_a_stage_reruns_when_the_copied_files_change(project: Project) -> None:
    dockerfile = (
        BASE.replace("\n", " AS gen\n")
        + "ARG CONTENT=1\n"
        + "RUN mkdir /out && echo $CONTENT > /out/file && echo other > /elsewhere\n"
        + BASE
        + "COPY --from=gen /out /srv/\n"
        + "RUN cat /srv/file\n"
    )
    project.build(dockerfile)
    again = project.build(dockerfile, build_args={"CONTENT": "2"}).result
    assert steps(again, "RUN mkdir /out", "COPY --from=gen", "RUN cat") == ["ran"] * 3


def test_no_cache_filter_forces_only_the_named_stage(project: Project) -> None:
    dockerfile = (
        BASE.replace("\n", " AS deps\n")
        + "RUN echo deps > /deps\n"
        + BASE.replace("\n", " AS Tools\n")
        + "RUN echo tools > /tools\n"
        + BASE
        + "COPY --from=deps /deps /deps\n"
        + "COPY --from=tools /tools /tools\n"
        + "RUN cat /deps /tools\n"
    )
    order = ("echo deps", "echo tools", "COPY --from=deps", "COPY --from=tools", "RUN cat")
    project.build(dockerfile)
    forced = project.build(dockerfile, no_cache_filter=["TOOLS"]).result
    # The forced stage re-runs; readers keyed by content still hit (same bytes).
    assert steps(forced, *order) == ["cached", "ran", "cached", "cached", "cached"]
    everything = project.build(dockerfile, no_cache=True).result
    assert steps(everything, *order) == ["ran"] * 5


def test_no_cache_filter_reruns_steps_built_on_the_forced_stage(project: Project) -> None:
    dockerfile = (
        BASE.replace("\n", " AS base\n")
        + "RUN echo one > /one\n"
        + "FROM base AS next\n"
        + "RUN echo two > /two\n"
    )
    project.build(dockerfile)
    forced = project.build(dockerfile, no_cache_filter=["base"]).result
    assert steps(forced, "echo one", "echo two") == ["ran", "ran"]


def test_secret_values_and_cache_mount_contents_are_not_in_keys(project: Project) -> None:
    dockerfile = (
        BASE
        + "RUN --mount=type=secret,id=token cat /run/secrets/token > /dev/null\n"
        + "RUN --mount=type=cache,target=/cache date > /cache/stamp\n"
    )
    project.build(dockerfile, secrets={"token": b"one"})
    again = project.build(dockerfile, secrets={"token": b"two"}).result
    assert steps(again, "type=secret", "type=cache") == ["cached", "cached"]


def test_custom_cache_mount_ids_and_sharing_are_stripped_from_the_key(
    project: Project,
) -> None:
    # exec.go checkShouldClearCacheOpts: only the default id (the target) with default
    # sharing stays in the key; any other id or sharing is cleared to the same blank.
    def dockerfile(options: str) -> str:
        return BASE + f"RUN --mount=type=cache,target=/c{options} echo x\n"

    project.build(dockerfile(",id=one"))
    assert step(project.build(dockerfile(",id=two,sharing=private")).result, "echo x") == "cached"
    assert step(project.build(dockerfile(",sharing=locked")).result, "echo x") == "cached"
    assert step(project.build(dockerfile("")).result, "echo x") == "ran"
    assert step(project.build(dockerfile(",id=/c")).result, "echo x") == "cached"


def test_stage_names_are_not_part_of_keys(project: Project) -> None:
    def dockerfile(name: str) -> str:
        return (
            BASE.replace("\n", f" AS {name}\n")
            + "RUN echo built > /built\n"
            + BASE
            + f"COPY --from={name} /built /built\n"
        )

    project.build(dockerfile("first"))
    again = project.build(dockerfile("renamed")).result
    assert steps(again, "echo built", "COPY --from=renamed") == ["cached", "cached"]


def test_add_url_is_keyed_by_the_downloaded_content(
    project: Project, file_server: FileServer
) -> None:
    file_server.files["/tool"] = (b"v1\n", "Wed, 21 Oct 2015 07:28:00 GMT")
    dockerfile = BASE + f"ADD {file_server.url}/tool /srv/\nRUN cat /srv/tool\n"
    project.build(dockerfile)
    # The download and the copy share the step name, as in BuildKit (two vertices).
    again = project.build(dockerfile).result
    assert any("ADD http" in name for name in again.stats.cached)
    assert step(again, "RUN cat") == "cached"
    assert file_server.requests.count("/tool") == 2  # asked again on every build
    file_server.files["/tool"] = (b"v2\n", "Wed, 21 Oct 2015 07:28:00 GMT")
    third = project.build(dockerfile).result
    assert not any("ADD http" in name for name in third.stats.cached)
    assert step(third, "RUN cat") == "ran"


def test_retagged_base_image_with_the_same_layers_keeps_the_cache(project: Project) -> None:
    dockerfile = "FROM other:tag\nRUN echo on-base > /x\n"
    images = ImageStore(project.root)
    images.tag(BUSYBOX_IMAGE, "other:tag")
    project.build(dockerfile)
    assert step(project.build(dockerfile).result, "echo on-base") == "cached"


def test_a_different_base_image_reruns_everything(project: Project) -> None:
    dockerfile = "FROM other:tag\nRUN echo on-base > /x\n"
    images = ImageStore(project.root)
    images.tag(BUSYBOX_IMAGE, "other:tag")
    project.build(dockerfile)
    project.build_image(BASE + "RUN echo changed > /marker\n", tag="other:tag")
    assert step(project.build(dockerfile).result, "echo on-base") == "ran"


def test_env_shadowing_an_arg_hides_build_arg_changes(project: Project) -> None:
    # dispatchRun adds a build arg to the env only if ENV does not define that name.
    dockerfile = BASE + "ARG MODE=a\nENV MODE=fixed\nRUN echo $MODE > /mode\n"
    project.build(dockerfile)
    again = project.build(dockerfile, build_args={"MODE": "b"})
    assert step(again.result, "> /mode") == "cached"
    assert (again.out / "mode").read_text() == "fixed\n"


def test_arg_default_change_in_the_dockerfile_reruns_like_a_build_arg(project: Project) -> None:
    def dockerfile(default: str) -> str:
        return BASE + "RUN echo before > /b\n" + f"ARG LEVEL={default}\nRUN echo after > /a\n"

    project.build(dockerfile("1"))
    again = project.build(dockerfile("2")).result
    assert steps(again, "echo before", "echo after") == ["cached", "ran"]


def test_build_arg_of_another_stage_does_not_reach_this_one(project: Project) -> None:
    dockerfile = (
        BASE.replace("\n", " AS other\n")
        + "ARG ONLY_HERE=1\nRUN echo other > /other\n"
        + BASE
        + "COPY --from=other /other /other\n"
        + "RUN echo final > /final\n"
    )
    project.build(dockerfile)
    again = project.build(dockerfile, build_args={"ONLY_HERE": "2"}).result
    assert steps(again, "echo other", "COPY --from=other", "echo final") == [
        "ran",
        "cached",
        "cached",
    ]


def test_shell_change_reruns_later_runs(project: Project) -> None:
    project.build(BASE + "RUN echo one > /one\n")
    again = project.build(BASE + 'SHELL ["/bin/sh", "-ec"]\nRUN echo one > /one\n').result
    assert step(again, "echo one") == "ran"


def test_workdir_keys_follow_buildkits_path_normalisation(project: Project) -> None:
    # util/system/path.go NormalizePath: a relative WORKDIR is joined (and so cleaned),
    # an absolute one is kept as written, trailing slash included.
    project.build(BASE + "WORKDIR /app\nRUN pwd > /where\n")
    relative = project.build(BASE + "WORKDIR app\nRUN pwd > /where\n").result
    assert steps(relative, "WORKDIR", "RUN pwd") == ["cached", "cached"]
    slash = project.build(BASE + "WORKDIR /app/\nRUN pwd > /where\n").result
    assert steps(slash, "WORKDIR", "RUN pwd") == ["ran", "ran"]
    # each WORKDIR is a mkdir step of its own, even onto an existing directory
    extra = project.build(BASE + "WORKDIR /app\nWORKDIR .\nRUN pwd > /where\n").result
    assert step(extra, "RUN pwd") == "ran"


def test_chmod_and_chown_values_are_part_of_the_copy_key(project: Project) -> None:
    project.write("app.txt", "a\n")
    project.build(BASE + "COPY --chmod=0644 app.txt /srv/\n")
    assert step(project.build(BASE + "COPY --chmod=644 app.txt /srv/\n").result, "COPY") == "ran"
    project.build(BASE + "COPY --chown=app app.txt /srv/\n")
    # names are keyed as written, not as the ids they resolve to
    assert step(project.build(BASE + "COPY --chown=1000 app.txt /srv/\n").result, "COPY") == "ran"


def test_touching_a_bind_mounted_file_keeps_the_cache(project: Project) -> None:
    deps = project.write("deps.txt", "v1\n")
    dockerfile = BASE + "RUN --mount=type=bind,source=deps.txt,target=/d cat /d > /deps\n"
    project.build(dockerfile)
    os.utime(deps, (7, 7))
    assert step(project.build(dockerfile).result, "cat /d") == "cached"


def test_dockerignore_edits_matter_only_when_they_change_what_is_copied(
    project: Project,
) -> None:
    project.write("app/main.py", "print()\n")
    project.write("app/notes.md", "notes\n")
    project.write("other.txt", "o\n")
    dockerfile = BASE + "COPY app /srv/\nRUN ls /srv\n"
    project.build(dockerfile)
    project.write(".dockerignore", "other.txt\n")
    assert steps(project.build(dockerfile).result, "COPY app", "RUN ls") == ["cached", "cached"]
    project.write(".dockerignore", "other.txt\napp/*.md\n")
    assert steps(project.build(dockerfile).result, "COPY app", "RUN ls") == ["ran", "ran"]


def test_edits_in_stages_the_target_does_not_need_keep_the_cache(project: Project) -> None:
    def dockerfile(unused: str) -> str:
        return (
            BASE.replace("\n", " AS unused\n")
            + f"RUN echo {unused}\n"
            + BASE.replace("\n", " AS final\n")
            + "RUN echo final > /final\n"
        )

    project.build(dockerfile("one"))
    again = project.build(dockerfile("two")).result
    assert step(again, "echo final") == "cached"


def test_linked_copy_survives_changes_below_it(project: Project) -> None:
    # With --link the copy runs on scratch: an earlier step re-running leaves the copy
    # itself cached; only laying it onto the new base is redone.
    project.write("app.txt", "a\n")

    def dockerfile(marker: str) -> str:
        return BASE + f"RUN echo {marker} > /marker\nCOPY --link app.txt /srv/\n"

    project.build(dockerfile("one"))
    again = project.build(dockerfile("two"))
    copies = [n for n in again.result.stats.cached if "COPY --link app.txt" in n]
    assert copies, again.result.stats
    assert (again.out / "srv/app.txt").read_text() == "a\n"
    assert (again.out / "marker").read_text() == "two\n"
    plain = project.build(dockerfile("three").replace("--link ", "")).result
    assert step(plain, "COPY app.txt") == "ran"


def test_add_local_archive_reruns_when_the_archive_changes(project: Project) -> None:
    import io
    import tarfile

    def archive(text: bytes) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("f")
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
        return buffer.getvalue()

    project.write("pkg.tar", archive(b"one\n"))
    dockerfile = BASE + "ADD pkg.tar /pkg/\nRUN cat /pkg/f\n"
    project.build(dockerfile)
    assert steps(project.build(dockerfile).result, "ADD pkg.tar", "RUN cat") == ["cached"] * 2
    project.write("pkg.tar", archive(b"two\n"))
    again = project.build(dockerfile)
    assert steps(again.result, "ADD pkg.tar", "RUN cat") == ["ran"] * 2
    assert (again.out / "pkg/f").read_text() == "two\n"


def test_mode_of_the_copied_directory_itself_is_part_of_the_key(project: Project) -> None:
    # contenthash: a directory's digest starts with its own header (mode included),
    # even though a contents-only copy does not give that mode to the destination.
    project.write("tree/a", "a\n")
    project.build(DIRECTORY)
    (project.directory / "tree").chmod(0o700)
    assert steps(project.build(DIRECTORY).result, *DIRECTORY_STEPS) == ["ran", "ran"]


def test_trailing_slash_on_a_plain_source_keeps_the_cache(project: Project) -> None:
    project.write("tree/a", "a\n")
    project.build(DIRECTORY)
    again = project.build(DIRECTORY.replace("COPY tree /srv/", "COPY tree/ /srv/")).result
    assert steps(again, "COPY tree", "RUN ls") == ["cached", "cached"]


def test_user_xattrs_of_context_files_are_part_of_the_key(project: Project) -> None:
    app = project.write("app.txt", "v1\n")
    project.build(APP)
    os.setxattr(app, "user.origin", b"edited")
    again = project.build(APP)
    assert steps(again.result, *APP_STEPS) == ["cached", "ran", "ran"]
    assert os.getxattr(again.out / "srv/app.txt", "user.origin") == b"edited"


def test_cache_mount_seed_content_is_in_the_key_but_the_rest_of_its_stage_is_not(
    project: Project,
) -> None:
    def dockerfile(seed: str, noise: str) -> str:
        return (
            BASE.replace("\n", " AS seed\n")
            + f"RUN mkdir /s && echo {seed} > /s/f && echo {noise} > /noise\n"
            + BASE
            + "RUN --mount=type=cache,target=/c,from=seed,source=/s cat /c/f > /seen\n"
        )

    project.build(dockerfile("one", "a"))
    noisy = project.build(dockerfile("one", "b")).result
    assert steps(noisy, "cat /c/f") == ["cached"]
    reseeded = project.build(dockerfile("two", "b"))
    assert steps(reseeded.result, "cat /c/f") == ["ran"]
    assert (reseeded.out / "seen").read_text() == "two\n"


def test_no_cache_empties_the_cache_mounts_of_forced_steps(project: Project) -> None:
    writer = BASE + "RUN --mount=type=cache,target=/c echo kept > /c/f\n"
    project.build(writer)
    reader = BASE + "RUN --mount=type=cache,target=/c ls /c > /listing\n"
    assert (project.build(reader).out / "listing").read_text() == "f\n"
    forced = project.build(reader, no_cache=True)
    assert (forced.out / "listing").read_text() == ""


def test_cache_mount_permissions_select_a_different_cache(project: Project) -> None:
    def dockerfile(mode: str, command: str) -> str:
        return BASE + f"RUN --mount=type=cache,target=/c,id=shared-id,mode={mode} {command}\n"

    project.build(dockerfile("0755", "echo kept > /c/f"))
    same = project.build(dockerfile("0755", "ls /c > /listing"))
    assert (same.out / "listing").read_text() == "f\n"
    other = project.build(dockerfile("0700", "ls /c > /listing"))
    assert (other.out / "listing").read_text() == ""


def test_link_is_ignored_when_chmod_is_given(project: Project) -> None:
    # convert_copy.go: a merge op only when --link and no --chmod.
    project.write("app.txt", "a\n")

    def dockerfile(marker: str) -> str:
        return BASE + f"RUN echo {marker} > /m\nCOPY --link --chmod=0755 app.txt /srv/\n"

    project.build(dockerfile("one"))
    again = project.build(dockerfile("two"))
    assert step(again.result, "COPY --link") == "ran"
    assert (again.out / "srv/app.txt").stat().st_mode & 0o777 == 0o755

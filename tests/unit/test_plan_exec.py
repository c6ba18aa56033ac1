"""RUN: the exec op's argv, environment, working dir, user, mounts and modes."""

from __future__ import annotations

from strata.plan.ops import (
    ContextSource,
    ExecMount,
    FileOp,
    ImageSource,
    MkdirAction,
    MkfileAction,
    MountType,
    Sharing,
)
from tests.unit.test_plan_support import FakeImages, image_config, last_exec, plan, vertices_of

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_shell_form_runs_unexpanded_text_through_sh() -> None:
    op = last_exec(plan("FROM busybox\nRUN echo $HOME   \\\n  && ls\n"))
    assert op.args == ("/bin/sh", "-c", "echo $HOME     && ls")


def test_exec_form_is_passed_as_is() -> None:
    op = last_exec(plan('FROM busybox\nRUN ["echo", "$HOME"]\n'))
    assert op.args == ("echo", "$HOME")


def test_shell_instruction_changes_later_shell_form_runs() -> None:
    op = last_exec(plan('FROM busybox\nSHELL ["/bin/bash", "-eu", "-c"]\nRUN x\n'))
    assert op.args == ("/bin/bash", "-eu", "-c", "x")


def test_env_is_base_env_then_env_and_declared_args_in_order_of_last_assignment() -> None:
    images = FakeImages({"b": image_config(env=["PATH=/bin", "A=base"])})
    op = last_exec(
        plan(
            "FROM b\nENV Z=1\nARG B=2\nENV A=again\nARG UNSET\nRUN true\n",
            images,
        )
    )
    assert op.env == ("PATH=/bin", "Z=1", "B=2", "A=again")


def test_scratch_run_gets_default_path() -> None:
    op = last_exec(plan("FROM scratch\nRUN true\n"))
    assert op.env == (DEFAULT_PATH,)


def test_arg_after_env_overrides_build_environment_but_not_config() -> None:
    result = plan("FROM scratch\nENV V=env\nARG V=arg\nRUN true\n")
    assert "V=arg" in last_exec(result).env
    assert "V=env" in result.config["config"]["Env"]


def test_undeclared_build_args_do_not_reach_run() -> None:
    op = last_exec(plan("FROM scratch\nRUN true\n", build_args={"FOO": "1"}))
    assert not any(e.startswith("FOO=") for e in op.env)


def test_global_arg_reaches_a_stage_only_when_redeclared() -> None:
    text = "ARG V=1\nFROM scratch\n{decl}RUN true\n"
    without = last_exec(plan(text.format(decl="")))
    with_decl = last_exec(plan(text.format(decl="ARG V\n")))
    assert not any(e.startswith("V=") for e in without.env)
    assert "V=1" in with_decl.env


def test_predefined_platform_args_need_redeclaring() -> None:
    from strata.plan.ops import Platform

    result = plan("FROM scratch\nARG TARGETARCH\nRUN true\n", platform=Platform("linux", "arm64"))
    assert "TARGETARCH=arm64" in last_exec(result).env


def test_targetstage_names_the_target_or_default() -> None:
    named = plan("FROM scratch AS final\nARG TARGETSTAGE\nRUN true\n")
    assert "TARGETSTAGE=final" in last_exec(named).env
    unnamed = plan("FROM scratch\nARG TARGETSTAGE\nRUN true\n")
    assert "TARGETSTAGE=default" in last_exec(unnamed).env


def test_workdir_and_user_reach_the_exec_op() -> None:
    images = FakeImages({"b": image_config(workdir="/srv", user="nobody")})
    inherited = last_exec(plan("FROM b\nRUN true\n", images))
    assert (inherited.cwd, inherited.user) == ("/srv", "nobody")
    changed = last_exec(plan("FROM b\nWORKDIR app\nUSER 1000:1000\nRUN true\n", images))
    assert (changed.cwd, changed.user) == ("/srv/app", "1000:1000")


def test_workdir_creates_directory_owned_by_current_user() -> None:
    result = plan("FROM busybox\nUSER app\nWORKDIR /home/app/w\n")
    assert result.target is not None
    op = result.target.op
    assert isinstance(op, FileOp)
    action = op.actions[0]
    assert isinstance(action, MkdirAction)
    assert (action.path, action.mode, action.make_parents) == ("/home/app/w", 0o755, True)
    assert action.chown is not None and action.chown.user == "app"


def test_workdir_mkdir_gets_source_date_epoch_mtime() -> None:
    result = plan("FROM busybox\nWORKDIR /w\n", source_date_epoch=1000)
    assert result.target is not None
    action = result.target.op.actions[0]  # type: ignore[union-attr]
    assert isinstance(action, MkdirAction) and action.mtime == 1000


def test_root_mount_comes_first_and_reads_previous_state() -> None:
    result = plan("FROM busybox\nRUN true\n")
    op = last_exec(result)
    assert op.mounts[0] == ExecMount(target="/", input=0)
    assert result.target is not None
    assert isinstance(result.target.inputs[0].op, ImageSource)


def test_bind_mount_defaults_to_context_readonly_at_workdir_relative_target() -> None:
    result = plan("FROM busybox\nWORKDIR /src\nRUN --mount=source=req.txt,target=r.txt cat r.txt\n")
    op = last_exec(result)
    mount = op.mounts[1]
    assert mount.type is MountType.BIND
    assert (mount.target, mount.selector, mount.readonly) == ("/src/r.txt", "/req.txt", True)
    assert result.target is not None
    assert mount.input is not None
    assert isinstance(result.target.inputs[mount.input].op, ContextSource)


def test_bind_mount_without_target_lands_on_workdir() -> None:
    op = last_exec(plan("FROM busybox\nWORKDIR /w\nRUN --mount=type=bind ls\n"))
    assert op.mounts[1].target == "/w"


def test_bind_mount_source_cannot_leave_root() -> None:
    op = last_exec(plan("FROM busybox\nRUN --mount=src=../../x,target=/x ls\n"))
    assert op.mounts[1].selector == "/x"


def test_bind_mount_rw_and_from_stage() -> None:
    result = plan(
        "FROM busybox AS build\nRUN make\nFROM busybox\n"
        "RUN --mount=type=bind,from=build,source=/out,target=/in,rw ls /in\n"
    )
    mount = last_exec(result).mounts[1]
    assert mount.readonly is False
    assert mount.selector == "/out"
    assert result.target is not None and mount.input is not None
    source = result.target.inputs[mount.input]
    assert source.name.endswith("RUN make")


def test_cache_mount_id_defaults_to_cleaned_target_with_namespace() -> None:
    op = last_exec(plan("FROM busybox\nRUN --mount=type=cache,target=/root/.cache/ true\n"))
    mount = op.mounts[1]
    assert mount.type is MountType.CACHE
    assert (mount.cache_id, mount.sharing, mount.readonly) == (
        "//root/.cache",
        Sharing.SHARED,
        False,
    )
    assert mount.input is None
    ns = last_exec(
        plan(
            "FROM busybox\nRUN --mount=type=cache,target=/c,id=pip,sharing=locked true\n",
            build_args={"BUILDKIT_CACHE_MOUNT_NS": "proj"},
        )
    )
    assert (ns.mounts[1].cache_id, ns.mounts[1].sharing) == ("proj/pip", Sharing.LOCKED)


def test_cache_mount_ownership_goes_through_a_helper_directory() -> None:
    result = plan("FROM busybox\nRUN --mount=type=cache,target=/c,uid=1000,mode=0700 true\n")
    mount = last_exec(result).mounts[1]
    assert mount.selector == "/cache"
    assert result.target is not None and mount.input is not None
    helper = result.target.inputs[mount.input]
    assert helper.name == "[internal] setting cache mount permissions"
    action = helper.op.actions[0]  # type: ignore[union-attr]
    assert isinstance(action, MkdirAction)
    assert (action.path, action.mode) == ("/cache", 0o700)
    assert action.chown is not None and (action.chown.user, action.chown.group) == ("1000", "0")


def test_cache_mount_paths_change_with_workdir_but_id_uses_target_as_written() -> None:
    op = last_exec(plan("FROM busybox\nWORKDIR /w\nRUN --mount=type=cache,target=cache true\n"))
    assert (op.mounts[1].target, op.mounts[1].cache_id) == ("/w/cache", "/cache")


def test_tmpfs_mount_has_size() -> None:
    op = last_exec(plan("FROM busybox\nRUN --mount=type=tmpfs,target=/t,size=64m true\n"))
    assert op.mounts[1] == ExecMount(target="/t", type=MountType.TMPFS, size=64 * 1024 * 1024)


def test_secret_mount_defaults_and_env_form() -> None:
    result = plan(
        "FROM busybox\nRUN --mount=type=secret,id=aws --mount=type=secret,id=tok,env=TOKEN true\n"
    )
    file_secret, env_secret = last_exec(result).mounts[1:]
    assert (file_secret.target, file_secret.secret_id, file_secret.mode) == (
        "/run/secrets/aws",
        "aws",
        0o400,
    )
    assert (env_secret.target, env_secret.env) == ("", "TOKEN")
    assert [s.id for s in result.secrets_used] == ["aws", "tok"]


def test_secret_id_defaults_to_target_basename() -> None:
    op = last_exec(
        plan("FROM busybox\nRUN --mount=type=secret,target=/etc/creds.json,required true\n")
    )
    assert (op.mounts[1].secret_id, op.mounts[1].required) == ("creds.json", True)


def test_ssh_mounts_get_numbered_sockets_and_auth_sock_env() -> None:
    result = plan("FROM busybox\nRUN --mount=type=ssh --mount=type=ssh,id=other true\n")
    op = last_exec(result)
    assert [m.target for m in op.mounts[1:]] == [
        "/run/buildkit/ssh_agent.0",
        "/run/buildkit/ssh_agent.1",
    ]
    assert [m.secret_id for m in op.mounts[1:]] == ["default", "other"]
    assert op.env[-1] == "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"
    assert [s.id for s in result.ssh_used] == ["default", "other"]


def test_mount_values_expand_with_build_env() -> None:
    op = last_exec(plan("FROM busybox\nARG T=/tgt\nRUN --mount=type=tmpfs,target=$T true\n"))
    assert op.mounts[1].target == "/tgt"


def test_network_and_security_modes() -> None:
    op = last_exec(plan("FROM busybox\nRUN --network=none --security=insecure true\n"))
    assert (op.network, op.security) == ("none", "insecure")
    default = last_exec(plan("FROM busybox\nRUN true\n", network="host"))
    assert default.network == "host"


def test_hostname_build_arg_sets_sandbox_hostname() -> None:
    assert last_exec(plan("FROM busybox\nRUN true\n")).hostname == "buildkitsandbox"
    named = plan("FROM busybox\nRUN true\n", build_args={"BUILDKIT_SANDBOX_HOSTNAME": "box"})
    assert last_exec(named).hostname == "box"


def test_proxy_build_args_reach_run_outside_the_env() -> None:
    op = last_exec(plan("FROM busybox\nRUN true\n", build_args={"HTTP_PROXY": "http://p:3128"}))
    assert "HTTP_PROXY=http://p:3128" not in op.env
    assert op.proxy_env == ("HTTP_PROXY=http://p:3128", "http_proxy=http://p:3128")
    declared = last_exec(
        plan("FROM busybox\nARG HTTP_PROXY\nRUN true\n", build_args={"HTTP_PROXY": "x"})
    )
    assert "HTTP_PROXY=x" in declared.env
    assert declared.proxy_env == ("http_proxy=x",)


def test_heredoc_with_shebang_runs_a_file_from_dev_pipes() -> None:
    result = plan("FROM busybox\nRUN <<EOT\n#!/usr/bin/env python3\nprint(1)\nEOT\n")
    op = last_exec(result)
    assert op.args == ("/bin/sh", "-c", "/dev/pipes/EOT")
    pipes = op.mounts[1]
    assert (pipes.target, pipes.readonly, pipes.selector) == ("/dev/pipes/", True, "/")
    assert result.target is not None and pipes.input is not None
    script = result.target.inputs[pipes.input].op.actions[0]  # type: ignore[union-attr]
    assert isinstance(script, MkfileAction)
    assert (script.path, script.mode, script.data) == (
        "/EOT",
        0o755,
        "#!/usr/bin/env python3\nprint(1)\n",
    )


def test_plain_heredoc_body_becomes_the_script_and_chomp_strips_tabs() -> None:
    op = last_exec(plan("FROM busybox\nRUN <<-EOF\n\techo a\n\techo b\n\tEOF\n"))
    assert op.args == ("/bin/sh", "-c", "echo a\necho b\n")


def test_heredoc_as_argument_is_handed_to_the_shell_whole() -> None:
    op = last_exec(plan("FROM busybox\nRUN cat <<A > a && cat <<B > b\none\nA\ntwo\nB\n"))
    assert op.args == ("/bin/sh", "-c", "cat <<A > a && cat <<B > b\none\nA\ntwo\nB")


def test_no_cache_marks_run_copy_add_but_not_workdir_or_from() -> None:
    result = plan("FROM busybox\nWORKDIR /w\nRUN a\nCOPY x /x\nADD y /y\n", no_cache=True)
    flags = {
        v.name.split("] ")[-1].split()[0]: v.no_cache
        for v in result.all_vertices()
        if "] " in v.name and not v.name.startswith("[internal]")
    }
    assert flags == {"FROM": False, "WORKDIR": False, "RUN": True, "COPY": True, "ADD": True}


def test_no_cache_filter_selects_named_stages_case_insensitively() -> None:
    result = plan(
        "FROM busybox AS a\nRUN one\nFROM busybox AS b\nCOPY --from=a / /\nRUN two\n",
        no_cache_filter=["A"],
    )
    by_name = {v.name: v.no_cache for v in result.all_vertices()}
    assert by_name["[a 2/2] RUN one"] is True
    assert by_name["[b 3/3] RUN two"] is False


def test_no_cache_lists_cache_mount_ids_to_empty() -> None:
    result = plan(
        "FROM busybox\nRUN --mount=type=cache,target=/c true\n",
        no_cache=True,
    )
    assert result.cache_ids_to_clear == ["//c"]


def test_vertex_location_points_at_the_instruction() -> None:
    result = plan("FROM busybox\n\nRUN a \\\n  b\n")
    assert result.target is not None
    loc = result.target.location
    assert loc is not None and (loc.start_line, loc.end_line) == (3, 4)
    assert result.locations[result.target.digest] == loc
    assert result.stage_of[result.target.digest] == "stage-0"


def test_image_only_vertices_count_once_in_the_graph() -> None:
    result = plan("FROM busybox\nCOPY --from=busybox /a /a\n")
    assert len(vertices_of(result, ImageSource)) == 1

"""Op identities: what changes a vertex digest and what must not."""

from __future__ import annotations

from strata.plan.ops import ExecOp
from tests.unit.test_plan_support import plan

BASE = """
FROM busybox
ARG VERSION=1
ENV A=1
COPY app /app
RUN build $VERSION
RUN test
"""


def target_digest(text: str, **options: object) -> str:
    result = plan(text, **options)  # type: ignore[arg-type]
    assert result.target is not None
    return result.target.digest


def test_same_dockerfile_gives_identical_digests() -> None:
    one, two = plan(BASE), plan(BASE)
    assert [v.digest for v in one.all_vertices()] == [v.digest for v in two.all_vertices()]


def test_comments_and_blank_lines_do_not_change_digests() -> None:
    moved = "# a comment\n\n" + BASE.replace("ENV A=1", "# note\nENV A=1\n\n")
    assert target_digest(moved) == target_digest(BASE)


def test_changed_build_arg_changes_runs_after_the_arg_but_not_before() -> None:
    one = plan(BASE, build_args={"VERSION": "1"})
    two = plan(BASE, build_args={"VERSION": "2"})
    copy_one = next(v for v in one.all_vertices() if "COPY" in v.name)
    copy_two = next(v for v in two.all_vertices() if "COPY" in v.name)
    assert copy_one.digest == copy_two.digest
    assert one.target is not None and two.target is not None
    assert one.target.digest != two.target.digest


def test_undeclared_build_arg_does_not_change_digests() -> None:
    assert target_digest(BASE, build_args={"OTHER": "x"}) == target_digest(BASE)


def test_proxy_build_args_do_not_change_digests() -> None:
    proxied = target_digest(BASE, build_args={"HTTPS_PROXY": "http://proxy:3128"})
    assert proxied == target_digest(BASE)


def test_run_whitespace_is_part_of_the_key() -> None:
    assert target_digest("FROM busybox\nRUN echo  hi\n") != target_digest(
        "FROM busybox\nRUN echo hi\n"
    )


def test_metadata_instructions_change_later_runs_only_through_env_user_workdir() -> None:
    plain = target_digest("FROM busybox\nRUN x\n")
    assert target_digest("FROM busybox\nLABEL a=b\nEXPOSE 80\nCMD y\nRUN x\n") == plain
    assert target_digest("FROM busybox\nUSER app\nRUN x\n") != plain
    assert target_digest("FROM busybox\nENV Q=1\nRUN x\n") != plain


def test_custom_cache_id_and_sharing_are_in_the_op_for_the_solver_to_strip() -> None:
    result = plan("FROM busybox\nRUN --mount=type=cache,target=/c,id=x,sharing=private true\n")
    assert result.target is not None
    assert isinstance(result.target.op, ExecOp)
    assert result.target.op.mounts[1].cache_id == "/x"


def test_identical_stages_share_vertices() -> None:
    text = "FROM busybox AS a\nRUN same\nFROM busybox AS b\nRUN same\nFROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n"
    result = plan(text)
    a = next(s for s in result.stages if s.name == "a")
    b = next(s for s in result.stages if s.name == "b")
    assert a.state is not None and b.state is not None
    assert a.state.digest == b.state.digest


def test_location_and_names_are_not_identity() -> None:
    one = plan("FROM busybox\nRUN x\n")
    two = plan("FROM busybox AS named\n\n\nRUN x\n")
    assert one.target is not None and two.target is not None
    assert one.target.location != two.target.location
    assert one.target.digest == two.target.digest
    with_mount = plan("FROM busybox\nRUN --mount=type=tmpfs,target=/t x\n")
    without_name_change = plan("FROM busybox\nRUN x\nRUN --mount=type=tmpfs,target=/t x\n")
    assert with_mount.target is not None and without_name_change.target is not None
    assert with_mount.target.name == "[stage-0 2/2] RUN --mount=type=tmpfs,target=/t x"


def test_exec_op_identity_leaves_out_unset_build_flags_and_keeps_set_ones() -> None:
    """Builds without `--add-host`/`--ulimit`/... keep their cache keys; with them, the
    key changes (BuildKit has them in the exec op's Meta)."""
    from strata.plan.ops import ExecMount, ExecOp, op_json
    from strata.sandbox import Ulimit

    plain = ExecOp(args=("true",), env=(), cwd="/", user="", mounts=(ExecMount("/", input=0),))
    assert set(op_json(plain)) == {
        "kind",
        "args",
        "env",
        "cwd",
        "user",
        "mounts",
        "hostname",
        "network",
        "security",
    }
    hosts = ExecOp(**{**plain.__dict__, "extra_hosts": (("db", "10.0.0.2"),)})
    limits = ExecOp(**{**plain.__dict__, "ulimits": (Ulimit("nofile", 1, 1),)})
    digests = {sha(op) for op in (plain, hosts, limits)}
    assert len(digests) == 3


def sha(op: object) -> str:
    from strata.plan.ops import op_json, sha256_json

    return sha256_json(op_json(op))  # type: ignore[arg-type]

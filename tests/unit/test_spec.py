"""The OCI runtime spec we generate, and the wording of a failed step."""

from __future__ import annotations

from pathlib import Path

from strata.gotext import go_quote
from strata.worker.spec import (
    DEFAULT_CAPABILITIES,
    DEFAULT_PATH,
    build_spec,
    hosts_file,
    process_failed_message,
    resolv_conf,
    with_default_path,
)
from strata.worker.users import ResolvedUser

ROOT = ResolvedUser(0, 0)


def _spec(**kw: object) -> dict[str, object]:
    args: dict[str, object] = {
        "args": ["/bin/sh", "-c", "true"],
        "env": [],
        "cwd": "/",
        "user": ROOT,
    }
    args.update(kw)
    return build_spec(**args)  # type: ignore[arg-type]


def _namespaces(spec: dict[str, object]) -> set[str]:
    linux = spec["linux"]
    assert isinstance(linux, dict)
    return {ns["type"] for ns in linux["namespaces"]}


def test_failed_step_message_quotes_argv_like_buildkit() -> None:
    assert (
        process_failed_message(["/bin/sh", "-c", "false"], 1)
        == 'process "/bin/sh -c false" did not complete successfully: exit code: 1'
    )


def test_go_quote_escapes_quotes_backslashes_and_control_characters() -> None:
    assert go_quote('echo "a\\b"\n\t\x01') == '"echo \\"a\\\\b\\"\\n\\t\\x01"'
    assert go_quote("héllo") == '"héllo"'


def test_go_quote_escapes_invalid_bytes_del_bell_and_unprintable_code_points_as_go() -> None:
    raw = b"\xff\x7f\a".decode("utf-8", "surrogateescape")
    assert (
        go_quote(raw + "\u0085\U000e0001\U0001f600")
        == '"\\xff\\x7f\\a\\u0085\\U000e0001\U0001f600"'
    )


def test_default_path_is_added_only_when_env_has_none() -> None:
    assert with_default_path(["A=1"]) == [DEFAULT_PATH, "A=1"]
    assert with_default_path(["PATH=/x"]) == ["PATH=/x"]


def test_env_is_merged_as_containerd_with_env_does_for_buildkit() -> None:
    # PATH first, later values replace earlier ones in place, a bare name unsets.
    env = ["LANG=C", "PATH=/x", "A=1", "LANG=C.UTF-8", "SECRET=s", "A"]
    assert with_default_path(env) == ["PATH=/x", "LANG=C.UTF-8", "SECRET=s"]


def test_sandbox_spec_has_docker_capabilities_and_masked_paths() -> None:
    spec = _spec()
    process = spec["process"]
    assert isinstance(process, dict)
    assert process["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)
    assert "CAP_SYS_ADMIN" not in process["capabilities"]["effective"]
    linux = spec["linux"]
    assert isinstance(linux, dict)
    assert "/proc/kcore" in linux["maskedPaths"]
    assert "/proc/sys" in linux["readonlyPaths"]
    assert spec["hostname"] == "buildkitsandbox"
    assert process["rlimits"][0]["type"] == "RLIMIT_NOFILE"


def test_insecure_spec_is_privileged() -> None:
    spec = _spec(security="insecure")
    process = spec["process"]
    linux = spec["linux"]
    assert isinstance(process, dict) and isinstance(linux, dict)
    assert "CAP_SYS_ADMIN" in process["capabilities"]["effective"]
    assert linux["maskedPaths"] == [] and linux["readonlyPaths"] == []
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    sysfs = [m for m in spec["mounts"] if m["destination"] == "/sys"]  # type: ignore[attr-defined]
    assert "rw" in sysfs[0]["options"]


def test_network_modes_choose_the_network_namespace() -> None:
    assert "network" in _namespaces(_spec(network="none"))
    # No network provider: `default` shares the host's, as BuildKit's OCI worker does
    # without CNI.
    assert "network" not in _namespaces(_spec(network="default"))
    assert "network" not in _namespaces(_spec(network="host"))
    assert {"pid", "ipc", "uts", "mount"} <= _namespaces(_spec())


def test_non_root_user_keeps_bounding_set_but_no_effective_capabilities() -> None:
    spec = _spec(user=ResolvedUser(1000, 1000, (50,)))
    process = spec["process"]
    assert isinstance(process, dict)
    assert process["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 50]}
    assert process["capabilities"]["effective"] == []
    assert process["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)


def test_hosts_and_resolv_files_are_bind_mounted_read_only(tmp_path: Path) -> None:
    spec = _spec(hosts_path=tmp_path / "hosts", resolv_path=tmp_path / "resolv.conf")
    mounts = {m["destination"]: m for m in spec["mounts"]}  # type: ignore[attr-defined]
    assert mounts["/etc/hosts"]["source"] == str(tmp_path / "hosts")
    assert "ro" in mounts["/etc/hosts"]["options"]
    assert "ro" in mounts["/etc/resolv.conf"]["options"]


def test_hosts_file_names_the_sandbox_and_extra_hosts() -> None:
    text = hosts_file("buildkitsandbox", [("db", "10.0.0.2")])
    assert text.splitlines() == [
        "127.0.0.1\tlocalhost buildkitsandbox",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "10.0.0.2\tdb",
    ]


def test_resolv_conf_drops_loopback_servers_except_with_host_network() -> None:
    host = "nameserver 127.0.0.53\nsearch example\n"
    sandbox = resolv_conf(host, "none")
    assert "127.0.0.53" not in sandbox
    assert "nameserver 8.8.8.8" in sandbox and "search example" in sandbox
    assert resolv_conf(host, "host") == host
    assert resolv_conf(host, "default") == host
    assert resolv_conf("nameserver 10.1.1.1\n", "none") == "nameserver 10.1.1.1\n"


def test_build_flags_size_shm_set_rlimits_cgroup_parent_and_resources() -> None:
    from strata.sandbox import ResourceLimits, SandboxOptions, Ulimit

    sandbox = SandboxOptions(
        shm_size=128 << 20,
        ulimits=(Ulimit("nofile", 100, 200), Ulimit("core", -1, -1)),
        cgroup_parent="/ci/",
        resources=ResourceLimits(memory=1 << 30, cpu_quota=50000),
    )
    spec = build_spec(args=["true"], env=[], cwd="/", user=ResolvedUser(0, 0), sandbox=sandbox)
    shm = next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")  # type: ignore[attr-defined]
    assert [o for o in shm["options"] if o.startswith("size=")] == [f"size={128 << 20}"]
    rlimits = {r["type"]: (r["soft"], r["hard"]) for r in spec["process"]["rlimits"]}  # type: ignore[index]
    assert rlimits == {"RLIMIT_NOFILE": (100, 200), "RLIMIT_CORE": (2**64 - 1, 2**64 - 1)}
    linux = spec["linux"]
    assert linux["cgroupsPath"].startswith("/ci/strata-")  # type: ignore[index]
    assert linux["resources"]["memory"] == {"limit": 1 << 30}  # type: ignore[index]
    assert linux["resources"]["cpu"] == {"quota": 50000}  # type: ignore[index]
    assert linux["resources"]["devices"]  # type: ignore[index]


def test_a_spec_without_build_flags_is_unchanged() -> None:
    from strata.sandbox import SandboxOptions

    plain = build_spec(args=["true"], env=[], cwd="/", user=ResolvedUser(0, 0))
    flagged = build_spec(
        args=["true"], env=[], cwd="/", user=ResolvedUser(0, 0), sandbox=SandboxOptions()
    )
    assert plain == flagged


def test_primary_group_is_always_a_supplementary_group() -> None:
    """BuildKit `executor/oci/user.go` `WithUIDGID` → `ensureAdditionalGids` (v0.12+):
    the primary gid is prepended unless already listed; root gets [0]."""
    from strata.worker.spec import supplementary_gids

    assert supplementary_gids(ResolvedUser(0, 0)) == [0]
    assert supplementary_gids(ResolvedUser(1000, 100, (10, 20))) == [100, 10, 20]
    assert supplementary_gids(ResolvedUser(1000, 20, (10, 20))) == [10, 20]
    spec = build_spec(args=["id"], env=[], cwd="/", user=ResolvedUser(7, 7))
    assert spec["process"]["user"]["additionalGids"] == [7]  # type: ignore[index]

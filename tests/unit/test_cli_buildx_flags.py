"""Every flag of `docker buildx build` is known to `strata build`: implemented, or
refused with a message that names it and says why, never click's "No such option".

`BUILDX_FLAGS` is the options table of buildx's docs/reference/buildx_build.md
(docker/buildx, 2026-08); `LEGACY_FLAGS` the hidden flags of its commands/build.go.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from strata.cli.buildx_flags import REFUSED, normalize_bool_flags, read_buildx_flags
from strata.cli.main import cli
from strata.errors import UsageError
from strata.sandbox import ResourceLimits, Ulimit

# (flags as documented, a value for it or None for a boolean)
BUILDX_FLAGS: list[tuple[tuple[str, ...], str | None]] = [
    (("--add-host",), "db=10.0.0.2"),
    (("--allow",), "network.host"),
    (("--annotation",), "org.opencontainers.image.title=demo"),
    (("--attest",), "type=sbom,disabled=true"),
    (("--build-arg",), "A=1"),
    (("--build-context",), "extra=."),
    (("--builder",), "default"),
    (("--cache-from",), "type=local,src=/tmp/cache"),
    (("--cache-to",), "type=local,dest=/tmp/cache"),
    (("--call",), "targets"),
    (("--cgroup-parent",), "strata-test"),
    (("--check",), None),
    (("-D", "--debug"), None),
    (("-f", "--file"), "Dockerfile"),
    (("--iidfile",), "iid"),
    (("--label",), "a=b"),
    (("--load",), None),
    (("--metadata-file",), "meta.json"),
    (("--network",), "none"),
    (("--no-cache",), None),
    (("--no-cache-filter",), "build"),
    (("-o", "--output"), "type=tar,dest=out.tar"),
    (("--platform",), "linux/amd64"),
    (("--policy",), "filename=policy.rego"),
    (("--progress",), "plain"),
    (("--provenance",), "false"),
    (("--pull",), None),
    (("--push",), None),
    (("-q", "--quiet"), None),
    (("--resource",), "memory=1g"),
    (("--sbom",), "false"),
    (("--secret",), "id=home,env=HOME"),
    (("--shm-size",), "128m"),
    (("--ssh",), "key=KEYFILE"),
    (("-t", "--tag"), "demo:1"),
    (("--target",), "build"),
    (("--ulimit",), "nofile=1024:2048"),
]

# buildx's hidden legacy flags: (flag, value or None, the warning buildx prints or "").
LEGACY_FLAGS: list[tuple[str, str | None, str]] = [
    ("--rm", None, ""),
    ("--force-rm", None, ""),
    ("--compress", None, ""),
    ("-m", "512m", ""),
    ("--memory", "512m", ""),
    ("--memory-swap", "1g", ""),
    ("-c", "512", ""),
    ("--cpu-shares", "512", ""),
    ("--cpu-period", "100000", ""),
    ("--cpu-quota", "50000", ""),
    ("--cpuset-cpus", "0", ""),
    ("--cpuset-mems", "0", ""),
    ("--isolation", "default", "isolation flag is deprecated with BuildKit."),
    ("--security-opt", "seccomp=unconfined", "security-opt flag is deprecated."),
    ("--squash", None, "experimental flag squash is removed with BuildKit."),
    ("--print", "targets", ""),
]

@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch AS build\nCOPY Dockerfile /\n")
    (tmp_path / "KEYFILE").write_text("not really a key\n")
    return tmp_path


def _run(context: Path, *args: str) -> Result:
    root = context / "state"
    argv = ["--root", str(root), "build", *args, "--call=targets", str(context)]
    return CliRunner().invoke(cli, [a.replace("KEYFILE", str(context / "KEYFILE")) for a in argv])


@pytest.mark.parametrize(
    ("names", "value"), BUILDX_FLAGS, ids=[names[-1] for names, _ in BUILDX_FLAGS]
)
def test_every_documented_buildx_flag_is_implemented_or_refused_with_a_reason(
    context: Path, names: tuple[str, ...], value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(context)
    for name in names:
        args = [name] if value is None else [name, value]
        result = _run(context, *args)
        output = result.output
        assert "No such option" not in output
        assert "Traceback" not in output
        if name in REFUSED:
            assert result.exit_code == 1, output
            assert output.startswith(f"ERROR: {name} is not supported: "), output
            assert len(output.strip().splitlines()) == 1, output
        elif name == "--check":
            # FROM scratch with no findings: buildx's "no warnings" line, exit 0.
            assert result.exit_code == 0, output
            assert "Check complete, no warnings found." in output
        else:
            assert result.exit_code == 0, output


@pytest.mark.parametrize(
    ("flag", "value", "warning"), LEGACY_FLAGS, ids=[f[0] for f in LEGACY_FLAGS]
)
def test_legacy_docker_build_flags_are_accepted_as_buildx_accepts_them(
    context: Path, flag: str, value: str | None, warning: str
) -> None:
    result = _run(context, *([flag] if value is None else [flag, value]))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING:")]
    if warning:
        assert len(warnings) == 1 and warning in warnings[0], result.stderr
    else:
        assert warnings == [], result.stderr


@pytest.mark.parametrize("value", ["false", "0", "False"])
def test_turning_attestations_off_is_silent(context: Path, value: str) -> None:
    result = _run(
        context,
        f"--provenance={value}",
        f"--sbom={value}",
        "--attest=type=provenance,disabled=true",
    )
    assert (result.exit_code, result.stderr) == (0, "")


@pytest.mark.parametrize(
    ("args", "flag", "why"),
    [
        (["--sbom=true"], "--sbom", "not supported"),
        (["--sbom", "generator=docker/scout"], "--sbom", "not supported"),
        (["--attest", "type=sbom"], "--attest", "not supported"),
        (["--provenance=mode=max"], "--provenance", "not supported yet"),
        (["--provenance=true"], "--provenance", "not supported yet"),
        (["--provenance=mode=min"], "--provenance", "not supported yet"),
        (["--allow", "device"], "--allow device", "not supported"),
    ],
)
def test_asking_for_what_strata_cannot_make_is_one_clear_error(
    context: Path, args: list[str], flag: str, why: str
) -> None:
    result = _run(context, *args)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("ERROR: ") and flag in line and why in line


def test_an_unknown_builder_name_warns_and_builds_here(context: Path) -> None:
    result = _run(context, "--builder", "mybuilder")
    assert result.exit_code == 0
    assert result.stderr.startswith('WARNING: builder "mybuilder" not found')


def test_boolean_flags_take_go_spellings_of_true_and_false() -> None:
    assert normalize_bool_flags(["--rm=false", "--pull=1", "--check=T", "--", "--rm=false"]) == [
        "--pull",
        "--check",
        "--",
        "--rm=false",
    ]
    with pytest.raises(UsageError, match=r'invalid argument "yes" for "--rm" flag'):
        normalize_bool_flags(["--rm=yes"])


def test_sandbox_flags_become_the_requests_run_settings() -> None:
    params = {
        "add_hosts": ("db:10.0.0.2", "v6=[2001:db8::1]", "gw=host-gateway"),
        "ulimits": ("nofile=1024:2048", "core=-1"),
        "shm_size": "128m",
        "cgroup_parent": "ci",
        "memory": "1g",
        "resources": ("cpu-quota=50000",),
        "annotations": ("index:org.opencontainers.image.title=demo",),
    }
    flags = read_buildx_flags(params)
    assert flags.sandbox.extra_hosts == (
        ("db", "10.0.0.2"),
        ("v6", "2001:db8::1"),
        ("gw", "127.0.0.1"),
    )
    assert flags.sandbox.ulimits == (Ulimit("nofile", 1024, 2048), Ulimit("core", -1, -1))
    assert flags.sandbox.shm_size == 128 * 1024 * 1024
    assert flags.sandbox.cgroup_parent == "ci"
    assert flags.sandbox.resources == ResourceLimits(memory=1 << 30, cpu_quota=50000)
    assert flags.annotations == {"index:org.opencontainers.image.title": "demo"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"add_hosts": ("db=not-an-ip",)}, "invalid host db=not-an-ip"),
        ({"ulimits": ("nofile=10:5",)}, "soft limit must be less than or equal to hard"),
        ({"shm_size": "lots"}, 'for "--shm-size" flag'),
        ({"resources": ("gpu=1",)}, 'unknown resource "gpu"'),
        ({"memory": "huge"}, 'invalid value "huge" for resource memory'),
        ({"annotations": ("nokey",)}, "invalid annotation nokey"),
    ],
)
def test_bad_values_are_usage_errors(params: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        read_buildx_flags(params)


def test_no_cache_filter_naming_no_stage_is_ignored_as_buildkit_does(context: Path) -> None:
    """BuildKit compares `--no-cache-filter` names with stage names (strings.EqualFold,
    dockerfile2llb/convert.go `IgnoreCache`): a name no stage has is not an error and
    leaves every step cacheable."""
    from tests.unit.test_plan_exec import plan

    result = plan("FROM busybox AS a\nRUN one\n", no_cache_filter=["nosuchstage"])
    assert not any(v.no_cache for v in result.all_vertices())
    assert _run(context, "--no-cache-filter", "nosuchstage").exit_code == 0


def test_check_reports_lint_rules_by_buildkit_names_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCMD echo hi\nENV a b\n")
    result = CliRunner().invoke(
        cli, ["--root", str(tmp_path / "state"), "build", "--check", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert result.stdout.startswith("Check complete, 2 warnings have been found!\n")
    assert (
        "\nWARNING: JSONArgsRecommended - "
        "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/\n"
    ) in result.stdout
    assert "WARNING: LegacyKeyValueFormat - " in result.stdout
    assert "Dockerfile:3\n" in result.stdout


def test_call_check_json_is_buildkits_lint_result(tmp_path: Path) -> None:
    import json

    (tmp_path / "Dockerfile").write_text("FROM scratch\nCMD echo hi\n")
    result = CliRunner().invoke(
        cli,
        ["--root", str(tmp_path / "state"), "build", "--call=check,format=json", str(tmp_path)],
    )
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert [w["ruleName"] for w in document["warnings"]] == ["JSONArgsRecommended"]
    assert document["sources"][0]["fileName"] == "Dockerfile"

"""Docker's default seccomp profile as strata resolves it for one container."""

from __future__ import annotations

from strata.worker.seccomp import CLONE_NAMESPACE_FLAGS, default_profile, kernel_version
from strata.worker.spec import ALL_CAPABILITIES, DEFAULT_CAPABILITIES, build_spec
from strata.worker.users import ResolvedUser


def entries(profile: dict[str, object] | None) -> list[dict[str, object]]:
    assert profile is not None
    syscalls = profile["syscalls"]
    assert isinstance(syscalls, list)
    return syscalls


def allowed_unconditionally(profile: dict[str, object] | None) -> set[str]:
    return {
        name
        for entry in entries(profile)
        if entry["action"] == "SCMP_ACT_ALLOW" and "args" not in entry
        for name in entry["names"]  # type: ignore[attr-defined]
    }


def test_default_capabilities_refuse_namespaces_keyring_and_io_uring() -> None:
    profile = default_profile(DEFAULT_CAPABILITIES, "x86_64", (6, 1))
    assert profile is not None
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == 1
    allowed = allowed_unconditionally(profile)
    for refused in ("unshare", "setns", "mount", "keyctl", "add_key", "io_uring_setup", "bpf"):
        assert refused not in allowed
    assert {"read", "execve", "chroot", "arch_prctl", "ptrace"} <= allowed
    clone = [e for e in entries(profile) if e["names"] == ["clone"]]
    assert clone == [
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [
                {
                    "index": 0,
                    "value": CLONE_NAMESPACE_FLAGS,
                    "op": "SCMP_CMP_MASKED_EQ",
                    "valueTwo": 0,
                }
            ],
        }
    ]
    assert CLONE_NAMESPACE_FLAGS & 0x10000000  # CLONE_NEWUSER is among the masked flags
    clone3 = [e for e in entries(profile) if e["names"] == ["clone3"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]


def test_cap_sys_admin_allows_namespace_calls_and_plain_clone() -> None:
    allowed = allowed_unconditionally(
        default_profile((*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"), "x86_64", (6, 1))
    )
    assert {"unshare", "setns", "mount", "clone", "clone3"} <= allowed


def test_architecture_specific_calls_follow_the_machine() -> None:
    x86 = default_profile(DEFAULT_CAPABILITIES, "x86_64", (6, 1))
    arm = default_profile(DEFAULT_CAPABILITIES, "aarch64", (6, 1))
    assert x86 is not None and arm is not None
    assert x86["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" in allowed_unconditionally(x86)
    assert "arch_prctl" not in allowed_unconditionally(arm)
    assert "cacheflush" in allowed_unconditionally(arm)
    assert default_profile(DEFAULT_CAPABILITIES, "riscv64", (6, 1)) is None


def test_ptrace_needs_kernel_4_8_and_personality_only_known_personas() -> None:
    assert "ptrace" not in allowed_unconditionally(
        default_profile(DEFAULT_CAPABILITIES, "x86_64", (4, 4))
    )
    profile = default_profile(DEFAULT_CAPABILITIES, "x86_64", (6, 1))
    personas = sorted(
        e["args"][0]["value"]  # type: ignore[index]
        for e in entries(profile)
        if e["names"] == ["personality"]
    )
    assert personas == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    assert kernel_version("6.18.44-fc") == (6, 18)


def test_sandbox_spec_has_the_profile_and_insecure_runs_unconfined() -> None:
    def spec(security: str) -> dict[str, object]:
        built = build_spec(
            args=["true"],
            env=[],
            cwd="/",
            user=ResolvedUser(0, 0),
            security=security,  # type: ignore[arg-type]
        )
        linux = built["linux"]
        assert isinstance(linux, dict)
        return linux

    sandbox = spec("sandbox")
    assert sandbox["seccomp"] == default_profile(DEFAULT_CAPABILITIES)
    assert "seccomp" not in spec("insecure")
    assert len(ALL_CAPABILITIES) > len(DEFAULT_CAPABILITIES)

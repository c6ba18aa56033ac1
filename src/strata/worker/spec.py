"""The OCI runtime spec (config.json) for one build step or `strata run` container.

Defaults follow what BuildKit gets from containerd plus its own changes
(`executor/oci/spec.go`, `spec_unix.go`, `mounts.go`), with Docker's capability set and
masked/read-only paths (moby `oci/defaults.go`, `oci/caps/defaults.go`). Pure functions:
nothing here touches the file system except reading the host's resolv.conf and, for
privileged containers, the host's /dev.
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from strata.gotext import go_quote
from strata.modes import NetworkMode, SecurityMode
from strata.sandbox import SandboxOptions
from strata.worker.seccomp import default_profile
from strata.worker.users import ResolvedUser

OCI_VERSION = "1.0.2"
DEFAULT_HOSTNAME = "buildkitsandbox"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOFILE_LIMIT = 1048576

# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# Every capability by number, for privileged (`--security=insecure`) containers.
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

# moby oci/defaults.go
MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

# Used when the host offers no usable nameserver (BuildKit resolvconf.go, via libnetwork).
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844")


def host_capabilities() -> tuple[str, ...]:
    """Every capability a privileged container can get here: those this kernel knows
    and that are in our own bounding set (a runtime cannot grant more than it holds)."""
    try:
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        last = len(ALL_CAPABILITIES) - 1
    bounding = _own_capabilities("CapBnd")
    known = ALL_CAPABILITIES[: last + 1]
    if bounding is None:
        return known
    return tuple(name for number, name in enumerate(known) if bounding >> number & 1)


def nofile_limit() -> int:
    """BuildKit's RLIMIT_NOFILE (1048576), lowered to our own hard limit when we may not
    raise it (no CAP_SYS_RESOURCE, as in some sandboxes): the runtime would fail with
    "error setting rlimits" otherwise."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= NOFILE_LIMIT or _has_capability(24):
        return NOFILE_LIMIT
    return int(hard)


def _own_capabilities(field: str) -> int | None:
    """A capability mask of this process from /proc/self/status (CapEff, CapBnd...)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return None


def _has_capability(number: int) -> bool:
    mask = _own_capabilities("CapEff")
    return mask is not None and bool(mask >> number & 1)


def with_default_path(env: Sequence[str]) -> list[str]:
    """The process environment BuildKit hands the runtime for `env`.

    BuildKit applies the step's env with containerd's `oci.WithEnv` onto a default spec
    whose env is only the default PATH (`executor/oci/spec.go`; containerd
    `oci/spec_opts.go`, `replaceOrAppendEnvValues`): so PATH always comes first, a
    later `K=V` replaces an earlier one in its place, and a bare `K` unsets K."""
    out = [DEFAULT_PATH]
    index = {"PATH": 0}
    for entry in env:
        key, has_value, _ = entry.partition("=")
        if not has_value:
            if key in index:
                out[index[key]] = ""
            continue
        if key in index:
            out[index[key]] = entry
        else:
            index[key] = len(out)
            out.append(entry)
    return [e for e in out if e]


def hosts_file(hostname: str, extra_hosts: Sequence[tuple[str, str]] = ()) -> str:
    """/etc/hosts of a container (BuildKit `executor/oci/hosts.go`)."""
    text = f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    for host, ip in extra_hosts:
        text += f"{ip}\t{host}\n"
    return text


def resolv_conf(host_text: str, network: NetworkMode) -> str:
    """/etc/resolv.conf of a container, from the host's (BuildKit `resolvconf.go`):
    with the host's network (`host`, and `default` where no private network could be
    made: see `strata.worker.network.container_resolv_conf` for one) as is; otherwise loopback nameservers are
    dropped (they would point into the container) and Google's are used when none remain."""
    if network in ("host", "default"):
        return host_text
    lines: list[str] = []
    servers = 0
    for line in host_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "nameserver" and len(fields) > 1:
            addr = fields[1]
            if addr.startswith("127.") or addr == "::1":
                continue
            servers += 1
        lines.append(line)
    if servers == 0:
        lines += [f"nameserver {ns}" for ns in FALLBACK_NAMESERVERS]
    return "\n".join(lines) + "\n"


def default_mounts(security: SecurityMode) -> list[dict[str, object]]:
    """The file systems every container gets (BuildKit `executor/oci/mounts.go`)."""
    sys_opt = "rw" if security == "insecure" else "ro"
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": []},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", sys_opt],
        },
    ]


def _ro_bind(source: Path, destination: str) -> dict[str, object]:
    return {
        "destination": destination,
        "type": "bind",
        "source": str(source),
        "options": ["nosuid", "noexec", "nodev", "rbind", "ro"],
    }


def host_devices() -> list[dict[str, object]]:
    """Every device node of the host's /dev, for privileged containers."""
    devices: list[dict[str, object]] = []
    for dirpath, dirnames, filenames in os.walk("/dev"):
        dirnames[:] = [d for d in dirnames if d not in ("pts", "shm", "mqueue", "fd")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                kind = "c"
            elif stat.S_ISBLK(st.st_mode):
                kind = "b"
            else:
                continue
            if path in ("/dev/console", "/dev/ptmx"):
                continue
            devices.append(
                {
                    "path": path,
                    "type": kind,
                    "major": os.major(st.st_rdev),
                    "minor": os.minor(st.st_rdev),
                    "fileMode": stat.S_IMODE(st.st_mode),
                    "uid": st.st_uid,
                    "gid": st.st_gid,
                }
            )
    return devices


def supplementary_gids(user: ResolvedUser) -> list[int]:
    """The process's supplementary groups, the primary group always among them (first
    when added): BuildKit `executor/oci/user.go` `WithUIDGID` calls
    `ensureAdditionalGids` since v0.12 (containerd's fix for CVE-2023-25173), so a
    process that drops its primary group with setgroups cannot bypass a group's
    denying permissions."""
    gids = list(user.additional_gids)
    if user.gid not in gids:
        gids.insert(0, user.gid)
    return gids


def build_spec(
    *,
    args: Sequence[str],
    env: Sequence[str],
    cwd: str,
    user: ResolvedUser,
    hostname: str = DEFAULT_HOSTNAME,
    network: NetworkMode = "default",
    security: SecurityMode = "sandbox",
    tty: bool = False,
    hosts_path: Path | None = None,
    resolv_path: Path | None = None,
    mounts: Sequence[dict[str, object]] = (),
    rootfs: str = "rootfs",
    readonly_rootfs: bool = False,
    network_namespace: str | None = None,
    sandbox: SandboxOptions | None = None,
) -> dict[str, object]:
    """A complete config.json. `none` gets a fresh network namespace holding only
    loopback; `default` joins `network_namespace`, the step's private namespace that
    `strata.worker.network` made (each step its own, as `docker build` gives), or where
    none could be made shares the host's, as `host` does.
    `insecure` is Docker's `--privileged`. `sandbox` carries the build's `--shm-size`,
    `--ulimit`, `--cgroup-parent` and `--resource` (`apply_sandbox`).

    Every other container gets Docker's default seccomp profile for its capabilities
    (`strata.worker.seccomp`), as BuildKit's sandbox mode does; `insecure` runs
    unconfined as BuildKit's insecure mode does (`executor/oci/spec.go`,
    `WithSecurityMode`)."""
    privileged = security == "insecure"
    nofile = nofile_limit()
    caps = list(host_capabilities() if privileged else DEFAULT_CAPABILITIES)
    # A non-root user keeps the bounding set but starts without effective capabilities,
    # as it would after execve without file capabilities (Docker behaves the same).
    active = caps if user.uid == 0 or privileged else []
    namespaces: list[dict[str, str]] = [
        {"type": "pid"},
        {"type": "ipc"},
        {"type": "uts"},
        {"type": "mount"},
    ]
    if network == "none":
        namespaces.append({"type": "network"})
    elif network == "default" and network_namespace is not None:
        namespaces.append({"type": "network", "path": network_namespace})

    all_mounts = default_mounts(security)
    if resolv_path is not None:
        all_mounts.append(_ro_bind(resolv_path, "/etc/resolv.conf"))
    if hosts_path is not None:
        all_mounts.append(_ro_bind(hosts_path, "/etc/hosts"))
    # BuildKit `executor/oci/spec_unix.go` adds the cgroup file system, read-only
    # unless privileged.
    all_mounts.append(
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"],
        }
    )
    all_mounts.extend(dict(m) for m in mounts)

    linux: dict[str, object] = {
        "namespaces": namespaces,
        "maskedPaths": [] if privileged else list(MASKED_PATHS),
        "readonlyPaths": [] if privileged else list(READONLY_PATHS),
    }
    profile = None if privileged else default_profile(caps)
    if profile is not None:
        linux["seccomp"] = profile
    if privileged:
        linux["devices"] = host_devices()
        linux["resources"] = {"devices": [{"allow": True, "access": "rwm"}]}
    else:
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}

    spec: dict[str, object] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": tty,
            "user": {
                "uid": user.uid,
                "gid": user.gid,
                "additionalGids": supplementary_gids(user),
            },
            "args": list(args),
            "env": with_default_path(env),
            "cwd": cwd,
            "capabilities": {
                "bounding": caps,
                "effective": active,
                "permitted": active,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": readonly_rootfs},
        "hostname": hostname,
        "mounts": all_mounts,
        "linux": linux,
    }
    if sandbox is not None:
        apply_sandbox(spec, sandbox)
    return spec


def apply_sandbox(spec: dict[str, object], sandbox: SandboxOptions) -> None:
    """The build flags' changes to a spec, as BuildKit's executor makes them
    (`executor/oci/spec.go`): `/dev/shm` sized by `--shm-size`; each `--ulimit` replaces
    the rlimit of its type; `--cgroup-parent` puts the container's cgroup below that
    parent (cgroupfs path form); `--resource` limits in `linux.resources`."""
    mounts = cast(list[dict[str, Any]], spec["mounts"])
    process = cast(dict[str, Any], spec["process"])
    linux = cast(dict[str, Any], spec["linux"])
    if sandbox.shm_size > 0:
        for mount in mounts:
            if mount["destination"] == "/dev/shm":
                options = [o for o in mount["options"] if not str(o).startswith("size=")]
                mount["options"] = [*options, f"size={sandbox.shm_size}"]
    if sandbox.ulimits:
        replaced = {f"RLIMIT_{u.name.upper()}" for u in sandbox.ulimits}
        kept = [r for r in process["rlimits"] if r["type"] not in replaced]
        process["rlimits"] = kept + [u.oci() for u in sandbox.ulimits]
    if sandbox.cgroup_parent:
        parent = "/" + sandbox.cgroup_parent.strip("/")
        linux["cgroupsPath"] = f"{parent.rstrip('/')}/strata-{uuid.uuid4().hex[:16]}"
    linux["resources"] = {**linux["resources"], **sandbox.resources.oci()}


# -- describing a failed process --------------------------------------------------------


def process_failed_message(args: Sequence[str], exit_code: int) -> str:
    """BuildKit's error for a step that exited non-zero (`solver/llbsolver/ops/exec.go`
    wraps the runtime's "exit code: N" with the space-joined argv, Go-quoted)."""
    return (
        f"process {go_quote(' '.join(args))} did not complete successfully: exit code: {exit_code}"
    )

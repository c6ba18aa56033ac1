"""Docker's default seccomp profile, as data, resolved for one container.

A build step runs as root with Docker's capability set; without a filter it can still
create user namespaces (and, inside one, mount file systems and make network
namespaces), use the kernel keyring (`keyctl`, `add_key`, not namespaced) and io_uring
(which runs system calls seccomp never sees). Docker and BuildKit apply a default
profile; this is Docker's, written from the rules moby documents in
`profiles/seccomp/default.json` / `default_linux.go`:

- the default action is SCMP_ACT_ERRNO with errno 1 (EPERM);
- a fixed allow-list of ordinary system calls (`ALLOWED`);
- `socket` for every family but AF_VSOCK; `personality` only with the five personas
  programs ask for (Linux, its 32-bit and UNAME26 variants, and the query 0xffffffff);
- calls allowed only on some architectures (`arch_prctl` on x86_64, the ARM cache
  calls on aarch64...), and calls allowed only to a container holding a capability
  (`mount`, `unshare`, `setns`... with CAP_SYS_ADMIN; `ptrace` with CAP_SYS_PTRACE...);
- without CAP_SYS_ADMIN, `clone` is allowed only when its flags ask for no new
  namespace (the CLONE_NEW* bits masked out), and `clone3`, whose flags live in a
  struct seccomp cannot read, fails with ENOSYS so that libc falls back to `clone`.

The `io_uring_*` calls are left out as moby does since Docker 25 (moby#46762, after
containerd#9320): io_uring can perform operations a filter cannot see.

Pure data and pure functions: `default_profile` takes the architecture, capabilities
and kernel version instead of reading them, so tests can pin each rule.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Collection
from dataclasses import dataclass

ERRNO_EPERM = 1
ERRNO_ENOSYS = 38
AF_VSOCK = 40
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
# CLONE_NEWPID | CLONE_NEWNET (linux/sched.h): a clone asking for any of them is refused.
CLONE_NAMESPACE_FLAGS = (
    0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
)

# Go's GOARCH names (the names moby's filters use) and libseccomp's for each machine we
# know; the first libseccomp name is the native one, the rest the compat ABIs it can run.
ARCHITECTURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "x86_64": ("amd64", ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    "aarch64": ("arm64", ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")),
}


def _names(text: str) -> tuple[str, ...]:
    """System call names from whitespace-separated `text` (long lists stay readable)."""
    return tuple(text.split())


ALLOWED: tuple[str, ...] = _names(
    """
    accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
    clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
    clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
    copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
    epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat
    exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark
    fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
    flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64
    fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd
    getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
    getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom
    getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid
    getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
    inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl
    io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set
    io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset
    landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr
    llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier
    memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall
    mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
    mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
    msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
    _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2
    pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv
    preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2
    read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
    remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
    rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
    sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
    sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
    sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp
    select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
    sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
    setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid
    setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid
    setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt
    shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall
    socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
    sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
    timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
    timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
    times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat
    utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
    """
)

# personality(2) values allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
# and 0xffffffff (query the current persona).
PERSONALITIES: tuple[int, ...] = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)


@dataclass(frozen=True)
class Rule:
    """One conditional entry of the profile: `names` get `action` (with `args`
    conditions and `errno`) when the container's architecture is in `arches` (if given),
    it holds every capability of `caps` and none of `without_caps`, and the kernel is
    at least `min_kernel`; never on `not_arches`."""

    names: tuple[str, ...]
    action: str = "SCMP_ACT_ALLOW"
    args: tuple[dict[str, object], ...] = ()
    errno: int | None = None
    arches: tuple[str, ...] = ()
    not_arches: tuple[str, ...] = ()
    caps: tuple[str, ...] = ()
    without_caps: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None

    def applies(self, goarch: str, capabilities: Collection[str], kernel: tuple[int, int]) -> bool:
        if self.arches and goarch not in self.arches:
            return False
        if goarch in self.not_arches:
            return False
        if any(cap not in capabilities for cap in self.caps):
            return False
        if any(cap in capabilities for cap in self.without_caps):
            return False
        return self.min_kernel is None or kernel >= self.min_kernel


def _arg(index: int, value: int, op: str) -> dict[str, object]:
    return {"index": index, "value": value, "op": op}


CONDITIONAL_RULES: tuple[Rule, ...] = (
    Rule(("process_vm_readv", "process_vm_writev", "ptrace"), min_kernel=(4, 8)),
    Rule(("socket",), args=(_arg(0, AF_VSOCK, "SCMP_CMP_NE"),)),
    *(Rule(("personality",), args=(_arg(0, p, "SCMP_CMP_EQ"),)) for p in PERSONALITIES),
    Rule(("sync_file_range2", "swapcontext"), arches=("ppc64le",)),
    Rule(
        (
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ),
        arches=("arm", "arm64"),
    ),
    Rule(("arch_prctl",), arches=("amd64", "x32")),
    Rule(("modify_ldt",), arches=("amd64", "x32", "x86")),
    Rule(("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"), arches=("s390x",)),
    Rule(("riscv_flush_icache",), arches=("riscv64",)),
    Rule(("open_by_handle_at",), caps=("CAP_DAC_READ_SEARCH",)),
    Rule(
        _names(
            """
            bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
            mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd
            setdomainname sethostname setns syslog umount umount2 unshare
            """
        ),
        caps=("CAP_SYS_ADMIN",),
    ),
    # s390 passes clone's flags second; every other architecture first.
    Rule(
        ("clone",),
        args=(_arg(0, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ") | {"valueTwo": 0},),
        without_caps=("CAP_SYS_ADMIN",),
        not_arches=("s390", "s390x"),
    ),
    Rule(
        ("clone",),
        args=(_arg(1, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ") | {"valueTwo": 0},),
        without_caps=("CAP_SYS_ADMIN",),
        arches=("s390", "s390x"),
    ),
    Rule(("clone3",), action="SCMP_ACT_ERRNO", errno=ERRNO_ENOSYS, without_caps=("CAP_SYS_ADMIN",)),
    Rule(("reboot",), caps=("CAP_SYS_BOOT",)),
    Rule(("chroot",), caps=("CAP_SYS_CHROOT",)),
    Rule(("delete_module", "init_module", "finit_module"), caps=("CAP_SYS_MODULE",)),
    Rule(("acct",), caps=("CAP_SYS_PACCT",)),
    Rule(
        (
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ),
        caps=("CAP_SYS_PTRACE",),
    ),
    Rule(("iopl", "ioperm"), caps=("CAP_SYS_RAWIO",)),
    Rule(("settimeofday", "stime", "clock_settime", "clock_settime64"), caps=("CAP_SYS_TIME",)),
    Rule(("vhangup",), caps=("CAP_SYS_TTY_CONFIG",)),
    Rule(
        ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
        caps=("CAP_SYS_NICE",),
    ),
    Rule(("syslog",), caps=("CAP_SYSLOG",)),
    Rule(("bpf",), caps=("CAP_BPF",)),
    Rule(("perf_event_open",), caps=("CAP_PERFMON",)),
)


def host_machine() -> str:
    return platform.machine()


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of `release` (default: this kernel's), (0, 0) if unreadable."""
    match = re.match(r"(\d+)\.(\d+)", release if release is not None else os.uname().release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def default_profile(
    capabilities: Collection[str],
    machine: str | None = None,
    kernel: tuple[int, int] | None = None,
) -> dict[str, object] | None:
    """The OCI `linux.seccomp` object of Docker's default profile for a container with
    `capabilities` (its bounding set) on `machine` (`platform.machine()` names), or None
    on an architecture the profile does not describe here (the container then runs
    without a filter, as it would with a runtime built without seccomp)."""
    machine = machine if machine is not None else host_machine()
    kernel = kernel if kernel is not None else kernel_version()
    if machine not in ARCHITECTURES:
        return None
    goarch, scmp_arches = ARCHITECTURES[machine]
    syscalls: list[dict[str, object]] = [{"names": list(ALLOWED), "action": "SCMP_ACT_ALLOW"}]
    for rule in CONDITIONAL_RULES:
        if not rule.applies(goarch, capabilities, kernel):
            continue
        entry: dict[str, object] = {"names": list(rule.names), "action": rule.action}
        if rule.args:
            entry["args"] = [dict(a) for a in rule.args]
        if rule.errno is not None:
            entry["errnoRet"] = rule.errno
        syscalls.append(entry)
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": ERRNO_EPERM,
        "architectures": list(scmp_arches),
        "syscalls": syscalls,
    }

"""Kernel-enforced confinement for the generator worker: Landlock and a seccomp-BPF filter.

The worker (:mod:`gen_eval.sources.sandbox_worker`) calls :func:`confine_process` once, while it
is still single-threaded and before it imports any submitted code. From then on the kernel, not
Python, decides what the process may do, so ctypes or C extensions cannot get around it:

- **Landlock** (Linux 5.19+, ABI >= 3) limits the file system: read-only access to the listed
  folders (the submission's own folder, the Python installation, system libraries), read and
  write in one private temporary folder, nothing else. Links or renames across folders
  (``REFER``) and truncation outside that folder are refused too. Where the kernel offers them
  (ABI >= 4, >= 6) TCP bind/connect and signals or abstract Unix sockets leaving the sandbox are
  refused as well, in addition to the filter below.
- **seccomp** refuses, with ``EPERM``, what Landlock does not cover: creating any socket (TCP,
  UDP, Unix: ``socketpair`` stays, it reaches nothing outside), starting programs or processes
  (``execve``, ``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``; ``clone3`` answers
  ``ENOSYS`` so that the C library falls back to ``clone``, whose flags a filter can read, and
  threads keep working), ``io_uring`` (its operations would not pass through this filter),
  signals to other processes, clearing the parent-death signal, changing permissions, owners,
  times or extended attributes (``chmod`` and friends: Landlock does not handle them),
  ``ptrace``, namespaces, mounts, ``bpf``, ``perf_event_open``, ``userfaultfd``, keyrings and
  the privileged calls (``reboot``, modules, clocks, host names...), after every capability has
  been dropped (a grader run as root).
  Another architecture's system-call table (x32, i386) kills the process.

Why ctypes and not a binding: the local package index offers ``landlock`` 1.0.0.dev5 (a
pre-release) and ``pyseccomp`` (a thin wrapper needing the libseccomp shared library at run
time); the three Landlock system calls and a ~100-instruction BPF program are small enough to
read in full here, and need nothing beyond the C library. x86_64 and aarch64 are supported.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

# Landlock (include/uapi/linux/landlock.h); the system-call numbers are the same on every arch.
_LL_CREATE, _LL_ADD_RULE, _LL_RESTRICT = 444, 445, 446
_LL_VERSION = 1
_RULE_PATH_BENEATH = 1
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # rights a rule on a file may hold
READ = READ_FILE | READ_DIR
READ_EXEC = READ | EXECUTE
WRITE = READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | TRUNCATE
MIN_LANDLOCK_ABI = 3  # REFER (2) and TRUNCATE (3): without them a link or truncate escapes

# seccomp (include/uapi/linux/seccomp.h, filter.h, audit.h)
_PR_SET_NO_NEW_PRIVS, _PR_SET_PDEATHSIG = 38, 1
_SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC = 1, 1
_RET_ALLOW, _RET_KILL_PROCESS, _RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_LD_W_ABS, _JEQ_K, _JSET_K, _JGE_K, _RET_K = 0x20, 0x15, 0x45, 0x35, 0x06
_CLONE_THREAD = 0x00010000

# name: (x86_64, aarch64); None where the architecture has no such call.
_SYSCALLS: dict[str, tuple[int | None, int | None]] = {
    "seccomp": (317, 277),
    "execve": (59, 221),
    "execveat": (322, 281),
    "fork": (57, None),
    "vfork": (58, None),
    "clone": (56, 220),
    "clone3": (435, 435),
    "socket": (41, 198),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kill": (62, 129),
    "tkill": (200, 130),
    "tgkill": (234, 131),
    "rt_sigqueueinfo": (129, 138),
    "rt_tgsigqueueinfo": (297, 240),
    "pidfd_open": (434, 434),
    "pidfd_send_signal": (424, 424),
    "pidfd_getfd": (438, 438),
    "prctl": (157, 167),
    "chmod": (90, None),
    "fchmod": (91, 52),
    "fchmodat": (268, 53),
    "fchmodat2": (452, 452),
    "chown": (92, None),
    "fchown": (93, 55),
    "lchown": (94, None),
    "fchownat": (260, 54),
    "utime": (132, None),
    "utimes": (235, None),
    "futimesat": (261, None),
    "utimensat": (280, 88),
    "setxattr": (188, 5),
    "lsetxattr": (189, 6),
    "fsetxattr": (190, 7),
    "removexattr": (197, 14),
    "lremovexattr": (198, 15),
    "fremovexattr": (199, 16),
    "setxattrat": (463, 463),
    "removexattrat": (466, 466),
    "unshare": (272, 97),
    "setns": (308, 268),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "mount_setattr": (442, 442),
    "bpf": (321, 280),
    # Privileged calls: capabilities are dropped first, refused here too (a grader run as root).
    "capset": (126, 91),
    "reboot": (169, 142),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "sethostname": (170, 161),
    "setdomainname": (171, 162),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "clock_adjtime": (305, 266),
    "adjtimex": (159, 171),
    "iopl": (172, None),
    "ioperm": (173, None),
    "acct": (163, 89),
    "quotactl": (179, 60),
    "syslog": (103, 116),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "name_to_handle_at": (303, 264),
    "open_by_handle_at": (304, 265),
}
_DENIED = [name for name in _SYSCALLS if name not in ("seccomp", "clone", "clone3", "prctl")]
_DENIED = [n for n in _DENIED if n not in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")]
_ARCHES = {
    "x86_64": (0, 0xC000003E),
    "amd64": (0, 0xC000003E),
    "aarch64": (1, 0xC00000B7),
    "arm64": (1, 0xC00000B7),
}


class ConfinementError(RuntimeError):
    """The kernel refused to set up a confinement step (the message says which)."""


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    return libc


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers, 0 where it has none (or is not Linux)."""
    if sys.platform != "linux":
        return 0
    version = _libc().syscall(
        ctypes.c_long(_LL_CREATE), None, ctypes.c_size_t(0), ctypes.c_uint32(_LL_VERSION)
    )
    return max(int(version), 0)


def missing_features() -> list[str]:
    """What this system lacks for the sandbox, in words; empty when everything is there."""
    if sys.platform != "linux":
        return [f"Linux Landlock and seccomp (this is {platform.system() or sys.platform})"]
    missing = []
    if platform.machine().lower() not in _ARCHES:
        missing.append(f"a seccomp filter for {platform.machine()} (only x86_64 and aarch64 are written)")
    abi = landlock_abi()
    if abi < MIN_LANDLOCK_ABI:
        found = f"ABI {abi}" if abi else "none (kernel older than 5.13, or landlock not in the lsm= list)"
        missing.append(f"Landlock ABI >= {MIN_LANDLOCK_ABI} (Linux 6.2+; this kernel: {found})")
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    if "Seccomp_filters:" not in status:
        missing.append("seccomp filters (CONFIG_SECCOMP_FILTER)")
    return missing


def _check(result: int, doing: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise ConfinementError(f"{doing} failed: {os.strerror(code)} (errno {code})")
    return result


def _landlock(read: Iterable[Path], write: Iterable[Path], devices: dict[Path, int]) -> int:
    """Restrict this thread (and everything it later starts) to the given paths; returns the ABI."""
    libc = _libc()
    abi = landlock_abi()
    if abi < MIN_LANDLOCK_ABI:
        raise ConfinementError(f"Landlock ABI {abi} is below {MIN_LANDLOCK_ABI}")
    handled_fs = _FS_BY_ABI[max(k for k in _FS_BY_ABI if k <= abi)]
    # ruleset_attr grows with the ABI: fs (v1), net (v4), scoped (v6); pass only what it knows.
    handled_net = 0b11 if abi >= 4 else 0  # BIND_TCP, CONNECT_TCP: no rule grants them
    scoped = 0b11 if abi >= 6 else 0  # abstract Unix sockets and signals stay inside
    attr = struct.pack("<QQQ", handled_fs, handled_net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _check(
        libc.syscall(ctypes.c_long(_LL_CREATE), buffer, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0)),
        "landlock_create_ruleset",
    )
    try:
        rules = [(p, READ_EXEC) for p in read] + [(p, WRITE) for p in write] + list(devices.items())
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # an optional path this system does not have
            try:
                if not os.path.isdir(path):
                    access &= _FILE_ONLY
                rule = struct.pack("<Qi", access & handled_fs, fd)  # packed: u64, s32
                _check(
                    libc.syscall(
                        ctypes.c_long(_LL_ADD_RULE),
                        ctypes.c_int(ruleset),
                        ctypes.c_int(_RULE_PATH_BENEATH),
                        ctypes.create_string_buffer(rule, len(rule)),
                        ctypes.c_uint32(0),
                    ),
                    f"landlock_add_rule({path})",
                )
            finally:
                os.close(fd)
        _check(
            libc.syscall(ctypes.c_long(_LL_RESTRICT), ctypes.c_int(ruleset), ctypes.c_uint32(0)),
            "landlock_restrict_self",
        )
    finally:
        os.close(ruleset)
    return abi


def _filter(arch_index: int, audit_arch: int, pid: int) -> list[tuple[int, int, int, int]]:
    """The BPF program: (code, jt, jf, k) instructions; ``pid`` is the only signal target allowed."""
    numbers = {name: pair[arch_index] for name, pair in _SYSCALLS.items() if pair[arch_index] is not None}
    eperm = _RET_ERRNO | errno.EPERM
    arg0_low = 16  # offsetof(struct seccomp_data, args[0]), low word on little-endian
    program = [
        (_LD_W_ABS, 0, 0, 4),
        (_JEQ_K, 1, 0, audit_arch),
        (_RET_K, 0, 0, _RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, 0),
    ]
    if arch_index == 0:  # x32 system calls share the arch value but set bit 30
        program += [(_JGE_K, 0, 1, 0x40000000), (_RET_K, 0, 0, _RET_KILL_PROCESS)]
    for name in _DENIED:
        if name in numbers:
            program += [(_JEQ_K, 0, 1, numbers[name]), (_RET_K, 0, 0, eperm)]
    program += [(_JEQ_K, 0, 1, numbers["clone3"]), (_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS)]
    # clone: threads only. The block is: load flags, test CLONE_THREAD, allow or refuse.
    program += [(_JEQ_K, 0, 4, numbers["clone"]), (_LD_W_ABS, 0, 0, arg0_low)]
    program += [(_JSET_K, 0, 1, _CLONE_THREAD), (_RET_K, 0, 0, _RET_ALLOW), (_RET_K, 0, 0, eperm)]
    # prctl(PR_SET_PDEATHSIG, ...) would let the worker outlive a killed grader.
    program += [(_JEQ_K, 0, 4, numbers["prctl"]), (_LD_W_ABS, 0, 0, arg0_low)]
    program += [(_JEQ_K, 0, 1, _PR_SET_PDEATHSIG), (_RET_K, 0, 0, eperm), (_RET_K, 0, 0, _RET_ALLOW)]
    # Signals go to this process only (its first argument is the pid or thread-group id).
    for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        program += [(_JEQ_K, 0, 4, numbers[name]), (_LD_W_ABS, 0, 0, arg0_low)]
        program += [(_JEQ_K, 0, 1, pid & 0xFFFFFFFF), (_RET_K, 0, 0, _RET_ALLOW), (_RET_K, 0, 0, eperm)]
    program.append((_RET_K, 0, 0, _RET_ALLOW))
    return program


def _seccomp() -> None:
    machine = platform.machine().lower()
    if machine not in _ARCHES:
        raise ConfinementError(f"no seccomp filter written for {machine}")
    arch_index, audit_arch = _ARCHES[machine]
    program = _filter(arch_index, audit_arch, os.getpid())
    raw = b"".join(struct.pack("<HBBI", *instruction) for instruction in program)
    filters = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program), ctypes.addressof(filters))
    number = _SYSCALLS["seccomp"][arch_index]
    _check(
        _libc().syscall(
            ctypes.c_long(number),
            ctypes.c_uint(_SECCOMP_SET_MODE_FILTER),
            ctypes.c_uint(_SECCOMP_FILTER_FLAG_TSYNC),
            ctypes.byref(fprog),
        ),
        "seccomp(SECCOMP_SET_MODE_FILTER)",
    )


def _drop_capabilities() -> None:
    """Clear every capability (effective, permitted, inheritable): a grader run as root gives its
    worker none of root's powers beyond owning files."""
    header = struct.pack("<Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = bytes(24)  # two __user_cap_data_struct of three zero u32
    _check(
        _libc().capset(ctypes.create_string_buffer(header, 8), ctypes.create_string_buffer(data, 24)),
        "capset (drop capabilities)",
    )


def set_parent_death_signal(parent: int) -> None:
    """Be killed (SIGKILL) when the grader dies; exit now if it already has (``parent`` is its pid)."""
    if sys.platform == "linux":
        _libc().prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def confine_process(read: Iterable[Path], write: Iterable[Path], devices: dict[Path, int]) -> int:
    """Apply Landlock and the seccomp filter to this process, which must have one thread only.

    Parameters
    ----------
    read : iterable of Path
        Folders (or files) readable from now on, with their contents.
    write : iterable of Path
        Folders readable and writable (files and folders may be made, removed, truncated).
    devices : dict of Path to int
        Device files and the Landlock rights each gets (e.g. ``/dev/null``: read and write).

    Returns
    -------
    int
        The Landlock ABI used.

    Raises
    ------
    ConfinementError
        When the process has several threads (Landlock binds only the calling thread) or the
        kernel refuses a step.
    """
    threads = os.listdir("/proc/self/task")
    if len(threads) != 1:
        raise ConfinementError(f"the worker has {len(threads)} threads before confinement; expected 1")
    _check(_libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    abi = _landlock(read, write, devices)
    _drop_capabilities()
    _seccomp()
    return abi

"""The few Linux system calls the sandbox makes itself, through ctypes (no compiler, no extra dependency).

Why here and raw: Landlock and seccomp are applied in the child between fork and exec (``preexec_fn``), where
only prepared, allocation-free calls are safe; everything that can be computed (rule sets, filter programs,
argument buffers) is built in the parent and the child only makes the syscalls.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from functools import cache

LINUX = sys.platform.startswith("linux")  # everything here is Linux; elsewhere every probe says "no"

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_GET_SECCOMP = 21
SECCOMP_MODE_FILTER = 2

# Landlock syscall numbers are the same on every architecture (generic table).
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446

_CAPSET = {"x86_64": 126, "aarch64": 91}


@cache
def libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.syscall.restype = ctypes.c_long
    if LINUX:
        lib.prctl.restype = ctypes.c_int
        lib.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return lib


def machine() -> str:
    return platform.machine().lower()


def check(result: int, what: str) -> int:
    """Raise OSError with errno for a failed libc call (-1)."""
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return libc().prctl(option, arg2, arg3, arg4, arg5)


def cap_last() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 40


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


class CapabilityDrop:
    """Drops every capability of the calling process, for good: bounding set, then effective/permitted/inheritable.

    Prepared in the parent; ``__call__`` only makes syscalls (safe between fork and exec). Needed when the runtime
    runs as root: a root process with capabilities could load a kernel module or make device nodes, which no
    file-system rule stops. With no_new_privs set afterwards, exec cannot give them back.
    """

    def __init__(self) -> None:
        self._last = cap_last()
        self._header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        self._data = (_CapData * 2)()
        self._capset = _CAPSET.get(machine())
        self._lib = libc()

    def __call__(self) -> None:
        for cap in range(self._last + 1):
            self._lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL for unknown caps, EPERM when none: fine
        if self._capset is not None:
            check(
                self._lib.syscall(self._capset, ctypes.byref(self._header), ctypes.byref(self._data)),
                "capset",
            )


def has_capabilities() -> bool:
    """True when this process holds any effective capability (root, or a capable service)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16) != 0
    except OSError:
        pass
    return os.geteuid() == 0


def seccomp_supported() -> bool:
    return LINUX and prctl(PR_GET_SECCOMP) >= 0


def set_child_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process instead of init (so they can be found and ended)."""
    return LINUX and prctl(PR_SET_CHILD_SUBREAPER, 1) == 0

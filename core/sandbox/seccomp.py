"""A seccomp filter that refuses network sockets (the Landlock level's network guard).

Landlock (ABI 4+) only knows TCP bind/connect; UDP, raw sockets and older kernels need this. The filter is a
fixed, dozen-instruction classic-BPF program, assembled here once and loaded between fork and exec:

- ``socket(domain, ...)``: allowed for ``AF_UNIX`` only (local pipes, asyncio's self-pipe, ``socketpair``),
  refused with ``EACCES`` for every other family (``AF_INET``, ``AF_INET6``, ``AF_PACKET``, ``AF_NETLINK``...);
- ``io_uring_setup``: refused (io_uring can open and connect sockets without the ``socket`` syscall);
- another architecture's system calls (a 32-bit binary, or x32 on x86-64), which number ``socket`` differently:
  refused;
- everything else: allowed.

Why hand-assembled rather than libseccomp: the program is tiny and fixed, has no run-time dependency, and must be
loaded with a single prctl between fork and exec.
"""

from __future__ import annotations

import ctypes
import errno
import socket

from always_on.core.sandbox import _sys

# linux/audit.h, and the syscall numbers of the two architectures we support
_ARCHES = {
    "x86_64": {"audit_arch": 0xC000003E, "socket": 41, "io_uring_setup": 425, "x32_bit": 0x40000000},
    "aarch64": {"audit_arch": 0xC00000B7, "socket": 198, "io_uring_setup": 425, "x32_bit": None},
}
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
# struct seccomp_data: nr (0), arch (4), instruction_pointer (8), args[6] (16...); args[0]'s low word first
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def supported() -> tuple[bool, str | None]:
    """Whether the network filter can be loaded here, and if not, why."""
    arch = _sys.machine()
    if arch not in _ARCHES:
        return False, f"no seccomp network filter for the {arch} architecture (x86_64 and aarch64 only)"
    if not _sys.seccomp_supported():
        return False, "the kernel has no seccomp filter support"
    return True, None


def network_filter_program(arch: str | None = None) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions; jumps are relative, as BPF wants them."""
    facts = _ARCHES[arch or _sys.machine()]
    deny = _RET_ERRNO | errno.EACCES
    prog: list[tuple[int, int, int, int]] = []
    labels: dict[str, int] = {}
    fixups: list[tuple[int, str | None, str | None]] = []

    def emit(code: int, k: int, jt: str | None = None, jf: str | None = None) -> None:
        if jt or jf:
            fixups.append((len(prog), jt, jf))
        prog.append((code, 0, 0, k))

    emit(_LD_W_ABS, _OFF_ARCH)
    emit(_JEQ_K, facts["audit_arch"], None, "deny")
    emit(_LD_W_ABS, _OFF_NR)
    if facts["x32_bit"] is not None:
        emit(_JGE_K, facts["x32_bit"], "deny", None)
    emit(_JEQ_K, facts["socket"], "socket", None)
    emit(_JEQ_K, facts["io_uring_setup"], "deny", None)
    emit(_RET_K, _RET_ALLOW)
    labels["socket"] = len(prog)
    emit(_LD_W_ABS, _OFF_ARG0)
    emit(_JEQ_K, int(socket.AF_UNIX), "unix", "deny")
    labels["unix"] = len(prog)
    emit(_RET_K, _RET_ALLOW)
    labels["deny"] = len(prog)
    emit(_RET_K, deny)
    for index, jt, jf in fixups:  # classic BPF only jumps forward
        code, _, _, k = prog[index]
        prog[index] = (
            code,
            labels[jt] - index - 1 if jt else 0,
            labels[jf] - index - 1 if jf else 0,
            k,
        )
    return prog


class NetworkFilter:
    """The network filter, prepared in the parent; ``install()`` loads it on the caller (needs no_new_privs)."""

    def __init__(self) -> None:
        program = network_filter_program()
        self._filters = (_SockFilter * len(program))(*(_SockFilter(*ins) for ins in program))
        self._prog = _SockFprog(len(program), ctypes.cast(self._filters, ctypes.POINTER(_SockFilter)))
        self._prog_address = ctypes.addressof(self._prog)
        self._lib = _sys.libc()

    def install(self) -> None:
        """Safe between fork and exec: one prctl on prepared memory."""
        _sys.check(
            self._lib.prctl(_sys.PR_SET_SECCOMP, _sys.SECCOMP_MODE_FILTER, self._prog_address, 0, 0),
            "prctl(SET_SECCOMP)",
        )

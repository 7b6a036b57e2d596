"""Landlock (Linux >= 5.13) through raw syscalls: a rule set built once in the parent, enforced in each child.

Why raw ctypes and not a binding: the rule set must be *prepared* in the runtime (hundreds of path rules, opened
and added once per confinement) and only *enforced* between fork and exec, where the child makes two syscalls.
Landlock is an allow-list: "read everything except the secret folders" is expressed by granting every sibling
along the path to each hidden entry (``readable_cover``). What each ABI adds and what we use of it:

- 1: file-system access rights (a rename across folders is always refused); 2: ``REFER`` (git moves objects
  from its temp folder, so ABI 1 breaks commits); 3: ``TRUNCATE``;
- 4: TCP ``bind``/``connect`` rules (handled with no port allowed when the network is off);
- 6: scoping: no signals to, and no abstract unix sockets of, processes outside the sandbox.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Iterable
from pathlib import Path

from always_on.core.sandbox import _sys

# access rights (include/uapi/linux/landlock.h)
EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

_RULE_PATH_BENEATH = 1
_CREATE_RULESET_VERSION = 1

FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE  # the rights that apply to a file (not a folder)
READ_RIGHTS = EXECUTE | READ_FILE | READ_DIR
# Everything but device nodes: nothing in a workspace needs to create a block or character device.
WRITE_RIGHTS = (
    READ_RIGHTS
    | WRITE_FILE
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SOCK
    | MAKE_FIFO
    | MAKE_SYM
    | REFER
    | TRUNCATE
)
# Device files every command may write (output to /dev/null, a terminal) or read. The rest of /dev is not
# granted: a root runtime's sandbox could otherwise read a disk (``/dev/vda`` is owned by root) and every secret.
WRITABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/ptmx", "/dev/pts")
READABLE_DEVICES = ("/dev/random", "/dev/urandom")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> tuple[int, str | None]:
    """The kernel's Landlock ABI (0 when unusable) and, when 0, why."""
    if not _sys.LINUX:
        return 0, "Landlock is Linux-only"
    try:
        lib = _sys.libc()
    except OSError as exc:  # pragma: no cover - no libc (not Linux)
        return 0, f"no C library: {exc}"
    abi = lib.syscall(_sys.SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    if abi >= 1:
        return int(abi), None
    err = ctypes.get_errno()
    if err == errno.ENOSYS:
        return 0, "the kernel has no Landlock (Linux 5.13 or later, built with CONFIG_SECURITY_LANDLOCK)"
    if err == errno.EOPNOTSUPP:
        return 0, "Landlock is built in but not enabled (add landlock to the lsm= boot parameter)"
    return 0, f"Landlock is unusable: {os.strerror(err)}"


def fs_rights(abi: int) -> int:
    """The file-system rights this ABI knows (handling an unknown right is an error)."""
    rights = (MAKE_SYM << 1) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    return rights


def readable_cover(hidden: Iterable[Path], root: Path = Path("/")) -> list[Path]:
    """Folders and files to grant read on so that everything under ``root`` is readable except ``hidden``.

    Landlock rules grant whole hierarchies, so hiding ``/home/u/.ssh`` means granting every entry of ``/`` but
    ``home``, every entry of ``/home`` but ``u``, every entry of ``/home/u`` but ``.ssh``. Symbolic links are
    skipped: they resolve to paths that are themselves covered (or hidden). Entries that appear later in those
    ancestor folders are not readable (the rules bind to what exists now).
    """
    secrets = {Path(os.path.realpath(p)) for p in hidden if os.path.lexists(p)}
    if root in secrets:
        return []
    ancestors = {parent for s in secrets for parent in s.parents}
    if not secrets:
        return [root]
    cover: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            path = folder / entry.name
            if path in secrets:
                continue
            try:
                if entry.is_symlink():
                    continue
                if path in ancestors and entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                    continue
            except OSError:
                continue
            cover.append(path)
    return sorted(cover)


def read_paths(hidden: Iterable[Path]) -> list[Path]:
    """What to grant read on: everything but ``hidden`` and ``/dev`` (whose harmless devices are granted)."""
    return [*readable_cover([*hidden, Path("/dev")]), *map(Path, READABLE_DEVICES)]


class LandlockRuleset:
    """One prepared Landlock rule set (an fd kept by the parent); ``restrict()`` enforces it on the caller.

    ``read``: hierarchies granted read and execute; ``write``: granted full file-system rights (minus device
    nodes); ``network=False`` handles TCP bind/connect with nothing allowed (ABI 4+); ``scope`` isolates signals
    and abstract unix sockets (ABI 6+). Paths that do not exist are skipped.
    """

    def __init__(
        self, *, abi: int, read: Iterable[Path], write: Iterable[Path], network: bool, scope: bool = True
    ) -> None:
        self.fd = -1
        if abi < 1:
            raise OSError(errno.EOPNOTSUPP, "Landlock is not available")
        self.abi = abi
        handled = fs_rights(abi)
        attr = _RulesetAttr(
            handled_access_fs=handled,
            handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if (abi >= 4 and not network) else 0,
            scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if (abi >= 6 and scope) else 0,
        )
        lib = self._lib = _sys.libc()
        self.fd = _sys.check(
            lib.syscall(
                _sys.SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0
            ),
            "landlock_create_ruleset",
        )
        self.tcp_blocked = bool(attr.handled_access_net)
        self.scoped = bool(attr.scoped)
        self.rules = 0
        try:
            for path in read:
                self._add(path, READ_RIGHTS & handled)
            for path in write:
                self._add(path, WRITE_RIGHTS & handled)
            for device in WRITABLE_DEVICES:
                self._add(Path(device), (READ_FILE | WRITE_FILE | TRUNCATE | READ_DIR) & handled)
        except BaseException:
            self.close()
            raise
        # prepared for the child: nothing to allocate between fork and exec
        self._restrict_args = (_sys.SYS_LANDLOCK_RESTRICT_SELF, self.fd, 0)

    def _add(self, path: Path, rights: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # gone or unreachable: nothing to grant
        try:
            if not os.path.isdir(f"/proc/self/fd/{fd}"):
                rights &= FILE_RIGHTS
            rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
            _sys.check(
                self._lib.syscall(
                    _sys.SYS_LANDLOCK_ADD_RULE, self.fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0
                ),
                f"landlock_add_rule({path})",
            )
            self.rules += 1
        finally:
            os.close(fd)

    def restrict(self) -> None:
        """Enforce on the calling thread and its future children (sets no_new_privs first, as Landlock requires).

        Safe between fork and exec: only two syscalls on prepared arguments.
        """
        lib = self._lib
        _sys.check(lib.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
        _sys.check(lib.syscall(*self._restrict_args), "landlock_restrict_self")

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:  # the fd is the only resource
        self.close()

"""The fire lock: one fire (or apply, or archive) per project at a time, across processes (DESIGN §3).

The lock file records pid, host and the process's start time (and the boot it belongs to). A holder is alive only
when a process with that pid exists *and* started at that time: a pid the kernel gave to another process after
the holder died (pid reuse) is recognised as stale, like a dead one, and the lock is taken over.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ValidationError

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import utcnow
from always_on.core.storage.files import atomic_write_text, file_lock


class LockInfo(BaseModel):
    pid: int
    host: str
    started_at: datetime
    run_id: str | None = None
    proc_start: int | None = (
        None  # the holder's start time (clock ticks since boot, /proc/<pid>/stat field 22)
    )
    boot_id: str | None = None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None when it does not exist or cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    try:  # the command name may hold spaces and parentheses: the fields that follow start after the last ')'
        return int(raw[raw.rindex(b")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


@cache
def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def holder_alive(info: LockInfo) -> bool:
    """Is the process that wrote ``info`` still running (same host, same pid, same start time, same boot)?"""
    if info.host != socket.gethostname():
        return True  # another machine's process: we cannot tell, so it counts as alive
    if not pid_alive(info.pid):
        return False
    if info.boot_id and boot_id() and info.boot_id != boot_id():
        return False  # written before a reboot
    if info.proc_start is not None:
        now = process_start(info.pid)
        if now is not None and now != info.proc_start:
            return False  # the pid now belongs to another process
    return True


def my_lock_info(run_id: str | None = None) -> LockInfo:
    pid = os.getpid()
    return LockInfo(
        pid=pid,
        host=socket.gethostname(),
        started_at=utcnow(),
        run_id=run_id,
        proc_start=process_start(pid),
        boot_id=boot_id(),
    )


class FireLock:
    """One fire per project at a time, across processes; a lock left by a dead process is taken over."""

    def __init__(self, path: Path, guard: Path) -> None:
        self.path = path
        self.guard = guard
        self.taken_over: LockInfo | None = None

    def holder(self) -> LockInfo | None:
        try:
            return LockInfo.model_validate_json(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValidationError, ValueError, OSError):
            return None

    def is_stale(self, info: LockInfo | None) -> bool:
        return info is None or not holder_alive(info)

    def busy(self) -> LockInfo | None:
        """The live holder, or None when the lock is free or stale."""
        info = self.holder()
        if not self.path.exists() or self.is_stale(info):
            return None
        return info

    def mine(self) -> bool:
        """Does this process hold the lock?"""
        info = self.holder()
        return info is not None and info.host == socket.gethostname() and info.pid == os.getpid()

    def acquire(self, run_id: str | None = None) -> LockInfo:
        with file_lock(self.guard):
            if self.path.exists():
                info = self.holder()
                if not self.is_stale(info):
                    assert info is not None
                    raise AlwaysOnError(
                        ErrorCode.LOCK_BUSY,
                        f"another fire holds the lock (pid {info.pid} on {info.host}, "
                        f"since {info.started_at:%Y-%m-%d %H:%M:%S} UTC)",
                    )
                self.taken_over = info
            mine = my_lock_info(run_id)
            atomic_write_text(self.path, mine.model_dump_json())
            return mine

    def release(self) -> None:
        """Give the lock up (only if this process holds it). Works on a full disk: it only removes a file."""
        with file_lock(self.guard):
            if self.mine():
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()

    def clear_stale(self) -> LockInfo | None:
        with file_lock(self.guard):
            if self.path.exists():
                info = self.holder()
                if self.is_stale(info):
                    self.path.unlink()
                    return info
        return None

    @contextlib.contextmanager
    def held(self, run_id: str | None = None) -> Iterator[LockInfo]:
        info = self.acquire(run_id)
        try:
            yield info
        finally:
            self.release()

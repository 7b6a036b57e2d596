"""File primitives of the store: atomic whole-file writes, whole-line JSONL appends, a cross-process flock.

Records live in SQLite (``store.db``); these serve what stays a file: markdown, append-only logs, the fire lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from always_on.core import text

M = TypeVar("M", bound=BaseModel)


def atomic_write_text(path: Path, content: str) -> None:
    """Write via temp file + fsync + rename so readers only ever see the old or the new whole file.

    Undecodable bytes (an odd file name in a report) are written in their display form, never as an error.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text.display(content))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def append_line(path: Path, line: str) -> None:
    """Append one whole line with a single O_APPEND write (never interleaved with another writer's line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (text.display(line).rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a previous writer died mid-line: start ours on a fresh line
        os.write(fd, data)
    finally:
        os.close(fd)


def read_jsonl(path: Path, model: type[M], warnings: list[str] | None = None) -> list[M]:
    """Read a JSONL log; a torn or garbage line is skipped and noted, the rest is kept."""
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out: list[M] = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(model.model_validate_json(line))
        except ValidationError as exc:
            if warnings is not None:
                warnings.append(f"{path.name}:{number}: skipped unreadable line ({short(exc)})")
    return out


def short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


_held = threading.local()
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive cross-process lock (flock), re-entrant within one thread, exclusive across threads."""
    key = str(path)
    depths: dict[str, int] = _held.__dict__.setdefault("depths", {})
    if depths.get(key):
        depths[key] += 1
        try:
            yield
        finally:
            depths[key] -= 1
        return
    with _thread_locks_guard:
        tlock = _thread_locks.setdefault(key, threading.Lock())
    with tlock:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            depths[key] = 1
            try:
                yield
            finally:
                depths[key] = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

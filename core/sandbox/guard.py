"""The host-side check of git files a confined command must not change (what Landlock cannot make read-only).

Landlock grants whole folders, so inside the writable worktree git dir the ``commondir``/``gitdir`` files, and in
the workspace its ``.git`` file, stay writable. Those files tell git which repository a folder belongs to; the
runtime's own (unconfined) git commands in the workspace would follow a rewritten one to the user's repository.
So the host records them before the agent runs and checks them after every command: anything changed, created
or removed is put back and reported (bubblewrap binds them read-only, and the check still catches files that must
stay *absent*, such as a snapshot's ``.git/commondir``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from always_on.core.workspace._git import rmtree


class GuardChange(BaseModel):
    path: Path
    what: str  # "changed" | "created" | "removed" | "replaced"
    restored: bool

    def describe(self) -> str:
        fix = "put back" if self.restored else "could NOT be put back"
        return f"{self.path} was {self.what} ({fix})"


def _read(path: Path) -> bytes | None | str:
    """File content, None when absent, or a string naming what is there instead of a plain file."""
    try:
        if path.is_symlink():
            return "a symbolic link"
        if path.is_dir():
            return "a folder"
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return "a path through a non-folder"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"


class GitGuard:
    """Remembers the guarded files now; ``check()`` compares, restores and says what changed."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.expected: dict[Path, bytes | None] = {}
        for path in paths:
            value = _read(path)
            if isinstance(value, str):  # not a plain file now: nothing sensible to guard
                continue
            self.expected[path] = value

    def check(self, *, restore: bool = True) -> list[GuardChange]:
        changes: list[GuardChange] = []
        for path, want in self.expected.items():
            have = _read(path)
            if have == want:
                continue
            if isinstance(have, str):
                what = "replaced"
            elif want is None:
                what = "created"
            elif have is None:
                what = "removed"
            else:
                what = "changed"
            changes.append(GuardChange(path=path, what=what, restored=restore and _restore(path, want)))
        return changes


def _restore(path: Path, want: bytes | None) -> bool:
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            rmtree(path)
        if want is not None:
            tmp = path.with_name(f".{path.name}.always-on-restore")
            tmp.write_bytes(want)
            os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            path.with_name(f".{path.name}.always-on-restore").unlink()
        return False
    return _read(path) == want

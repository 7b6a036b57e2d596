"""Test helpers shared by every test folder (importable as `helpers`: tests/ is on sys.path)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(path: Path, files: dict[str, str] | None = None, message: str = "initial") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")
    for name, text in (files or {"README.md": "hello\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return path


# The files of .git an operation on the checkout must leave alone (everything else there is git's business).
KEPT_GIT_FILES = (".git/index", ".git/HEAD", ".git/config", ".git/refs/heads/main", ".git/ORIG_HEAD")


def tree_hashes(path: Path, *, git_files: tuple[str, ...] = KEPT_GIT_FILES) -> dict[str, str]:
    """The state of everything under ``path``, to prove a checkout was not touched (or is exactly as before).

    Every file (its permission bits and SHA-256), every folder (empty ones too: a folder left behind by a rollback
    is a change) and every symbolic link (its target, never followed: a folder swapped for a link is a change);
    inside ``.git`` only ``git_files``. Names that are not UTF-8 are kept exact (surrogate escapes).
    """
    out: dict[str, str] = {}
    for folder, dirs, files in os.walk(path):
        here = Path(folder)
        if here == path:
            dirs[:] = [d for d in dirs if d != ".git"]
            files = [f for f in files if f != ".git"]
        for name in sorted(dirs) + sorted(files):
            full = here / name
            out[full.relative_to(path).as_posix()] = _state(full)
    for rel in git_files:
        if os.path.lexists(path / rel):
            out[rel] = _state(path / rel)
    return out


def _state(full: Path) -> str:
    info = os.lstat(full)
    if stat.S_ISLNK(info.st_mode):
        return "link:" + os.readlink(full)
    if stat.S_ISDIR(info.st_mode):
        return "dir"
    return f"file:{stat.S_IMODE(info.st_mode):o}:" + hashlib.sha256(full.read_bytes()).hexdigest()

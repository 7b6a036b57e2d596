"""Test helpers shared by every test folder (importable as `helpers`: tests/ is on sys.path)."""

from __future__ import annotations

import hashlib
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


def tree_hashes(path: Path) -> dict[str, str]:
    """Hash of every file under path (including .git/index and .git/config) to prove a tree was not touched."""
    out: dict[str, str] = {}
    for file in sorted(path.rglob("*")):
        if file.is_file() and not file.is_symlink():
            rel = file.relative_to(path).as_posix()
            if rel.startswith(".git/") and rel not in (".git/index", ".git/config", ".git/HEAD"):
                continue
            out[rel] = hashlib.sha256(file.read_bytes()).hexdigest()
    return out

"""The demo project: a small git repository with real, auto-fixable lint findings for the built-in `tidy` agent."""

from __future__ import annotations

from pathlib import Path

import git

from always_on.core.errors import AlwaysOnError, ErrorCode

FILES: dict[str, str] = {
    "README.md": "# inventory\n\nA tiny inventory library, used to try always-on.\n",
    "pyproject.toml": '[project]\nname = "inventory"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n',
    "inventory/__init__.py": '"""A tiny inventory library."""\n\nfrom inventory.store import Store\n\n__all__ = ["Store"]\n',
    "inventory/store.py": '''"""An in-memory stock store."""

import json
import os
import sys
from collections import defaultdict


class Store:
    def __init__(self):
        self.items = defaultdict(int)

    def add(self, name, count=1):
        if count <= 0:
            raise ValueError(f"count must be positive")
        self.items[name] += count
        return self.items[name]

    def remove(self, name, count=1):
        if self.items[name] < count:
            raise ValueError(f"not enough stock")
        self.items[name] -= count
        return self.items[name]

    def total(self):
        return sum(self.items.values())
''',
    "inventory/report.py": '''"""Plain-text stock reports."""

import datetime
import textwrap

from inventory.store import Store


def render(store: Store) -> str:
    lines = [f"Inventory report"]
    for name, count in sorted(store.items.items()):
        lines.append(f"{name}: {count}")
    lines.append(f"total: {store.total()}")
    return "\\n".join(lines)
''',
    "tests/test_store.py": """from inventory.report import render
from inventory.store import Store


def test_add_and_remove():
    store = Store()
    store.add("apple", 3)
    store.remove("apple", 1)
    assert store.total() == 2


def test_render():
    store = Store()
    store.add("pear")
    assert "pear: 1" in render(store)
""",
    ".gitignore": "__pycache__/\n*.pyc\n.venv/\n",
}


def create_demo_project(path: Path) -> Path:
    """Create the sample project at `path` (which must not exist) as a git repository with one commit."""
    path = Path(path).expanduser().resolve()
    if path.exists():
        raise AlwaysOnError(
            ErrorCode.DEMO_PATH_EXISTS, f"{path} already exists; give a path that does not exist yet"
        )
    path.mkdir(parents=True)
    for name, text in FILES.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    repo = git.Repo.init(path, initial_branch="main")
    repo.index.add(list(FILES))
    actor = git.Actor("always-on demo", "demo@always-on.localhost")
    repo.index.commit("Initial commit of the demo project", author=actor, committer=actor)
    repo.close()
    return path

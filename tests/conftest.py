"""Shared fixtures: an isolated ALWAYS_ON_HOME per test, and real git repositories in temp folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import make_repo

# always_on is imported from the installed package (editable or not), never from the repository root: the
# folders core/ and tui/ must not be importable as `core`/`tui`. Subprocesses find ruff next to the interpreter.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
os.environ.setdefault("GIT_AUTHOR_NAME", "Test User")
os.environ.setdefault("GIT_AUTHOR_EMAIL", "test@example.com")
os.environ.setdefault("GIT_COMMITTER_NAME", "Test User")
os.environ.setdefault("GIT_COMMITTER_EMAIL", "test@example.com")


@pytest.fixture(autouse=True)
def always_on_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own data/config/workspace home; nothing touches the real user dirs."""
    home = tmp_path_factory.mktemp("ao-home")
    monkeypatch.setenv("ALWAYS_ON_HOME", str(home))
    return home


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_repo(tmp_path / "project")

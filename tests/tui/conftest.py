"""TUI fixtures: a real git project, a seeded store, and an app with a frozen clock (deterministic snapshots)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed import SIZE, frozen_clock, make_app, make_project, seed_full  # noqa: F401 - re-exported


@pytest.fixture(autouse=True)
def fake_home(tmp_path, monkeypatch) -> Path:
    """Paths are shown relative to ~; with HOME at the test folder they read the same in every run."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def seeded(project) -> Path:
    seed_full(project)
    return project

"""Fixtures for end-to-end orchestrator tests: a real git project and the scripted ACP agent as a subprocess."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fire_scripts import Harness


@pytest.fixture
def harness(tmp_path) -> Harness:
    from helpers import make_repo

    project = make_repo(tmp_path / "project", {"README.md": "# demo\n", "app.py": "print('app')\n"})
    return Harness(project, tmp_path)

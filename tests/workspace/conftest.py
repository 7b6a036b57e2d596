"""Fixtures of the workspace tests: a real git project and a workspace base folder, both in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from wshelp import make_project

from always_on.core.workspace import WorkspaceInfo, prepare_workspace


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    return tmp_path / "workspaces"


@pytest.fixture
def ws(project: Path, base_dir: Path) -> WorkspaceInfo:
    return prepare_workspace(project, cycle_id="c1", base_dir=base_dir)

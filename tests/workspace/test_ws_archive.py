"""Archive and cleanup: workspaces go away, worktree registrations too, unapplied work is never lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import git
from wshelp import apply_info, run_plan, worktree_paths, write

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.workspace import (
    WorkspaceInfo,
    apply_plans,
    prepare_workspace,
    prune_stale_worktrees,
    remove_workspace,
)


def test_archive_keeps_a_branch_with_unapplied_commits(project: Path, ws: WorkspaceInfo) -> None:
    done = run_plan(ws, "p1", {"README.md": "# unapplied\n"})
    write(Path(ws.path), "scratch.tmp", "untracked leftovers do not block removal\n")
    kept = remove_workspace(project, ws, unapplied_commits=True)
    assert kept == "always-on/c1"
    assert not Path(ws.path).exists()
    assert worktree_paths(project) == [str(project)]
    assert git(project, "rev-parse", "always-on/c1") == done.after_head


def test_remove_after_apply_deletes_the_branch(project: Path, ws: WorkspaceInfo) -> None:
    result = run_plan(ws, "p1", {"README.md": "# applied\n"})
    apply_plans(project, ws, ["p1"], [apply_info("p1", result)])
    assert remove_workspace(project, ws, unapplied_commits=False) is None
    assert not Path(ws.path).exists() and worktree_paths(project) == [str(project)]
    assert git(project, "branch", "--list", "always-on/*") == ""
    assert (project / "README.md").read_text() == "# applied\n"


def test_remove_when_the_folder_already_vanished(project: Path, ws: WorkspaceInfo) -> None:
    shutil.rmtree(ws.path)
    assert remove_workspace(project, ws, unapplied_commits=False) is None
    assert worktree_paths(project) == [str(project)]
    assert git(project, "branch", "--list", "always-on/*") == ""


def test_snapshot_archive_keeps_unapplied_commits_as_a_bundle(tmp_path: Path, base_dir: Path) -> None:
    project = tmp_path / "plain"
    write(project, "main.py", "print(1)\n")
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    done = run_plan(ws, "p1", {"main.py": "print(2)\n"})
    kept = remove_workspace(project, ws, unapplied_commits=True)
    assert kept is not None and kept.endswith("c1.bundle") and not Path(ws.path).exists()
    clone = tmp_path / "recovered"
    git(tmp_path, "clone", "-q", kept, str(clone))
    assert git(clone, "rev-parse", "HEAD") == done.after_head
    ws2 = prepare_workspace(project, cycle_id="c2", base_dir=base_dir)
    assert remove_workspace(project, ws2, unapplied_commits=False) is None and not Path(ws2.path).exists()


def test_remove_refuses_a_workspace_that_is_the_project(project: Path, ws: WorkspaceInfo) -> None:
    with pytest.raises(AlwaysOnError) as err:
        remove_workspace(
            project, ws.model_copy(update={"path": str(project.parent)}), unapplied_commits=False
        )
    assert err.value.code == ErrorCode.WORKSPACE_UNSAFE
    assert (project / "README.md").exists()


def test_prune_only_touches_always_on_worktrees(project: Path, ws: WorkspaceInfo, tmp_path: Path) -> None:
    users = tmp_path / "users-worktree"
    git(project, "worktree", "add", "-q", "-b", "user-topic", str(users))
    shutil.rmtree(users)
    shutil.rmtree(ws.path)
    assert prune_stale_worktrees(project) == [ws.path]
    assert worktree_paths(project) == [str(project), str(users)]  # the user's own registration is theirs
    assert prune_stale_worktrees(project, only_ours=False) == [str(users)]
    assert worktree_paths(project) == [str(project)]
    assert prune_stale_worktrees(tmp_path / "missing-is-fine") == []

"""Per-plan commits in the workspace: everything the agent left becomes a known list of commits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import git
from wshelp import run_plan, write

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.workspace import WorkspaceInfo, commit_plan, head_of


def test_commit_plan_commits_edits_additions_and_deletions(ws: WorkspaceInfo) -> None:
    root = Path(ws.path)
    write(root, "src/util.py", "def util():\n    return 2\n")
    write(root, "src/new_module.py", "NEW = True\n")
    write(root, "docs/guide.md", None)
    write(root, "debug.log", "ignored by the project's .gitignore\n")
    result = commit_plan(
        ws, plan_id="plan-1", run_id="run-9", title="Fix util\nsecond line", before_head=ws.base_commit
    )
    assert result.before_head == ws.base_commit and result.after_head == head_of(ws) != ws.base_commit
    assert result.commit_shas == [result.after_head] and not result.dirty_after
    assert git(root, "log", "-1", "--format=%an <%ae>|%cn <%ce>") == (
        "always-on <always-on@localhost>|always-on <always-on@localhost>"
    )
    message = git(root, "log", "-1", "--format=%B")
    assert message.splitlines()[0] == "Fix util second line"
    assert "Always-On-Plan: plan-1" in message and "Always-On-Run: run-9" in message
    changed = git(root, "show", "--name-status", "--format=", "HEAD").splitlines()
    assert sorted(changed) == ["A\tsrc/new_module.py", "D\tdocs/guide.md", "M\tsrc/util.py"]
    assert (root / "debug.log").exists() and git(root, "status", "--porcelain") == ""


def test_agent_commits_are_included_oldest_first(ws: WorkspaceInfo) -> None:
    root = Path(ws.path)
    before = head_of(ws)
    write(root, "a.txt", "a\n")
    git(root, "add", "a.txt")
    git(root, "commit", "-q", "-m", "agent commit 1")
    first = head_of(ws)
    write(root, "b.txt", "b\n")
    git(root, "add", "b.txt")
    git(root, "commit", "-q", "-m", "agent commit 2")
    second = head_of(ws)
    write(root, "c.txt", "left uncommitted\n")
    result = commit_plan(ws, plan_id="p", run_id="r", title="t", before_head=before)
    assert result.commit_shas == [first, second, result.after_head]


def test_nothing_to_commit_gives_an_empty_list(ws: WorkspaceInfo) -> None:
    result = commit_plan(ws, plan_id="p", run_id="r", title="t", before_head=ws.base_commit)
    assert result.commit_shas == [] and result.after_head == ws.base_commit


def test_without_before_head_the_previous_plan_end_is_used(ws: WorkspaceInfo) -> None:
    first = run_plan(ws, "p1", {"a.txt": "1\n"})
    write(Path(ws.path), "b.txt", "2\n")
    second = commit_plan(ws, plan_id="p2", run_id="r2", title="second")
    assert second.before_head == first.after_head
    assert second.commit_shas == [second.after_head] and first.commit_shas == [first.after_head]


def test_user_hooks_and_signing_config_do_not_affect_runtime_commits(
    project: Path, ws: WorkspaceInfo
) -> None:
    hook = project / ".git" / "hooks" / "pre-commit"
    hook.write_text('#!/bin/sh\necho hook-ran > "$(git rev-parse --show-toplevel)/HOOK_RAN"\nexit 1\n')
    hook.chmod(0o755)
    git(project, "config", "commit.gpgsign", "true")
    git(project, "config", "gpg.program", "false")
    result = run_plan(ws, "p1", {"README.md": "# edited\n"})
    assert len(result.commit_shas) == 1
    assert not (Path(ws.path) / "HOOK_RAN").exists()


def test_still_dirty_after_commit_is_an_error(ws: WorkspaceInfo) -> None:
    nested = Path(ws.path) / "cloned"
    nested.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=nested, check=True)
    write(nested, "x.py", "x\n")
    git(nested, "add", "x.py")
    git(nested, "commit", "-q", "-m", "nested")
    write(Path(ws.path), "README.md", "# plan work\n")
    with pytest.raises(AlwaysOnError) as err:
        commit_plan(ws, plan_id="p1", run_id="r1", title="t", before_head=ws.base_commit)
    assert err.value.code == ErrorCode.WORKSPACE_DIRTY_AFTER_COMMIT
    assert "cloned/" in err.value.details["files"] and "embedded git repositories" in err.value.message
    assert len(err.value.details["commit_shas"]) == 1  # the rest of the work is committed, not lost


def test_leaving_the_cycle_branch_fails_the_plan(ws: WorkspaceInfo) -> None:
    git(Path(ws.path), "checkout", "-q", "-b", "agent-branch")
    with pytest.raises(AlwaysOnError) as err:
        commit_plan(ws, plan_id="p1", run_id="r1", title="t")
    assert err.value.code == ErrorCode.EXECUTION_FAILED and "agent-branch" in err.value.message


def test_rewritten_history_fails_the_plan(ws: WorkspaceInfo) -> None:
    first = run_plan(ws, "p1", {"a.txt": "1\n"})
    git(Path(ws.path), "reset", "-q", "--hard", ws.base_commit)
    with pytest.raises(AlwaysOnError) as err:
        commit_plan(ws, plan_id="p2", run_id="r2", title="t", before_head=first.after_head)
    assert err.value.code == ErrorCode.EXECUTION_FAILED and "rewritten" in err.value.message


def test_snapshot_commits_work_the_same(tmp_path: Path, base_dir: Path) -> None:
    from always_on.core.workspace import prepare_workspace

    project = tmp_path / "plain"
    write(project, "main.py", "print(1)\n")
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    result = run_plan(ws, "p1", {"main.py": "print(2)\n", "__pycache__/main.pyc": "x"})
    assert len(result.commit_shas) == 1
    assert git(Path(ws.path), "show", "--name-only", "--format=", "HEAD") == "main.py"

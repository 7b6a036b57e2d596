"""Setting a failed attempt aside: its leftovers are kept under a non-branch ref, the next plan starts clean."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import git, tree_hashes
from wshelp import make_index_stale, run_plan, write

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.workspace import (
    ATTEMPTS_REF_PREFIX,
    WorkspaceInfo,
    attempt_ref,
    commit_plan,
    prepare_workspace,
    remove_workspace,
    set_aside,
    unapplied_commits,
)


def _branches(project: Path) -> str:
    return git(project, "branch", "--list", "--all", "--format=%(refname)")


def _user_view(project: Path) -> tuple[dict[str, str], str, list[str]]:
    """Every file and the index/HEAD/config of the checkout, its branch names, and the user's own refs."""
    refs = git(project, "for-each-ref", "refs/heads", "refs/tags").splitlines()
    return tree_hashes(project), _branches(project), [r for r in refs if "refs/heads/always-on/" not in r]


def _failed_attempt(root: Path) -> str:
    """What a failed plan leaves: a commit of its own, then edits, a deletion, untracked and ignored files."""
    write(root, "src/util.py", "def util():\n    return 'committed by the agent'\n")
    git(root, "commit", "-q", "-am", "agent commit")
    agent_commit = git(root, "rev-parse", "HEAD")
    write(root, "README.md", "# half-done edit\n")
    write(root, "docs/guide.md", None)
    write(root, "new/untracked.py", "NEW = 1\n")
    write(root, "debug.log", "ignored output\n")
    return agent_commit


def test_leftovers_go_under_the_ref_and_the_workspace_is_clean(project: Path, ws: WorkspaceInfo) -> None:
    root = Path(ws.path)
    done = run_plan(ws, "p1", {"README.md": "# p1\n"})
    agent_commit = _failed_attempt(root)
    make_index_stale(project)
    before = _user_view(project)

    ref = attempt_ref("p2", "run-1")
    sha = set_aside(ws, to=done.after_head, ref=ref)

    assert sha is not None and git(project, "rev-parse", ref) == sha  # in the user's repository, not a branch
    assert git(project, "rev-parse", f"{sha}^1") == agent_commit
    assert git(project, "show", f"{sha}:README.md") == "# half-done edit"
    assert git(project, "show", f"{sha}:new/untracked.py") == "NEW = 1"
    files = git(project, "ls-tree", "-r", "--name-only", sha).split()
    assert "docs/guide.md" not in files and "debug.log" not in files
    assert git(project, "log", "-1", "--format=%an <%ae>", sha) == "always-on <always-on@localhost>"
    # the workspace is back on its branch at `to`, clean; ignored files are not the attempt's work and stay
    assert git(root, "symbolic-ref", "HEAD") == "refs/heads/always-on/c1"
    assert git(root, "rev-parse", "HEAD") == done.after_head
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    assert (root / "debug.log").exists() and not (root / "new").exists()
    assert (root / "docs/guide.md").read_text() == "guide\n"
    assert _user_view(project) == before


def test_the_next_plan_does_not_inherit_a_set_aside_attempt(project: Path, ws: WorkspaceInfo) -> None:
    root = Path(ws.path)
    done = run_plan(ws, "p1", {"README.md": "# p1\n"})
    write(root, "leftover.txt", "from the failed plan\n")
    commit_plan(ws, plan_id="p2", run_id="r2", title="failed plan, committed before it failed")
    write(root, "more-leftovers.txt", "still uncommitted\n")
    set_aside(ws, to=done.after_head, ref=attempt_ref("p2", "r2"))
    write(root, "p3.txt", "plan 3\n")
    result = commit_plan(ws, plan_id="p3", run_id="r3", title="plan 3")  # range from the last plan's end
    assert result.before_head == done.after_head and len(result.commit_shas) == 1
    assert git(root, "show", "--name-only", "--format=", "HEAD").split() == ["p3.txt"]


def test_nothing_to_set_aside_returns_none(project: Path, ws: WorkspaceInfo) -> None:
    done = run_plan(ws, "p1", {"README.md": "# p1\n"})
    write(Path(ws.path), "debug.log", "ignored files do not count\n")
    assert set_aside(ws, to=done.after_head, ref=attempt_ref("p2", "r1")) is None
    assert git(project, "for-each-ref", ATTEMPTS_REF_PREFIX) == ""
    assert git(Path(ws.path), "rev-parse", "HEAD") == done.after_head


def test_an_agent_that_left_the_branch_loses_nothing(project: Path, ws: WorkspaceInfo) -> None:
    root = Path(ws.path)
    write(root, "on-branch.txt", "committed on the cycle branch\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "on the branch")
    on_branch = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "--detach", ws.base_commit)
    write(root, "detached.txt", "committed on a detached HEAD\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "detached")
    detached = git(root, "rev-parse", "HEAD")

    sha = set_aside(ws, to=ws.base_commit, ref=attempt_ref("p1", "r1"))

    assert git(project, "rev-list", "--parents", "-1", sha).split()[1:] == [detached, on_branch]
    assert git(root, "symbolic-ref", "HEAD") == "refs/heads/always-on/c1"
    assert git(project, "rev-parse", "always-on/c1") == ws.base_commit
    assert not (root / "on-branch.txt").exists() and not (root / "detached.txt").exists()


def test_a_ref_that_is_taken_or_a_branch_is_refused(project: Path, ws: WorkspaceInfo) -> None:
    root = Path(ws.path)
    write(root, "first.txt", "first attempt\n")
    ref = attempt_ref("p1", "r1")
    first = set_aside(ws, to=ws.base_commit, ref=ref)
    write(root, "second.txt", "another attempt\n")
    for bad, words in ((ref, "already records another attempt"), ("refs/heads/main", "cannot hold")):
        with pytest.raises(AlwaysOnError) as err:
            set_aside(ws, to=ws.base_commit, ref=bad)
        assert err.value.code == ErrorCode.EXECUTION_FAILED and words in err.value.message
    assert (root / "second.txt").exists()  # refused before anything was reset
    assert git(project, "rev-parse", ref) == first


def test_archive_keeps_attempt_refs(project: Path, ws: WorkspaceInfo) -> None:
    root = Path(ws.path)
    write(root, "attempt.txt", "kept\n")
    ref = attempt_ref("p1", "r1")
    sha = set_aside(ws, to=ws.base_commit, ref=ref)
    branches = _branches(project)
    assert remove_workspace(project, ws, unapplied_commits=True) == "always-on/c1"
    assert git(project, "rev-parse", ref) == sha
    assert _branches(project) == branches  # an attempt is not a branch
    ws2 = prepare_workspace(project, cycle_id="c2", base_dir=Path(ws.path).parent.parent)
    write(Path(ws2.path), "attempt.txt", "kept too\n")
    sha2 = set_aside(ws2, to=ws2.base_commit, ref=attempt_ref("p9", "r9"))
    assert remove_workspace(project, ws2, unapplied_commits=False) is None
    git(project, "gc", "-q", "--prune=now")
    assert git(project, "show", f"{sha}:attempt.txt") == "kept"
    assert git(project, "show", f"{sha2}:attempt.txt") == "kept too"


def _plain_project(tmp_path: Path) -> Path:
    project = tmp_path / "plain"
    write(project, "main.py", "print(1)\n")
    write(project, "lib/util.py", "X = 1\n")
    return project


def test_snapshot_attempts_are_set_aside_and_bundled(tmp_path: Path, base_dir: Path) -> None:
    project = _plain_project(tmp_path)
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    root = Path(ws.path)
    before = tree_hashes(project)
    write(root, "main.py", "print('half done')\n")
    write(root, "scratch.txt", "untracked\n")
    ref = attempt_ref("p1", "r1")
    sha = set_aside(ws, to=ws.base_commit, ref=ref)
    assert git(root, "show", f"{sha}:main.py") == "print('half done')"
    assert git(root, "show", f"{sha}:scratch.txt") == "untracked"
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(root, "symbolic-ref", "HEAD") == "refs/heads/always-on/c1"
    assert tree_hashes(project) == before
    kept = remove_workspace(project, ws, unapplied_commits=False)  # the attempt alone is worth a bundle
    assert kept is not None and not root.exists()
    assert f"{sha} {ref}" in git(tmp_path, "bundle", "list-heads", kept)


def test_unapplied_commits_of_a_worktree_cycle(project: Path, ws: WorkspaceInfo) -> None:
    p1 = run_plan(ws, "p1", {"README.md": "# p1\n"})
    p2 = run_plan(ws, "p2", {"src/util.py": "def util():\n    return 2\n"})
    write(Path(ws.path), "leftover.txt", "a failed plan's file\n")
    set_aside(ws, to=p2.after_head, ref=attempt_ref("p3", "r3"))
    assert unapplied_commits(ws, p1.commit_shas) == p2.commit_shas
    assert unapplied_commits(ws, p1.commit_shas + p2.commit_shas) == []
    assert unapplied_commits(ws, []) == p1.commit_shas + p2.commit_shas
    shutil.rmtree(ws.path)
    assert unapplied_commits(ws, p1.commit_shas, project=project) == p2.commit_shas
    with pytest.raises(AlwaysOnError) as err:
        unapplied_commits(ws, p1.commit_shas)
    assert err.value.code == ErrorCode.PROJECT_NOT_FOUND
    remove_workspace(project, ws, unapplied_commits=False)
    assert unapplied_commits(ws, [], project=project) == []  # the branch is gone: nothing left


def test_unapplied_commits_of_a_snapshot_cycle(tmp_path: Path, base_dir: Path) -> None:
    project = _plain_project(tmp_path)
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    p1 = run_plan(ws, "p1", {"main.py": "print(2)\n"})
    assert unapplied_commits(ws, []) == p1.commit_shas
    assert unapplied_commits(ws, p1.commit_shas) == []
    remove_workspace(project, ws, unapplied_commits=True)
    assert unapplied_commits(ws, []) == []

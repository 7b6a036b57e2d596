"""The private object directory of a worktree workspace: what the agent's git writes stays out of the user's
object store until the runtime imports it, and every runtime step that reads the workspace's commits finds them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import git
from wshelp import write

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.workspace import (
    WorkspaceInfo,
    commit_plan,
    diff_files,
    prepare_workspace,
    remove_workspace,
    set_aside,
    unapplied_commits,
)
from always_on.core.workspace.objects import import_private_objects, workspace_git


def agent_git(ws: WorkspaceInfo, *args: str) -> str:
    """git as the confined agent runs it in the workspace: with the private-object environment."""
    env = {**os.environ, **workspace_git(ws).env()}
    return subprocess.run(
        ["git", *args], cwd=ws.path, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def has_object(repo: Path, sha: str) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_OBJECT") and "ALTERNATE" not in k}
    return (
        subprocess.run(["git", "-C", str(repo), "cat-file", "-e", sha], env=env, check=False).returncode == 0
    )


def object_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_layout_of_a_worktree_workspace(project: Path, ws: WorkspaceInfo) -> None:
    layout = workspace_git(ws, project)
    common = (project / ".git").resolve()
    assert layout.common_dir == common and layout.git_dir.parent == common / "worktrees"
    assert layout.private_objects == layout.git_dir / "objects" and layout.private_objects.is_dir()
    assert layout.env() == {
        "GIT_OBJECT_DIRECTORY": str(layout.git_dir / "objects"),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(common / "objects"),
    }
    ref_dir, log_dir = common / "refs/heads/always-on", common / "logs/refs/heads/always-on"
    assert layout.writable() == [Path(ws.path).resolve(), layout.git_dir, ref_dir, log_dir]
    assert ref_dir.is_dir() and log_dir.is_dir()
    assert layout.read_only() == [
        Path(ws.path).resolve() / ".git",
        layout.git_dir / "commondir",
        layout.git_dir / "gitdir",
    ]
    assert common / "config" not in layout.writable() and common / "objects" not in layout.writable()


def test_snapshot_layout_has_no_private_objects(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "a.txt").write_text("a\n")
    snap = prepare_workspace(folder, cycle_id="s1", base_dir=tmp_path / "wsbase")
    layout = workspace_git(snap)
    assert layout.env() == {} and layout.private_objects is None
    assert layout.writable() == [Path(snap.path).resolve()]
    assert layout.read_only() == [Path(snap.path).resolve() / ".git" / "config"]


def test_agent_commits_stay_private_until_imported(project: Path, ws: WorkspaceInfo) -> None:
    layout = workspace_git(ws, project)
    before = object_files(project / ".git" / "objects")
    write(Path(ws.path), "src/util.py", "def util():\n    return 2\n")
    agent_git(ws, "commit", "-qam", "agent change")
    sha = agent_git(ws, "rev-parse", "HEAD")
    assert object_files(project / ".git" / "objects") == before  # nothing written to the user's store
    assert not has_object(project, sha)
    assert layout.private_objects is not None and object_files(layout.private_objects) - {"info", "pack"}

    result = import_private_objects(ws)
    assert result.imported == 4 and result.cleared == 4  # blob, trees of src/ and the root, commit
    assert has_object(project, sha)
    assert git(project, "log", "-1", "--format=%s", ws.branch or "") == "agent change"
    assert not [p for p in layout.private_objects.rglob("*") if p.is_file()]
    assert import_private_objects(ws).imported == 0  # idempotent


def test_commit_plan_imports_what_the_agent_staged_and_committed(project: Path, ws: WorkspaceInfo) -> None:
    root = Path(ws.path)
    write(root, "src/a.py", "A = 1\n")
    agent_git(ws, "add", "src/a.py")  # staged only: the blob exists in the private store alone
    agent_git(ws, "commit", "-qm", "agent commit")
    write(root, "src/b.py", "B = 2\n")
    agent_git(ws, "add", "src/b.py")
    result = commit_plan(ws, plan_id="p1", run_id="r1", title="plan", before_head=ws.base_commit)
    assert len(result.commit_shas) == 2
    assert all(has_object(project, sha) for sha in result.commit_shas)
    assert sorted(f.path for f in diff_files(project, ws.base_commit, result.after_head)) == [
        "src/a.py",
        "src/b.py",
    ]


def test_set_aside_and_archive_find_private_commits(project: Path, ws: WorkspaceInfo) -> None:
    write(Path(ws.path), "src/a.py", "A = 1\n")
    agent_git(ws, "add", "-A")
    agent_git(ws, "commit", "-qm", "failed attempt")
    sha = set_aside(ws, to=ws.base_commit, ref="refs/always-on/attempts/p1/r1")
    assert sha is not None and has_object(project, sha)

    write(Path(ws.path), "src/b.py", "B = 1\n")
    agent_git(ws, "add", "-A")
    agent_git(ws, "commit", "-qm", "never applied")
    tip = agent_git(ws, "rev-parse", "HEAD")
    assert unapplied_commits(ws, []) == [tip]
    kept = remove_workspace(project, ws, unapplied_commits=True)
    assert kept == ws.branch and git(project, "rev-parse", f"refs/heads/{ws.branch}") == tip
    assert has_object(project, tip)


def test_removing_the_workspace_imports_first(project: Path, ws: WorkspaceInfo) -> None:
    write(Path(ws.path), "x.txt", "x\n")
    agent_git(ws, "add", "-A")
    agent_git(ws, "commit", "-qm", "last words")
    tip = agent_git(ws, "rev-parse", "HEAD")
    remove_workspace(project, ws, unapplied_commits=True)
    assert has_object(project, tip)


def test_many_objects_and_private_packs_are_imported(project: Path, ws: WorkspaceInfo) -> None:
    root = Path(ws.path)
    for i in range(120):
        write(root, f"gen/f{i}.txt", f"file {i}\n")
    agent_git(ws, "add", "-A")
    agent_git(ws, "commit", "-qm", "many files")
    agent_git(ws, "repack", "-q", "-d", "-l")  # the agent packs its private store (local objects only)
    layout = workspace_git(ws)
    assert layout.private_objects is not None and list((layout.private_objects / "pack").glob("*.pack"))
    tip = agent_git(ws, "rev-parse", "HEAD")
    result = import_private_objects(ws)
    assert result.imported >= 122
    assert git(project, "ls-tree", "-r", "--name-only", tip).count("gen/") == 120
    assert not list((layout.private_objects / "pack").glob("*"))


def test_a_rewritten_git_file_is_refused(project: Path, ws: WorkspaceInfo) -> None:
    workspace_git(ws, project)
    (Path(ws.path) / ".git").write_text(f"gitdir: {project / '.git'}\n")
    with pytest.raises(AlwaysOnError) as err:
        workspace_git(ws, project)
    assert err.value.code == ErrorCode.WORKSPACE_UNSAFE and "disagree" in err.value.message
    with pytest.raises(AlwaysOnError):
        commit_plan(ws, plan_id="p", run_id="r", title="t")

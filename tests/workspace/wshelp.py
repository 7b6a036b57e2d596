"""Helpers for the workspace tests: a small project repository and a stand-in "agent" editing a workspace."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import git, make_repo

from always_on.core.records import DependencyStatus, PlanStatus
from always_on.core.workspace import CommitResult, PlanApplyInfo, WorkspaceInfo, commit_plan, head_of

APP = "".join(f"line {i}\n" for i in range(1, 41))
BINARY = bytes(range(256)) * 8

FILES = {
    "README.md": "# demo\n",
    "src/app.py": APP,
    "src/util.py": "def util():\n    return 1\n",
    "docs/guide.md": "guide\n",
    "scripts/run.sh": "#!/bin/sh\necho run\n",
}


def make_project(path: Path) -> Path:
    """A git project with a few text files, a binary file and an executable script, in two commits."""
    make_repo(path, FILES)
    (path / "scripts" / "run.sh").chmod(0o755)
    (path / "assets").mkdir()
    (path / "assets" / "logo.bin").write_bytes(BINARY)
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "assets")
    return path


def write(root: Path, rel: str, content: str | bytes | None) -> None:
    """Write text/bytes to root/rel (creating folders), or delete it when content is None."""
    target = root / rel
    if content is None:
        target.unlink()
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)


def replace_line(text: str, number: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[number - 1] = new + "\n"
    return "".join(lines)


def run_plan(ws: WorkspaceInfo, plan_id: str, edits: dict[str, str | bytes | None]) -> CommitResult:
    """What an execution does: the agent edits the workspace, then the runtime commits the plan."""
    before = head_of(ws)
    for rel, content in edits.items():
        write(Path(ws.path), rel, content)
    return commit_plan(
        ws, plan_id=plan_id, run_id=f"run-{plan_id}", title=f"plan {plan_id}", before_head=before
    )


def apply_info(
    plan_id: str,
    result: CommitResult,
    *,
    depends_on: list[str] | None = None,
    status: PlanStatus = PlanStatus.COMPLETED,
    dependency: DependencyStatus | None = None,
) -> PlanApplyInfo:
    dep_status = dependency or (DependencyStatus.DEPENDENT if depends_on else DependencyStatus.CLEAN)
    return PlanApplyInfo(
        plan_id=plan_id,
        status=status,
        commit_shas=result.commit_shas,
        dependency_status=dep_status,
        depends_on=depends_on or [],
    )


def make_index_stale(project: Path) -> None:
    """Give a tracked file an old mtime: a plain `git status` would now rewrite .git/index to refresh it."""
    os.utime(project / "README.md", (1_000_000_000, 1_000_000_000))


def worktree_paths(project: Path) -> list[str]:
    return [
        line[len("worktree ") :]
        for line in git(project, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]

"""Leftovers of a crash that no record refers to are pruned at the next fire — a worktree killed inside
``git worktree add`` (locked, half checked out), its branch, a half-made snapshot — unless git shows commits nobody
applied: those are kept and reported."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import git, make_repo

from always_on.core.config import load_config
from always_on.core.orchestrator import Orchestrator
from always_on.core.storage import Store


def _orch(project: Path) -> Orchestrator:
    orch = Orchestrator(project, config=load_config())
    orch.register()
    return orch


def _worktrees(project: Path) -> list[str]:
    blocks = git(project, "worktree", "list", "--porcelain").strip().split("\n\n")
    return [b.split("\n")[0].removeprefix("worktree ") for b in blocks][1:]


def test_a_locked_half_made_worktree_and_its_branch_are_removed(tmp_path):
    project = make_repo(tmp_path / "project", {f"f{i}.txt": f"{i}\n" for i in range(20)})
    orch = _orch(project)
    root = orch.settings.workspace.resolved_base() / orch.store.project_id
    half = root / "cycle-killed-while-adding"
    git(
        project,
        "worktree",
        "add",
        "-q",
        "--lock",
        "--reason",
        "initializing",
        "-b",
        "always-on/cycle-killed-while-adding",
        str(half),
    )
    for name in ("f3.txt", "f7.txt"):  # the checkout was cut short
        (half / name).unlink()
    early = root / "cycle-killed-before-its-head"  # git had not yet given it a commit: HEAD is all zeros
    git(project, "worktree", "add", "-q", "--lock", "--reason", "initializing", "--detach", str(early))
    (project / ".git" / "worktrees" / early.name / "HEAD").write_text("0" * 40 + "\n")
    snapshot = root / "cycle-killed-while-copying"
    (snapshot / ".git").mkdir(parents=True)  # `git init` ran, the copy did not finish
    (snapshot / "f1.txt").write_text("1\n")
    notes = orch._prune_leftovers()
    assert _worktrees(project) == [] and not half.exists() and not snapshot.exists() and not early.exists()
    assert git(project, "branch", "--list", "always-on/*") == ""
    assert any("while it was being created" in n for n in notes) and any("half-made" in n for n in notes)


def test_work_nobody_applied_is_kept_and_reported(tmp_path):
    project = make_repo(tmp_path / "project", {"a.txt": "a\n"})
    orch = _orch(project)
    git(project, "branch", "always-on/cycle-lost", "HEAD")
    wt = tmp_path / "elsewhere"
    git(project, "worktree", "add", "-q", str(wt), "always-on/cycle-lost")
    (wt / "b.txt").write_text("work\n")
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "work nobody applied")
    git(project, "worktree", "remove", str(wt))
    git(project, "update-ref", "refs/always-on/attempts/plan-unknown/run-1", "always-on/cycle-lost")
    notes = orch._prune_leftovers()
    assert git(project, "branch", "--list", "always-on/*").strip() == "always-on/cycle-lost"
    assert any("kept branch always-on/cycle-lost" in n and "1 commit(s) nobody applied" in n for n in notes)
    assert any("plan-unknown" in n for n in notes)


KILLABLE = r"""
import sys
from pathlib import Path
from always_on.core.workspace import prepare_workspace
print("go", flush=True)
prepare_workspace(Path(sys.argv[1]), cycle_id=sys.argv[2], base_dir=Path(sys.argv[3]))
"""


def test_a_kill_during_git_worktree_add_leaves_nothing_after_the_next_fire(tmp_path):
    project = make_repo(
        tmp_path / "project", {f"d{i // 100}/f{i}.txt": "x" * 2000 + f"{i}\n" for i in range(3000)}
    )
    orch = _orch(project)
    base = orch.settings.workspace.resolved_base()
    rng = random.Random(7)
    states = set()
    for n in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-P", "-c", KILLABLE, str(project), f"cycle-k{n}", str(base)],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout.readline().strip() == "go"
        time.sleep(rng.uniform(0.0, 0.4))  # a random instant inside the workspace creation (git included)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        folder = base / orch.store.project_id / f"cycle-k{n}"
        locked = [w for w in _worktrees(project) if w == str(folder)]
        states.add(
            "locked"
            if locked and (project / ".git/worktrees" / folder.name / "locked").exists()
            else "worktree"
            if locked
            else "folder"
            if folder.exists()
            else "nothing"
        )
        orch._prune_leftovers()
        assert _worktrees(project) == []
        assert git(project, "branch", "--list", "always-on/*") == ""
        assert not (base / orch.store.project_id).exists() or not any(
            (base / orch.store.project_id).iterdir()
        )
    print(f"\nleft by the kills: {sorted(states)}")
    assert Store().project(project).open_runs() == []

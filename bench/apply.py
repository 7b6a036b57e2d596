"""Benchmark 3: diff + all-or-nothing apply of a 500-file change vs ``git diff base..head | git apply --3way``.

One plan of a cycle whose two commits touch 500 files (470 modified, 15 added, 15 deleted) of the 20,000-file
repository. The product (``apply_plans``) validates the selection, builds the combined change in a private index,
lists the changed files, refuses dirty or untracked collisions, merges three-way onto the user's HEAD in another
private index, stages the result beside the checkout and swaps it in with rollback. The baseline pipes the same
range into ``git apply --3way`` in a fresh clone of the same state. Both checkouts are reset between samples.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.common import BenchResult, Context, Timer, figure, interleaved
from bench.data import change_files, clone, git, layout
from bench.probe import Probe, merge_medians

TITLE = "diff + all-or-nothing apply of a 500-file change vs git diff | git apply --3way"
MODIFIED, ADDED, DELETED = 470, 15, 15


def run(ctx: Context) -> BenchResult:
    from always_on.core.records import DependencyStatus, PlanStatus
    from always_on.core.workspace import PlanApplyInfo, apply_plans, prepare_workspace

    root = ctx.fresh("apply")
    project = clone(ctx.repo20k(), root / "project")
    ws = prepare_workspace(project, cycle_id="apply-bench", base_dir=root / "workspaces", strategy="worktree")
    wpath = ws.path
    files = layout(19_998)[::40][: MODIFIED + DELETED]  # spread over the tree, one file per folder
    first, second = files[: len(files) // 2], files[len(files) // 2 :]
    change_files(Path(wpath), first)
    git(Path(wpath), "add", "-A")
    git(Path(wpath), "commit", "-q", "-m", "plan: part 1")
    touched = change_files(Path(wpath), second, add=ADDED, delete=DELETED, seed=5)
    git(Path(wpath), "add", "-A")
    git(Path(wpath), "commit", "-q", "-m", "plan: part 2")
    shas = git(Path(wpath), "rev-list", "--reverse", f"{ws.base_commit}..HEAD").decode().split()
    head = shas[-1]
    expected = len(first) + len(touched)
    assert expected == MODIFIED + ADDED + DELETED
    raw = clone(project, root / "raw-clone")
    plans = [
        PlanApplyInfo(
            plan_id="plan-bench",
            status=PlanStatus.COMPLETED,
            commit_shas=shas,
            dependency_status=DependencyStatus.CLEAN,
        )
    ]
    breakdowns: list[dict[str, float]] = []

    def product(i: int) -> float:
        with Probe() as probe:
            probe.wrap_git()
            probe.wrap("always_on.core.workspace.apply._swap", "swap files into the checkout")
            probe.wrap("always_on.core.workspace.apply._check_paths", "symlink check of paths")
            with Timer() as t:
                result = apply_plans(project, ws, ["plan-bench"], plans)
            breakdowns.append(probe.take())
        assert len(result.files) == expected, len(result.files)
        return t.seconds

    def baseline(i: int) -> float:
        with Timer() as t:
            subprocess.run(
                f"git diff {ws.base_commit}..{head} | git apply --3way",
                shell=True,
                cwd=raw,
                check=True,
                capture_output=True,
            )
        return t.seconds

    def reset(i: int) -> None:
        for repo in (project, raw):
            if i >= 0:  # after a sample: both must have applied the whole change
                changed = git(repo, "status", "--porcelain", "--untracked-files=all").decode().splitlines()
                assert len(changed) == expected, (repo, len(changed))
            git(repo, "reset", "-q", "--hard", "HEAD")
            git(repo, "clean", "-fdq")

    def setup(i: int) -> None:
        if i > 0:
            reset(i)

    ours, base = interleaved(ctx.runs, product, baseline, setup=setup)
    reset(ctx.runs)
    ctx.discard(root)
    fig = figure(
        "apply.500",
        f"apply_plans of one plan touching {expected} files (2 commits, 20,000-file repo)",
        "s",
        ours,
        baseline_label="git diff base..head | git apply --3way in a fresh clone",
        baseline_samples=base,
        check="ratio_max",
        limit=1.3,
    )
    return BenchResult(name="apply", title=TITLE, figures=[fig], breakdown=merge_medians(breakdowns))

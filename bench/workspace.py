"""Benchmark 1: prepare_workspace (strategy worktree) on a 20,000-file repository vs a raw ``git worktree add``.

Both create a new branch and a full checkout of the same HEAD commit in a new folder; the product also inspects
the checkout (status for dirty/untracked notes, detached HEAD, branch collisions). Each sample is a new cycle;
the worktrees are removed between samples, outside the timing.
"""

from __future__ import annotations

from bench.common import BenchResult, Context, Timer, figure, interleaved
from bench.data import git
from bench.probe import Probe, merge_medians

TITLE = "workspace prepare (worktree, 20,000 files) vs git worktree add"


def run(ctx: Context) -> BenchResult:
    from always_on.core.workspace import prepare_workspace, remove_workspace

    repo = ctx.repo20k()
    base = ctx.fresh("ws-base")
    raw_dir = ctx.fresh("ws-raw")
    head = git(repo, "rev-parse", "HEAD").decode().strip()
    made = []
    breakdowns: list[dict[str, float]] = []

    def product(i: int) -> float:
        with Probe() as probe:
            probe.wrap_git()
            with Timer() as t:
                ws = prepare_workspace(repo, cycle_id=f"bench-{i}", base_dir=base, strategy="worktree")
            breakdowns.append(probe.take())
        made.append(ws)
        assert ws.strategy == "worktree" and ws.base_commit == head
        return t.seconds

    def baseline(i: int) -> float:
        with Timer() as t:
            git(repo, "worktree", "add", "-q", "-b", f"raw-{i}", str(raw_dir / f"wt-{i}"), head)
        return t.seconds

    def setup(i: int) -> None:  # keep the repository's worktree list short, as a user's would be
        while made:
            remove_workspace(repo, made.pop(), unapplied_commits=False)
        for old in raw_dir.iterdir():
            git(repo, "worktree", "remove", "--force", str(old))
            git(repo, "branch", "-D", f"raw-{old.name.removeprefix('wt-')}")

    ours, raw = interleaved(ctx.samples(heavy=True), product, baseline, setup=setup)
    setup(-1)
    ctx.discard(base)
    ctx.discard(raw_dir)
    fig = figure(
        "workspace.prepare",
        "prepare_workspace, strategy worktree, 20,000-file repository",
        "s",
        ours,
        baseline_label="git worktree add -b of the same commit",
        baseline_samples=raw,
        check="ratio_max",
        limit=1.2,
    )
    return BenchResult(name="workspace", title=TITLE, figures=[fig], breakdown=merge_medians(breakdowns))

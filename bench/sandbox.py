"""Benchmark 11.8: per-command overhead of each sandbox level next to a bare spawn (issue #11: <= 20 ms median).

What is timed is what a terminal command costs the runtime: ``asyncio.create_subprocess_exec`` of ``/bin/true``
until it has exited, once bare (the baseline) and once through ``Confinement.spawn`` at each level available here,
with the real terminal rule set of a worktree workspace (fake HOME with secrets to hide, a checkout with a
``.env``). Spawns are paired: a bare spawn runs right next to each confined spawn (which one goes first
alternates); one sample is the median difference of a batch of 20 pairs, and the figure the median of the samples. The one-time cost of preparing each level
(bwrap's command line, Landlock's rule set) is in the breakdown, and so is what the design avoided: a Python exec
shim (an interpreter start per command) instead of a ``preexec_fn`` making prepared syscalls.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

from bench.common import BenchResult, Context, figure, settle
from bench.data import git

TITLE = "per-command overhead of each sandbox level (bwrap, Landlock+seccomp, none) vs a bare spawn"
LIMIT_MS = 20.0
COMMAND = ["/bin/true"]


def _world(ctx: Context) -> tuple[Path, Path, object]:
    from always_on.core.workspace import prepare_workspace

    root = ctx.fresh("sandbox")
    home = root / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("fake\n")
    (home / ".aws").mkdir()
    project = root / "project"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    (project / "README.md").write_text("# bench\n")
    git(project, "add", "-A")
    git(project, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "init")
    (project / ".env").write_text("SECRET=1\n")
    ws = prepare_workspace(project, cycle_id="bench", base_dir=root / "workspaces")
    return home, project, ws


async def _spawn_bare() -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*COMMAND)
    await proc.wait()
    return time.perf_counter() - t0


async def _spawn_confined(conf) -> float:
    t0 = time.perf_counter()
    proc = await conf.spawn(COMMAND)
    await proc.wait()
    return time.perf_counter() - t0


async def _pairs(conf, count: int) -> tuple[list[float], list[float]]:
    ours, bare = [], []
    for i in range(count):
        order = [("ours", conf), ("bare", None)]
        if i % 2:
            order.reverse()
        for name, target in order:
            if name == "ours":
                ours.append(await _spawn_confined(target))
            else:
                bare.append(await _spawn_bare())
    return ours, bare


def _shim_ms(count: int) -> float:
    """What a Python exec shim would add per command: one interpreter start (``python -P -S -c pass``)."""
    import subprocess

    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-P", "-S", "-c", "pass"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def run(ctx: Context) -> BenchResult:
    from always_on.core.sandbox import Confinement, FireScope, Level, detect, terminal_rules

    home, project, ws = _world(ctx)
    best = detect()
    levels = [lvl for lvl in (Level.BWRAP, Level.LANDLOCK, Level.NONE) if lvl.rank <= best.level.rank]
    batch = 20  # pairs per sample
    figures, breakdown, notes = [], {}, [f"best level here: {best.summary}"]
    scope = FireScope("bench-sandbox")
    try:
        for level in levels:
            t0 = time.perf_counter()
            rules = terminal_rules(project, ws, temp_dir=scope.temp_dir, home=home, environ={})
            conf = Confinement(level, rules, scope)
            breakdown[f"{level.value}.prepare_ms"] = (time.perf_counter() - t0) * 1000
            if level == Level.LANDLOCK and conf._ruleset is not None:
                breakdown["landlock.rule_count"] = conf._ruleset.rules
            settle()
            asyncio.run(_pairs(conf, 3))  # warm-up (page cache, bwrap binary)
            diffs, bares, ratios, spawns = [], [], [], []
            for _ in range(ctx.runs):
                ours, bare = asyncio.run(_pairs(conf, batch))
                diffs.append(statistics.median((o - b) * 1000 for o, b in zip(ours, bare, strict=True)))
                bares.append(statistics.median(bare) * 1000)
                ratios.append(statistics.median(o / b for o, b in zip(ours, bare, strict=True)))
                spawns += ours
            conf.close()
            breakdown[f"{level.value}.spawn_median_ms"] = statistics.median(spawns) * 1000
            figures.append(
                figure(
                    f"sandbox.{level.value}",
                    f"overhead per command, level {level.value} ({ctx.runs} x {batch} paired spawns of /bin/true)",
                    "ms",
                    diffs,
                    check="value_max",
                    limit=LIMIT_MS,
                    baseline_label="bare asyncio.create_subprocess_exec of /bin/true, ms",
                    baseline_samples=bares,
                    ratios=ratios,
                )
            )
        t0 = time.perf_counter()
        for _ in range(20):
            scope._save()  # what FireScope.started adds to every spawn: the record rewritten (crash recovery)
        breakdown["fire_record_write_ms"] = (time.perf_counter() - t0) / 20 * 1000
        breakdown["python_exec_shim_ms"] = _shim_ms(max(5, ctx.runs * 3))
        breakdown["fire_scope_method"] = scope.method
        notes.append(
            f"levels measured: {', '.join(lvl.value for lvl in levels)}; "
            f"python exec shim (avoided) would add ~{breakdown['python_exec_shim_ms']:.0f} ms per command"
        )
    finally:
        scope.end()
    return BenchResult(name="sandbox", title=TITLE, figures=figures, breakdown=breakdown, notes=notes)

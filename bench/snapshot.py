"""Benchmark 2: snapshot copy of a 20,000-file non-git folder vs ``cp -a`` of it.

The folder holds 15,000 project files and 5,000 files in node_modules/ and .venv/ that the snapshot must skip
(checked after every sample). The product lists the files (git's ignore rules), checks the size cap, copies the
kept files in parallel ``cp`` batches, and records them as the snapshot's base commit (``git add`` + ``commit``);
``cp -a`` copies everything and records nothing. Each sample writes to a new folder, removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bench.common import BenchResult, Context, Timer, figure, interleaved
from bench.data import count_files, make_plain_folder
from bench.probe import Probe, merge_medians

TITLE = "snapshot copy (20,000-file non-git folder, ignored folders skipped) vs cp -a"
FILES, IGNORED = 20_000, 5_000


def run(ctx: Context) -> BenchResult:
    from always_on.core.workspace import prepare_workspace
    from always_on.core.workspace._git import rmtree

    holder = ctx.shared("plain-20k", lambda path: (make_plain_folder(path, FILES, IGNORED), path)[1])
    kept = FILES - IGNORED
    base = ctx.fresh("snap-base")
    raw_dir = ctx.fresh("snap-raw")
    breakdowns: list[dict[str, float]] = []
    leftovers = []

    def product(i: int) -> float:
        with Probe() as probe:
            probe.wrap_git()
            probe.wrap("always_on.core.workspace.providers._bulk_copy", "copy files (cp batches)")
            probe.wrap("always_on.core.workspace.providers._sizes", "size check (lstat)")
            with Timer() as t:
                ws = prepare_workspace(holder, cycle_id=f"snap-{i}", base_dir=base, strategy="snapshot")
            breakdowns.append(probe.take())
        leftovers.append(ws.path)
        copied = count_files(ws.path) - count_files(f"{ws.path}/.git")
        assert copied == kept, f"snapshot copied {copied} files, expected {kept}"
        assert not any(os.path.exists(f"{ws.path}/{name}") for name in ("node_modules", ".venv"))
        return t.seconds

    def baseline(i: int) -> float:
        with Timer() as t:
            subprocess.run(["cp", "-a", str(holder), str(raw_dir / f"copy-{i}")], check=True)
        return t.seconds

    def setup(i: int) -> None:
        while leftovers:
            rmtree(Path(leftovers.pop()))
        for old in raw_dir.iterdir():
            ctx.discard(old)

    ours, raw = interleaved(ctx.samples(heavy=True), product, baseline, setup=setup)
    setup(-1)
    ctx.discard(base)
    ctx.discard(raw_dir)
    fig = figure(
        "snapshot.copy",
        f"prepare_workspace, strategy snapshot ({kept:,} files kept, {IGNORED:,} skipped)",
        "s",
        ours,
        baseline_label=f"cp -a of the whole folder ({FILES:,} files)",
        baseline_samples=raw,
        check="ratio_max",
        limit=1.0,
    )
    return BenchResult(name="snapshot", title=TITLE, figures=[fig], breakdown=merge_medians(breakdowns))

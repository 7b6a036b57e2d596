"""What every benchmark shares: the result records, the median-of-N timing loop, the session context, the report.

Why one module: each benchmark should only say what it measures and against which raw baseline; how samples are
taken (interleaved with the baseline, so drift and cache warmth hit both alike), how a figure is judged against
its target and how results are printed and stored must be identical across benchmarks.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, Field

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

Check = Literal["ratio_max", "value_max", "value_min"]


class Figure(BaseModel):
    """One measured figure: median of the samples, the raw baseline measured in the same run, the verdict."""

    key: str
    label: str
    unit: str
    value: float
    samples: list[float]
    baseline_label: str | None = None
    baseline: float | None = None
    baseline_samples: list[float] = Field(default_factory=list)
    ratio: float | None = None  # value / baseline: median of the paired per-sample ratios
    check: Check
    limit: float
    target: str
    passed: bool
    notes: list[str] = Field(default_factory=list)


class BenchResult(BaseModel):
    name: str
    title: str
    figures: list[Figure] = Field(default_factory=list)
    breakdown: dict[str, Any] = Field(default_factory=dict)  # where the time goes (medians, seconds)
    notes: list[str] = Field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def figure(
    key: str,
    label: str,
    unit: str,
    samples: list[float],
    *,
    check: Check,
    limit: float,
    baseline_label: str | None = None,
    baseline_samples: list[float] | None = None,
    notes: list[str] | None = None,
    ratios: list[float] | None = None,
) -> Figure:
    """Build a Figure from raw samples; the verdict comes from the medians, never from a best run."""
    value = median(samples)
    base = median(baseline_samples) if baseline_samples else None
    ratio = None
    if ratios:  # the caller knows better (e.g. wall time / raw git time where the figure is their difference)
        ratio = median(ratios)
    elif baseline_samples and len(baseline_samples) == len(samples) and all(baseline_samples):
        # Paired: sample i of the product ran right next to sample i of the baseline, under the same machine
        # conditions; the median of the pair ratios is far steadier on a noisy disk than a ratio of medians.
        ratio = median([v / b for v, b in zip(samples, baseline_samples, strict=True)])
    elif base:
        ratio = value / base
    if check == "ratio_max":
        passed = ratio is not None and ratio <= limit
        target = f"ratio <= {limit:g}x"
    elif check == "value_max":
        passed = value <= limit
        target = f"<= {limit:g} {unit}"
    else:
        passed = value >= limit
        target = f">= {limit:,g} {unit}"
    return Figure(
        key=key,
        label=label,
        unit=unit,
        value=value,
        samples=samples,
        baseline_label=baseline_label,
        baseline=base,
        baseline_samples=list(baseline_samples or []),
        ratio=ratio,
        check=check,
        limit=limit,
        target=target,
        passed=passed,
        notes=list(notes or []),
    )


def interleaved(
    runs: int,
    product: Callable[[int], float],
    baseline: Callable[[int], float],
    *,
    setup: Callable[[int], None] | None = None,
) -> tuple[list[float], list[float]]:
    """Run product and baseline ``runs`` times each, alternating which goes first; each returns its seconds."""
    ours, raw = [], []
    for i in range(runs):
        if setup is not None:
            setup(i)
        order = [(product, ours), (baseline, raw)]
        if i % 2:
            order.reverse()
        for fn, out in order:
            settle()
            out.append(fn(i))
    return ours, raw


def settle() -> None:
    """Flush dirty pages before a sample, so that one sample's writes are not paid for by the next one."""
    os.sync()


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Self:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0


class Context:
    """One suite run: the temp root (never inside the repository), run counts, and shared generated data."""

    def __init__(self, *, runs: int, quick: bool, tmp: Path | None = None, keep: bool = False) -> None:
        self.runs = runs
        self.quick = quick
        self.keep = keep
        parent = tmp or Path(tempfile.gettempdir())
        self.root = Path(tempfile.mkdtemp(prefix="always-on-bench-", dir=parent)).resolve()
        if self.root == REPO_ROOT or REPO_ROOT in self.root.parents:
            raise SystemExit(f"refusing to generate benchmark data inside the repository ({self.root})")
        self._made: dict[str, Path] = {}
        self._count = 0
        self.home = self.root / "home"
        self.env = {
            "ALWAYS_ON_HOME": str(self.home),
            "CLAUDE_CONFIG_DIR": str(self.root / "no-claude"),  # the chat digest reads nothing of the user's
            "CODEX_HOME": str(self.root / "no-codex"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        os.environ.update(self.env)

    def samples(self, *, heavy: bool = False) -> int:
        """Samples per figure; with --quick the disk-heavy benchmarks (20,000-file checkouts) take one."""
        return 1 if heavy and self.quick else self.runs

    def fresh(self, name: str) -> Path:
        """A new, empty folder under the temp root."""
        self._count += 1
        path = self.root / f"{self._count:03d}-{name}"
        path.mkdir(parents=True)
        return path

    def shared(self, name: str, make: Callable[[Path], Path]) -> Path:
        """Generated once per suite run (e.g. the 20,000-file repository); callers must not modify it."""
        if name not in self._made:
            t0 = time.perf_counter()
            self._made[name] = make(self.root / "shared" / name)
            print(f"  (generated {name} in {time.perf_counter() - t0:.1f} s)", flush=True)
        return self._made[name]

    def repo20k(self) -> Path:
        from bench.data import make_git_repo

        return self.shared("repo-20k", lambda path: make_git_repo(path, 20_000))

    def child_env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, **self.env, **extra}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env

    def discard(self, path: Path) -> None:
        """Remove a benchmark's generated folder now (``rm -rf``: several times faster than shutil here)."""
        if path == self.root or self.root in path.parents:
            subprocess.run(["rm", "-rf", "--", str(path)], check=False)

    def cleanup(self) -> None:
        if not self.keep:
            self.discard(self.root)
            shutil.rmtree(self.root, ignore_errors=True)


def run_child(ctx: Context, module: str, args: dict[str, Any], *, timeout: float = 300.0) -> dict[str, Any]:
    """Run ``python -m module`` with JSON args in a fresh process (clean RSS, no shared state); its last stdout
    line is the JSON answer."""
    proc = subprocess.run(
        [PYTHON, "-m", module, json.dumps(args)],
        cwd=REPO_ROOT,
        env=ctx.child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{module} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(lines[-1])


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory (VmRSS) in MB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> dict[str, Any]:
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "git": git,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


# --- output -----------------------------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "–"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "events/s":
        return f"{value:,.0f} events/s"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.3g} {unit}"


def print_result(result: BenchResult) -> None:
    print(f"\n== {result.name}: {result.title}  ({result.seconds:.1f} s)", flush=True)
    if result.error:
        print(f"   ERROR: {result.error}")
    for f in result.figures:
        verdict = "PASS" if f.passed else "MISS"
        print(f"   {f.label}")
        print(
            f"      figure   {fmt(f.value, f.unit)}   (samples: {', '.join(fmt(s, f.unit) for s in f.samples)})"
        )
        if f.baseline_label:
            print(f"      baseline {fmt(f.baseline, f.unit)}   = {f.baseline_label}")
            print(f"      ratio    {f.ratio:.2f}x" if f.ratio is not None else "      ratio    –")
        print(f"      target   {f.target}  -> {verdict}")
        for note in f.notes:
            print(f"      note: {note}")
    if result.breakdown:
        print("   breakdown (medians):")
        for key, value in result.breakdown.items():
            print(f"      {key:<48} {_shown(key, value)}")
    for note in result.notes:
        print(f"   note: {note}")
    sys.stdout.flush()


def _shown(key: str, value: Any) -> str:
    """Breakdown values: keys ending in _ms/_mb/_per_s or counts carry their unit; other floats are seconds."""
    if not isinstance(value, (int, float)):
        return json.dumps(value)
    if key.endswith("_ms"):
        return f"{value:.1f} ms"
    if key.endswith("_mb"):
        return f"{value:.1f} MB"
    if key.endswith("_per_s"):
        return f"{value:,.0f}/s"
    if key.endswith(("frames", "lines", "collections", "count", "calls")):
        return f"{value:,.0f}"
    return f"{value:.3f} s"


def markdown_table(results: list[BenchResult]) -> str:
    rows = [
        "| # | Benchmark | Figure (median) | Raw baseline (same run) | Ratio | Target | Result |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for f in result.figures:
            base = f"{fmt(f.baseline, f.unit)} ({f.baseline_label})" if f.baseline_label else "–"
            ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "–"
            rows.append(
                f"| {result.name} | {f.label} | {fmt(f.value, f.unit)} | {base} | {ratio} | {f.target} | "
                f"{'pass' if f.passed else '**miss**'} |"
            )
    return "\n".join(rows)

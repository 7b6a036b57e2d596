"""Benchmark 5b: the TUI while an agent streams 5,000 events/s — longest gap between frames, and memory.

Each measurement runs in a fresh process (``python -m bench.tui_stream ARGS``) so that its resident memory is the
app's alone. The product is ``always_on.tui.app.AlwaysOnApp`` (run headless with ``App.run_test``, 160x48, the dashboard
showing, store watching on, no scheduler) on a small real project; the events go in through
``app.on_core_event``, the listener the app registers with the bridge — exactly what the orchestrator calls for
every event of a fire running in the app. 50,000 events are delivered at 5,000/s, paced on the clock. The raw
baseline is a bare Textual app with one RichLog fed the same events at the same rate (bench.frames).

Figures: the longest gap between consecutive composed frames while streaming (the user sees a frozen screen
that long), and the resident memory (VmRSS) after the 50,000 events, both against the bare app.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from pathlib import Path

from bench.common import BenchResult, Context, figure, rss_mb, run_child

TITLE = "TUI under a 5,000 events/s stream: longest frame gap and memory after 50,000 events"
RATE, TOTAL = 5_000, 50_000
SIZE = (160, 48)


def run(ctx: Context) -> BenchResult:
    from bench.data import git

    project = ctx.fresh("tui-project")
    git(project, "init", "-q", "-b", "main")
    (project / "app.py").write_text("print('hello')\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    runs = 1 if ctx.quick else max(1, min(ctx.runs, 3))  # each sample streams for 10 s, twice
    ours, raw = [], []
    for i in range(runs):
        order = ["app", "bare"] if i % 2 == 0 else ["bare", "app"]
        for kind in order:
            result = run_child(ctx, "bench.tui_stream", {"kind": kind, "project": str(project)}, timeout=180)
            (ours if kind == "app" else raw).append(result)
    gap = figure(
        "tui.frame_gap",
        f"longest gap between frames while streaming {RATE:,} events/s (AlwaysOnApp)",
        "ms",
        [r["max_gap"] * 1000 for r in ours],
        baseline_label="bare Textual app + RichLog, same feed",
        baseline_samples=[r["max_gap"] * 1000 for r in raw],
        check="value_max",
        limit=100,
    )
    rss = figure(
        "tui.rss",
        f"resident memory after {TOTAL:,} events (AlwaysOnApp)",
        "MB",
        [r["rss_mb"] for r in ours],
        baseline_label="bare Textual app + RichLog, same feed",
        baseline_samples=[r["rss_mb"] for r in raw],
        check="value_max",
        limit=200,
    )
    breakdown = {}
    for label, results in (("app", ours), ("bare", raw)):
        for key in (
            "p99_gap_ms",
            "frames",
            "loop_lag_max_ms",
            "flush_max_ms",
            "gc_pause_max_ms",
            "gc_full_collections",
            "rss_before_mb",
            "rss_peak_mb",
            "delivered_events_per_s",
            "stream_lines",
        ):
            values = [r[key] for r in results if r.get(key) is not None]
            if values:
                breakdown[f"{label}: {key}"] = sorted(values)[len(values) // 2]
    notes = [f"{runs} sample(s) of {TOTAL:,} events each (10 s of streaming per sample)"]
    return BenchResult(name="tui-stream", title=TITLE, figures=[gap, rss], breakdown=breakdown, notes=notes)


# --- the child process ------------------------------------------------------------------------------------


async def _measure_app(project: Path) -> dict:
    from always_on.core.records import Phase, PhaseEvent, PhaseEventType
    from always_on.tui.app import AlwaysOnApp
    from always_on.tui.bridge import Bridge
    from bench.frames import FrameRecorder, GcMonitor, LagMonitor, agent_events, feed, max_gap

    class Measured(FrameRecorder, AlwaysOnApp):
        CSS_PATH = app_css()

    bridge = Bridge(project)
    app = Measured(bridge, run_scheduler=False)
    flush_times: list[float] = []
    original_flush = app.flush_events

    def timed_flush() -> None:
        t0 = time.perf_counter()
        original_flush()
        flush_times.append(time.perf_counter() - t0)

    app.flush_events = timed_flush  # the interval timer is set in on_mount, after this
    run_id = "run-bench-stream"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        rss_before = rss_mb()
        for type_, phase in (
            (PhaseEventType.DISCOVERY_STARTED, Phase.DISCOVERY),
            (PhaseEventType.PLAN_PRODUCED, Phase.DISCOVERY),
            (PhaseEventType.WORKSPACE_STARTED, Phase.WORKSPACE),
            (PhaseEventType.WORKSPACE_READY, Phase.WORKSPACE),
            (PhaseEventType.EXECUTION_STARTED, Phase.EXECUTION),
        ):
            app.on_core_event(
                PhaseEvent(
                    project_id=bridge.pstore.project_id,
                    run_id=run_id,
                    type=type_,
                    phase=phase,
                    message="Benchmark plan",
                )
            )
        await pilot.pause(0.2)
        lag, collector = LagMonitor(), GcMonitor()
        lag.start()
        collector.start()
        start, end = await feed(app.on_core_event, agent_events(run_id), TOTAL, RATE)
        while app._inbox:  # drained by the app's own 50 ms flush timer
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        await lag.stop()
        collector.stop()
        gap, p99, frames = max_gap(app.frames, start, end)
        rss = rss_mb()
        lines = app.dashboard.stream.line_count if app.dashboard is not None else 0
        flush_times.sort()
    return {
        "max_gap": gap,
        "p99_gap_ms": p99 * 1000,
        "frames": frames,
        "loop_lag_max_ms": lag.worst * 1000,
        "flush_max_ms": flush_times[-1] * 1000 if flush_times else None,
        "rss_mb": rss,
        "rss_before_mb": rss_before,
        "rss_peak_mb": _peak_mb(),
        "delivered_events_per_s": TOTAL / (end - start),
        "stream_lines": lines,
        **collector.summary(),
    }


async def _measure_bare() -> dict:
    from bench.frames import BareStreamApp, FrameRecorder, GcMonitor, LagMonitor, agent_events, feed, max_gap

    class Measured(FrameRecorder, BareStreamApp):
        pass

    app = Measured()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        rss_before = rss_mb()
        lag, collector = LagMonitor(), GcMonitor()
        lag.start()
        collector.start()
        start, end = await feed(app.deliver, agent_events("run-bench-stream"), TOTAL, RATE)
        await pilot.pause(0.3)
        await lag.stop()
        collector.stop()
        gap, p99, frames = max_gap(app.frames, start, end)
        rss = rss_mb()
    return {
        "max_gap": gap,
        "p99_gap_ms": p99 * 1000,
        "frames": frames,
        "loop_lag_max_ms": lag.worst * 1000,
        "rss_mb": rss,
        "rss_before_mb": rss_before,
        "rss_peak_mb": _peak_mb(),
        "delivered_events_per_s": TOTAL / (end - start),
        **collector.summary(),
    }


def app_css() -> str:
    """AlwaysOnApp's stylesheet as an absolute path (a relative CSS_PATH resolves beside the subclass)."""
    import inspect

    from always_on.tui.app import AlwaysOnApp

    return str(Path(inspect.getfile(AlwaysOnApp)).parent / AlwaysOnApp.CSS_PATH)


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(raw: str) -> None:
    args = json.loads(raw)
    gc.collect()
    if args["kind"] == "app":
        result = asyncio.run(_measure_app(Path(args["project"])))
    else:
        result = asyncio.run(_measure_bare())
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])

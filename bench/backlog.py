"""Benchmark 6a: a backlog of 10,000 plans and 1,000 runs — ``always-on plans --json`` and the TUI backlog screen.

The store is seeded through always_on.core.storage (bench.seed). ``always-on plans --json`` runs as a subprocess, as a
script would run it; its raw baseline is the floor of the same job: a Python process that reads the plan rows from
the project's SQLite database with ``sqlite3`` and prints the same listing fields with ``json``. The backlog screen
is measured in a fresh app process: the app starts on the dashboard, then the key ``2`` is pressed; the figure is
the time from the key press to the first composed frame showing the filled table (10,000 rows). Its baseline is a
bare Textual app whose second screen fills a DataTable with the same 10,000 rows (read with ``sqlite3`` before the
key press) on the same key.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.common import PYTHON, REPO_ROOT, BenchResult, Context, Timer, figure, interleaved, run_child
from bench.seed import PLANS, backlog_project

TITLE = "backlog of 10,000 plans / 1,000 runs: `always-on plans --json` and the TUI backlog screen"
SIZE = (160, 48)
RAW_LISTING = """
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
cols = ("schema_version", "id", "status", "created_at", "updated_at", "discovery_run_id", "run_ids", "cycle_id",
        "failure_code", "failure_message", "report_run_id", "title", "summary", "dedupe_key")
out = []
for r in db.execute(f"SELECT {', '.join(cols)} FROM plans ORDER BY created_at, id"):
    row = dict(zip(cols, r))
    row["run_ids"] = json.loads(row["run_ids"])
    code, message = row.pop("failure_code"), row.pop("failure_message")
    row["failure"] = {"code": code, "message": message} if code else None
    out.append(row)
print(json.dumps(out, ensure_ascii=False))
"""


def run(ctx: Context) -> BenchResult:
    from always_on.core.storage import Store

    project = backlog_project(ctx)
    plans_path = Store().project(project).db_path
    env = ctx.child_env()

    def cli(i: int) -> float:
        with Timer() as t:
            out = subprocess.run(
                [PYTHON, "-m", "always_on.core.cli", "plans", "--project", str(project), "--json"],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                check=True,
            ).stdout
        rows = json.loads(out.splitlines()[-1])
        assert len(rows) == PLANS and {"id", "title", "status", "dedupe_key", "cycle_id"} <= set(rows[0])
        return t.seconds

    def raw(i: int) -> float:
        with Timer() as t:
            out = subprocess.run(
                [PYTHON, "-c", RAW_LISTING, str(plans_path)], env=env, capture_output=True, check=True
            ).stdout
        assert len(json.loads(out)) == PLANS
        return t.seconds

    cli(-1), raw(-1)  # warm the page cache for both
    ours, base = interleaved(ctx.runs, cli, raw)
    fig_cli = figure(
        "backlog.cli",
        f"`always-on plans --json` on {PLANS:,} plans (subprocess)",
        "s",
        ours,
        baseline_label="python: sqlite3 rows of the plans table + json.dumps of the same listing",
        baseline_samples=base,
        check="value_max",
        limit=0.5,
    )

    app_runs, bare_runs = [], []
    for i in range(1 if ctx.quick else ctx.runs):  # each sample starts two Textual apps
        for kind in ["app", "bare"] if i % 2 == 0 else ["bare", "app"]:
            result = run_child(
                ctx, "bench.backlog", {"kind": kind, "project": str(project), "plans": str(plans_path)}
            )
            (app_runs if kind == "app" else bare_runs).append(result)
    fig_tui = figure(
        "backlog.tui",
        f"TUI backlog screen: key `2` → first frame with {PLANS:,} rows",
        "s",
        [r["open"] for r in app_runs],
        baseline_label="bare Textual app: DataTable of the same rows",
        baseline_samples=[r["open"] for r in bare_runs],
        check="value_max",
        limit=0.5,
    )
    breakdown = {
        "app: bridge.plans() (query + validate 10,000 plans)": _mid([r["read"] for r in app_runs]),
        "app: table filled, before the frame": _mid([r["filled"] for r in app_runs]),
        "bare: table filled, before the frame": _mid([r["filled"] for r in bare_runs]),
    }
    return BenchResult(name="backlog", title=TITLE, figures=[fig_cli, fig_tui], breakdown=breakdown)


def _mid(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


# --- the child process ------------------------------------------------------------------------------------


async def _open_app(project: Path) -> dict:
    from always_on.tui.app import AlwaysOnApp
    from always_on.tui.bridge import Bridge
    from always_on.tui.screens.backlog import BacklogScreen
    from bench.frames import FrameRecorder
    from bench.tui_stream import app_css

    class Measured(FrameRecorder, AlwaysOnApp):
        CSS_PATH = app_css()

    bridge = Bridge(project)
    read: list[float] = []
    plans = bridge.plans

    def timed_plans():
        t0 = time.perf_counter()
        try:
            return plans()
        finally:
            read.append(time.perf_counter() - t0)

    bridge.plans = timed_plans
    app = Measured(bridge, run_scheduler=False)
    filled: list[float] = []

    def ready() -> bool:
        screen = app.screen
        done = isinstance(screen, BacklogScreen) and screen.table.row_count == PLANS
        if done and not filled:
            filled.append(time.perf_counter())
        return done

    async with app.run_test(size=SIZE) as pilot:
        await app.wait_frame(lambda: True)
        await pilot.pause(0.3)  # the dashboard has settled
        shown = app.wait_frame(ready)
        t0 = time.perf_counter()
        await pilot.press("2")
        t1 = await asyncio.wait_for(shown, 60)
    return {"open": t1 - t0, "filled": filled[0] - t0, "read": read[-1] if read else 0.0}


async def _open_bare(plans_path: Path) -> dict:
    import sqlite3

    from textual.app import App
    from textual.screen import Screen
    from textual.widgets import DataTable, Footer, Header, Static

    from bench.frames import FrameRecorder

    db = sqlite3.connect(plans_path)
    rows = [
        (status, title, key, created[:10], (cycle or "–")[-6:], plan_id)
        for status, title, key, created, cycle, plan_id in db.execute(
            "SELECT status, title, dedupe_key, created_at, cycle_id, id FROM plans ORDER BY created_at DESC"
        )
    ]

    class Table(Screen):
        def compose(self):
            yield Header()
            yield DataTable(id="plans", cursor_type="row", zebra_stripes=True)
            yield Footer()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            for label, width in (
                ("Status", 19),
                ("Title", 80),
                ("Dedupe key", 22),
                ("Created", 11),
                ("Cycle", 6),
            ):
                table.add_column(label, width=width)
            for *cells, key in rows:
                table.add_row(*cells, key=key)

    class Bare(FrameRecorder, App[None]):
        MODES = {"home": lambda: Screen(), "table": Table}
        DEFAULT_MODE = "home"
        BINDINGS = [("2", "switch_mode('table')", "Table")]

        def compose(self):
            yield Static("home")

    app = Bare()
    filled: list[float] = []

    def ready() -> bool:
        done = isinstance(app.screen, Table) and app.screen.query_one(DataTable).row_count == PLANS
        if done and not filled:
            filled.append(time.perf_counter())
        return done

    async with app.run_test(size=SIZE) as pilot:
        await app.wait_frame(lambda: True)
        await pilot.pause(0.3)
        shown = app.wait_frame(ready)
        t0 = time.perf_counter()
        await pilot.press("2")
        t1 = await asyncio.wait_for(shown, 60)
    return {"open": t1 - t0, "filled": filled[0] - t0}


def main(raw: str) -> None:
    args = json.loads(raw)
    if args["kind"] == "app":
        result = asyncio.run(_open_app(Path(args["project"])))
    else:
        result = asyncio.run(_open_bare(Path(args["plans"])))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])

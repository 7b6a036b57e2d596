"""Regenerate screenshots/*.svg: every screen of the TUI on a seeded demo store, at a fixed size and frozen clock.

Usage: python scripts/make_screenshots.py [--out screenshots] [--text] [--size 80x24]
(--text also prints each screen as plain text, handy to check a layout in a terminal-less environment;
--size renders every screen at that size instead of the documented ones, for checking small terminals).
The store is seeded with the same fixed records as the TUI tests (tests/tui/seed.py), in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "tui"), str(ROOT / "tests")]  # the test seed; always_on is installed

SIZE = (100, 32)


def screen_text(app) -> str:
    from rich.console import Console

    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        record=True,
        force_terminal=True,
        color_system="truecolor",
        legacy_windows=False,
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def settle(pilot, condition: Callable[[], bool] = lambda: True) -> None:
    for _ in range(250):
        if condition():
            break
        await pilot.pause(0.02)
    await pilot.pause()


def scenarios(seed, app_factory) -> list[tuple[str, tuple[int, int], bool, Callable]]:
    """(file name, size, seeded?, steps) for every screen worth a picture."""
    from always_on.core.errors import AlwaysOnError, ErrorCode
    from always_on.core.records import AgentEvent, AgentEventKind, Phase
    from always_on.core.storage import Store

    def diff_loaded(app) -> Callable[[], bool]:
        return lambda: bool(getattr(app.screen, "files", [])) and bool(app.screen.query_one("#diff").text)

    async def nothing(app, pilot) -> None:
        await settle(pilot)

    async def live(app, pilot) -> None:
        ps = Store().project(app.bridge.project)
        run = "run-20250501-115700-live01"
        for event in seed.phase_events(ps, run, -3, plan=seed.pid(6), title="Replace os.path with pathlib")[
            :5
        ]:
            app.on_core_event(event)
        for event in seed.agent_events(run, -1.5):
            app.on_core_event(event.model_copy(update={"ts": seed.NOW - timedelta(seconds=30)}))
        for chunk in ["Now replacing ", "os.path.join in ", "src/io.py with "]:
            app.on_core_event(
                AgentEvent(
                    ts=seed.NOW, run_id=run, phase=Phase.EXECUTION, kind=AgentEventKind.MESSAGE, text=chunk
                )
            )
        await settle(pilot, lambda: not app._inbox)

    async def failed(app, pilot) -> None:
        app.replay_run(seed.rid(4))
        await settle(pilot, lambda: not app._inbox)

    async def backlog(app, pilot) -> None:
        await pilot.press("2")
        await settle(pilot)

    async def plan(app, pilot) -> None:
        await pilot.press("2")
        app.screen.set_filter("failed")
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)

    async def history(app, pilot) -> None:
        await pilot.press("3")
        await settle(pilot)

    async def report(app, pilot) -> None:
        await pilot.press("3")
        table = app.screen.table
        table.move_cursor(row=table.get_row_index(seed.rid(1)))
        await pilot.press("enter")
        await settle(pilot)

    async def review(app, pilot) -> None:
        await pilot.press("4")
        await settle(pilot, diff_loaded(app))

    async def review_invalid(app, pilot) -> None:
        await review(app, pilot)
        await pilot.press("space", "down")
        await settle(pilot, lambda: not app.screen.workers)
        await settle(pilot, diff_loaded(app))

    async def confirm(app, pilot) -> None:
        await review(app, pilot)
        await pilot.press("a")
        await settle(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog")

    async def conflict(app, pilot) -> None:
        await review(app, pilot)
        app.screen.show_apply_failure(
            AlwaysOnError(
                ErrorCode.APPLY_CONFLICT,
                "the selected plans do not apply cleanly to your working tree",
                files=["src/app.py", "src/util.py"],
            )
        )
        await settle(pilot, lambda: type(app.screen).__name__ == "MessageDialog")

    async def help_screen(app, pilot) -> None:
        await pilot.press("question_mark")
        await settle(pilot)

    async def palette(app, pilot) -> None:
        await pilot.press("ctrl+p")
        await pilot.press(*"go to")
        await settle(pilot, lambda: any(w.option_count for w in app.screen.query("CommandList")))

    return [
        ("dashboard-empty", SIZE, False, nothing),
        ("dashboard-live-run", SIZE, True, live),
        ("dashboard-failed-run", SIZE, True, failed),
        ("backlog", SIZE, True, backlog),
        ("plan", SIZE, True, plan),
        ("history", SIZE, True, history),
        ("report", SIZE, True, report),
        ("review", SIZE, True, review),
        ("review-invalid-selection", SIZE, True, review_invalid),
        ("review-confirm-apply", SIZE, True, confirm),
        ("review-conflict", SIZE, True, conflict),
        ("help", SIZE, True, help_screen),
        ("command-palette", SIZE, True, palette),
        ("review-80x24", (80, 24), True, review),
        ("config-error-80x24", (80, 24), False, nothing),
    ]


# Written before the app starts, for the scenarios that need them (the configuration file is read at start).
CONFIG_WITH_A_TYPO = (
    'agent = "claude"\nlanguage = "en"\n\n[scheduler]\ninterval_seconds = 900\ncooldown_seconds = 300\n'
    "daily_budget = 24x\nmax_plans_per_cycle = 5\n"
)
CONFIG_FILES = {"config-error-80x24": CONFIG_WITH_A_TYPO}


async def shoot(out: Path, text: bool, size: tuple[int, int] | None = None) -> list[Path]:
    import seed
    from conftest import make_app

    written: list[Path] = []
    for name, default_size, seeded, steps in scenarios(seed, make_app):
        with tempfile.TemporaryDirectory(prefix="ao-shots-") as tmp:
            base = Path(tmp)
            os.environ["ALWAYS_ON_HOME"] = str(base / "home")
            os.environ["HOME"] = str(base)
            project = seed.make_project(base / "project")
            if seeded:
                seed.seed_full(project)
            if name in CONFIG_FILES:
                from always_on.core import paths

                paths.config_file().parent.mkdir(parents=True, exist_ok=True)
                paths.config_file().write_text(CONFIG_FILES[name])
            app = make_app(project)
            async with app.run_test(size=size or default_size) as pilot:
                await steps(app, pilot)
                target = out / f"{name}.svg"
                target.write_text(app.export_screenshot(title=f"always-on — {name}"), encoding="utf-8")
                written.append(target)
                if text:
                    print(f"=== {name}\n{screen_text(app)}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--text", action="store_true", help="also print every screen as text")
    parser.add_argument(
        "--size", default=None, help="WxH for every screen, e.g. 80x24 (default: as documented)"
    )
    args = parser.parse_args(argv)
    size = tuple(int(n) for n in args.size.lower().split("x")) if args.size else None
    args.out.mkdir(parents=True, exist_ok=True)
    old = {k: os.environ.get(k) for k in ("ALWAYS_ON_HOME", "HOME")}
    try:
        written = asyncio.run(shoot(args.out, args.text, size))  # type: ignore[arg-type]
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    print(f"wrote {len(written)} screenshots to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

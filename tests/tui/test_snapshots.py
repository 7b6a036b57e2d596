"""Snapshots of every screen in meaningful states (pytest-textual-snapshot; update with --snapshot-update).

States come from a store seeded with real records (seed.py) and a frozen clock, so the SVGs are identical on
every run. The live-run snapshot feeds events into the app exactly as the orchestrator's listener would.
"""

from __future__ import annotations

from datetime import timedelta

from seed import NOW, SIZE, agent_events, make_app, phase_events, pid, rid

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import AgentEvent, AgentEventKind, Phase
from always_on.core.storage import Store


async def settle(pilot, condition=lambda: True, tries: int = 200) -> None:
    for _ in range(tries):
        if condition():
            break
        await pilot.pause(0.02)
    await pilot.pause()


def test_dashboard_empty_project(snap_compare, project):
    assert snap_compare(make_app(project), terminal_size=SIZE)


def live_run(app, project):
    """Feed a fire that is mid-execution, exactly as the orchestrator's listener would, and let it render."""
    ps = Store().project(project)

    async def feed(pilot):
        run = "run-20250501-115700-live01"
        events = phase_events(ps, run, -3, plan=pid(6), title="Replace os.path with pathlib in io.py")[:5]
        for event in events:
            app.on_core_event(event)
        for event in agent_events(run, -1.5):
            app.on_core_event(event.model_copy(update={"ts": NOW - timedelta(seconds=30)}))
        for chunk in ["Now replacing ", "os.path.join in ", "src/io.py with "]:
            app.on_core_event(
                AgentEvent(ts=NOW, run_id=run, phase=Phase.EXECUTION, kind=AgentEventKind.MESSAGE, text=chunk)
            )
        await settle(pilot, lambda: not app._inbox)

    return feed


def test_dashboard_live_run_mid_stream(snap_compare, seeded):
    app = make_app(seeded)
    assert snap_compare(app, terminal_size=SIZE, run_before=live_run(app, seeded))


def test_dashboard_failed_run_replayed(snap_compare, seeded):
    app = make_app(seeded)

    async def replay(pilot):
        app.replay_run(rid(4))
        await settle(pilot, lambda: not app._inbox and app.current_run.outcome is not None)

    assert snap_compare(app, terminal_size=SIZE, run_before=replay)


def test_backlog_with_every_status(snap_compare, seeded):
    assert snap_compare(make_app(seeded), terminal_size=SIZE, press=["2"])


def test_plan_open(snap_compare, seeded):
    app = make_app(seeded)

    async def open_failed(pilot):
        await pilot.press("2")
        app.screen.set_filter("failed")
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_failed)


def test_history(snap_compare, seeded):
    assert snap_compare(make_app(seeded), terminal_size=SIZE, press=["3"])


def test_report_open(snap_compare, seeded):
    app = make_app(seeded)

    async def open_report(pilot):
        await pilot.press("3")
        table = app.screen.table
        table.move_cursor(row=table.get_row_index(rid(1)))
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_report)


def _diff_loaded(app):
    return lambda: len(getattr(app.screen, "files", [])) > 0 and bool(app.screen.query_one("#diff").text)


def test_review_with_a_dependency_and_an_invalid_selection(snap_compare, seeded):
    app = make_app(seeded)

    async def unselect_first(pilot):
        await pilot.press("4")
        await settle(pilot, _diff_loaded(app))
        await pilot.press("space", "down")
        await settle(pilot, lambda: app.screen.selection == [pid(2), pid(3)] and not app.screen.workers)
        await settle(pilot, _diff_loaded(app))

    assert snap_compare(app, terminal_size=SIZE, run_before=unselect_first)


def test_review_confirm_lists_the_files(snap_compare, seeded):
    app = make_app(seeded)

    async def ask(pilot):
        await pilot.press("4")
        await settle(pilot, _diff_loaded(app))
        await pilot.press("a")
        await settle(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog")

    assert snap_compare(app, terminal_size=SIZE, run_before=ask)


def test_apply_conflict_dialog(snap_compare, seeded):
    app = make_app(seeded)

    async def conflict(pilot):
        await pilot.press("4")
        await settle(pilot, _diff_loaded(app))
        app.screen.show_apply_failure(
            AlwaysOnError(
                ErrorCode.APPLY_CONFLICT,
                "the selected plans do not apply cleanly to your working tree",
                files=["src/app.py", "src/util.py"],
            )
        )
        await settle(pilot, lambda: app.screen.__class__.__name__ == "MessageDialog")

    assert snap_compare(app, terminal_size=SIZE, run_before=conflict)


def test_help_screen(snap_compare, seeded):
    assert snap_compare(make_app(seeded), terminal_size=SIZE, press=["question_mark"])


def test_review_at_80x24(snap_compare, seeded):
    app = make_app(seeded)

    async def review(pilot):
        await pilot.press("4")
        await settle(pilot, _diff_loaded(app))

    assert snap_compare(app, terminal_size=(80, 24), run_before=review)


def test_review_with_no_active_cycle(snap_compare, project):
    assert snap_compare(make_app(project), terminal_size=SIZE, press=["4"])


def test_backlog_of_an_empty_project(snap_compare, project):
    assert snap_compare(make_app(project), terminal_size=SIZE, press=["2"])


# --- the smallest supported terminal: every main screen stays readable at 80x24 ----------------------------


def test_dashboard_live_run_at_80x24(snap_compare, seeded):
    app = make_app(seeded)
    assert snap_compare(app, terminal_size=(80, 24), run_before=live_run(app, seeded))


def test_backlog_at_80x24(snap_compare, seeded):
    assert snap_compare(make_app(seeded), terminal_size=(80, 24), press=["2"])


def test_history_at_80x24(snap_compare, seeded):
    assert snap_compare(make_app(seeded), terminal_size=(80, 24), press=["3"])


def test_help_at_80x24(snap_compare, seeded):
    assert snap_compare(make_app(seeded), terminal_size=(80, 24), press=["question_mark"])


def test_review_conflict_at_80x24(snap_compare, seeded):
    app = make_app(seeded)

    async def conflict(pilot):
        await pilot.press("4")
        await settle(pilot, _diff_loaded(app))
        app.screen.show_apply_failure(
            AlwaysOnError(
                ErrorCode.APPLY_CONFLICT,
                "the selected plans do not apply cleanly to your working tree",
                files=["src/app.py", "src/util.py"],
            )
        )
        await settle(pilot, lambda: app.screen.__class__.__name__ == "MessageDialog")

    assert snap_compare(app, terminal_size=(80, 24), run_before=conflict)


def test_config_error_at_80x24(snap_compare, project, tmp_path, monkeypatch):
    """Issue 15: an invalid configuration file is refused on a screen of its own, naming the line and column."""
    from always_on.core import paths

    monkeypatch.setenv("ALWAYS_ON_HOME", str(tmp_path / "home"))  # shown as ~/home/...: stable in the SVG
    paths.config_file().parent.mkdir(parents=True)
    paths.config_file().write_text(CONFIG_WITH_A_TYPO)
    assert snap_compare(make_app(project), terminal_size=(80, 24))


CONFIG_WITH_A_TYPO = (
    'agent = "claude"\nlanguage = "en"\n\n[scheduler]\ninterval_seconds = 900\ncooldown_seconds = 300\n'
    "daily_budget = 24x\nmax_plans_per_cycle = 5\n"
)

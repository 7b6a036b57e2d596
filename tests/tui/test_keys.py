"""Every key the footer shows does something on every screen; enter is the screen's key, not the table's."""

from __future__ import annotations

from seed import SIZE, make_app, pid
from test_app import wait_for

from always_on.tui.screens.backlog import BacklogScreen
from always_on.tui.screens.document import PlanScreen, RunScreen
from always_on.tui.screens.help import HelpScreen
from always_on.tui.screens.history import HistoryScreen
from always_on.tui.screens.review import ReviewScreen


def footer_keys(screen) -> dict[str, str]:
    """key → description of the bindings the footer shows for this screen (what a user reads at the bottom)."""
    shown = {}
    for key, active in screen.active_bindings.items():
        if active.binding.show and active.enabled:
            shown[key] = active.binding.description
    return shown


def resolves(screen, key: str) -> bool:
    """The shown binding names an action that exists on the node that owns it (or on the app / screen)."""
    active = screen.active_bindings[key]
    action = active.binding.action
    target = active.node
    if action.startswith("app."):
        target, action = screen.app, action[4:]
    elif action.startswith("screen."):
        target, action = screen, action[7:]
    name = action.split("(", 1)[0]
    return callable(getattr(target, f"action_{name}", None))


async def test_every_footer_key_of_every_screen_has_an_action(seeded):
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        seen = {}
        for mode in ("1", "2", "3", "4"):
            await pilot.press(mode)
            await pilot.pause()
            seen[type(app.screen).__name__] = footer_keys(app.screen)
            assert all(resolves(app.screen, key) for key in seen[type(app.screen).__name__])
        await pilot.press("2", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        seen["PlanScreen"] = footer_keys(app.screen)
        assert all(resolves(app.screen, key) for key in seen["PlanScreen"])
    assert {"f", "p", "c", "question_mark", "q"} <= set(seen["DashboardScreen"])
    assert seen["BacklogScreen"]["enter"] == "Open" and {"r", "x", "s"} <= set(seen["BacklogScreen"])
    assert seen["HistoryScreen"]["enter"] == "Report" and "l" in seen["HistoryScreen"]
    assert {"space", "a", "d", "o"} <= set(seen["ReviewScreen"])
    assert {"escape", "r", "x", "o"} <= set(seen["PlanScreen"])


async def test_enter_in_history_opens_the_report_through_the_screen_binding(seeded):
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        assert isinstance(app.screen, HistoryScreen)
        run = app.screen.highlighted()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == run.run_id


async def test_rerun_from_an_open_completed_plan_is_refused_without_firing(seeded):
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.screen.set_filter("completed")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        await pilot.press("r")
        await pilot.pause()
        assert not app.firing
        messages = [(n.title, n.message) for n in app._notifications]
        assert any(t == "Cannot rerun" and "completed" in m for t, m in messages)
        assert not any(t == "Rerun" for t, _ in messages)  # no "Rerunning …" promise before the refusal


async def test_backlog_and_history_show_the_highlighted_row_in_full(seeded):
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, BacklogScreen)
        screen.set_filter("failed")
        await pilot.pause()
        detail = str(screen.query_one("#plan-detail").render())
        assert "Fix the failing test test_parse_empty" in detail and "execution_failed" in detail
        assert pid(4) in detail
        await pilot.press("3")
        detail = str(app.screen.query_one("#run-detail").render())
        assert "run-" in detail and "execution_failed" in detail


async def test_review_titles_are_readable_at_80x24(seeded):
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        title_width = screen.plans_table.columns["title"].width
        assert title_width >= 24  # was 8 when the files list shared the row
        assert "Remove unused imports in src/app.py" in str(screen.query_one("#selection-info").render())


async def test_review_without_a_cycle_clears_the_files_and_diff_titles(project):
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await pilot.pause()
        screen = app.screen
        assert screen.cycle is None
        assert screen.files_table.border_title == "Files"
        assert screen.query_one("#diff").border_title == "Diff"
        assert "Nothing to review" in str(screen.query_one("#diff-body").render())


async def test_palette_lists_one_keys_command_and_it_opens_this_apps_help(seeded):
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Keys" not in titles and "Theme" in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"keys")
        await wait_for(
            pilot,
            lambda: any(w.option_count >= 1 and w.highlighted == 0 for w in app.screen.query("CommandList")),
        )
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)

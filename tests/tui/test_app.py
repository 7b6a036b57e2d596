"""Behaviour of the app driven by keys (App.run_test + pilot) on a store seeded with real records."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

from helpers import tree_hashes
from seed import NOW, SIZE, make_app, pid, rid

from always_on.core.records import (
    AgentEvent,
    AgentEventKind,
    Phase,
    PhaseEvent,
    PhaseEventType,
    PlanStatus,
)
from always_on.core.storage import Store
from always_on.tui.app import main
from always_on.tui.screens.backlog import BacklogScreen
from always_on.tui.screens.dashboard import DashboardScreen
from always_on.tui.screens.dialogs import ConfirmDialog, MessageDialog
from always_on.tui.screens.document import PlanScreen, RunScreen
from always_on.tui.screens.help import HelpScreen
from always_on.tui.screens.history import HistoryScreen
from always_on.tui.screens.review import ReviewScreen


async def wait_for(pilot, condition, timeout: float = 10.0, step: float = 0.05) -> None:
    """Let the app run until condition() holds (bounded: the timeout is only a safety net)."""
    for _ in range(int(timeout / step)):
        if condition():
            return
        await pilot.pause(step)
    assert condition(), "condition not reached in time"


def notes(app) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def test_number_keys_and_tabs_switch_screens(seeded):
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, DashboardScreen)
        for key, kind in (
            ("2", BacklogScreen),
            ("3", HistoryScreen),
            ("4", ReviewScreen),
            ("1", DashboardScreen),
        ):
            await pilot.press(key)
            assert isinstance(app.screen, kind)
        await pilot.click("#nav-history")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        assert app.screen.query_one("NavTabs").active == "nav-history"
        await pilot.press("1")
        assert app.screen.query_one("NavTabs").active == "nav-dashboard"  # the click did not stick elsewhere


async def test_backlog_filters_by_status_with_key_and_select(seeded):
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        table = screen.table
        assert table.row_count == 8
        await pilot.press("s")  # all → open
        await pilot.pause()
        assert screen.filter == "open" and table.row_count == 6
        await pilot.press("s")  # → ready
        await pilot.pause()
        assert table.row_count == 1 and str(table.get_row_at(0)[1]) == "Add type hints to the config loader"
        screen.set_filter("failed")
        await pilot.pause()
        assert table.row_count == 1 and str(table.get_row_at(0)[0]) == "failed"
        assert "1 of 8" in str(screen.query_one("#count").render())


async def test_enter_opens_the_plan_and_escape_returns(seeded):
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.screen.set_filter("failed")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
        assert app.screen.plan_id == pid(4)
        assert "execution_failed" in app.screen.markdown and "## Verification" in app.screen.markdown
        await pilot.press("escape")
        assert isinstance(app.screen, BacklogScreen)


async def test_rerun_is_refused_for_a_completed_plan(seeded):
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.screen.set_filter("completed")
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        assert any("Cannot rerun" in n for n in notes(app))
        assert not app.firing


async def test_archive_asks_first_and_archives_on_yes(seeded):
    app = make_app(seeded)
    store = Store().project(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.screen.set_filter("ready")
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert store.get_plan(pid(5)).status == PlanStatus.READY
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: store.get_plan(pid(5)).status == PlanStatus.ARCHIVED)
        await wait_for(pilot, lambda: app.screen.table.row_count == 0)  # the 'ready' filter is empty now


async def test_archive_is_refused_for_an_applied_plan(seeded):
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.screen.set_filter("applied")
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, BacklogScreen)
        assert any("Cannot archive" in n for n in notes(app))


async def test_pause_key_toggles_the_scheduler_state(seeded):
    app = make_app(seeded)
    store = Store().project(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await pilot.pause()
        assert store.read_state().paused
        assert "paused" in str(app.screen.query_one("#status").render())
        await pilot.press("p")
        await pilot.pause()
        assert not store.read_state().paused


async def test_history_opens_report_or_failure_and_replays_a_log(seeded):
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.press("enter")  # newest first: the failed rerun
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)
        assert "## Why it failed" in app.screen.markdown and "execution_failed" in app.screen.markdown
        await pilot.press("escape")
        history = app.screen
        history.table.move_cursor(row=history.table.get_row_index(rid(1)))
        await pilot.press("enter")
        await pilot.pause()
        assert "Report: Remove unused imports" in app.screen.markdown
        await pilot.press("escape")
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        await wait_for(pilot, lambda: app.current_run.outcome is not None)
        assert app.current_run.run_id == rid(1) and app.current_run.replay
        text = "\n".join(strip.text for strip in app.screen.stream.log_widget.lines)
        assert "DENIED" in text and "Removed the two unused imports; ruff is clean now." in text
        assert not app._notifications or all("Fire" not in n for n in notes(app))  # a replay does not notify


async def test_review_explains_an_invalid_selection_and_changes_nothing(seeded):
    app = make_app(seeded)
    store = Store().project(seeded)
    before = tree_hashes(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert screen.selection == [pid(1), pid(2), pid(3)]  # default: the completed plans
        assert screen.problems == []
        await pilot.press("space")  # unselect #1, which #2 depends on
        await pilot.pause()
        assert screen.selection == [pid(2), pid(3)]
        assert any("depends on unselected" in p.message for p in screen.problems)
        info = str(screen.query_one("#selection-info").render())
        assert "cannot apply" in info and "#2 depends on unselected plan(s) #1" in info
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog))
        assert any("#1" in item for item in app.screen.items)
        await pilot.press("escape")
    assert store.get_cycle(screen.cycle.id).status == "active"
    assert store.get_plan(pid(1)).status == PlanStatus.COMPLETED
    assert tree_hashes(seeded) == before


async def test_a_plan_completed_while_the_review_is_open_is_preselected(seeded):
    """Issue 15: plans of the cycle shown when the review opened were pre-selected, a plan completed later was not
    (the selection only kept what it had). The user's own choices stay as they were."""
    app = make_app(seeded)
    store = Store().project(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert screen.selection == [pid(1), pid(2), pid(3)]
        for key in ("down", "down", "space"):  # the user leaves #3 out
            await pilot.press(key)
        await pilot.pause()
        assert screen.selection == [pid(1), pid(2)]
        store.update_plan(pid(6), lambda p: p.set_status(PlanStatus.COMPLETED))  # the executing plan finishes
        screen.reload()
        await pilot.pause()
        assert screen.selection == [pid(1), pid(2), pid(6)]
        screen.reload()  # nothing new: nothing changes
        assert screen.selection == [pid(1), pid(2), pid(6)]


async def test_apply_refusals_read_the_same_in_the_cli_and_the_review_screen(seeded):
    """Both front ends ask the core's prepare_apply: the same selection is refused with the same problems."""
    selection = [pid(2), pid(4)]  # #2 needs the unselected #1; #4 failed and has no commits
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "always_on.core.cli",
            "apply",
            "--project",
            str(seeded),
            "--plans",
            ",".join(selection),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    prefix = "always-on: error: invalid_selection: "
    # (the seed's "executing" plan has no process behind it: the CLI first says it recovered it)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("always-on: error:")]
    assert proc.returncode == 1 and len(errors) == 1 and errors[0].startswith(prefix), proc.stderr
    cli_message = errors[0].removeprefix(prefix)
    assert "depends on unselected plan(s)" in cli_message and "only completed plans" in cli_message
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        screen = app.screen
        for key in ("space", "down", "down", "space", "down", "space"):  # -#1, -#3, +#4
            await pilot.press(key)
        await pilot.pause()
        assert screen.selection == selection
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog))
        shown = "; ".join(app.screen.items)
    numbers = {p.plan_id: f"#{n}" for n, p in enumerate(screen.cycle.plans, 1)}
    for plan_id, number in numbers.items():
        cli_message = cli_message.replace(plan_id, number)
    assert shown == cli_message


async def test_review_confirm_lists_files_and_cancel_changes_nothing(seeded):
    app = make_app(seeded)
    before = tree_hashes(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: len(app.screen.files) == 3)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert [item.split()[0] for item in app.screen.items] == ["src/app.py", "src/util.py", "src/cli.py"]
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, ReviewScreen)
    assert tree_hashes(seeded) == before


async def test_review_shows_the_highlighted_files_diff(seeded):
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.files) == 3)
        await pilot.press("tab")  # focus the file list
        await pilot.press("down")
        await wait_for(pilot, lambda: screen.query_one("#diff").border_title == "src/util.py")
        body = screen.query_one("#diff").text
        assert "-from os import path, sep" in body and "+from os import path" in body


async def test_help_and_palette(seeded):
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        described = dict(app.screen.rows)
        assert (
            described["f"] == "Fire now"
            and described["p"] == "Pause/resume"
            and described["1"] == "Dashboard"
        )
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"go to history")
        await wait_for(
            pilot,
            lambda: any(w.option_count == 1 and w.highlighted == 0 for w in app.screen.query("CommandList")),
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))


async def test_a_plan_written_by_another_process_appears(seeded):
    app = make_app(seeded, watch=True)
    ps = Store().project(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert app.screen.table.row_count == 8
        probe = ps.dir / "probe"
        for i in range(100):  # the watcher is live once it reports a change
            probe.write_text(str(i))
            await pilot.pause(0.1)
            if app.store_changes:
                break
        assert app.store_changes
        code = (
            "import sys; sys.path.insert(0, sys.argv[1])\n"
            "from pathlib import Path\n"
            "from always_on.core.storage import Store\n"
            "from always_on.core.records import PlanRecord, PlanContent\n"
            "ps = Store().project(Path(sys.argv[2]))\n"
            "c = PlanContent(title='Written by the daemon', summary='s', rationale='r', dedupe_key='daemon:one',\n"
            "                proposed_change='p', steps=['a'], verification=['true'])\n"
            "ps.save_plan(PlanRecord(id='plan-from-daemon', project_id=ps.project_id, content=c))\n"
        )
        root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, root, str(seeded))
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        await wait_for(pilot, lambda: app.screen.table.row_count == 9)
        titles = [str(app.screen.table.get_row_at(i)[1]) for i in range(9)]
        assert "Written by the daemon" in titles


async def test_a_run_of_another_process_is_followed_live(seeded):
    app = make_app(seeded, watch=True)
    ps = Store().project(seeded)
    run_id = "run-daemon-1"
    async with app.run_test(size=SIZE) as pilot:
        probe = ps.dir / "probe"
        for i in range(100):
            probe.write_text(str(i))
            await pilot.pause(0.1)
            if app.store_changes:
                break

        def daemon() -> None:
            ps.append_event(
                PhaseEvent(
                    ts=NOW,
                    project_id=ps.project_id,
                    run_id=run_id,
                    type=PhaseEventType.DISCOVERY_STARTED,
                    phase=Phase.DISCOVERY,
                )
            )
            for word in ["Looking ", "at ", "the ", "project\n"]:
                ps.append_agent_event(
                    AgentEvent(
                        ts=NOW, run_id=run_id, phase=Phase.DISCOVERY, kind=AgentEventKind.MESSAGE, text=word
                    )
                )

        thread = threading.Thread(target=daemon)
        thread.start()
        thread.join()
        await wait_for(pilot, lambda: app.current_run.run_id == run_id)
        stream = app.screen.stream
        await wait_for(
            pilot, lambda: any("Looking at the project" in s.text for s in stream.log_widget.lines)
        )
        assert app.current_run.running and not app.current_run.replay


async def test_stream_is_bounded_and_shows_the_open_line(project):
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        stream = app.screen.stream
        for i in range(12_000):
            app.feed_event(
                AgentEvent(
                    ts=NOW, run_id="r", phase=Phase.EXECUTION, kind=AgentEventKind.MESSAGE, text=f"line {i}\n"
                )
            )
        app.feed_event(
            AgentEvent(
                ts=NOW, run_id="r", phase=Phase.EXECUTION, kind=AgentEventKind.MESSAGE, text="still typing"
            )
        )
        await wait_for(pilot, lambda: not app._inbox)
        await pilot.pause()
        assert stream.line_count <= stream.max_lines
        assert stream.log_widget.lines[-1].text.strip() == "line 11999"
        assert "still typing" in str(stream.query_one("#pending").text)


def test_main_refuses_a_missing_project(tmp_path, capsys):
    assert main(["--project", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err


async def test_text_with_brackets_is_shown_verbatim_not_as_markup(seeded):
    from always_on.core.errors import AlwaysOnError, ErrorCode

    ps = Store().project(seeded)
    ps.update_plan(pid(5), lambda p: setattr(p.content, "title", 'Fix [tool.ruff] select = ["E"]'))
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.screen.set_filter("ready")
        await pilot.pause()
        assert str(app.screen.table.get_row_at(0)[1]) == 'Fix [tool.ruff] select = ["E"]'
        app.notify("input_value=PosixPath('/tmp/x')] [/bold]", title="odd")
        await pilot.press("4")
        message = (
            "2 validation errors [type=string_type, input_value=PosixPath('/tmp/w'), input_type=PosixPath]"
        )
        app.screen.show_apply_failure(AlwaysOnError(ErrorCode.APPLY_FAILED, message, files=["a[1].py"]))
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog))
        await pilot.pause()
        assert message in str(app.screen.query_one("#dialog-message").render())


async def test_ctrl_t_opens_the_theme_picker_and_a_theme_applies(project):
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        await pilot.press("escape")
        app.theme = "textual-light"
        await pilot.pause()
        assert app.current_theme.name == "textual-light" and not app.current_theme.dark


async def test_a_failed_fire_shows_the_agent_code_and_hint(project):
    """The dialog (toast), the stepper and the stream carry the code and the next step the CLI prints."""
    from always_on.core.records import ErrorInfo

    app = make_app(project)
    run = "run-20250501-115900-stall1"
    error = ErrorInfo(
        code="agent_stalled",
        message="agent 'claude' stalled: no update, tool call or terminal output for 180 s in the discovery phase",
        hint="its model API may be unreachable or slow: check the network and the key",
    )
    info = {"name": "@agentclientprotocol/claude-agent-acp", "version": "0.101.0"}
    events = [
        PhaseEvent(
            ts=NOW, project_id="p", run_id=run, type=PhaseEventType.DISCOVERY_STARTED, phase=Phase.DISCOVERY
        ),
        AgentEvent(
            ts=NOW,
            run_id=run,
            phase=Phase.DISCOVERY,
            kind=AgentEventKind.LIFECYCLE,
            text="agent ready: @agentclientprotocol/claude-agent-acp 0.101.0, ACP v1",
            data={"agent_info": info},
        ),
        PhaseEvent(
            ts=NOW,
            project_id="p",
            run_id=run,
            type=PhaseEventType.RUN_FAILED,
            phase=Phase.DISCOVERY,
            error=error,
        ),
    ]
    async with app.run_test(size=SIZE) as pilot:
        for event in events:
            app.on_core_event(event)
        await wait_for(pilot, lambda: any("Fire failed" in n for n in notes(app)))
        (note,) = [n for n in app._notifications if n.title == "Fire failed (agent_stalled)"]
        assert note.message == f"{error.message}\n→ {error.hint}"
        assert app.current_run.agent == "@agentclientprotocol/claude-agent-acp 0.101.0"
        stepper = str(app.screen.query_one("#stepper").render())
        assert "agent @agentclientprotocol/claude-agent-acp 0.101.0" in stepper and error.hint in stepper


def test_the_app_refuses_an_agent_command_that_starts_nothing(tmp_path, capsys):
    """Issue 15: the same invalid_agent_command as the CLI, before the app opens."""
    from always_on.tui.app import main

    for line in ("my-agent 'unclosed", ""):
        assert main(["--project", str(tmp_path), "--agent-cmd", line]) == 2
        assert "invalid_agent_command" in capsys.readouterr().err


BAD_TOML = 'agent = "claude"\n\n[scheduler]\ninterval_seconds = 900\ndaily_budget = 24x\n'


async def test_an_invalid_configuration_is_refused_until_the_file_is_fixed(project):
    """Issue 15: with a TOML error the CLI refuses (config_invalid, line and column) but the app showed a toast and
    fired with the defaults — another agent than the one asked for. Now: the same refusal on an error screen, no
    fire, no scheduler; saving a correct file closes the screen and starts the scheduler."""
    from always_on.core import paths
    from always_on.tui.screens.config_error import ConfigErrorScreen

    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(BAD_TOML)
    cli = subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", "run", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 2 and "config_invalid" in cli.stderr and "(at line 5, column 18)" in cli.stderr
    app = make_app(project, run_scheduler=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ConfigErrorScreen)
        shown = str(app.screen.query_one("#config-error-where").render())
        assert "config_invalid" in shown and "line 5, column 18" in shown
        assert "(at line 5, column 18)" in str(app.screen.query_one("#config-error-message").render())
        excerpt = str(app.screen.query_one("#config-error-excerpt").render())
        assert "5 │ daily_budget = 24x" in excerpt and "^" in excerpt
        await pilot.press("1", "f")  # no way around it: not to the dashboard, no fire
        await pilot.pause()
        assert isinstance(app.screen, ConfigErrorScreen) and not app.bridge.scheduler_running
        try:
            await app.bridge.fire()
        except Exception as exc:  # noqa: BLE001 - the refusal is what is checked
            assert getattr(exc, "code", None) == "config_invalid"
        else:
            raise AssertionError("the bridge fired with an invalid configuration")

        config.write_text(BAD_TOML.replace("24x", "-1"))  # still wrong: the screen follows the file
        app.on_config_changed()
        await pilot.pause()
        assert isinstance(app.screen, ConfigErrorScreen)
        shown = str(app.screen.query_one("#config-error-where").render())
        assert "key scheduler.daily_budget" in shown and "line 5" in shown

        config.write_text(BAD_TOML.replace("24x", "3"))
        app.on_config_changed()
        await wait_for(pilot, lambda: app.bridge.scheduler_running)
        assert isinstance(app.screen, DashboardScreen)
        assert app.bridge.config.agent == "claude" and app.bridge.settings.scheduler.daily_budget == 3
    assert Store().project(project).history() == []  # nothing ever fired


async def test_the_configuration_file_is_watched(project):
    """The app notices a saved configuration file by itself (watchfiles), both ways."""
    from always_on.core import paths
    from always_on.tui.screens.config_error import ConfigErrorScreen

    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    app = make_app(project, watch=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not isinstance(app.screen, ConfigErrorScreen)
        config.write_text(BAD_TOML)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigErrorScreen))
        config.write_text(BAD_TOML.replace("24x", "3"))
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfigErrorScreen))
        assert app.bridge.config.scheduler.daily_budget == 3 and app.config_changes >= 2

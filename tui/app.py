"""always-on-tui: the Textual app — dashboard, backlog, history and review of one project.

Events reach the app two ways: from the orchestrator/scheduler running in this process (a listener that only
queues), and from another process (the daemon, the CLI) by watching the project's store folder. Both land in one
inbox that a timer drains at most every 50 ms, so a fast-streaming agent costs a few renders a second, not one per
event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from always_on.core.errors import AlwaysOnError
from always_on.core.records import (
    ARCHIVABLE,
    RERUNNABLE,
    AgentEvent,
    PhaseEvent,
    PhaseEventType,
    PlanRecord,
)
from always_on.tui.bridge import Bridge, create_demo, display_path
from always_on.tui.clock import Clock
from always_on.tui.commands import AlwaysOnCommands
from always_on.tui.feed import StreamFeed
from always_on.tui.run_tracker import RunTracker
from always_on.tui.screens.base import MainScreen
from always_on.tui.screens.dashboard import DashboardScreen
from always_on.tui.screens.dialogs import ConfirmDialog
from always_on.tui.screens.help import HelpScreen
from always_on.tui.tail import JsonlTail

Event = PhaseEvent | AgentEvent

FLUSH_SECONDS = 0.05
# Fewer, later garbage collections while the app runs: a streaming agent allocates fast, and each full pass walks
# the stream's scrollback (measured: the longest frame gap at 5,000 events/s fell from ~110 ms to ~50 ms).
GC_THRESHOLD = (20_000, 50, 1_000)
MAX_EVENTS_PER_FLUSH = 4000  # bounds the work of one flush (a replay of a huge log is spread over frames)
OWN_KEYS = 4096
REFRESH_ON = frozenset(
    {
        PhaseEventType.PLAN_PRODUCED,
        PhaseEventType.NO_PLAN,
        PhaseEventType.WORKSPACE_READY,
        PhaseEventType.EXECUTION_STARTED,
        PhaseEventType.EXECUTION_COMPLETED,
        PhaseEventType.REPORT_PRODUCED,
        PhaseEventType.RUN_COMPLETED,
        PhaseEventType.RUN_FAILED,
        PhaseEventType.APPLY_COMPLETED,
        PhaseEventType.APPLY_FAILED,
        PhaseEventType.PROJECT_DISABLED,
    }
)
RECORD_FILES = frozenset(
    {
        "store.db",
        "store.db-wal",
        "events.jsonl",
        "reports",
        "plans",
        "fire.lock",
    }
)


def _event_key(event: PhaseEvent) -> tuple:
    return (str(event.type), event.run_id, event.cycle_id, event.ts.isoformat())


# The screens the first frame does not show are imported when first opened: their widgets (DataTable, Select,
# Markdown) cost a tenth of a second of start-up together.


def _backlog_screen() -> Screen:
    from always_on.tui.screens.backlog import BacklogScreen

    return BacklogScreen()


def _history_screen() -> Screen:
    from always_on.tui.screens.history import HistoryScreen

    return HistoryScreen()


def _review_screen() -> Screen:
    from always_on.tui.screens.review import ReviewScreen

    return ReviewScreen()


class AlwaysOnApp(App[None]):
    TITLE = "always-on"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {AlwaysOnCommands}
    MODES: ClassVar[dict] = {
        "dashboard": DashboardScreen,
        "backlog": _backlog_screen,
        "history": _history_screen,
        "review": _review_screen,
    }
    DEFAULT_MODE = "dashboard"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "goto('dashboard')", "Dashboard", show=False),
        Binding("2", "goto('backlog')", "Backlog", show=False),
        Binding("3", "goto('history')", "History", show=False),
        Binding("4", "goto('review')", "Review", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+t", "change_theme", "Theme", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        bridge: Bridge | None = None,
        *,
        project: Path | str | None = None,
        clock: Clock | None = None,
        run_scheduler: bool = False,
        watch: bool = True,
        recover: bool = True,
    ) -> None:
        super().__init__()
        self.bridge = bridge or Bridge(project or Path.cwd())
        self.clock = clock or Clock()
        self.run_scheduler = run_scheduler
        self.watch_store = watch
        self.recover_on_start = recover  # settle what a crash left (core.recovery) after the first frame
        self.current_run = RunTracker()
        self.feed = StreamFeed()
        self.dashboard: DashboardScreen | None = None
        self.firing = False
        self.store_changes = 0  # how many store-change batches were handled (tests wait on it)
        self.config_changes = 0  # how many configuration file changes were handled (tests wait on it)
        self._inbox: deque[tuple[Event, bool, bool]] = deque()
        self._undelivered: deque = deque(maxlen=2000)
        self._own_keys: set[tuple] = set()
        self._own_order: deque[tuple] = deque()
        self._own_runs: set[str] = set()
        self._event_tail = JsonlTail(self.bridge.pstore.events_path, PhaseEvent)
        self._agent_tail: JsonlTail | None = None
        self._agent_tail_run: str | None = None
        self._watch_stop = asyncio.Event()
        self._gc_threshold = gc.get_threshold()
        self.bridge.add_listener(self.on_core_event)

    # --- lifecycle ---------------------------------------------------------------------------------------

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity="information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Messages carry paths, commands and agent text: never interpret them as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def on_mount(self) -> None:
        # Everything loaded so far lives as long as the app: keep it out of the cyclic GC's full passes, which
        # otherwise stall the event loop for tens of milliseconds while an agent streams.
        gc.freeze()
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLD)
        self.set_interval(FLUSH_SECONDS, self.flush_events)
        if self.watch_store:
            self._watch()
            self._watch_config()
        if self.bridge.config_error is not None:  # refused as the CLI refuses it: no fire, no scheduler
            self._show_config_error()
        elif self.run_scheduler:  # after the first frame: its first gate checks need not delay the screen
            self.call_after_refresh(self._scheduler)
        self._show_problems()
        if self.recover_on_start:
            self.call_after_refresh(self._recover)

    def _recover(self) -> None:
        """Settle what a crash left (e.g. an interrupted apply) and say what was done."""
        notes = self.bridge.recover()
        for note in notes:
            self.notify(note, title="Recovered after a crash", severity="warning", timeout=15)
        if notes:
            self.refresh_screens()
        self._show_problems()

    async def on_unmount(self) -> None:
        self._watch_stop.set()
        gc.set_threshold(*self._gc_threshold)
        gc.unfreeze()

    def stream_backlog(self) -> list:
        lines = list(self._undelivered)
        self._undelivered.clear()
        return lines

    # --- events in -------------------------------------------------------------------------------------------

    def on_core_event(self, event: Event) -> None:
        """Listener given to the orchestrator/scheduler: only queues (it may be called 5,000 times a second)."""
        if isinstance(event, PhaseEvent):
            key = _event_key(event)
            self._own_keys.add(key)
            self._own_order.append(key)
            if len(self._own_order) > OWN_KEYS:
                self._own_keys.discard(self._own_order.popleft())
            if event.run_id:
                self._own_runs.add(event.run_id)
        self._inbox.append((event, True, True))

    def feed_event(self, event: Event, *, live: bool = True) -> None:
        """Queue an event as if it came from another process (tests and replays use this)."""
        self._inbox.append((event, live, False))

    def flush_events(self) -> None:
        if not self._inbox:
            return
        refresh = False
        stepper = False
        handled = 0
        while self._inbox and handled < MAX_EVENTS_PER_FLUSH:
            event, live, own = self._inbox.popleft()
            handled += 1
            if isinstance(event, PhaseEvent):
                if live and self.current_run.replay:
                    self.current_run.replay = False
                stepper |= self.current_run.apply(event)
                self.feed.add(event)
                if live:
                    refresh |= event.type in REFRESH_ON
                    self._notify_phase(event, own)
            else:
                stepper |= self.current_run.note_agent(event)
                self.feed.add(event)
        lines = self.feed.take()
        dash = self.dashboard
        if dash is not None and dash.is_mounted:
            dash.stream.write_lines(lines)
            dash.stream.set_pending(self.feed.pending)
            if stepper:
                dash.show_run()
        else:
            self._undelivered.extend(lines)
        if refresh:
            self.refresh_screens()

    def _notify_phase(self, event: PhaseEvent, own: bool) -> None:
        bell = self.bridge.settings.notifications.bell
        if event.type == PhaseEventType.RUN_COMPLETED:
            title = self.current_run.plan_title or (event.plan_id or "")
            message = f"Plan done: {title}" if title else "The fire finished."
            cycle = self.bridge.active_cycle()
            ready = self.bridge.default_selection(cycle) if cycle else []
            if ready:
                message += f"\nCycle ready to review: {len(ready)} plan(s) — press 4."
            self.notify(message, title="Fire finished")
        elif event.type == PhaseEventType.RUN_FAILED:
            error = event.error
            self.notify(
                (error.message + (f"\n→ {error.hint}" if error.hint else ""))
                if error
                else (event.message or "The fire failed."),
                title=f"Fire failed ({error.code})" if error else "Fire failed",
                severity="error",
            )
        elif event.type == PhaseEventType.NO_PLAN:
            self.notify(
                "Discovery proposed nothing; the project sleeps until its files change.", title="No plan"
            )
        elif event.type == PhaseEventType.PROJECT_DISABLED:
            self.notify(
                event.message or "The project was disabled.", title="Project disabled", severity="error"
            )
        elif not own and event.type == PhaseEventType.APPLY_COMPLETED:
            self.notify("Plans were applied by another process.", title="Applied")
        elif not own and event.type == PhaseEventType.APPLY_FAILED:
            self.notify(event.message or "An apply failed.", title="Apply failed", severity="error")
        else:
            return
        if bell and event.type != PhaseEventType.APPLY_COMPLETED:
            self.bell()

    # --- another process: the store folder ---------------------------------------------------------------

    @work(exclusive=True, group="watch")
    async def _watch(self) -> None:
        from watchfiles import awatch

        folder = self.bridge.store_dir
        folder.mkdir(parents=True, exist_ok=True)
        async for changes in awatch(
            folder,
            debounce=150,
            step=50,
            stop_event=self._watch_stop,
            recursive=True,
            ignore_permission_denied=True,
        ):
            names: set[str] = set()
            for _, raw in changes:
                with contextlib.suppress(ValueError):
                    parts = Path(raw).relative_to(folder).parts
                    if parts and not parts[0].startswith(".") and not parts[0].endswith(".tmp"):
                        names.add(parts[0])
            self.on_store_changed(names)

    def on_store_changed(self, names: set[str]) -> None:
        """New lines of the phase log and of the followed run's agent log, merged in the order they happened."""
        new: list[Event] = []
        if "events.jsonl" in names:
            for event in self._event_tail.read_new():
                if _event_key(event) in self._own_keys or (event.run_id in self._own_runs):
                    continue
                if (
                    event.run_id
                    and event.type in (PhaseEventType.DISCOVERY_STARTED, PhaseEventType.WORKSPACE_STARTED)
                    and event.run_id != self._agent_tail_run
                ):
                    if self._agent_tail is not None:
                        new.extend(self._agent_tail.read_new())  # the previous run's last lines
                    self._agent_tail_run = event.run_id
                    self._agent_tail = JsonlTail(
                        self.bridge.pstore.agent_events_path(event.run_id), AgentEvent, from_end=False
                    )
                new.append(event)
        if self._agent_tail is not None and names & {"runs", "events.jsonl"}:
            new.extend(self._agent_tail.read_new())
        new.sort(key=lambda e: e.ts)  # stable: what the two logs hold, in the order it happened
        for event in new:
            self._inbox.append((event, True, False))
        if names & RECORD_FILES:
            self.refresh_screens()
        self.store_changes += 1

    # --- the configuration file ---------------------------------------------------------------------------

    @work(exclusive=True, group="watch-config")
    async def _watch_config(self) -> None:
        from watchfiles import awatch

        path = self.bridge.config_path
        path.parent.mkdir(parents=True, exist_ok=True)
        async for _ in awatch(
            path.parent,
            watch_filter=lambda _change, changed: Path(changed).name == path.name,
            debounce=200,
            step=50,
            stop_event=self._watch_stop,
            recursive=False,
            ignore_permission_denied=True,
        ):
            self.on_config_changed()

    def on_config_changed(self) -> None:
        """The configuration file changed: use it if it reads correctly, else show why (and fire nothing)."""
        from always_on.tui.screens.config_error import ConfigErrorScreen

        self.config_changes += 1
        if not self.bridge.reload_config():
            self._show_config_error()
            return
        shown = [s for s in self.screen_stack if isinstance(s, ConfigErrorScreen)]
        if shown:
            self.pop_screen()
            self.notify(
                f"{display_path(self.bridge.config_path)} reads correctly again.", title="Configuration"
            )
        if self.run_scheduler and not self.bridge.scheduler_running:
            self._scheduler()
        self.refresh_screens()

    def _show_config_error(self) -> None:
        from always_on.tui.screens.config_error import ConfigErrorScreen

        error = self.bridge.config_error
        assert error is not None
        if isinstance(self.screen, ConfigErrorScreen):
            self.screen.show(error)
        else:
            self.push_screen(ConfigErrorScreen(error, self.bridge.config_path))

    # --- screens --------------------------------------------------------------------------------------------

    def refresh_screens(self) -> None:
        screen = self.screen
        if isinstance(screen, MainScreen) and screen.is_mounted:
            screen.reload()
        self._show_problems()

    def _show_problems(self) -> None:
        for problem in self.bridge.take_problems():
            self.notify(problem, title="Store problem", severity="error", timeout=10)

    def action_goto(self, mode: str) -> None:
        if self.bridge.config_error is not None:  # the error screen stays until the file is fixed
            self.bell()
            return
        self.switch_mode(mode)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen))

    async def action_quit(self) -> None:
        if not self.firing:
            self.exit()
            return

        def answer(ok: bool | None) -> None:
            if ok:
                self.exit()

        self.push_screen(
            ConfirmDialog(
                "Quit while a fire is running?",
                "The running fire is interrupted and recorded as failed (interrupted).",
                confirm="Quit",
                danger=True,
            ),
            answer,
        )

    def open_plan(self, plan_id: str) -> None:
        plan = self.bridge.plan(plan_id)
        if plan is None:
            self.notify(f"Plan {plan_id} is gone.", severity="warning")
            return
        from always_on.tui.documents import plan_document
        from always_on.tui.screens.document import PlanScreen

        doc = plan_document(plan, self.bridge.plan_markdown(plan.id), self.clock)
        self.push_screen(PlanScreen(plan.id, f"Plan: {plan.title}", doc))

    def open_run(self, run_id: str) -> None:
        from always_on.tui.documents import run_document
        from always_on.tui.screens.document import RunScreen

        entry = self.bridge.run_entry(run_id)
        meta, text = self.bridge.report(run_id)
        if entry is None:
            if text is None:
                self.notify(f"Run {run_id} has no history entry yet.", severity="warning")
                return
            self.push_screen(RunScreen(run_id, f"Report {run_id}", text))
            return
        self.push_screen(RunScreen(run_id, f"Run {run_id}", run_document(entry, meta, text, self.clock)))

    # --- actions ----------------------------------------------------------------------------------------------

    def action_fire(self) -> None:
        if self.firing:
            self.notify("A fire is already running.", severity="warning")
            return
        self._fire(None)

    def start_rerun(self, plan_id: str) -> None:
        plan = self.bridge.plan(plan_id)
        if plan is None:
            self.notify(f"Plan {plan_id} is gone.", title="Cannot rerun", severity="warning")
            return
        if plan.status not in RERUNNABLE:
            self.notify(
                f"Only failed or ready plans can be rerun; this one is {plan.status}.",
                title="Cannot rerun",
                severity="warning",
            )
            return
        if self.firing:
            self.notify("A fire is already running; rerun it when it ends.", severity="warning")
            return
        self._fire(plan_id)
        self.notify(f"Rerunning plan {plan_id}.", title="Rerun")

    @work(group="fire")
    async def _fire(self, plan_id: str | None) -> None:
        self.firing = True
        try:
            if plan_id is None:
                await self.bridge.fire()
            else:
                await self.bridge.rerun(plan_id)
        except AlwaysOnError as exc:
            self.notify(exc.message, title=f"Could not fire ({exc.code})", severity="error")
        finally:
            self.firing = False
            self.refresh_screens()

    @work(group="scheduler")
    async def _scheduler(self) -> None:
        try:
            await self.bridge.run_scheduler()
        except AlwaysOnError as exc:
            self.notify(exc.message, title="Scheduler not running", severity="warning")

    def action_toggle_pause(self) -> None:
        gate = self.bridge.gate()
        resume = gate.paused or not gate.enabled or gate.disabled_reason is not None
        try:
            self.bridge.set_paused(not resume)
        except AlwaysOnError as exc:
            self.notify(exc.message, severity="error")
            return
        self.notify(
            "Scheduled fires resumed." if resume else "Scheduled fires paused for this project.",
            title="Scheduler",
        )
        self.refresh_screens()

    def confirm_archive_plan(self, plan: PlanRecord) -> None:
        if plan.status not in ARCHIVABLE:
            self.notify(
                f"A plan that is {plan.status} cannot be archived.",
                title="Cannot archive",
                severity="warning",
            )
            return

        def answer(ok: bool | None) -> None:
            if not ok:
                return
            try:
                self.bridge.archive_plan(plan.id)
            except AlwaysOnError as exc:
                self.notify(exc.message, title="Archive refused", severity="error")
                return
            self.notify(f"Archived: {plan.title}", title="Plan archived")
            from always_on.tui.screens.document import PlanScreen

            if isinstance(self.screen, PlanScreen):
                self.pop_screen()
            self.refresh_screens()

        self.push_screen(
            ConfirmDialog(
                f"Archive this {plan.status} plan?",
                plan.title,
                [f"id {plan.id}", f"dedupe key {plan.dedupe_key}"],
                confirm="Archive",
                danger=True,
            ),
            answer,
        )

    def replay_run(self, run_id: str) -> None:
        if self.firing or (self.current_run.running and not self.current_run.replay):
            self.notify("A fire is running; replay it when it ends.", severity="warning")
            return
        phase_events = self.bridge.run_events(run_id)
        agent_events = self.bridge.agent_events(run_id)
        events: list[Event] = sorted([*phase_events, *agent_events], key=lambda e: e.ts)
        self._inbox.clear()
        self.feed.reset()
        self.current_run.reset(run_id, None, replay=True)
        if self.dashboard is not None and self.dashboard.is_mounted:
            self.dashboard.stream.clear()
        self.feed.note(
            f"Replay of run {run_id}: {len(phase_events)} phase events, {len(agent_events)} agent "
            "events" + ("" if events else " — nothing was recorded for this run"),
            style="bold",
        )
        for event in events:
            self._inbox.append((event, False, False))
        self.switch_mode("dashboard")
        self.flush_events()
        if self.dashboard is not None and self.dashboard.is_mounted:
            self.dashboard.show_run()

    def action_replay_last(self) -> None:
        history = self.bridge.history()
        if not history:
            self.notify("No run yet.", severity="warning")
            return
        self.replay_run(history[0].run_id)

    async def action_review_apply(self) -> None:
        from always_on.tui.screens.review import ReviewScreen

        await self.switch_mode("review")
        screen = self.screen
        if isinstance(screen, ReviewScreen):
            screen.action_apply()

    async def action_review_archive(self) -> None:
        from always_on.tui.screens.review import ReviewScreen

        await self.switch_mode("review")
        screen = self.screen
        if isinstance(screen, ReviewScreen):
            screen.action_archive()

    def get_system_commands(self, screen: Screen):
        """Textual's own "Keys" panel is replaced by this app's help (the palette lists ours)."""
        for command in super().get_system_commands(screen):
            if command.title != "Keys":
                yield command

    def get_default_screen(self) -> Screen:  # pragma: no cover - modes always provide the screen
        return DashboardScreen()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="always-on-tui", description="always-on terminal UI")
    parser.add_argument("--project", type=Path, default=None, help="project folder (default: current folder)")
    parser.add_argument(
        "--demo", action="store_true", help="create a sample project in a temp folder and open it"
    )
    parser.add_argument("--agent", default=None, help="agent name to use for fires started here")
    parser.add_argument(
        "--agent-cmd", default=None, help="ACP agent command line to use for fires started here"
    )
    parser.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler in this app")
    args = parser.parse_args(argv)
    project = (args.project or Path.cwd()).expanduser().resolve()
    try:
        if args.demo:
            tmp = Path(tempfile.mkdtemp(prefix="always-on-demo-"))
            os.environ.setdefault("ALWAYS_ON_HOME", str(tmp / "home"))
            project = create_demo(tmp / "project")
        elif not project.is_dir():
            print(f"always-on-tui: {project} is not a directory", file=sys.stderr)
            return 2
        bridge = Bridge(project, agent=args.agent, agent_cmd=args.agent_cmd)
    except AlwaysOnError as exc:
        print(f"always-on-tui: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    AlwaysOnApp(bridge, run_scheduler=not args.no_scheduler).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

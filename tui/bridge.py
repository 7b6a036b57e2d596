"""The one place the TUI touches core: reads from the project store, actions through the orchestrator/scheduler.

Everything the screens need from core goes through ``Bridge`` so that a change in core's API is fixed here only.
Store reads never raise into the UI: a store that cannot be read is reported (``store_corrupt``, naming the file),
and its message is kept in ``problems`` for the app to show once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from always_on.core.config import Config, ProjectSettings, load_config
from always_on.core.errors import AlwaysOnError
from always_on.core.orchestrator import ApplyReport, FireResult, Orchestrator
from always_on.core.records import (
    OPEN_CYCLE_STATUSES,
    AgentEvent,
    CycleRecord,
    FileChange,
    PhaseEvent,
    PlanRecord,
    ProjectState,
    ReportMetadata,
    RunHistoryEntry,
)
from always_on.core.scheduler import GateStatus, Scheduler, evaluate_gates
from always_on.core.selection import ApplyPreparation, default_selection
from always_on.core.storage import ProjectStore, Store, StoreCorruptError

Listener = Callable[[PhaseEvent | AgentEvent], None]
T = TypeVar("T")


class GateView(GateStatus):
    """What the dashboard shows about the scheduler for this project: its gate status, and whether the scheduler
    runs in this app."""

    scheduler_running: bool = False


def display_path(path: Path) -> str:
    """The project path with the home folder shortened to ``~`` (what a person reads, and stable in snapshots)."""
    with contextlib.suppress(ValueError, RuntimeError):
        return "~/" + path.relative_to(Path.home()).as_posix()
    return str(path)


class Bridge:
    def __init__(
        self,
        project: Path | str,
        *,
        store: Store | None = None,
        config: Config | None = None,
        agent: str | None = None,
        agent_cmd: str | None = None,
    ) -> None:
        self.project = Path(project).expanduser().resolve()
        self.store = store or Store()
        self.pstore: ProjectStore = self.store.project(self.project)
        self.problems: list[str] = []
        # An invalid configuration file is refused as the CLI refuses it: the app shows it and fires nothing
        # (never with defaults, which may name another agent) until the file reads correctly (`reload_config`).
        self.config_error: AlwaysOnError | None = None
        self.config = config if config is not None else self._load_config()
        self.agent = agent
        self.agent_cmd = agent_cmd
        if agent_cmd is not None:  # invalid_agent_command before the app opens, as in the CLI
            from always_on.core.agents.presets import resolve_command_line

            resolve_command_line(agent_cmd)
        self._listeners: list[Listener] = []
        self._orchestrator: Orchestrator | None = None
        self._scheduler: Scheduler | None = None
        self.scheduler_running = False

    def _load_config(self) -> Config:
        try:
            return load_config()
        except AlwaysOnError as exc:
            self.config_error = exc
            return Config()

    @property
    def config_path(self) -> Path:
        from always_on.core import paths

        return paths.config_file()

    def reload_config(self) -> bool:
        """Read the configuration file again: True when it is valid now (it is then used by every later fire,
        the scheduler's included; a fire running now finishes with the one it started with)."""
        try:
            config = load_config()
            config.for_project(self.project)
        except AlwaysOnError as exc:
            self.config_error = exc
            if self._scheduler is not None:  # no new scheduled fire until the file reads correctly again
                self._scheduler.held = f"{exc.code}: {exc.message}"
            return False
        self.config_error = None
        self.config = config
        if self._scheduler is not None:
            self._scheduler.config = config
            self._scheduler.held = None
            self._scheduler.wake()
            for path, orch in list(self._scheduler.orchestrators.items()):
                if orch.running is None:  # the next fire builds a new one with the new configuration
                    del self._scheduler.orchestrators[path]
        if self._orchestrator is not None and self._orchestrator.running is None:
            self._orchestrator = None
        return True

    # --- identity ----------------------------------------------------------------------------------------

    @property
    def display_path(self) -> str:
        return display_path(self.project)

    @property
    def settings(self) -> ProjectSettings:
        try:
            return self.config.for_project(self.project)
        except AlwaysOnError:
            return ProjectSettings()

    @property
    def agent_name(self) -> str:
        return self.agent or ("custom command" if self.agent_cmd else self.settings.agent)

    @property
    def store_dir(self) -> Path:
        return self.pstore.dir

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)
        if self._orchestrator is not None:
            self._orchestrator.add_listener(fn)

    def take_problems(self) -> list[str]:
        out, self.problems = self.problems, []
        return out

    # --- reads -------------------------------------------------------------------------------------------

    def _read(self, fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except StoreCorruptError as exc:
            self.problems.append(exc.message)
            return default

    def state(self) -> ProjectState:
        return self._read(
            self.pstore.read_state, ProjectState(project_id=self.pstore.project_id, path=str(self.project))
        )

    def plans(self) -> list[PlanRecord]:
        """Newest first."""
        return self._read(lambda: self.pstore.plans_list(newest_first=True), [])

    def plan(self, plan_id: str) -> PlanRecord | None:
        return self._read(lambda: self.pstore.find_plan(plan_id), None)

    def plan_markdown(self, plan_id: str) -> str | None:
        return self.pstore.read_plan_markdown(plan_id)

    def cycles(self) -> list[CycleRecord]:
        cycles = self._read(self.pstore.cycles, {})
        return sorted(cycles.values(), key=lambda c: (c.created_at, c.id), reverse=True)

    def active_cycle(self) -> CycleRecord | None:
        cycle = self._read(self.pstore.active_cycle, None)
        return cycle if cycle is not None and cycle.status in OPEN_CYCLE_STATUSES else None

    def history(self) -> list[RunHistoryEntry]:
        """Newest first."""
        return self._read(lambda: self.pstore.history(newest_first=True), [])

    def run_entry(self, run_id: str) -> RunHistoryEntry | None:
        return self._read(lambda: self.pstore.run_entry(run_id), None)

    def events(self) -> list[PhaseEvent]:
        return self.pstore.events()

    def run_events(self, run_id: str) -> list[PhaseEvent]:
        return [e for e in self.pstore.events() if e.run_id == run_id]

    def agent_events(self, run_id: str) -> list[AgentEvent]:
        return self.pstore.agent_events(run_id)

    def report(self, run_id: str) -> tuple[ReportMetadata | None, str | None]:
        return self._read(lambda: self.pstore.read_report(run_id), (None, None))

    def default_selection(self, cycle: CycleRecord) -> list[str]:
        return default_selection(cycle)

    def recover(self) -> list[str]:
        """Settle what a crash left (an interrupted apply, a dead run): what the app tells the user."""
        from always_on.core.recovery import needs_recovery

        try:
            if not self.project.is_dir() or not needs_recovery(self.pstore):
                return []
            return list(self.orchestrator().recover())
        except AlwaysOnError as exc:
            self.problems.append(exc.message)
            return []

    # --- scheduler ----------------------------------------------------------------------------------------

    def scheduler(self) -> Scheduler:
        """The scheduler for this project (created on first use; run by `run_scheduler`)."""
        if self._scheduler is None:
            self._scheduler = Scheduler(
                self.store,
                self.config,
                projects=[self.project],
                listeners=list(self._listeners),
                agent=self.agent,
                agent_cmd=self.agent_cmd,
            )
        return self._scheduler

    def gate(self, now: datetime | None = None) -> GateView:
        """Gate status; ``now`` (an injected clock) evaluates the gates at that time instead of the real one.

        When the gates cannot be evaluated (a broken store, a bad config), the gate the state last recorded.
        """
        sched = self.scheduler()
        try:
            if now is None:
                status = sched.gate_status(self.project)
            else:
                task = sched.running.get(self.project)
                status = evaluate_gates(
                    self.pstore, self.settings, busy=task is not None and not task.done(), now=now
                )
        except AlwaysOnError as exc:  # StoreCorruptError included
            self.problems.append(exc.message)
            status = GateStatus.of_state(self.pstore.project_id, self.state())
        return GateView(**status.model_dump(), scheduler_running=self.scheduler_running)

    def set_paused(self, paused: bool) -> None:
        """Pause or resume scheduled fires; resuming also re-enables a project disabled after failures."""
        if not paused:
            self.pstore.update_state(lambda st: st.enable())
        self.scheduler().set_paused(self.project, paused)

    async def run_scheduler(self) -> None:
        self._refuse_invalid_config()
        sched = self.scheduler()
        self.scheduler_running = True
        try:
            await sched.run()
        finally:
            self.scheduler_running = False

    # --- orchestrator ------------------------------------------------------------------------------------

    def orchestrator(self) -> Orchestrator:
        """The project's orchestrator, shared with the in-app scheduler (one per project)."""
        if self._orchestrator is None:
            self._orchestrator = self.scheduler().orchestrator(self.project)
        return self._orchestrator

    def _refuse_invalid_config(self) -> None:
        if self.config_error is not None:
            raise self.config_error

    async def fire(self) -> FireResult:
        self._refuse_invalid_config()
        return await self.orchestrator().fire()

    async def rerun(self, plan_id: str) -> FireResult:
        self._refuse_invalid_config()
        return await self.orchestrator().rerun(plan_id)

    def prepare_apply(self, cycle_id: str, plan_ids: list[str], *, files: bool = True) -> ApplyPreparation:
        """What applying these plans would change, or why it is refused (the same answer the CLI gives)."""
        return self.orchestrator().prepare_apply(cycle_id, list(plan_ids), files=files)

    def apply(self, cycle_id: str, plan_ids: list[str]) -> ApplyReport:
        return self.orchestrator().apply(cycle_id, list(plan_ids))

    def archive_cycle(self, cycle_id: str) -> str | None:
        return self.orchestrator().archive_cycle(cycle_id)

    def archive_plan(self, plan_id: str) -> None:
        self.orchestrator().archive_plan(plan_id)

    def cycle_files(self, cycle_id: str, plan_ids: list[str] | None = None) -> list[FileChange]:
        return list(self.orchestrator().cycle_files(cycle_id, list(plan_ids) if plan_ids else None))

    def cycle_diff_text(
        self, cycle_id: str, file: str | None = None, plan_ids: list[str] | None = None
    ) -> str:
        return self.orchestrator().cycle_diff_text(cycle_id, file, list(plan_ids) if plan_ids else None)


def create_demo(path: Path) -> Path:
    """The demo project, registered and enabled (as `always-on init` does): the app's scheduler fires on it."""
    from always_on.core.demo import create_demo_project

    project = create_demo_project(path)
    Store().project(project).update_state(
        lambda st: (setattr(st, "path", str(project.resolve())), st.enable())
    )
    return project

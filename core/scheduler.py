"""The scheduler of DESIGN §6: one tick per interval per enabled project, gates in a fixed order, dormancy.

Gates, first failing one blocks and is recorded for the UI: disabled, project_disabled, project_missing, dormant,
agent_busy, cooldown, daily_budget, lock_busy, cycle_full. A `no_plan` outcome makes the project dormant until its
files change (watchfiles, debounced, ignoring .git and build outputs); dormancy is in the project state, so it
survives a restart. After N consecutive failures the project is disabled with a `project_disabled` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel

from always_on.core.config import Config, ProjectSettings
from always_on.core.errors import AlwaysOnError
from always_on.core.orchestrator import EventListener, FireResult, Orchestrator
from always_on.core.records import (
    ErrorInfo,
    Gate,
    PhaseEvent,
    PhaseEventType,
    ProjectState,
    utcnow,
)
from always_on.core.storage import ProjectStore, Store

log = logging.getLogger(__name__)


class GateStatus(BaseModel):
    """Whether a tick of one project may fire now (`blocked_by` None), or which gate holds it back, and why."""

    project_id: str
    path: str
    enabled: bool
    paused: bool
    dormant_since: datetime | None = None
    blocked_by: Gate | None = None
    detail: str | None = None
    next_tick_at: datetime | None = None
    disabled_reason: str | None = None
    last_outcome: str | None = None
    consecutive_failures: int = 0

    @classmethod
    def of_state(cls, project_id: str, st: ProjectState) -> GateStatus:
        """What the project state records: the gate found by the last tick, without evaluating the gates."""
        return cls(
            project_id=project_id,
            path=st.path,
            enabled=st.enabled,
            paused=st.paused,
            dormant_since=st.dormant_since,
            blocked_by=st.blocked_by,
            next_tick_at=st.next_tick_at,
            disabled_reason=st.disabled_reason,
            last_outcome=st.last_outcome,
            consecutive_failures=st.consecutive_failures,
        )


def evaluate_gates(
    store: ProjectStore, settings: ProjectSettings, *, busy: bool = False, now: datetime | None = None
) -> GateStatus:
    """Which gate (if any) blocks a tick of this project now, and when the next tick is due."""
    now = now or utcnow()
    st: ProjectState = store.read_state()
    sched = settings.scheduler
    due = st.next_tick_at
    if due is None and st.last_fire_finished_at is not None:
        due = st.last_fire_finished_at + timedelta(seconds=sched.interval_seconds)
    status = GateStatus.of_state(store.project_id, st).model_copy(
        update={"enabled": st.enabled and sched.enabled, "blocked_by": None, "next_tick_at": due}
    )

    def block(gate: Gate, detail: str) -> GateStatus:
        status.blocked_by, status.detail = gate, detail
        return status

    if not sched.enabled:
        return block(Gate.DISABLED, "the scheduler is disabled in the configuration")
    if not st.enabled:
        return block(Gate.DISABLED, "the project is not enabled (run `always-on init`)")
    if st.paused:
        return block(Gate.DISABLED, "paused by the user")
    if st.disabled_reason:
        return block(Gate.PROJECT_DISABLED, st.disabled_reason)
    if not Path(st.path).is_dir():
        return block(Gate.PROJECT_MISSING, f"{st.path} does not exist")
    if st.dormant_since is not None:
        return block(
            Gate.DORMANT, f"no plan found at {st.dormant_since:%Y-%m-%d %H:%M} UTC; waiting for a file change"
        )
    if busy:
        return block(Gate.AGENT_BUSY, "a fire is already running")
    if st.last_fire_finished_at is not None:
        ready_at = st.last_fire_finished_at + timedelta(seconds=sched.cooldown_seconds)
        if now < ready_at:
            return block(Gate.COOLDOWN, f"cooling down until {ready_at:%H:%M:%S} UTC")
    runs_today = st.runs_on(date.today())
    if runs_today >= sched.daily_budget:
        return block(
            Gate.DAILY_BUDGET,
            f"{runs_today} run{'s' * (runs_today != 1)} today (manual runs included); the daily budget is "
            f"{sched.daily_budget}",
        )
    holder = store.fire_lock().busy()
    if holder is not None:
        return block(Gate.LOCK_BUSY, f"another process (pid {holder.pid}) is firing")
    cycle = store.active_cycle()
    if cycle is not None:
        # the cycle's own per-plan states mirror plan statuses: no need to read the (possibly large) plan index
        open_count = cycle.open_plan_count()
        if open_count >= sched.max_plans_per_cycle:
            return block(
                Gate.CYCLE_FULL,
                f"the active cycle holds {open_count} open plans; review and apply or archive",
            )
    if due is not None and now < due:
        return block(Gate.INTERVAL, f"next tick at {due:%H:%M:%S} UTC")
    return status


def _ignored(path: str, root: Path, patterns: Iterable[str]) -> bool:
    try:
        parts = Path(path).resolve().relative_to(root).parts
    except ValueError:
        return True
    return any(fnmatch.fnmatch(part, pat) for part in parts for pat in patterns)


class Scheduler:
    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        projects: list[Path] | None = None,
        listeners: list[EventListener] | tuple[EventListener, ...] = (),
        agent: str | None = None,
        agent_cmd: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self._projects = [Path(p).resolve() for p in projects] if projects is not None else None
        self.listeners = list(listeners)
        self.agent = agent
        self.agent_cmd = agent_cmd
        if agent_cmd is not None:  # refused at start, not at each tick
            config.command_line_spec(agent_cmd)
        self.orchestrators: dict[Path, Orchestrator] = {}
        self.running: dict[Path, asyncio.Task] = {}
        self.held: str | None = None  # why no new fire may start (the app's configuration became invalid)
        self._wake = asyncio.Event()
        self._watchers: dict[Path, asyncio.Task] = {}
        self._reported: set[tuple[Path | None, str]] = set()

    def projects(self) -> list[Path]:
        if self._projects is not None:
            return self._projects
        warnings: list[str] = []
        out = []
        for ps in self.store.projects(warnings):
            try:
                if ps.read_state().enabled:
                    out.append(ps.project_path)
            except AlwaysOnError as exc:
                warnings.append(exc.message)
        for warning in warnings:
            if (None, warning) not in self._reported:
                self._reported.add((None, warning))
                log.warning("%s", warning)
        return out

    def orchestrator(self, project: Path) -> Orchestrator:
        project = project.resolve()
        if project not in self.orchestrators:
            self.orchestrators[project] = Orchestrator(
                project,
                store=self.store,
                config=self.config,
                agent=self.agent,
                agent_cmd=self.agent_cmd,
                listeners=self.listeners,
            )
        return self.orchestrators[project]

    def gate_status(self, project: Path) -> GateStatus:
        project = project.resolve()
        task = self.running.get(project)
        return evaluate_gates(
            self.store.project(project),
            self.config.for_project(project),
            busy=task is not None and not task.done(),
        )

    def _safe_gate(self, project: Path) -> GateStatus | None:
        """Gate of one project; a broken store of one project must not stop the others."""
        try:
            return self.gate_status(project)
        except AlwaysOnError as exc:
            key = (project, exc.code)
            if key not in self._reported:
                self._reported.add(key)
                log.warning(
                    "%s: %s: %s (skipping this project until it is fixed)", project, exc.code, exc.message
                )
                for fn in self.listeners:
                    with contextlib.suppress(Exception):
                        fn(
                            PhaseEvent(
                                project_id=self.store.project(project).project_id,
                                type=PhaseEventType.RUN_FAILED,
                                message=exc.message,
                                error=ErrorInfo(code=exc.code, message=exc.message),
                            )
                        )
            return None

    def set_paused(self, project: Path, paused: bool) -> None:
        self.store.project(project).update_state(lambda st: setattr(st, "paused", paused))
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def tick(self, project: Path) -> FireResult | None:
        """Fire once if no gate blocks; record the blocking gate otherwise."""
        project = project.resolve()
        ps = self.store.project(project)
        gate = self.gate_status(project)
        ps.update_state(lambda st: setattr(st, "blocked_by", gate.blocked_by))
        if gate.blocked_by:
            return None
        orch = self.orchestrator(project)
        task = asyncio.ensure_future(orch.fire())
        self.running[project] = task
        try:
            result = await task
        except AlwaysOnError as exc:
            log.info("tick of %s skipped: %s", project, exc)
            return None
        finally:
            self.running.pop(project, None)
        self._after_fire(project, result)
        return result

    def _after_fire(self, project: Path, result: FireResult) -> None:
        """The next tick is due one interval after this fire (disabling after N failures is the fire's own
        bookkeeping, so that a fire killed mid-way counts too: core.recovery)."""
        settings = self.config.for_project(project)
        interval = timedelta(seconds=settings.scheduler.interval_seconds)

        def update(st: ProjectState) -> None:
            st.next_tick_at = (st.last_fire_finished_at or utcnow()) + interval

        self.store.project(project).update_state(update)

    def recover(self, project: Path) -> list[str]:
        """Settle what a crash left in this project (an apply journal, a dead run...); cheap when nothing was."""
        from always_on.core.recovery import needs_recovery

        project = project.resolve()
        try:
            if not project.is_dir() or not needs_recovery(self.store.project(project)):
                return []
            return self.orchestrator(project).recover()
        except AlwaysOnError as exc:
            log.warning("%s: recovery failed: %s: %s", project, exc.code, exc.message)
            return []

    # --- dormancy -----------------------------------------------------------------------------------------

    async def _watch(self, project: Path) -> None:
        """Wake a dormant project when its files change (debounced; ignores .git, caches, build outputs)."""
        from watchfiles import awatch

        settings = self.config.for_project(project)
        patterns = settings.dormancy.ignore

        def keep(_change, path: str) -> bool:
            return not _ignored(path, project, patterns)

        stop = asyncio.Event()
        async for _changes in awatch(
            project,
            watch_filter=keep,
            debounce=settings.dormancy.debounce_ms,
            stop_event=stop,
            recursive=True,
        ):
            ps = self.store.project(project)
            try:
                st = ps.read_state()
            except AlwaysOnError as exc:
                log.warning("%s: %s", project, exc.message)
                continue
            if st.dormant_since is not None:
                now = utcnow()

                def wake(s: ProjectState, now=now) -> None:
                    s.dormant_since = None
                    s.last_change_at = now
                    s.next_tick_at = now

                ps.update_state(wake)
                self._wake.set()

    def _ensure_watchers(self, projects: list[Path]) -> None:
        for project in projects:
            task = self._watchers.get(project)
            if (task is None or task.done()) and project.is_dir():
                self._watchers[project] = asyncio.ensure_future(self._watch(project))

    async def run_once(self) -> list[FireResult]:
        """One tick for every project (the daemon's `--once`)."""
        results = []
        for project in self.projects():
            if self._safe_gate(project) is None:
                continue
            result = await self.tick(project)
            if result is not None:
                results.append(result)
        return results

    async def run(self) -> None:
        """Tick forever: each project's next tick is scheduled after its current one ends."""
        try:
            while True:
                projects = self.projects()
                self._ensure_watchers(projects)
                self._wake.clear()
                for project in projects:
                    if project in self.running or self.held:
                        continue
                    for note in self.recover(project):
                        log.warning("%s: recovered: %s", project, note)
                    gate = self._safe_gate(project)
                    if gate is not None and gate.blocked_by is None:
                        self.running[project] = asyncio.ensure_future(self._tick_task(project))
                delay = self._next_delay(projects)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
        finally:
            for task in list(self._watchers.values()) + list(self.running.values()):
                task.cancel()
            await asyncio.gather(*self._watchers.values(), *self.running.values(), return_exceptions=True)

    async def _tick_task(self, project: Path) -> None:
        orch = self.orchestrator(project)
        try:
            result = await orch.fire()
            self._after_fire(project, result)
        except AlwaysOnError as exc:
            log.info("tick of %s skipped: %s", project, exc)
        finally:
            self.running.pop(project, None)
            self._wake.set()

    def _next_delay(self, projects: list[Path]) -> float:
        now = utcnow()
        delays = [60.0]
        for project in projects:
            gate = self._safe_gate(project)
            if gate is None:
                continue
            if gate.blocked_by in (Gate.INTERVAL, Gate.COOLDOWN) or gate.blocked_by is None:
                st = self.store.project(project).read_state()
                settings = self.config.for_project(project)
                candidates = [gate.next_tick_at]
                if st.last_fire_finished_at:
                    candidates.append(
                        st.last_fire_finished_at + timedelta(seconds=settings.scheduler.cooldown_seconds)
                    )
                for when in candidates:
                    if when is not None:
                        delays.append(max(0.05, (when - now).total_seconds()))
        return min(delays)

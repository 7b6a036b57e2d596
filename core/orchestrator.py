"""The phases of a fire (DESIGN §2): discovery → workspace → execution → report, plus rerun, apply and archive.

One orchestrator serves one project. It owns the order of events and record updates; the workspace layer does the
git work, the gateway talks to the agent, the store persists. Finish order for every run: plan status, then project
state and run history in one transaction — so a reader that sees the history entry sees everything it refers to.
A run is recorded when it starts, so one that is killed still gets its entry (``core.recovery``), and each durable
step is a checkpoint where the crash tests kill the process (``core.faults``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from pydantic import BaseModel, Field

from always_on.core.agents.spec import AgentSpec
from always_on.core.config import Config, ProjectSettings, load_config
from always_on.core.contracts.plan import render_plan_markdown
from always_on.core.contracts.report import fallback_report, parse_report, plan_reference, render_report
from always_on.core.errors import AGENT_SETUP_CODES, AlwaysOnError, ErrorCode, disk_full, disk_full_at
from always_on.core.event_log import AgentEventLog
from always_on.core.faults import checkpoint
from always_on.core.records import (
    ARCHIVABLE,
    RERUNNABLE,
    AgentEvent,
    CycleRecord,
    CycleStatus,
    Decision,
    DecisionKind,
    ErrorInfo,
    FileChange,
    FireOutcome,
    Phase,
    PhaseEvent,
    PhaseEventType,
    PlanContent,
    PlanRecord,
    PlanStatus,
    ReportMetadata,
    RunHistoryEntry,
    RunKind,
    new_id,
    utcnow,
)
from always_on.core.selection import ApplyPreparation, default_selection, prepare_apply
from always_on.core.storage import ProjectStore, Store

log = logging.getLogger(__name__)

EventListener = Callable[[PhaseEvent | AgentEvent], None]


def one_line(text: str, limit: int = 300) -> str:
    """First non-empty line of an error text, bounded: records and the CLI show one line, -v shows the rest."""
    first = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _unkept_files(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> str:
    """The files an execution wrote inside uninitialised submodule folders, in words ("" when none)."""
    changed = sorted(path for path, sig in after.items() if before.get(path) != sig)
    if not changed:
        return ""
    shown = ", ".join(f"`{p}`" for p in changed[:5]) + (
        f" and {len(changed) - 5} more" if len(changed) > 5 else ""
    )
    return (
        f"{len(changed)} file{'s' * (len(changed) != 1)} inside submodule folders that are not initialised in the "
        f"workspace ({shown})"
    )


def _reference(plan: PlanRecord) -> str:
    """The report's Plan Reference as the runtime knows it (used where the agent gave none)."""
    c = plan.content
    return plan_reference(c.title, plan.id, c.dedupe_key, c.summary)


class FireResult(BaseModel):
    outcome: FireOutcome
    run_id: str
    plan_id: str | None = None
    cycle_id: str | None = None
    error: ErrorInfo | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    denials: int = 0  # requests the permission policy refused (each one is an event and a line of the report)
    untracked: int = 0  # untracked files of the checkout the workspace (so discovery and execution) left out
    uncommitted: int = 0  # files with uncommitted changes in the checkout, left out likewise


class ApplyReport(BaseModel):
    cycle_id: str
    applied: list[str]
    files: list[FileChange]
    cycle_status: CycleStatus


class _RunContext:
    """Mutable facts of one run, used to write the history entry however the run ended."""

    def __init__(self, run_id: str, kind: RunKind, agent: str) -> None:
        self.run_id = run_id
        self.kind = kind
        self.agent = agent
        self.started_at = utcnow()
        self.plan_id: str | None = None
        self.cycle_id: str | None = None
        self.outcome: FireOutcome | None = None
        self.error: ErrorInfo | None = None
        self.report_available = False
        self.timings: dict[str, float] = {}
        self.pruned: list[str] = []  # leftovers of crashes pruned (or kept and reported) at this fire's start
        self.left_out = (
            None  # LeftOut: what of the checkout the workspace does not hold (core.workspace.visibility)
        )
        self.notes: list[str] = []  # facts for the report's Notes that only the runtime knows
        self.denials: list[
            str
        ] = []  # every request the permission policy refused, in words (report, history)

    def fail(self, code: str, message: str, hint: str | None = None) -> None:
        self.outcome = FireOutcome.FAILED
        self.error = ErrorInfo(code=code, message=message, hint=hint)

    def seen(self, event: AgentEvent) -> None:
        """Keep what the run must report about an agent event: a policy denial."""
        if event.allowed is False:
            self.denials.append(denial_words(event))

    def report_notes(self) -> list[str]:
        """The run's own notes, then its denials (at most MAX_DENIAL_NOTES named; the event log has them all)."""
        notes = list(self.notes)
        if self.denials:
            n = len(self.denials)
            notes.append(f"The permission policy denied {n} request{'s' * (n != 1)} during this run:")
            notes += self.denials[:MAX_DENIAL_NOTES]
            if n > MAX_DENIAL_NOTES:
                notes.append(f"… and {n - MAX_DENIAL_NOTES} more (the run's event log has every one)")
        return notes


MAX_DENIAL_NOTES = 30


def denial_words(event: AgentEvent) -> str:
    """One policy denial in one line: the phase, what was asked, and the policy's reason."""
    what = {
        "terminal": "command",
        "file_read": "read",
        "file_write": "write",
        "permission": "permission",
    }.get(str(event.kind), str(event.kind))
    subject = " ".join((event.text or "").split())
    if len(subject) > 160:
        subject = subject[:159] + "…"
    reason = (event.reason or "no reason given").removeprefix("denied: ")
    return f"Denied ({event.phase}, {what}): `{subject}` — {reason}"


class Orchestrator:
    def __init__(
        self,
        project: Path | str,
        *,
        store: Store | None = None,
        config: Config | None = None,
        agent: str | None = None,
        agent_cmd: str | None = None,
        listeners: list[EventListener] | tuple[EventListener, ...] = (),
    ) -> None:
        self.project = Path(project).expanduser().resolve()
        self.config = config or load_config()
        self.settings: ProjectSettings = self.config.for_project(self.project)
        self.store: ProjectStore = (store or Store()).project(self.project)
        self.agent_name = agent
        self.agent_cmd = agent_cmd
        if agent_cmd is not None:  # a command line that cannot start anything is refused before any run
            self.config.command_line_spec(agent_cmd)
        self.listeners: list[EventListener] = list(listeners)
        self.running: asyncio.Task | None = None
        self.interrupted: FireResult | None = None  # the last run cancelled mid-way, as it was recorded

    # --- events -------------------------------------------------------------------------------------------

    def add_listener(self, fn: EventListener) -> None:
        self.listeners.append(fn)

    def remove_listener(self, fn: EventListener) -> None:
        with contextlib.suppress(ValueError):
            self.listeners.remove(fn)

    def _notify(self, event: PhaseEvent | AgentEvent) -> None:
        for fn in list(self.listeners):
            try:
                fn(event)
            except Exception:  # a broken subscriber must never take a run down
                log.exception("event listener failed")

    def emit(self, type_: PhaseEventType, run: _RunContext | None = None, **fields) -> PhaseEvent:
        event = PhaseEvent(
            project_id=self.store.project_id,
            run_id=run.run_id if run else fields.pop("run_id", None),
            type=type_,
            plan_id=fields.pop("plan_id", run.plan_id if run else None),
            cycle_id=fields.pop("cycle_id", run.cycle_id if run else None),
            **fields,
        )
        try:
            self.store.append_event(event)
        except OSError as exc:  # a full disk loses this log line, never the run's outcome or the lock
            log.warning("could not write the %s event: %s", type_.value, exc)
        self._notify(event)
        return event

    # --- registration and recovery ----------------------------------------------------------------------------

    def register(self) -> None:
        """Make sure the project has a state record (so the daemon and `status` know it)."""
        if not self.project.is_dir():
            raise AlwaysOnError(ErrorCode.NOT_A_DIRECTORY, f"{self.project} is not a directory")
        self.store.update_state(lambda st: setattr(st, "path", str(self.project)))

    def recover(self, *, locked: bool = False) -> list[str]:
        """Repair what a dead process left (core.recovery); notes for the user, [] when nothing was left."""
        from always_on.core.recovery import recover

        return recover(self, locked=locked)

    def agent_spec(self, phase: Phase = Phase.EXECUTION) -> AgentSpec:
        if self.agent_cmd is not None:
            return self.config.command_line_spec(self.agent_cmd)
        name = self.agent_name or self.settings.agent_for(phase.value)
        return self.config.agent_spec(name)

    # --- fire ---------------------------------------------------------------------------------------------

    async def fire(self, *, force: bool = False) -> FireResult:
        """One pass of discovery → workspace → execution → report.

        A plan the plan tool accepted for a run that died before executing it (``ready``, its run finished) is
        executed by this fire instead of a new discovery: accepted plans are never forgotten. A discovery that
        would add a plan to a full cycle is refused (``cycle_full``) unless ``force``: the scheduler's other gates
        (cooldown, daily budget, interval, dormancy) hold back scheduled fires only.
        """
        self.register()
        self.recover()
        orphan = self._orphan_ready_plan()
        if orphan is None and not force:
            self._refuse_a_full_cycle()
        spec = self.agent_spec(Phase.EXECUTION if orphan else Phase.DISCOVERY)
        run = _RunContext(new_id("run"), RunKind.FIRE, spec.name)
        if orphan is None:
            return await self._guarded(run, spec, self._fire_body)
        run.plan_id = orphan.id

        async def resume(run: _RunContext, gateway) -> None:
            await self._execute_plan(run, gateway, orphan.id)

        return await self._guarded(run, spec, resume)

    def _refuse_a_full_cycle(self) -> None:
        cycle = self.store.active_cycle()
        limit = self.settings.scheduler.max_plans_per_cycle
        if cycle is not None and cycle.open_plan_count() >= limit:
            raise AlwaysOnError(
                ErrorCode.CYCLE_FULL,
                f"the active cycle {cycle.id} already holds {cycle.open_plan_count()} open plans "
                f"(scheduler.max_plans_per_cycle = {limit}); a new plan would go into it too",
                hint="review and apply or archive the cycle first (`always-on diff`, `always-on apply`, "
                "`always-on archive`), or run with --force to add one more plan anyway",
            )

    def _orphan_ready_plan(self) -> PlanRecord | None:
        for plan in self.store.plans_with_status(PlanStatus.READY):
            run = plan.discovery_run_id
            if run is None or self.store.run_entry(run) is not None:
                return plan
        return None

    async def rerun(self, plan_id: str) -> FireResult:
        """workspace → execution → report for a failed or ready plan, with a new run id and no discovery."""
        self.register()
        self.recover()
        plan = self.store.get_plan(plan_id)
        if plan.status not in RERUNNABLE:
            raise AlwaysOnError(
                ErrorCode.PLAN_NOT_RERUNNABLE,
                f"plan {plan.id} is '{plan.status}'; only failed or ready plans can be rerun",
            )
        spec = self.agent_spec(Phase.EXECUTION)
        run = _RunContext(new_id("run"), RunKind.RERUN, spec.name)
        run.plan_id = plan.id

        async def body(run: _RunContext, gateway) -> None:
            await self._execute_plan(run, gateway, plan.id)

        return await self._guarded(run, spec, body)

    async def _guarded(self, run: _RunContext, spec: AgentSpec, body) -> FireResult:
        lock = self.store.fire_lock()
        try:
            lock.acquire(run.run_id)
        except OSError as exc:
            full = disk_full(exc)
            if full is None:
                raise
            raise full from exc
        self.running = asyncio.current_task()
        events: AgentEventLog | None = None
        t0 = time.perf_counter()
        try:
            self.recover(locked=True)
            with self.store.transaction():
                self.store.update_state(lambda st: self._mark_started(st, run))
                self.store.start_run(run.run_id, run.kind, run.agent, run.started_at, run.plan_id)
            checkpoint("fire.started")
            run.pruned = self._prune_leftovers()
            events = AgentEventLog(
                self.store,
                run.run_id,
                self._notify,
                max_bytes=int(self.settings.limits.event_log_max_mb * 1024 * 1024),
            )
            from always_on.core.agents.gateway import AgentGateway

            log_event = events.record

            def on_agent_event(event: AgentEvent) -> None:
                run.seen(event)
                log_event(event)

            gateway = AgentGateway(
                spec,
                on_event=on_agent_event,
                cwd=self.project,
                start_timeout=self.settings.limits.start_timeout_seconds,
            )
            try:
                try:
                    t = time.perf_counter()
                    await gateway.start()
                    run.timings["agent_start"] = time.perf_counter() - t
                except AlwaysOnError as exc:
                    run.fail(exc.code, exc.message, exc.hint)  # the message names the agent
                    self._fail_open_plan(run)
                    self.emit(PhaseEventType.RUN_FAILED, run, error=run.error, message=run.error.message)
                else:
                    await body(run, gateway)
            finally:
                await gateway.close()
        except asyncio.CancelledError:
            run.fail(ErrorCode.INTERRUPTED, "the fire was cancelled (the daemon or app was stopped)")
            try:
                self._end_failed(run)
                self._finish(run, events)
            finally:
                lock.release()
                self.running = None
                self.interrupted = self._result(run)
            raise
        except Exception as exc:  # the runtime never goes down with a run: record and report
            log.debug(
                "run %s crashed", run.run_id, exc_info=True
            )  # -v shows the traceback; users get one line
            full = disk_full(exc)
            if full is not None:
                code, msg = full.code, full.message
            elif isinstance(exc, AlwaysOnError):
                code, msg = exc.code, exc.message
            else:
                code, msg = "internal_error", one_line(f"{type(exc).__name__}: {exc}")
            run.fail(code, msg)
            self._end_failed(run)
        run.timings["total"] = time.perf_counter() - t0
        try:
            self._finish(run, events)
        except Exception as exc:
            full = disk_full(exc)
            if full is None:
                raise
            # the outcome could not be recorded: the next command records this run as interrupted
            run.fail(full.code, full.message + " (this run's outcome could not be recorded)")
        finally:
            lock.release()
            self.running = None
        return self._result(run)

    @staticmethod
    def _result(run: _RunContext) -> FireResult:
        return FireResult(
            outcome=run.outcome or FireOutcome.FAILED,
            run_id=run.run_id,
            plan_id=run.plan_id,
            cycle_id=run.cycle_id,
            error=run.error,
            timings=run.timings,
            denials=len(run.denials),
            untracked=run.left_out.untracked if run.left_out else 0,
            uncommitted=run.left_out.uncommitted if run.left_out else 0,
        )

    def _end_failed(self, run: _RunContext) -> None:
        """The failure's plan and event, as far as the disk lets us (a full disk must not hide the failure)."""
        try:
            self._fail_open_plan(run)
        except Exception as exc:  # noqa: BLE001 -- recovery fails it later; the run's own error is what counts
            log.warning("could not record the failed plan of %s: %s", run.run_id, one_line(str(exc)))
        self.emit(PhaseEventType.RUN_FAILED, run, error=run.error, message=run.error.message)

    def _prune_leftovers(self) -> list[str]:
        """Workspaces, branches and attempts a crash left with no record (core.workspace.orphans); notes.

        First, cycles that finished but whose workspace or branch is still there (a crash while closing them)
        are closed again from their records; then whatever no record refers to is pruned or reported.
        """
        from always_on.core.workspace.orphans import clear_stale_locks, our_branches, prune_orphans

        try:
            root = self.settings.workspace.resolved_base() / self.store.project_id
            notes = clear_stale_locks(self.project, root) if (self.project / ".git").exists() else []
            rows = self.store.cycle_workspaces()
            branches = set(our_branches(self.project))
            for cid, status, path, branch, kept in rows:
                finished = status in (CycleStatus.APPLIED, CycleStatus.ARCHIVED)
                if finished and (os.path.lexists(path) or (branch and branch in branches and branch != kept)):
                    cycle = self.store.get_cycle(cid)
                    kept_now = self._close_cycle(cycle, unapplied=self._has_unapplied(cycle))
                    notes.append(
                        f"finished removing the workspace of {status} cycle {cid}"
                        + (f" (its unapplied work is kept on {kept_now})" if kept_now else "")
                    )
            rows = self.store.cycle_workspaces()
            live = [r for r in rows if r[1] in (CycleStatus.ACTIVE, CycleStatus.APPLYING)]
            notes += prune_orphans(
                self.project,
                root,
                live_paths={Path(r[2]).resolve() for r in live},
                known_branches={r[3] for r in live if r[3]} | {r[4] for r in rows if r[4]},
                plan_exists=lambda plan_id: self.store.find_plan(plan_id) is not None,
            )
        except Exception as exc:  # pruning is housekeeping: it never stops a fire
            log.warning("could not check %s for leftover workspaces", self.project, exc_info=True)
            return [f"could not check for leftover workspaces: {one_line(str(exc))}"]
        for note in notes:
            log.warning("%s: %s", self.project, note)
        return notes

    def _mark_started(self, st, run: _RunContext) -> None:
        st.last_fire_started_at = run.started_at
        st.last_run_id = run.run_id
        st.count_run(date.today())

    def _fail_open_plan(self, run: _RunContext) -> None:
        if run.plan_id:
            plan = self.store.find_plan(run.plan_id)
            if plan and plan.status in (PlanStatus.EXECUTING, PlanStatus.READY):
                code = run.error.code if run.error else ErrorCode.EXECUTION_FAILED
                message = run.error.message if run.error else "run failed"
                self._fail_plan(run.plan_id, code, message + self._set_aside(run.plan_id, run.run_id))

    def _set_aside(self, plan_id: str, run_id: str) -> str:
        """Move a failed attempt's work off the cycle branch (kept under a ref) so the next plan starts clean.

        Returns a sentence for the failure message ("" when there was nothing to keep)."""
        from always_on.core.workspace import attempt_ref, set_aside

        plan = self.store.find_plan(plan_id)
        if plan is None or not plan.cycle_id:
            return ""
        try:
            cycle = self.store.get_cycle(plan.cycle_id)
            state = cycle.plan_state(plan_id)
            if not state.before_head or not Path(cycle.workspace_path).is_dir():
                return ""
            ref = attempt_ref(plan_id, run_id)
            kept = set_aside(self._ws(cycle), to=state.before_head, ref=ref)
        except Exception as exc:  # noqa: BLE001 -- the failure is already recorded; cleanup trouble must not hide it
            log.warning("could not set aside the work of plan %s: %s", plan_id, one_line(str(exc)))
            return ""

        def clear(c: CycleRecord) -> None:
            s = c.plan_state(plan_id)
            s.commit_shas = []
            s.after_head = s.before_head

        self.store.update_cycle(cycle.id, clear)
        return f" (its partial work was set aside under {ref})" if kept else ""

    def _finish(self, run: _RunContext, events: AgentEventLog | None) -> None:
        """The run's outcome into the project state and its history entry, in one transaction."""
        if events is not None:
            events.close()
        finished = utcnow()
        outcome = run.outcome or FireOutcome.FAILED
        entry = RunHistoryEntry(
            run_id=run.run_id,
            project_id=self.store.project_id,
            kind=run.kind,
            agent=run.agent,
            started_at=run.started_at,
            finished_at=finished,
            outcome=outcome,
            plan_id=run.plan_id,
            cycle_id=run.cycle_id,
            error=run.error,
            report_available=run.report_available,
            denials=len(run.denials),
        )

        def update(st) -> None:
            self._count_outcome(st, outcome, run.error, finished)
            if outcome == FireOutcome.NO_PLAN:
                st.dormant_since = finished
            elif run.kind == RunKind.FIRE and outcome == FireOutcome.EXECUTED:
                st.dormant_since = None  # it found work: whatever made it sleep is over
            st.next_tick_at = None

        with self.store.transaction():
            state = self.store.update_state(update)
            self.store.append_history(entry)
        checkpoint("fire.finished")
        self._announce_disabled(state, run.run_id)

    def _count_outcome(self, st, outcome: FireOutcome, error: ErrorInfo | None, finished) -> None:
        """A finished (or dead) run's outcome in the state; N consecutive failures disable the project (§6)."""
        st.last_fire_finished_at = finished
        st.last_outcome = outcome
        st.last_error = error
        if outcome != FireOutcome.FAILED:
            st.consecutive_failures = 0
            return
        st.consecutive_failures += 1
        limit = self.settings.scheduler.failures_before_disable
        if st.consecutive_failures >= limit and not st.disabled_reason:
            code = error.code if error else "unknown"
            st.disabled_reason = (
                f"{st.consecutive_failures} consecutive failed fires (last: {code}); "
                "re-enable with `always-on init`"
            )

    def _announce_disabled(self, state, run_id: str) -> None:
        """The ``project_disabled`` event, once: when this run's failure crossed the threshold."""
        if (
            state.disabled_reason
            and state.consecutive_failures == self.settings.scheduler.failures_before_disable
        ):
            self.emit(PhaseEventType.PROJECT_DISABLED, run_id=run_id, message=state.disabled_reason)

    # --- discovery ----------------------------------------------------------------------------------------

    async def _fire_body(self, run: _RunContext, gateway) -> None:
        t = time.perf_counter()
        prepared = self._workspace_or_failure(run)
        if prepared is None:
            return
        ws, active = prepared
        run.timings["discovery_workspace"] = time.perf_counter() - t
        try:
            await self._discover(run, gateway, prepared)
        finally:  # a workspace made for this discovery goes again, unless a plan's cycle now holds it
            if active is None and run.cycle_id != ws.cycle_id:
                self._drop_workspace(ws)

    async def _discover(self, run: _RunContext, gateway, prepared) -> None:
        """Discovery in the workspace the plan would run in (it sees what execution will see), then the plan's
        execution there."""
        from always_on.core.agents.mcp_server import mcp_server_spec, phase_tools
        from always_on.core.agents.policy import Policy
        from always_on.core.digest import build_digest
        from always_on.core.prompts import PromptContext, build_prompt
        from always_on.core.workspace.visibility import left_out

        ws, _active = prepared
        ws_path = Path(ws.path)
        left = left_out(self.project, ws)
        run.left_out = left
        self.emit(
            PhaseEventType.DISCOVERY_STARTED,
            run,
            phase=Phase.DISCOVERY,
            message=left.words(),
            data={"workspace": str(ws.path), **left.model_dump()},
        )
        checkpoint("fire.discovery_started")
        t = time.perf_counter()
        outbox = self._outbox(run.run_id, Phase.DISCOVERY)
        digest = build_digest(self.project)
        digest_file = outbox / "digest.json"
        digest_file.write_text(json.dumps(digest.tool_payload(), default=str))
        ctx = PromptContext(
            language=self.settings.language,
            phase=Phase.DISCOVERY,
            run_id=run.run_id,
            project_root=str(self.project),
            workspace=str(ws.path),
            plans=self.store.plans_list(),
            digest=digest,
            tools=phase_tools(Phase.DISCOVERY),
            timeout_seconds=self.settings.limits.phase_limits(Phase.DISCOVERY).timeout_seconds,
            max_tool_calls=self.settings.limits.max_tool_calls,
        )
        result = await gateway.run_phase(
            run_id=run.run_id,
            phase=Phase.DISCOVERY,
            cwd=ws_path,
            policy=Policy(ws_path, writable=False),
            prompt=build_prompt(ctx),
            mcp_servers=[
                mcp_server_spec(
                    phase=Phase.DISCOVERY,
                    run_id=run.run_id,
                    outbox=outbox,
                    digest=digest_file,
                    store=self.store.dir,
                    checkout=self.project,
                    workspace=ws_path,
                )
            ],
            limits=self.settings.limits.phase_limits(Phase.DISCOVERY),
        )
        run.timings["discovery"] = time.perf_counter() - t
        plan = self._accepted_plan(run, outbox)
        if plan is not None:
            content = plan.content
            run.plan_id = plan.id
            self.store.note_run(run.run_id, plan_id=plan.id)
            checkpoint("fire.plan_recorded")
            self.emit(
                PhaseEventType.PLAN_PRODUCED,
                run,
                phase=Phase.DISCOVERY,
                message=content.title,
                data={"dedupe_key": content.dedupe_key},
            )
            if result.error:  # a plan produced despite an error still continues (DESIGN §2)
                log.info("discovery ended with %s but produced a plan", result.error.code)
            await self._execute_plan(run, gateway, plan.id, prepared=prepared)
            return
        if result.error:
            if result.error.code in AGENT_SETUP_CODES:  # what the user must act on: its own code (DESIGN §4)
                run.fail(result.error.code, result.error.message, result.error.hint)
            else:
                run.fail(
                    ErrorCode.DISCOVERY_FAILED,
                    f"{result.error.code}: {result.error.message}",  # the code says it was discovery
                    result.error.hint,
                )
            self.emit(
                PhaseEventType.RUN_FAILED,
                run,
                phase=Phase.DISCOVERY,
                error=run.error,
                message=run.error.message,
                data={"agent_error": result.error.code},
            )
            return
        run.outcome = FireOutcome.NO_PLAN
        self.emit(PhaseEventType.NO_PLAN, run, phase=Phase.DISCOVERY, message=result.last_text[-500:] or None)

    def _accepted_plan(self, run: _RunContext, outbox: Path) -> PlanRecord | None:
        """The plan the tool accepted: recorded by the tool server itself, or (an outbox only) recorded now."""
        from always_on.core.agents.mcp_server import PLAN_FILE

        plan = self.store.plan_for_run(run.run_id)
        if plan is not None:
            if self.store.read_plan_markdown(plan.id) is None:
                self.store.save_plan(plan, render_plan_markdown(plan.content))
            return plan
        plan_file = outbox / PLAN_FILE
        if not plan_file.exists():
            return None
        content = PlanContent.model_validate_json(plan_file.read_text())
        plan = PlanRecord(
            id=new_id("plan"), project_id=self.store.project_id, content=content, discovery_run_id=run.run_id
        )
        self.store.save_plan(plan, render_plan_markdown(content))
        return plan

    def _outbox(self, run_id: str, phase: Phase) -> Path:
        path = self.store.outbox(run_id, phase.value)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- workspace + execution + report -----------------------------------------------------------------

    def _prepare_workspace(self):
        """The active cycle's workspace (reused, or recreated when it vanished), else a fresh one for a new cycle:
        (workspace, the active cycle or None). Nothing is recorded yet."""
        from always_on.core.workspace import prepare_workspace

        active = self.store.active_cycle()
        if not (active and active.status == CycleStatus.ACTIVE):
            active = None
        ws = prepare_workspace(
            self.project,
            cycle_id=active.id if active else new_id("cycle"),
            base_dir=self.settings.workspace.resolved_base(),
            strategy=self.settings.workspace.strategy,
            snapshot_ignore=self.settings.workspace.snapshot_ignore,
            snapshot_max_bytes=self.settings.workspace.snapshot_max_mb * 1024 * 1024,
            existing=self._ws(active) if active else None,
        )
        return ws, active

    def _workspace_or_failure(self, run: _RunContext):
        """The workspace discovery reads, or None when it cannot be prepared (the run has failed then)."""
        try:
            return self._prepare_workspace()
        except AlwaysOnError as exc:
            full = disk_full(exc) or disk_full_at(self.settings.workspace.resolved_base())
            if full is not None:
                raise full from exc
            run.fail(ErrorCode.WORKSPACE_PREPARE_FAILED, f"workspace could not be prepared: {exc.message}")
            self.emit(
                PhaseEventType.RUN_FAILED, run, phase=Phase.WORKSPACE, error=run.error, message=exc.message
            )
            return None

    def _drop_workspace(self, ws) -> None:
        """Remove a workspace made for a discovery that found nothing to execute (the next fire prunes it if this
        fails). A discovery is read-only; should it have committed anyway, the branch is kept and reported."""
        from always_on.core.workspace import remove_workspace, unapplied_commits

        try:
            keep = bool(unapplied_commits(ws, [], project=self.project))
            remove_workspace(self.project, ws, unapplied_commits=keep)
        except Exception as exc:  # noqa: BLE001 -- housekeeping never changes the run's outcome
            log.warning("could not remove the discovery workspace %s: %s", ws.path, one_line(str(exc)))

    def _workspace_for(self, run: _RunContext, prepared=None):
        ws, active = prepared or self._prepare_workspace()
        if active is not None:

            def refresh(c: CycleRecord) -> None:
                c.workspace_path = str(ws.path)
                c.branch = ws.branch

            cycle = self.store.update_cycle(active.id, refresh)
        else:
            checkpoint("fire.worktree_added")
            cycle = CycleRecord(
                id=ws.cycle_id,
                project_id=self.store.project_id,
                strategy=ws.strategy,
                workspace_path=str(ws.path),
                branch=ws.branch,
                base_commit=ws.base_commit,
            )
            self.store.save_cycle(cycle)  # active: it is the project's cycle now (derived, not stored twice)
        return cycle, ws

    async def _execute_plan(self, run: _RunContext, gateway, plan_id: str, prepared=None) -> None:
        from always_on.core.agents.mcp_server import mcp_server_spec, phase_tools
        from always_on.core.agents.policy import Policy
        from always_on.core.prompts import PromptContext, build_prompt
        from always_on.core.workspace import commit_plan, diff_files, submodule_files

        self.emit(PhaseEventType.WORKSPACE_STARTED, run, phase=Phase.WORKSPACE)
        checkpoint("fire.workspace_started")
        t = time.perf_counter()
        try:
            cycle, ws = self._workspace_for(run, prepared)
        except AlwaysOnError as exc:
            full = disk_full(exc) or disk_full_at(self.settings.workspace.resolved_base())
            if full is not None:
                raise full from exc  # the run ends as disk_full (and its plan fails with it)
            run.fail(ErrorCode.WORKSPACE_PREPARE_FAILED, f"workspace could not be prepared: {exc.message}")
            self._fail_plan(plan_id, ErrorCode.WORKSPACE_PREPARE_FAILED, exc.message)
            self.emit(
                PhaseEventType.RUN_FAILED, run, phase=Phase.WORKSPACE, error=run.error, message=exc.message
            )
            return
        run.cycle_id = cycle.id
        self.store.note_run(run.run_id, plan_id=plan_id, cycle_id=cycle.id)
        run.timings["workspace"] = time.perf_counter() - t
        ws_path = Path(ws.path)
        self.emit(
            PhaseEventType.WORKSPACE_READY,
            run,
            phase=Phase.WORKSPACE,
            message=str(ws.path),
            data={"strategy": ws.strategy, "reused": ws.reused, "notes": ws.notes + run.pruned},
        )

        from always_on.core.workspace import head_of

        before = head_of(ws)

        def start_plan(p: PlanRecord) -> None:
            p.set_status(PlanStatus.EXECUTING)
            p.cycle_id = cycle.id
            p.failure = None
            if run.run_id not in p.run_ids:
                p.run_ids.append(run.run_id)

        def start_state(c: CycleRecord) -> None:
            s = c.plan_state(plan_id)
            s.attempts += 1
            s.before_head = before

        with self.store.transaction():
            plan = self.store.update_plan(plan_id, start_plan)
            self.store.update_cycle(cycle.id, start_state)
        checkpoint("fire.execution_started")
        self.emit(PhaseEventType.EXECUTION_STARTED, run, phase=Phase.EXECUTION)
        t = time.perf_counter()
        plan_md = self.store.read_plan_markdown(plan_id) or render_plan_markdown(plan.content)
        limits = self.settings.limits.phase_limits(Phase.EXECUTION)
        ctx = PromptContext(
            language=self.settings.language,
            phase=Phase.EXECUTION,
            run_id=run.run_id,
            project_root=str(self.project),
            workspace=ws.path,
            plan=plan,
            plan_markdown=plan_md,
            tools=phase_tools(Phase.EXECUTION),
            timeout_seconds=limits.timeout_seconds,
            max_tool_calls=limits.max_tool_calls,
        )
        in_submodules = submodule_files(ws_path)
        result = await gateway.run_phase(
            run_id=run.run_id,
            phase=Phase.EXECUTION,
            cwd=ws_path,
            policy=Policy(ws_path, writable=True),
            prompt=build_prompt(ctx),
            mcp_servers=[],
            limits=limits,
        )
        run.timings["execution"] = time.perf_counter() - t
        t = time.perf_counter()
        commit_error: AlwaysOnError | None = None
        commit = None
        try:
            commit = commit_plan(
                ws, plan_id=plan_id, run_id=run.run_id, title=plan.content.title, before_head=before
            )
        except AlwaysOnError as exc:
            commit_error = exc
        run.timings["commit"] = time.perf_counter() - t
        after = head_of(ws)

        def record_commits(c: CycleRecord) -> None:
            s = c.plan_state(plan_id)
            s.after_head = after
            if commit:
                s.commit_shas = list(commit.commit_shas)
            elif commit_error is not None:
                s.commit_shas = list(commit_error.details.get("commit_shas", []))
            else:
                s.commit_shas = []

        cycle = self.store.update_cycle(cycle.id, record_commits)
        checkpoint("fire.committed")
        failure: tuple[str, str] | None = None
        if result.error:
            failure = (result.error.code, f"{result.error.code}: {result.error.message}")
        elif commit_error:
            failure = (commit_error.code, commit_error.message)
        unkept = _unkept_files(in_submodules, submodule_files(ws_path))
        if failure is None and (commit is None or not commit.commit_shas):
            failure = (
                ErrorCode.EXECUTION_FAILED,
                f"the agent only wrote {unkept}, which git cannot record, so nothing was kept"
                if unkept
                else "the agent finished without changing any file",
            )
        elif unkept:
            run.notes.append(f"Not kept: the agent wrote {unkept}, which git cannot record")
        files = diff_files(ws_path, before, after) if before != after else []
        if failure:
            code, message = failure
            if result.error and result.error.code in AGENT_SETUP_CODES:
                message = result.error.message
                run.fail(code, message, result.error.hint)
            else:
                run.fail(ErrorCode.EXECUTION_FAILED, message, result.error.hint if result.error else None)
            self._write_fallback(
                run, plan, cycle, files, reason=f"{code}: {message}", last_text=result.last_text
            )
            self._fail_plan(plan_id, code, message + self._set_aside(plan_id, run.run_id))
            self.emit(PhaseEventType.RUN_FAILED, run, phase=Phase.EXECUTION, error=run.error, message=message)
            return
        self.emit(
            PhaseEventType.EXECUTION_COMPLETED,
            run,
            phase=Phase.EXECUTION,
            message=f"not kept: the agent wrote {unkept}, which git cannot record" if unkept else None,
            data={"commits": len(commit.commit_shas), "files": len(files)},
        )
        t = time.perf_counter()
        self._analyze_dependencies(cycle.id)
        run.timings["dependencies"] = time.perf_counter() - t

        # report
        self.emit(PhaseEventType.REPORT_STARTED, run, phase=Phase.REPORT)
        checkpoint("fire.report_started")
        t = time.perf_counter()
        outbox = self._outbox(run.run_id, Phase.REPORT)
        limits = self.settings.limits.phase_limits(Phase.REPORT)
        ctx = ctx.model_copy(
            update={
                "phase": Phase.REPORT,
                "tools": phase_tools(Phase.REPORT),
                "files_changed": files,
                "timeout_seconds": limits.timeout_seconds,
            }
        )
        report_result = await gateway.run_phase(
            run_id=run.run_id,
            phase=Phase.REPORT,
            cwd=ws_path,
            policy=Policy(ws_path, writable=False),
            prompt=build_prompt(ctx),
            mcp_servers=[
                mcp_server_spec(
                    phase=Phase.REPORT, run_id=run.run_id, outbox=outbox, digest=None, store=self.store.dir
                )
            ],
            limits=limits,
        )
        run.timings["report"] = time.perf_counter() - t
        meta = self._report_meta(run, plan, cycle, files)
        report_file = outbox / "report.md"
        if report_file.exists():
            parsed = parse_report(report_file.read_text(encoding="utf-8"))
            self.store.write_report(
                meta, render_report(meta, parsed, title=plan.content.title, reference=_reference(plan))
            )
            final = PlanStatus.COMPLETED
        else:
            why = (
                f"the agent submitted no report ({report_result.error.code}: {report_result.error.message})"
                if report_result.error
                else "the agent submitted no report"
            )
            if report_result.last_text.strip():
                meta.notes.append(why + "; the report below was salvaged from its last message")
                parsed = parse_report(report_result.last_text)
                self.store.write_report(
                    meta, render_report(meta, parsed, title=plan.content.title, reference=_reference(plan))
                )
            else:
                self.store.write_report(
                    meta,
                    fallback_report(meta, title=plan.content.title, reason=why, reference=_reference(plan)),
                )
            final = PlanStatus.COMPLETED_NO_REPORT
        run.report_available = True
        checkpoint("fire.report_written")

        def finish_plan(p: PlanRecord) -> None:
            p.set_status(final)
            p.report_run_id = run.run_id

        self.store.update_plan(plan_id, finish_plan)
        checkpoint("fire.plan_completed")
        run.outcome = FireOutcome.EXECUTED
        self.emit(PhaseEventType.REPORT_PRODUCED, run, phase=Phase.REPORT, data={"status": final.value})
        self.emit(PhaseEventType.RUN_COMPLETED, run, data={"plan_status": final.value})

    def _report_meta(self, run: _RunContext, plan: PlanRecord, cycle: CycleRecord, files) -> ReportMetadata:
        return ReportMetadata(
            run_id=run.run_id,
            project_id=self.store.project_id,
            plan_id=plan.id,
            cycle_id=cycle.id,
            started_at=run.started_at,
            finished_at=utcnow(),
            workspace=cycle.workspace_path,
            agent=run.agent,
            files_changed=files,
            notes=run.report_notes(),
        )

    def _write_fallback(self, run, plan, cycle, files, *, reason: str, last_text: str) -> None:
        meta = self._report_meta(run, plan, cycle, files)
        self.store.write_report(
            meta,
            fallback_report(
                meta,
                title=plan.content.title,
                reason=reason,
                last_agent_text=last_text,
                reference=_reference(plan),
            ),
        )
        run.report_available = True

    def _fail_plan(self, plan_id: str, code: str, message: str) -> None:
        def fail(p: PlanRecord) -> None:
            p.set_status(PlanStatus.FAILED)
            p.failure = ErrorInfo(code=str(code), message=message)

        self.store.update_plan(plan_id, fail)

    # --- dependency analysis, apply, archive ---------------------------------------------------------------

    @staticmethod
    def _ws(cycle: CycleRecord):
        from always_on.core.workspace import WorkspaceInfo

        return WorkspaceInfo(
            strategy=cycle.strategy,
            path=cycle.workspace_path,
            branch=cycle.branch,
            base_commit=cycle.base_commit,
            cycle_id=cycle.id,
        )

    def _analyze_dependencies(self, cycle_id: str) -> None:
        from always_on.core.workspace import PlanCommits, analyze_dependencies

        cycle = self.store.get_cycle(cycle_id)
        entries = [
            PlanCommits(plan_id=s.plan_id, commit_shas=s.commit_shas) for s in cycle.plans if s.commit_shas
        ]
        if not entries:
            return
        results = analyze_dependencies(self._ws(cycle), entries)

        def store_results(c: CycleRecord) -> None:
            for plan_id, res in results.items():
                s = c.plan_state(plan_id)
                s.dependency_status = res.status
                s.depends_on = list(res.depends_on)
                s.dependency_reasons = list(res.reasons)

        self.store.update_cycle(cycle_id, store_results)

    def _resolve_cycle(self, cycle_id: str | None) -> CycleRecord:
        if cycle_id:
            return self.store.get_cycle(cycle_id)
        cycle = self.store.active_cycle()
        if cycle is None:
            raise AlwaysOnError(ErrorCode.CYCLE_NOT_FOUND, "this project has no active cycle to apply")
        return cycle

    def prepare_apply(
        self, cycle_id: str, plan_ids: list[str] | None = None, *, files: bool = True
    ) -> ApplyPreparation:
        """What applying `plan_ids` of the cycle (default: its applyable plans) would change, or why it is refused;
        the CLI and the review screen show this before asking to confirm."""
        cycle = self.store.get_cycle(cycle_id)
        return prepare_apply(
            cycle,
            self.store.plans(),
            plan_ids,
            files=(lambda selection: self.cycle_files(cycle.id, selection)) if files else None,
        )

    def apply(self, cycle_id: str | None = None, plan_ids: list[str] | None = None) -> ApplyReport:
        """Apply selected plans to the checkout; holds the fire lock so no fire runs meanwhile."""
        lock = self.store.fire_lock()
        try:
            lock.acquire("apply")
        except OSError as exc:
            full = disk_full(exc)
            if full is None:
                raise
            raise full from exc
        try:
            self.recover(locked=True)
            return self._apply_locked(self._resolve_cycle(cycle_id), plan_ids)
        finally:
            lock.release()

    def _refuse_while_executing(self, cycle: CycleRecord, what: str) -> None:
        running = [s.plan_id for s in cycle.plans if s.status == PlanStatus.EXECUTING]
        if running:
            raise AlwaysOnError(
                ErrorCode.LOCK_BUSY,
                f"plan {', '.join(running)} of cycle {cycle.id} is executing; {what} refused until it ends",
            )

    def _apply_locked(self, cycle: CycleRecord, plan_ids: list[str] | None) -> ApplyReport:
        """Stage the change and its journal, record the journal, swap, record the outcome (core.workspace.journal).

        Durable steps, each a checkpoint for the crash tests: ``apply.staged`` (nothing changed yet),
        ``apply.journaled`` (the journal and the cycle's ``applying`` status are one transaction), ``apply.swap``
        (after each file), ``apply.swapped``, ``apply.recorded`` (plans applied and journal dropped: one
        transaction). A crash anywhere is settled by the next command (core.recovery).
        """
        from always_on.core.workspace import PlanApplyInfo
        from always_on.core.workspace.apply import stage_apply, swap_in
        from always_on.core.workspace.journal import discard

        if cycle.status != CycleStatus.ACTIVE:
            raise AlwaysOnError(
                ErrorCode.CYCLE_NOT_ACTIVE, f"cycle {cycle.id} is '{cycle.status}', not active"
            )
        self._refuse_while_executing(cycle, "apply")
        selected = plan_ids or default_selection(cycle)
        if not selected:
            raise AlwaysOnError(
                ErrorCode.NOTHING_TO_APPLY, f"cycle {cycle.id} has no completed plan to apply"
            )
        infos = [
            PlanApplyInfo(
                plan_id=s.plan_id,
                status=s.status,
                commit_shas=s.commit_shas,
                dependency_status=s.dependency_status,
                depends_on=s.depends_on,
            )
            for s in cycle.plans
        ]
        apply_id = new_id("apply")
        self.emit(PhaseEventType.APPLY_STARTED, cycle_id=cycle.id, data={"plans": selected})
        journal = None
        try:
            staged = stage_apply(
                self.project,
                self._ws(cycle),
                selected,
                infos,
                folder=self.store.apply_dir(apply_id),
                apply_id=apply_id,
            )
            journal = staged.journal
            if journal is not None:
                # guard: journal-recorded-before-swap
                self.store.begin_apply(apply_id, cycle.id, staged.applied, journal.to_json())
                checkpoint("apply.journaled")
                try:
                    swap_in(staged)
                except BaseException as exc:
                    if not (isinstance(exc, AlwaysOnError) and exc.details.get("rolled_back") is False):
                        self._apply_rolled_back(cycle.id, apply_id)  # the journal stays only if undo failed
                        discard(journal)
                    raise
        except Exception as exc:
            error = disk_full(exc) or (
                exc
                if isinstance(exc, AlwaysOnError)
                else AlwaysOnError(ErrorCode.APPLY_FAILED, f"apply failed: {one_line(str(exc))}")
            )
            self.emit(
                PhaseEventType.APPLY_FAILED,
                cycle_id=cycle.id,
                error=ErrorInfo(code=error.code, message=error.message),
                message=error.message,
                data={"files": list(getattr(error, "details", {}).get("files", []))},
            )
            if error is exc:
                raise
            raise error from exc
        cycle = self._record_applied(cycle.id, staged.applied, apply_id if journal else None)
        checkpoint("apply.recorded")
        if journal is not None:
            # guard: apply-discards-its-journal-folder
            discard(journal)
        if cycle.status == CycleStatus.APPLIED:
            self._close_cycle(cycle, unapplied=self._has_unapplied(cycle))
        self.emit(
            PhaseEventType.APPLY_COMPLETED,
            cycle_id=cycle.id,
            data={"plans": staged.applied, "files": [f.path for f in staged.files]},
        )
        return ApplyReport(
            cycle_id=cycle.id,
            applied=list(staged.applied),
            files=list(staged.files),
            cycle_status=cycle.status,
        )

    def _apply_rolled_back(self, cycle_id: str, apply_id: str) -> None:
        """The checkout is as before: the cycle is applicable again and the journal goes, together."""
        with self.store.transaction():
            with contextlib.suppress(AlwaysOnError):
                self.store.update_cycle(
                    cycle_id,
                    lambda c: c.set_status(CycleStatus.ACTIVE) if c.status == CycleStatus.APPLYING else None,
                )
            self.store.end_apply(apply_id)

    def _record_applied(self, cycle_id: str, applied: list[str], apply_id: str | None) -> CycleRecord:
        """The applied plans, the cycle's new status and the decisions; the journal goes (one transaction)."""
        now = utcnow()
        with self.store.transaction():
            for pid in applied:
                plan = self.store.find_plan(pid)
                if plan is not None and plan.status != PlanStatus.APPLIED:
                    self.store.update_plan(pid, lambda p: p.set_status(PlanStatus.APPLIED))
                self.store.add_decision(
                    Decision(ts=now, kind=DecisionKind.APPLIED, plan_id=pid, cycle_id=cycle_id)
                )
            cycle = self.store.get_cycle(cycle_id)
            remaining = default_selection(cycle)
            status = CycleStatus.ACTIVE if remaining else CycleStatus.APPLIED
            cycle = self.store.update_cycle(cycle_id, lambda c: c.set_status(status))
            if status == CycleStatus.APPLIED:
                for s in cycle.plans:  # failed leftovers of an applied cycle have nothing to return to
                    if s.status not in (PlanStatus.APPLIED, PlanStatus.ARCHIVED, PlanStatus.EXECUTING):
                        with contextlib.suppress(AlwaysOnError):
                            self.store.update_plan(s.plan_id, lambda p: p.set_status(PlanStatus.ARCHIVED))
            if apply_id:
                self.store.end_apply(apply_id)
            return self.store.get_cycle(cycle_id)

    def _has_unapplied(self, cycle: CycleRecord) -> bool:
        """Does the cycle branch hold commits no applied plan accounts for? Asked of git, not of our records."""
        from always_on.core.workspace import unapplied_commits

        applied = [sha for s in cycle.plans if s.status == PlanStatus.APPLIED for sha in s.commit_shas]
        try:
            return bool(unapplied_commits(self._ws(cycle), applied, project=self.project))
        except AlwaysOnError:
            return True  # when in doubt, keep the branch: nothing is silently lost

    def _close_cycle(self, cycle: CycleRecord, *, unapplied: bool) -> str | None:
        """Remove a finished cycle's workspace (keeping a branch with unapplied work). A crash before this ends
        leaves a workspace of a finished cycle: the next fire removes it (``_prune_leftovers``); so does a git
        failure here, which never turns a finished apply or archive into an error."""
        from git.exc import GitCommandError

        from always_on.core.workspace import remove_workspace

        try:
            kept = remove_workspace(self.project, self._ws(cycle), unapplied_commits=unapplied)
        except (GitCommandError, OSError) as exc:
            log.warning(
                "the workspace of cycle %s could not be removed yet (%s); the next fire removes it",
                cycle.id,
                " ".join(str(getattr(exc, "stderr", "") or exc).split()),
            )
            return None
        if kept:
            self.store.update_cycle(cycle.id, lambda c: setattr(c, "kept_branch", kept))
        return kept

    def archive_cycle(self, cycle_id: str) -> str | None:
        with self.store.fire_lock().held("archive"):
            self.recover(locked=True)
            return self._archive_locked(self.store.get_cycle(cycle_id))

    def _archive_locked(self, cycle: CycleRecord) -> str | None:
        if cycle.status == CycleStatus.APPLYING:
            raise AlwaysOnError(
                ErrorCode.CYCLE_NOT_ACTIVE, f"cycle {cycle.id} is being applied; archive refused"
            )
        if cycle.status != CycleStatus.ACTIVE:
            raise AlwaysOnError(ErrorCode.CYCLE_NOT_ACTIVE, f"cycle {cycle.id} is already '{cycle.status}'")
        self._refuse_while_executing(cycle, "archive")
        unapplied = self._has_unapplied(cycle)
        now = utcnow()
        with self.store.transaction():
            for s in cycle.plans:
                if s.status in ARCHIVABLE:
                    self.store.update_plan(s.plan_id, lambda p: p.set_status(PlanStatus.ARCHIVED))
                    self.store.add_decision(
                        Decision(ts=now, kind=DecisionKind.ARCHIVED, plan_id=s.plan_id, cycle_id=cycle.id)
                    )
            cycle = self.store.update_cycle(cycle.id, lambda c: c.set_status(CycleStatus.ARCHIVED))
        return self._close_cycle(cycle, unapplied=unapplied)

    def archive_plan(self, plan_id: str) -> None:
        plan = self.store.get_plan(plan_id)
        if plan.status not in ARCHIVABLE:
            raise AlwaysOnError(
                ErrorCode.INVALID_SELECTION, f"plan {plan.id} is '{plan.status}' and cannot be archived"
            )
        with self.store.transaction():
            self.store.update_plan(plan.id, lambda p: p.set_status(PlanStatus.ARCHIVED))
            self.store.add_decision(
                Decision(kind=DecisionKind.ARCHIVED, plan_id=plan.id, cycle_id=plan.cycle_id)
            )

    # --- diffs --------------------------------------------------------------------------------------------

    @staticmethod
    def _plan_ranges(cycle: CycleRecord, plan_ids: list[str]) -> list[tuple[str, str]]:
        """(before, after) heads of the selected plans that made commits, in cycle order."""
        return [
            (s.before_head, s.after_head)
            for s in cycle.plans
            if s.plan_id in plan_ids and s.before_head and s.after_head and s.commit_shas
        ]

    def cycle_files(self, cycle_id: str, plan_ids: list[str] | None = None) -> list[FileChange]:
        from always_on.core.workspace import diff_files

        cycle = self.store.get_cycle(cycle_id)
        if not Path(cycle.workspace_path).exists():
            return []
        if not plan_ids:
            from always_on.core.workspace import head_of

            return diff_files(Path(cycle.workspace_path), cycle.base_commit, head_of(self._ws(cycle)))
        merged: dict[str, FileChange] = {}
        for before, after in self._plan_ranges(cycle, plan_ids):
            for f in diff_files(Path(cycle.workspace_path), before, after):
                if f.path in merged:
                    prev = merged[f.path]
                    merged[f.path] = prev.model_copy(
                        update={"added": prev.added + f.added, "removed": prev.removed + f.removed}
                    )
                else:
                    merged[f.path] = f
        return list(merged.values())

    def cycle_diff_text(
        self, cycle_id: str, file: str | None = None, plan_ids: list[str] | None = None
    ) -> str:
        from always_on.core.workspace import diff_text, head_of

        cycle = self.store.get_cycle(cycle_id)
        if not Path(cycle.workspace_path).exists():
            return ""
        if not plan_ids:
            return diff_text(Path(cycle.workspace_path), cycle.base_commit, head_of(self._ws(cycle)), file)
        return "".join(
            diff_text(Path(cycle.workspace_path), before, after, file)
            for before, after in self._plan_ranges(cycle, plan_ids)
        )

"""The phases of a fire (DESIGN §2): discovery → workspace → execution → report, plus rerun, apply and archive.

One orchestrator serves one project. It owns the order of events and record updates; the workspace layer does the
git work, the gateway talks to the agent, the store persists. Finish order for every run: plan status, then project
state, then run history — so a reader that sees the history entry sees everything it refers to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from pydantic import BaseModel, Field

from always_on.core.agents.spec import AgentSpec
from always_on.core.config import Config, ProjectSettings, load_config
from always_on.core.contracts.plan import render_plan_markdown
from always_on.core.contracts.report import fallback_report, parse_report, render_report
from always_on.core.errors import AGENT_SETUP_CODES, AlwaysOnError, ErrorCode
from always_on.core.event_log import AgentEventLog
from always_on.core.records import (
    ARCHIVABLE,
    OPEN_PLAN_STATUSES,
    RERUNNABLE,
    AgentEvent,
    CycleRecord,
    CycleStatus,
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


class FireResult(BaseModel):
    outcome: FireOutcome
    run_id: str
    plan_id: str | None = None
    cycle_id: str | None = None
    error: ErrorInfo | None = None
    timings: dict[str, float] = Field(default_factory=dict)


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

    def fail(self, code: str, message: str, hint: str | None = None) -> None:
        self.outcome = FireOutcome.FAILED
        self.error = ErrorInfo(code=code, message=message, hint=hint)


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
        self.listeners: list[EventListener] = list(listeners)
        self.running: asyncio.Task | None = None

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
        self.store.append_event(event)
        self._notify(event)
        return event

    # --- registration and recovery ----------------------------------------------------------------------------

    def register(self) -> None:
        """Make sure the project has a state record (so the daemon and `status` know it)."""
        if not self.project.is_dir():
            raise AlwaysOnError(ErrorCode.NOT_A_DIRECTORY, f"{self.project} is not a directory")
        self.store.update_state(lambda st: setattr(st, "path", str(self.project)))

    def recover(self) -> list[str]:
        """Repair what a dead process left: plans stuck `executing` become failed/interrupted; stale lock cleared."""
        notes: list[str] = []
        lock = self.store.fire_lock()
        holder = lock.busy()
        if holder is not None and (holder.pid, holder.host) != (os.getpid(), socket.gethostname()):
            return notes  # a live process is firing: its `executing` plans are real
        stale = lock.clear_stale()
        if stale:
            notes.append(f"cleared a stale fire lock left by pid {stale.pid}")
        for plan in self.store.plans().values():
            if plan.status == PlanStatus.EXECUTING:
                run_id = plan.run_ids[-1] if plan.run_ids else "unknown-run"
                note = self._set_aside(plan.id, run_id)
                self._fail_plan(
                    plan.id,
                    ErrorCode.INTERRUPTED,
                    "the process running this plan ended before it finished" + note,
                )
                notes.append(f"plan {plan.id} was interrupted; marked failed{note}")
        for cycle in self.store.cycles().values():
            if cycle.status == CycleStatus.APPLYING:  # apply holds the lock: nobody alive is applying it
                self.store.update_cycle(cycle.id, lambda c: c.set_status(CycleStatus.ACTIVE))
                notes.append(
                    f"cycle {cycle.id} was left applying by a process that ended; it is active again"
                )
        return notes

    def agent_spec(self, phase: Phase = Phase.EXECUTION) -> AgentSpec:
        if self.agent_cmd:
            return self.config.command_line_spec(self.agent_cmd)
        name = self.agent_name or self.settings.agent_for(phase.value)
        return self.config.agent_spec(name)

    # --- fire ---------------------------------------------------------------------------------------------

    async def fire(self) -> FireResult:
        """One pass of discovery → workspace → execution → report."""
        self.register()
        self.recover()
        spec = self.agent_spec(Phase.DISCOVERY)
        run = _RunContext(new_id("run"), RunKind.FIRE, spec.name)
        return await self._guarded(run, spec, self._fire_body)

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
        lock.acquire(run.run_id)
        self.running = asyncio.current_task()
        events = AgentEventLog(self.store, run.run_id, self._notify)
        t0 = time.perf_counter()
        try:
            self.store.update_state(lambda st: self._mark_started(st, run))
            from always_on.core.agents.gateway import AgentGateway

            gateway = AgentGateway(
                spec,
                on_event=events.record,
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
            self._fail_open_plan(run)
            self.emit(PhaseEventType.RUN_FAILED, run, error=run.error, message=run.error.message)
            self._finish(run, events)
            lock.release()
            self.running = None
            raise
        except Exception as exc:  # the runtime never goes down with a run: record and report
            log.debug(
                "run %s crashed", run.run_id, exc_info=True
            )  # -v shows the traceback; users get one line
            code = exc.code if isinstance(exc, AlwaysOnError) else "internal_error"
            msg = exc.message if isinstance(exc, AlwaysOnError) else one_line(f"{type(exc).__name__}: {exc}")
            run.fail(code, msg)
            self._fail_open_plan(run)
            self.emit(PhaseEventType.RUN_FAILED, run, error=run.error, message=msg)
        run.timings["total"] = time.perf_counter() - t0
        self._finish(run, events)
        lock.release()
        self.running = None
        return FireResult(
            outcome=run.outcome or FireOutcome.FAILED,
            run_id=run.run_id,
            plan_id=run.plan_id,
            cycle_id=run.cycle_id,
            error=run.error,
            timings=run.timings,
        )

    def _mark_started(self, st, run: _RunContext) -> None:
        st.last_fire_started_at = run.started_at
        st.last_run_id = run.run_id
        st.count_run(date.today())

    def _fail_open_plan(self, run: _RunContext) -> None:
        if run.plan_id:
            plan = self.store.plans().get(run.plan_id)
            if plan and plan.status in (PlanStatus.EXECUTING,):
                code = run.error.code if run.error else ErrorCode.EXECUTION_FAILED
                message = run.error.message if run.error else "run failed"
                self._fail_plan(run.plan_id, code, message + self._set_aside(run.plan_id, run.run_id))

    def _set_aside(self, plan_id: str, run_id: str) -> str:
        """Move a failed attempt's work off the cycle branch (kept under a ref) so the next plan starts clean.

        Returns a sentence for the failure message ("" when there was nothing to keep)."""
        from always_on.core.workspace import attempt_ref, set_aside

        plan = self.store.plans().get(plan_id)
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

    def _finish(self, run: _RunContext, events: AgentEventLog) -> None:
        events.close()
        finished = utcnow()
        outcome = run.outcome or FireOutcome.FAILED

        def update(st) -> None:
            st.last_fire_finished_at = finished
            st.last_outcome = outcome
            st.last_error = run.error
            if outcome == FireOutcome.FAILED:
                st.consecutive_failures += 1
            else:
                st.consecutive_failures = 0
            if outcome == FireOutcome.NO_PLAN:
                st.dormant_since = finished
            elif run.kind == RunKind.FIRE and outcome == FireOutcome.EXECUTED:
                st.dormant_since = None  # it found work: whatever made it sleep is over
            st.next_tick_at = None

        self.store.update_state(update)
        self.store.append_history(
            RunHistoryEntry(
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
            )
        )

    # --- discovery ----------------------------------------------------------------------------------------

    async def _fire_body(self, run: _RunContext, gateway) -> None:
        from always_on.core.agents.mcp_server import mcp_server_spec, phase_tools
        from always_on.core.agents.policy import Policy
        from always_on.core.digest import build_digest
        from always_on.core.prompts import PromptContext, build_prompt

        self.emit(PhaseEventType.DISCOVERY_STARTED, run, phase=Phase.DISCOVERY)
        t = time.perf_counter()
        outbox = self._outbox(run.run_id, Phase.DISCOVERY)
        digest = build_digest(self.project)
        digest_file = outbox / "digest.json"
        digest_file.write_text(json.dumps(digest.tool_payload(), default=str))
        active = self.store.active_cycle()
        ctx = PromptContext(
            language=self.settings.language,
            phase=Phase.DISCOVERY,
            run_id=run.run_id,
            project_root=str(self.project),
            workspace=active.workspace_path if active else None,
            plans=list(self.store.plans().values()),
            digest=digest,
            tools=phase_tools(Phase.DISCOVERY),
            timeout_seconds=self.settings.limits.phase_timeout_seconds,
            max_tool_calls=self.settings.limits.max_tool_calls,
        )
        result = await gateway.run_phase(
            run_id=run.run_id,
            phase=Phase.DISCOVERY,
            cwd=self.project,
            policy=Policy(self.project, writable=False),
            prompt=build_prompt(ctx),
            mcp_servers=[
                mcp_server_spec(phase=Phase.DISCOVERY, run_id=run.run_id, outbox=outbox, digest=digest_file)
            ],
            limits=self.settings.limits.phase_limits(),
        )
        run.timings["discovery"] = time.perf_counter() - t
        plan_file = outbox / "plan.json"
        if plan_file.exists():
            content = PlanContent.model_validate_json(plan_file.read_text())
            plan = PlanRecord(
                id=new_id("plan"),
                project_id=self.store.project_id,
                content=content,
                discovery_run_id=run.run_id,
            )
            self.store.save_plan(plan, render_plan_markdown(content))
            run.plan_id = plan.id
            self.emit(
                PhaseEventType.PLAN_PRODUCED,
                run,
                phase=Phase.DISCOVERY,
                message=content.title,
                data={"dedupe_key": content.dedupe_key},
            )
            if result.error:  # a plan produced despite an error still continues (DESIGN §2)
                log.info("discovery ended with %s but produced a plan", result.error.code)
            await self._execute_plan(run, gateway, plan.id)
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

    def _outbox(self, run_id: str, phase: Phase) -> Path:
        path = self.store.dir / "runs" / run_id / phase.value
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- workspace + execution + report -----------------------------------------------------------------

    def _workspace_for(self, run: _RunContext):
        from always_on.core.workspace import prepare_workspace

        active = self.store.active_cycle()
        existing = None
        if active and active.status == CycleStatus.ACTIVE:
            existing = self._ws(active)
            cycle_id = active.id
        else:
            cycle_id = new_id("cycle")
        ws = prepare_workspace(
            self.project,
            cycle_id=cycle_id,
            base_dir=self.settings.workspace.resolved_base(),
            strategy=self.settings.workspace.strategy,
            snapshot_ignore=self.settings.workspace.snapshot_ignore,
            snapshot_max_bytes=self.settings.workspace.snapshot_max_mb * 1024 * 1024,
            existing=existing,
        )
        if existing is not None and active is not None:

            def refresh(c: CycleRecord) -> None:
                c.workspace_path = str(ws.path)
                c.branch = ws.branch

            cycle = self.store.update_cycle(active.id, refresh)
        else:
            cycle = CycleRecord(
                id=cycle_id,
                project_id=self.store.project_id,
                strategy=ws.strategy,
                workspace_path=str(ws.path),
                branch=ws.branch,
                base_commit=ws.base_commit,
            )
            self.store.save_cycle(cycle)
            self.store.update_state(lambda st: setattr(st, "active_cycle_id", cycle.id))
        return cycle, ws

    async def _execute_plan(self, run: _RunContext, gateway, plan_id: str) -> None:
        from always_on.core.agents.mcp_server import mcp_server_spec, phase_tools
        from always_on.core.agents.policy import Policy
        from always_on.core.prompts import PromptContext, build_prompt
        from always_on.core.workspace import commit_plan, diff_files

        self.emit(PhaseEventType.WORKSPACE_STARTED, run, phase=Phase.WORKSPACE)
        t = time.perf_counter()
        try:
            cycle, ws = self._workspace_for(run)
        except AlwaysOnError as exc:
            run.fail(ErrorCode.WORKSPACE_PREPARE_FAILED, f"workspace could not be prepared: {exc.message}")
            self._fail_plan(plan_id, ErrorCode.WORKSPACE_PREPARE_FAILED, exc.message)
            self.emit(
                PhaseEventType.RUN_FAILED, run, phase=Phase.WORKSPACE, error=run.error, message=exc.message
            )
            return
        run.cycle_id = cycle.id
        run.timings["workspace"] = time.perf_counter() - t
        ws_path = Path(ws.path)
        self.emit(
            PhaseEventType.WORKSPACE_READY,
            run,
            phase=Phase.WORKSPACE,
            message=str(ws.path),
            data={"strategy": ws.strategy, "reused": ws.reused, "notes": ws.notes},
        )

        from always_on.core.workspace import head_of

        before = head_of(ws)

        def start_plan(p: PlanRecord) -> None:
            p.set_status(PlanStatus.EXECUTING)
            p.cycle_id = cycle.id
            p.failure = None
            if run.run_id not in p.run_ids:
                p.run_ids.append(run.run_id)

        plan = self.store.update_plan(plan_id, start_plan)

        def start_state(c: CycleRecord) -> None:
            s = c.plan_state(plan_id)
            s.status = PlanStatus.EXECUTING
            s.attempts += 1
            s.before_head = before

        self.store.update_cycle(cycle.id, start_state)
        self.emit(PhaseEventType.EXECUTION_STARTED, run, phase=Phase.EXECUTION)
        t = time.perf_counter()
        plan_md = self.store.read_plan_markdown(plan_id) or render_plan_markdown(plan.content)
        limits = self.settings.limits.phase_limits()
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
        failure: tuple[str, str] | None = None
        if result.error:
            failure = (result.error.code, f"{result.error.code}: {result.error.message}")
        elif commit_error:
            failure = (commit_error.code, commit_error.message)
        elif commit is None or not commit.commit_shas:
            failure = (ErrorCode.EXECUTION_FAILED, "the agent finished without changing any file")
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
            data={"commits": len(commit.commit_shas), "files": len(files)},
        )
        t = time.perf_counter()
        self._analyze_dependencies(cycle.id)
        run.timings["dependencies"] = time.perf_counter() - t

        # report
        self.emit(PhaseEventType.REPORT_STARTED, run, phase=Phase.REPORT)
        t = time.perf_counter()
        outbox = self._outbox(run.run_id, Phase.REPORT)
        ctx = ctx.model_copy(
            update={"phase": Phase.REPORT, "tools": phase_tools(Phase.REPORT), "files_changed": files}
        )
        report_result = await gateway.run_phase(
            run_id=run.run_id,
            phase=Phase.REPORT,
            cwd=ws_path,
            policy=Policy(ws_path, writable=False),
            prompt=build_prompt(ctx),
            mcp_servers=[mcp_server_spec(phase=Phase.REPORT, run_id=run.run_id, outbox=outbox, digest=None)],
            limits=limits,
        )
        run.timings["report"] = time.perf_counter() - t
        meta = self._report_meta(run, plan, cycle, files)
        report_file = outbox / "report.md"
        if report_file.exists():
            parsed = parse_report(report_file.read_text(encoding="utf-8"))
            self.store.write_report(meta, render_report(meta, parsed, title=plan.content.title))
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
                self.store.write_report(meta, render_report(meta, parsed, title=plan.content.title))
            else:
                self.store.write_report(meta, fallback_report(meta, title=plan.content.title, reason=why))
            final = PlanStatus.COMPLETED_NO_REPORT
        run.report_available = True

        def finish_plan(p: PlanRecord) -> None:
            p.set_status(final)
            p.report_run_id = run.run_id

        self.store.update_plan(plan_id, finish_plan)

        def finish_state(c: CycleRecord) -> None:
            c.plan_state(plan_id).status = final

        self.store.update_cycle(cycle.id, finish_state)
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
        )

    def _write_fallback(self, run, plan, cycle, files, *, reason: str, last_text: str) -> None:
        meta = self._report_meta(run, plan, cycle, files)
        self.store.write_report(
            meta, fallback_report(meta, title=plan.content.title, reason=reason, last_agent_text=last_text)
        )
        run.report_available = True

    def _fail_plan(self, plan_id: str, code: str, message: str) -> None:
        def fail(p: PlanRecord) -> None:
            p.set_status(PlanStatus.FAILED)
            p.failure = ErrorInfo(code=str(code), message=message)

        plan = self.store.update_plan(plan_id, fail)
        if plan.cycle_id:
            with contextlib.suppress(AlwaysOnError):
                self.store.update_cycle(
                    plan.cycle_id,
                    lambda c: (
                        setattr(c.plan_state(plan_id), "status", PlanStatus.FAILED)
                        if c.has_plan(plan_id)
                        else None
                    ),
                )

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
        with self.store.fire_lock().held("apply"):
            self.recover()
            return self._apply_locked(self._resolve_cycle(cycle_id), plan_ids)

    def _refuse_while_executing(self, cycle: CycleRecord, what: str) -> None:
        plans = self.store.plans()
        running = [
            s.plan_id
            for s in cycle.plans
            if plans.get(s.plan_id) and plans[s.plan_id].status == PlanStatus.EXECUTING
        ]
        if running:
            raise AlwaysOnError(
                ErrorCode.LOCK_BUSY,
                f"plan {', '.join(running)} of cycle {cycle.id} is executing; {what} refused until it ends",
            )

    def _apply_locked(self, cycle: CycleRecord, plan_ids: list[str] | None) -> ApplyReport:
        from always_on.core.workspace import PlanApplyInfo, apply_plans

        if cycle.status != CycleStatus.ACTIVE:
            raise AlwaysOnError(
                ErrorCode.CYCLE_NOT_ACTIVE, f"cycle {cycle.id} is '{cycle.status}', not active"
            )
        self._refuse_while_executing(cycle, "apply")
        selected = plan_ids or default_selection(cycle, self.store.plans())
        if not selected:
            raise AlwaysOnError(
                ErrorCode.NOTHING_TO_APPLY, f"cycle {cycle.id} has no completed plan to apply"
            )
        plans = self.store.plans()
        infos = [
            PlanApplyInfo(
                plan_id=s.plan_id,
                status=plans[s.plan_id].status if s.plan_id in plans else s.status,
                commit_shas=s.commit_shas,
                dependency_status=s.dependency_status,
                depends_on=s.depends_on,
            )
            for s in cycle.plans
        ]
        self.store.update_cycle(cycle.id, lambda c: c.set_status(CycleStatus.APPLYING))
        self.emit(PhaseEventType.APPLY_STARTED, cycle_id=cycle.id, data={"plans": selected})
        try:
            result = apply_plans(self.project, self._ws(cycle), selected, infos)
        except AlwaysOnError as exc:
            self.store.update_cycle(cycle.id, lambda c: c.set_status(CycleStatus.ACTIVE))
            self.emit(
                PhaseEventType.APPLY_FAILED,
                cycle_id=cycle.id,
                error=ErrorInfo(code=exc.code, message=exc.message),
                message=exc.message,
                data={"files": list(exc.details.get("files", []))},
            )
            raise
        except Exception as exc:
            self.store.update_cycle(cycle.id, lambda c: c.set_status(CycleStatus.ACTIVE))
            self.emit(
                PhaseEventType.APPLY_FAILED,
                cycle_id=cycle.id,
                error=ErrorInfo(code=ErrorCode.APPLY_FAILED, message=str(exc)),
                message=str(exc),
            )
            raise AlwaysOnError(ErrorCode.APPLY_FAILED, f"apply failed: {exc}") from exc
        for pid in result.applied:
            self.store.update_plan(pid, lambda p: p.set_status(PlanStatus.APPLIED))
        plans = self.store.plans()
        remaining = default_selection(cycle, plans)  # what is still applyable (the applied plans are not)
        open_plans = [
            s.plan_id
            for s in cycle.plans
            if s.plan_id not in result.applied
            and plans.get(s.plan_id)
            and plans[s.plan_id].status in OPEN_PLAN_STATUSES
        ]

        def finish(c: CycleRecord) -> None:
            for s in c.plans:
                if s.plan_id in result.applied:
                    s.status = PlanStatus.APPLIED
            c.set_status(CycleStatus.ACTIVE if remaining else CycleStatus.APPLIED)

        cycle = self.store.update_cycle(cycle.id, finish)
        if cycle.status == CycleStatus.APPLIED:
            for pid in open_plans:  # failed leftovers of an applied cycle have nothing to return to
                with contextlib.suppress(AlwaysOnError):
                    self.store.update_plan(pid, lambda p: p.set_status(PlanStatus.ARCHIVED))
            self._close_cycle(cycle, unapplied=self._has_unapplied(cycle))
        self.emit(
            PhaseEventType.APPLY_COMPLETED,
            cycle_id=cycle.id,
            data={"plans": result.applied, "files": [f.path for f in result.files]},
        )
        return ApplyReport(
            cycle_id=cycle.id,
            applied=list(result.applied),
            files=list(result.files),
            cycle_status=cycle.status,
        )

    def _has_unapplied(self, cycle: CycleRecord) -> bool:
        """Does the cycle branch hold commits no applied plan accounts for? Asked of git, not of our records."""
        from always_on.core.workspace import unapplied_commits

        plans = self.store.plans()
        applied = [
            sha
            for s in cycle.plans
            if plans.get(s.plan_id) and plans[s.plan_id].status == PlanStatus.APPLIED
            for sha in s.commit_shas
        ]
        try:
            return bool(unapplied_commits(self._ws(cycle), applied, project=self.project))
        except AlwaysOnError:
            return True  # when in doubt, keep the branch: nothing is silently lost

    def _close_cycle(self, cycle: CycleRecord, *, unapplied: bool) -> str | None:
        from always_on.core.workspace import remove_workspace

        kept = remove_workspace(self.project, self._ws(cycle), unapplied_commits=unapplied)
        if kept:
            self.store.update_cycle(cycle.id, lambda c: setattr(c, "kept_branch", kept))

        def clear(st) -> None:
            if st.active_cycle_id == cycle.id:
                st.active_cycle_id = None

        self.store.update_state(clear)
        return kept

    def archive_cycle(self, cycle_id: str) -> str | None:
        with self.store.fire_lock().held("archive"):
            self.recover()
            return self._archive_locked(self.store.get_cycle(cycle_id))

    def _archive_locked(self, cycle: CycleRecord) -> str | None:
        if cycle.status == CycleStatus.APPLYING:
            raise AlwaysOnError(
                ErrorCode.CYCLE_NOT_ACTIVE, f"cycle {cycle.id} is being applied; archive refused"
            )
        if cycle.status != CycleStatus.ACTIVE:
            raise AlwaysOnError(ErrorCode.CYCLE_NOT_ACTIVE, f"cycle {cycle.id} is already '{cycle.status}'")
        self._refuse_while_executing(cycle, "archive")
        plans = self.store.plans()
        unapplied = self._has_unapplied(cycle)
        for s in cycle.plans:
            p = plans.get(s.plan_id)
            if p and p.status in ARCHIVABLE:
                self.store.update_plan(s.plan_id, lambda p: p.set_status(PlanStatus.ARCHIVED))

        def archive(c: CycleRecord) -> None:
            c.set_status(CycleStatus.ARCHIVED)
            for s in c.plans:
                if s.status in ARCHIVABLE:
                    s.status = PlanStatus.ARCHIVED

        cycle = self.store.update_cycle(cycle.id, archive)
        return self._close_cycle(cycle, unapplied=unapplied)

    def archive_plan(self, plan_id: str) -> None:
        plan = self.store.get_plan(plan_id)
        if plan.status not in ARCHIVABLE:
            raise AlwaysOnError(
                ErrorCode.INVALID_SELECTION, f"plan {plan.id} is '{plan.status}' and cannot be archived"
            )
        self.store.update_plan(plan.id, lambda p: p.set_status(PlanStatus.ARCHIVED))
        if plan.cycle_id:
            with contextlib.suppress(AlwaysOnError):
                self.store.update_cycle(
                    plan.cycle_id,
                    lambda c: (
                        setattr(c.plan_state(plan.id), "status", PlanStatus.ARCHIVED)
                        if c.has_plan(plan.id)
                        else None
                    ),
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

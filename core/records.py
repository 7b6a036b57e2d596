"""Pydantic records of DESIGN §2–3: project state, plans, cycles, runs, events, report metadata.

Every persisted record carries ``schema_version`` so that a later release can migrate instead of guessing.
Status enums are exactly the strings of DESIGN §2; transitions are checked in one place.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator
from pydantic_core import PydanticSerializationError

from always_on.core import text
from always_on.core.errors import AlwaysOnError, ErrorCode

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_line(record: BaseModel) -> str:
    """One JSON line for a log; text with undecodable bytes (odd file names in messages) is shown as ``\\xNN``."""
    try:
        return record.model_dump_json()
    except PydanticSerializationError:
        import json

        return json.dumps(text.clean(record.model_dump(mode="json")), ensure_ascii=False)


def new_id(prefix: str) -> str:
    """Sortable, collision-safe id: prefix, UTC time to the second, random suffix."""
    return f"{prefix}-{utcnow().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)
    schema_version: int = SCHEMA_VERSION


# --- statuses -------------------------------------------------------------------------------------------


class FireOutcome(StrEnum):
    EXECUTED = "executed"
    NO_PLAN = "no_plan"
    FAILED = "failed"


class PlanStatus(StrEnum):
    READY = "ready"
    EXECUTING = "executing"
    COMPLETED = "completed"
    COMPLETED_NO_REPORT = "completed_no_report"
    FAILED = "failed"
    APPLIED = "applied"
    ARCHIVED = "archived"


class CycleStatus(StrEnum):
    ACTIVE = "active"
    APPLYING = "applying"
    APPLIED = "applied"
    ARCHIVED = "archived"


class DependencyStatus(StrEnum):
    PENDING = "pending"
    CLEAN = "clean"
    DEPENDENT = "dependent"
    FAILED = "failed"


class PhaseEventType(StrEnum):
    DISCOVERY_STARTED = "discovery_started"
    PLAN_PRODUCED = "plan_produced"
    NO_PLAN = "no_plan"
    WORKSPACE_STARTED = "workspace_started"
    WORKSPACE_READY = "workspace_ready"
    EXECUTION_STARTED = "execution_started"
    EXECUTION_COMPLETED = "execution_completed"
    REPORT_STARTED = "report_started"
    REPORT_PRODUCED = "report_produced"
    RUN_COMPLETED = "run_completed"
    RUN_FAILED = "run_failed"
    APPLY_STARTED = "apply_started"
    APPLY_COMPLETED = "apply_completed"
    APPLY_FAILED = "apply_failed"
    PROJECT_DISABLED = "project_disabled"


class Gate(StrEnum):
    """What holds back a scheduled tick of a project (DESIGN §6), in the order the scheduler checks them."""

    DISABLED = "disabled"
    PROJECT_DISABLED = "project_disabled"
    PROJECT_MISSING = "project_missing"
    DORMANT = "dormant"
    AGENT_BUSY = "agent_busy"
    COOLDOWN = "cooldown"
    DAILY_BUDGET = "daily_budget"
    LOCK_BUSY = "lock_busy"
    CYCLE_FULL = "cycle_full"
    INTERVAL = "interval"  # nothing is wrong: the next tick is not due yet


class Phase(StrEnum):
    DISCOVERY = "discovery"
    WORKSPACE = "workspace"
    EXECUTION = "execution"
    REPORT = "report"
    APPLY = "apply"


PLAN_TRANSITIONS: dict[PlanStatus, frozenset[PlanStatus]] = {
    PlanStatus.READY: frozenset({PlanStatus.EXECUTING, PlanStatus.ARCHIVED, PlanStatus.FAILED}),
    PlanStatus.EXECUTING: frozenset(
        {PlanStatus.COMPLETED, PlanStatus.COMPLETED_NO_REPORT, PlanStatus.FAILED}
    ),
    PlanStatus.COMPLETED: frozenset({PlanStatus.APPLIED, PlanStatus.ARCHIVED}),
    PlanStatus.COMPLETED_NO_REPORT: frozenset({PlanStatus.APPLIED, PlanStatus.ARCHIVED}),
    PlanStatus.FAILED: frozenset({PlanStatus.EXECUTING, PlanStatus.ARCHIVED}),
    PlanStatus.APPLIED: frozenset(),
    PlanStatus.ARCHIVED: frozenset(),
}

CYCLE_TRANSITIONS: dict[CycleStatus, frozenset[CycleStatus]] = {
    CycleStatus.ACTIVE: frozenset({CycleStatus.APPLYING, CycleStatus.ARCHIVED, CycleStatus.APPLIED}),
    CycleStatus.APPLYING: frozenset({CycleStatus.ACTIVE, CycleStatus.APPLIED}),
    CycleStatus.APPLIED: frozenset(),
    CycleStatus.ARCHIVED: frozenset(),
}


def _statuses_reaching(
    table: dict[PlanStatus, frozenset[PlanStatus]], target: PlanStatus
) -> frozenset[PlanStatus]:
    return frozenset(status for status, reachable in table.items() if target in reachable)


# Status sets, derived from the transitions above so that a rule is written once:
RERUNNABLE = _statuses_reaching(PLAN_TRANSITIONS, PlanStatus.EXECUTING)  # ready, failed
APPLYABLE = _statuses_reaching(PLAN_TRANSITIONS, PlanStatus.APPLIED)  # completed, completed_no_report
ARCHIVABLE = _statuses_reaching(PLAN_TRANSITIONS, PlanStatus.ARCHIVED)  # all but executing and the final ones
FINAL_PLAN_STATUSES = frozenset(status for status, reachable in PLAN_TRANSITIONS.items() if not reachable)
OPEN_PLAN_STATUSES = frozenset(PlanStatus) - FINAL_PLAN_STATUSES  # not yet applied or archived
OPEN_CYCLE_STATUSES = frozenset(status for status, reachable in CYCLE_TRANSITIONS.items() if reachable)


def check_transition(kind: str, table: dict, current: StrEnum, new: StrEnum) -> None:
    if current == new:
        return
    if new not in table[current]:
        raise AlwaysOnError(
            ErrorCode.ILLEGAL_TRANSITION,
            f"{kind} status cannot go from '{current}' to '{new}'",
            current=str(current),
            new=str(new),
        )


# --- records ---------------------------------------------------------------------------------------------


class ErrorInfo(BaseModel):
    code: str
    message: str
    hint: str | None = None  # the next step (the variable to set, the command to run), when there is one


class ProjectState(Record):
    """Scheduler-facing state of one project (DESIGN §6)."""

    project_id: str
    path: str
    enabled: bool = (
        False  # for the scheduler: only `init` (or resuming in the app) enables; `run` registers only
    )
    paused: bool = False
    registered_at: datetime = Field(default_factory=utcnow)
    last_fire_started_at: datetime | None = None
    last_fire_finished_at: datetime | None = None
    last_outcome: FireOutcome | None = None
    last_error: ErrorInfo | None = None
    last_run_id: str | None = None
    runs_today: int = 0
    runs_today_date: date | None = None
    consecutive_failures: int = 0
    dormant_since: datetime | None = None
    last_change_at: datetime | None = None
    active_cycle_id: str | None = None
    disabled_reason: str | None = None
    next_tick_at: datetime | None = None
    blocked_by: Gate | None = None

    def enable(self) -> None:
        """The user's "work on this again": clears pause, disable-after-failures and dormancy."""
        self.enabled = True
        self.paused = False
        self.disabled_reason = None
        self.consecutive_failures = 0
        self.dormant_since = None

    def count_run(self, today: date) -> None:
        """Increment today's run count, rolling over at the day boundary."""
        if self.runs_today_date != today:
            self.runs_today_date = today
            self.runs_today = 0
        self.runs_today += 1

    def runs_on(self, today: date) -> int:
        return self.runs_today if self.runs_today_date == today else 0


class PlanContent(BaseModel):
    """The agent-authored part of a plan (DESIGN §4), already validated by contracts.plan."""

    title: str
    summary: str
    rationale: str
    dedupe_key: str
    context_signals: list[str] = Field(default_factory=list)
    proposed_change: str
    steps: list[str]
    verification: list[str]


class PlanRecord(Record):
    id: str
    project_id: str
    status: PlanStatus = PlanStatus.READY
    content: PlanContent
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    discovery_run_id: str | None = None
    run_ids: list[str] = Field(default_factory=list)
    cycle_id: str | None = None
    failure: ErrorInfo | None = None
    report_run_id: str | None = None

    @property
    def title(self) -> str:
        return self.content.title

    @property
    def dedupe_key(self) -> str:
        return self.content.dedupe_key

    def set_status(self, new: PlanStatus) -> None:
        check_transition("plan", PLAN_TRANSITIONS, self.status, new)
        self.status = new
        self.updated_at = utcnow()

    def listing(self) -> dict[str, Any]:
        """Flat snake_case view for `always-on plans --json` (DESIGN §9)."""
        data = self.model_dump(mode="json", exclude={"content"})
        data.update(
            title=self.content.title,
            summary=self.content.summary,
            dedupe_key=self.content.dedupe_key,
        )
        return data


class CyclePlanState(BaseModel):
    """A plan's place and git facts in its cycle. ``status`` is the plan's own status, read from the plan record
    when the cycle is loaded (stored once, with the plan); assigning it here changes nothing in the store."""

    plan_id: str
    status: PlanStatus = PlanStatus.READY
    commit_shas: list[str] = Field(default_factory=list)
    before_head: str | None = None
    after_head: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    dependency_reasons: list[str] = Field(default_factory=list)
    dependency_status: DependencyStatus = DependencyStatus.PENDING
    attempts: int = 0


class CycleRecord(Record):
    id: str
    project_id: str
    status: CycleStatus = CycleStatus.ACTIVE
    strategy: str  # "worktree" | "snapshot"
    workspace_path: str
    branch: str | None = None
    base_commit: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    plans: list[CyclePlanState] = Field(default_factory=list)
    kept_branch: str | None = None

    def set_status(self, new: CycleStatus) -> None:
        check_transition("cycle", CYCLE_TRANSITIONS, self.status, new)
        self.status = new
        self.updated_at = utcnow()

    def plan_state(self, plan_id: str) -> CyclePlanState:
        for state in self.plans:
            if state.plan_id == plan_id:
                return state
        state = CyclePlanState(plan_id=plan_id)
        self.plans.append(state)
        return state

    def has_plan(self, plan_id: str) -> bool:
        return any(s.plan_id == plan_id for s in self.plans)

    def open_plan_count(self) -> int:
        """Plans of the cycle not yet applied or archived: what `max_plans_per_cycle` bounds (cycle_full)."""
        return sum(1 for s in self.plans if s.status in OPEN_PLAN_STATUSES)


class RunKind(StrEnum):
    FIRE = "fire"
    RERUN = "rerun"


class RunHistoryEntry(Record):
    run_id: str
    project_id: str
    kind: RunKind = RunKind.FIRE
    agent: str
    started_at: datetime
    finished_at: datetime
    outcome: FireOutcome
    plan_id: str | None = None
    cycle_id: str | None = None
    error: ErrorInfo | None = None
    report_available: bool = False
    denials: int = 0  # requests the permission policy refused during the run (terminal, file, permission)

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class PhaseEvent(Record):
    ts: datetime = Field(default_factory=utcnow)
    project_id: str
    run_id: str | None = None
    type: PhaseEventType
    phase: Phase | None = None
    plan_id: str | None = None
    cycle_id: str | None = None
    error: ErrorInfo | None = None
    message: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class AgentEventKind(StrEnum):
    MESSAGE = "message"
    THOUGHT = "thought"
    TOOL_CALL = "tool_call"
    TOOL_CALL_UPDATE = "tool_call_update"
    PLAN = "plan"
    USAGE = "usage"
    PERMISSION = "permission"
    FILE_READ = "file_read"
    FILE_WRITE = "file_write"
    TERMINAL = "terminal"
    STDERR = "stderr"
    LIFECYCLE = "lifecycle"
    OTHER = "other"


class AgentEvent(Record):
    ts: datetime = Field(default_factory=utcnow)
    run_id: str
    phase: Phase
    kind: AgentEventKind
    text: str = ""
    allowed: bool | None = None
    reason: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class FileChange(BaseModel):
    """One changed file. ``path`` is exact in memory (undecodable bytes as surrogates); in JSON a name that is not
    valid UTF-8 is written in its display form (``\\xNN``) with the exact bytes in ``path_bytes`` (base64)."""

    path: str
    old_path: str | None = None
    change: str = "modified"  # added | deleted | modified | renamed | mode
    added: int = 0
    removed: int = 0
    binary: bool = False

    @model_validator(mode="before")
    @classmethod
    def _exact_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("path_bytes" in data or "old_path_bytes" in data):
            data = dict(data)
            for key in ("path", "old_path"):
                raw = data.pop(f"{key}_bytes", None)
                if raw:
                    data[key] = text.from_b64(raw)
        return data

    @model_serializer(mode="wrap")
    def _safe_names(self, handler) -> dict[str, Any]:
        data = handler(self)
        for key in ("path", "old_path"):
            value = getattr(self, key)
            if value is not None and text.has_surrogates(value):
                data[key] = text.display(value)
                data[f"{key}_bytes"] = text.to_b64(value)
        return data


class ReportMetadata(Record):
    run_id: str
    project_id: str
    plan_id: str
    cycle_id: str | None = None
    started_at: datetime
    finished_at: datetime
    workspace: str | None = None
    agent: str | None = None
    files_changed: list[FileChange] = Field(default_factory=list)
    fallback: bool = False
    notes: list[str] = Field(default_factory=list)


class DecisionKind(StrEnum):
    """What the user decided in a review (DESIGN §2 "Finer selection and memory")."""

    APPLIED = "applied"
    ARCHIVED = "archived"
    FILE_EXCLUDED = "file_excluded"
    HUNK_EXCLUDED = "hunk_excluded"


class Decision(Record):
    """One review decision: a plan applied or archived, or a file or hunk of it left out, with an optional reason.

    Discovery gets a digest of these and the plan tool refuses a turned-down ``dedupe_key`` (issue #14); the
    dedupe key is the plan's, read through ``plan_id`` (stored once). ``path`` may hold undecodable bytes.
    """

    id: int | None = None
    ts: datetime = Field(default_factory=utcnow)
    kind: DecisionKind
    plan_id: str | None = None
    cycle_id: str | None = None
    path: str | None = None
    hunk: str | None = None  # e.g. the hunk header "@@ -3,7 +3,8 @@"
    reason: str | None = None  # one line, optional
    dedupe_key: str | None = None  # filled from the plan when read; not stored with the decision

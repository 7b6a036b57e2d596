"""Records ⇄ rows: how each record is laid out in the database, one fact in one place.

Times are stored as fixed-width UTC text (``2025-03-01T09:00:00.000000Z``) so that they sort as times; a listing
prints them as pydantic does (``…T09:00:00Z`` when there are no microseconds). Records are rebuilt from JSON
that SQLite assembles itself (``json_object``), validated by pydantic in one pass: 10,000 plans in a few tens of
milliseconds, without a Python loop per row.
"""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from always_on.core import text
from always_on.core.records import CycleRecord, PlanRecord, ProjectState, RunHistoryEntry


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(value: Any) -> str:
    """Compact JSON for a column; undecodable bytes in text are shown as ``\\xNN`` (columns hold UTF-8 only)."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except UnicodeEncodeError:  # pragma: no cover - json.dumps keeps surrogates; kept for safety
        return json.dumps(text.clean(value), ensure_ascii=False, separators=(",", ":"))


def safe(value: str | None) -> str | None:
    return None if value is None else text.display(value)


def _out_time(column: str) -> str:
    return f"replace({column}, '.000000Z', 'Z')"


# --- plans ----------------------------------------------------------------------------------------------

PLAN_COLUMNS = (
    "id, status, title, summary, dedupe_key, cycle_id, created_at, updated_at, discovery_run_id, "
    "report_run_id, run_ids, failure_code, failure_message, failure_hint, content, schema_version"
)
_FAILURE = (
    "CASE WHEN failure_code IS NULL THEN NULL "
    "ELSE json_object('code', failure_code, 'message', failure_message, 'hint', failure_hint) END"
)
PLAN_JSON = f"""json_object(
    'schema_version', schema_version, 'id', id, 'project_id', ?, 'status', status,
    'content', json_set(content, '$.title', title, '$.summary', summary, '$.dedupe_key', dedupe_key),
    'created_at', created_at, 'updated_at', updated_at, 'discovery_run_id', discovery_run_id,
    'run_ids', json(run_ids), 'cycle_id', cycle_id, 'failure', {_FAILURE}, 'report_run_id', report_run_id)"""
# The flat listing of DESIGN §9 (PlanRecord.listing(): every field but content, plus title/summary/dedupe_key).
LISTING_JSON = f"""json_object(
    'schema_version', schema_version, 'id', id, 'project_id', ?, 'status', status,
    'created_at', {_out_time("created_at")}, 'updated_at', {_out_time("updated_at")},
    'discovery_run_id', discovery_run_id, 'run_ids', json(run_ids), 'cycle_id', cycle_id,
    'failure', {_FAILURE}, 'report_run_id', report_run_id,
    'title', title, 'summary', summary, 'dedupe_key', dedupe_key)"""


def placeholders(columns: str) -> str:
    """The ``?, ?, ...`` of an INSERT for one of the column lists below."""
    return ",".join("?" * len(columns.split(",")))


def plan_row(plan: PlanRecord) -> tuple:
    content = plan.content.model_dump(mode="json", exclude={"title", "summary", "dedupe_key"})
    return (
        plan.id,
        plan.status.value,
        safe(plan.content.title),
        safe(plan.content.summary),
        safe(plan.content.dedupe_key),
        plan.cycle_id,
        ts(plan.created_at),
        ts(plan.updated_at),
        plan.discovery_run_id,
        plan.report_run_id,
        dumps(plan.run_ids),
        plan.failure.code if plan.failure else None,
        safe(plan.failure.message) if plan.failure else None,
        safe(plan.failure.hint) if plan.failure else None,
        dumps(text.clean(content)),
        plan.schema_version,
    )


@cache
def _list_of(model: type) -> TypeAdapter:
    return TypeAdapter(list[model])


def parse_json_rows(model: type, rows: list[tuple]) -> list:
    """Records from rows whose first column is one record's JSON (built by SQLite).

    The cyclic garbage collector is paused meanwhile: 10,000 records are ~200,000 new objects, none of them in a
    cycle, and the collections they trigger cost three times the validation itself in a process that already holds
    many objects (measured: 0.07 s paused, 0.25 s not).
    """
    if not rows:
        return []
    data = "[" + ",".join(row[0] for row in rows) + "]"
    paused = gc.isenabled()
    gc.disable()
    try:
        return _list_of(model).validate_json(data)
    finally:
        if paused:
            gc.enable()


# --- state ----------------------------------------------------------------------------------------------

_STATE_EXCLUDE = {"project_id", "path", "active_cycle_id"}


def state_data(state: ProjectState) -> str:
    return dumps(text.clean(state.model_dump(mode="json", exclude=_STATE_EXCLUDE)))


def state_from(project_id: str, path: str, data: str, active_cycle_id: str | None) -> ProjectState:
    raw = json.loads(data)
    raw.update(project_id=project_id, path=path, active_cycle_id=active_cycle_id)
    return ProjectState.model_validate(raw)


# --- cycles ---------------------------------------------------------------------------------------------

CYCLE_COLUMNS = (
    "id, status, strategy, workspace_path, branch, base_commit, kept_branch, created_at, updated_at, "
    "schema_version"
)
CYCLE_PLAN_COLUMNS = (
    "cycle_id, plan_id, position, commit_shas, before_head, after_head, depends_on, dependency_reasons, "
    "dependency_status, attempts"
)


def cycle_row(cycle: CycleRecord) -> tuple:
    return (
        cycle.id,
        cycle.status.value,
        cycle.strategy,
        safe(cycle.workspace_path),
        cycle.branch,
        cycle.base_commit,
        cycle.kept_branch,
        ts(cycle.created_at),
        ts(cycle.updated_at),
        cycle.schema_version,
    )


def cycle_plan_rows(cycle: CycleRecord) -> list[tuple]:
    return [
        (
            cycle.id,
            s.plan_id,
            position,
            dumps(s.commit_shas),
            s.before_head,
            s.after_head,
            dumps(s.depends_on),
            dumps(text.clean(s.dependency_reasons)),
            s.dependency_status.value,
            s.attempts,
        )
        for position, s in enumerate(cycle.plans)
    ]


def cycles_from(project_id: str, cycle_rows: list[tuple], plan_rows: list[tuple]) -> list[CycleRecord]:
    """Cycles from their rows and their plans' rows (``plan_rows``: cycle_plans columns + the plan's status)."""
    states: dict[str, list[dict[str, Any]]] = {}
    for r in plan_rows:
        states.setdefault(r[0], []).append(
            {
                "plan_id": r[1],
                "commit_shas": json.loads(r[3]),
                "before_head": r[4],
                "after_head": r[5],
                "depends_on": json.loads(r[6]),
                "dependency_reasons": json.loads(r[7]),
                "dependency_status": r[8],
                "attempts": r[9],
                "status": r[10] or "ready",
            }
        )
    out = []
    for r in cycle_rows:
        out.append(
            CycleRecord.model_validate(
                {
                    "id": r[0],
                    "project_id": project_id,
                    "status": r[1],
                    "strategy": r[2],
                    "workspace_path": r[3],
                    "branch": r[4],
                    "base_commit": r[5],
                    "kept_branch": r[6],
                    "created_at": r[7],
                    "updated_at": r[8],
                    "schema_version": r[9],
                    "plans": states.get(r[0], []),
                }
            )
        )
    return out


# --- runs -----------------------------------------------------------------------------------------------

RUN_COLUMNS = (
    "run_id, kind, agent, started_at, finished_at, outcome, plan_id, cycle_id, error_code, error_message, "
    "error_hint, report_available, schema_version, denials"
)


def run_row(entry: RunHistoryEntry) -> tuple:
    return (
        entry.run_id,
        entry.kind.value,
        safe(entry.agent),
        ts(entry.started_at),
        ts(entry.finished_at),
        entry.outcome.value,
        entry.plan_id,
        entry.cycle_id,
        entry.error.code if entry.error else None,
        safe(entry.error.message) if entry.error else None,
        safe(entry.error.hint) if entry.error else None,
        int(entry.report_available),
        entry.schema_version,
        entry.denials,
    )


def runs_from(project_id: str, rows: list[tuple]) -> list[RunHistoryEntry]:
    return [
        RunHistoryEntry.model_validate(
            {
                "run_id": r[0],
                "project_id": project_id,
                "kind": r[1],
                "agent": r[2],
                "started_at": r[3],
                "finished_at": r[4],
                "outcome": r[5],
                "plan_id": r[6],
                "cycle_id": r[7],
                "error": {"code": r[8], "message": r[9] or "", "hint": r[10]} if r[8] else None,
                "report_available": bool(r[11]),
                "schema_version": r[12],
                "denials": r[13] or 0,
            }
        )
        for r in rows
    ]

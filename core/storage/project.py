"""All records of one project: one SQLite database plus the files that stay files (markdown, JSONL logs).

Every ``save_*``/``update_*`` is one transaction; ``transaction()`` groups several into one (they join it). An
``update_*`` reads, changes and writes inside its transaction, so concurrent writers never lose an update.
Listings are queries (``plan_listing``, ``count_plans``, ``history(limit=…)``), not whole loads.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from always_on.core import paths, text
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import (
    AgentEvent,
    CycleRecord,
    Decision,
    DecisionKind,
    FireOutcome,
    PhaseEvent,
    PlanRecord,
    PlanStatus,
    ProjectState,
    ReportMetadata,
    RunHistoryEntry,
    RunKind,
    json_line,
    utcnow,
)
from always_on.core.storage import rows as R
from always_on.core.storage.db import DB_NAME, Database, connect, forget
from always_on.core.storage.files import append_line, atomic_write_text, file_lock, read_jsonl
from always_on.core.storage.lock import FireLock

# Sort keys a listing may ask for (issue #16: the backlog pages over queries with sort and filter).
PLAN_SORTS = {
    "created": "created_at",
    "updated": "updated_at",
    "status": "status",
    "title": "title COLLATE NOCASE",
    "dedupe_key": "dedupe_key",
    "cycle": "cycle_id",
}


def _like(fragment: str) -> str:
    return fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ProjectStore:
    """All records of one project (layout: the package docstring)."""

    def __init__(self, root: Path, project_path: Path) -> None:
        self.project_path = project_path
        self.project_id = paths.project_id_for(project_path)
        self.dir = root / self.project_id
        self.warnings: list[str] = []

    # --- paths ----------------------------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.dir / DB_NAME

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.dir / ".store.lock"

    def plan_md_path(self, plan_id: str) -> Path:
        return self.dir / "plans" / f"{plan_id}.md"

    def report_path(self, run_id: str) -> Path:
        return self.dir / "reports" / f"{run_id}.md"

    def agent_events_path(self, run_id: str) -> Path:
        return self.dir / "runs" / f"{run_id}.jsonl"

    def outbox(self, run_id: str, phase: str) -> Path:
        """Where a phase's MCP tool server leaves its results (plan.json, report.md)."""
        return self.dir / "runs" / run_id / phase

    def apply_dir(self, apply_id: str) -> Path:
        """Where an apply keeps the checkout's originals and the new files until it is settled."""
        return self.dir / "apply" / apply_id

    def fire_lock(self) -> FireLock:
        return FireLock(self.dir / "fire.lock", self.lock_path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The store folder's flock (the fire lock's guard; the JSON import)."""
        with file_lock(self.lock_path):
            yield

    # --- the database ---------------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        """This thread's connection; a JSON store found in the folder is imported first (once)."""
        path = self.db_path
        if not path.exists():
            from always_on.core.storage.json_import import has_json_store, import_json_store

            if has_json_store(self.dir):
                with self.locked():
                    if not path.exists():
                        notes = import_json_store(self.dir, path, self.project_id, self.project_path)
                        self.warnings.extend(notes)
        return connect(path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[ProjectStore]:
        """Group several changes into one transaction: all of them are stored, or none."""
        with self.db.write():
            yield self

    def close(self) -> None:
        """Drop this thread's connection (before the database file is moved or removed)."""
        forget(self.db_path)

    def exists(self) -> bool:
        """Is the project registered (a state record exists)?"""
        from always_on.core.storage.json_import import has_json_store

        if not self.db_path.exists() and not has_json_store(self.dir):
            return False
        return self.db.value("SELECT count(*) FROM state") > 0

    # --- state ----------------------------------------------------------------------------------------

    def read_state(self) -> ProjectState:
        db = self.db
        with db.read():
            found = db.row("SELECT project_id, path, data FROM state LIMIT 1")
            active = self._active_cycle_id(db)
        if found is None:
            return ProjectState(
                project_id=self.project_id, path=str(self.project_path), active_cycle_id=active
            )
        return R.state_from(self.project_id, found[1], found[2], active)

    @staticmethod
    def _active_cycle_id(db: Database) -> str | None:
        """The project's work cycle: the newest one still active or applying (derived, never stored twice)."""
        return db.value(
            "SELECT id FROM cycles WHERE status IN ('active', 'applying') ORDER BY created_at DESC, id DESC"
        )

    def write_state(self, state: ProjectState) -> None:
        with self.db.write() as db:
            db.run("DELETE FROM state WHERE project_id != ?", (self.project_id,))
            db.run(
                "INSERT INTO state (project_id, path, data) VALUES (?, ?, ?) "
                "ON CONFLICT (project_id) DO UPDATE SET path = excluded.path, data = excluded.data",
                (self.project_id, text.display(state.path), R.state_data(state)),
            )

    def update_state(self, fn: Callable[[ProjectState], None]) -> ProjectState:
        with self.db.write():
            state = self.read_state()
            fn(state)
            self.write_state(state)
            return state

    # --- plans ----------------------------------------------------------------------------------------

    def _plans_where(self, where: str = "", params: tuple = (), tail: str = "") -> list[PlanRecord]:
        rows = self.db.rows(f"SELECT {R.PLAN_JSON} FROM plans {where} {tail}", (self.project_id, *params))
        return R.parse_json_rows(PlanRecord, rows)

    def plans(self) -> dict[str, PlanRecord]:
        """Every plan, oldest first (a whole load: listings use ``plan_listing`` instead)."""
        return {p.id: p for p in self._plans_where(tail="ORDER BY created_at, id")}

    def plans_list(self, *, newest_first: bool = False, limit: int | None = None) -> list[PlanRecord]:
        order = "DESC" if newest_first else ""
        tail = f"ORDER BY created_at {order}, id {order}" + (f" LIMIT {int(limit)}" if limit else "")
        return self._plans_where(tail=tail)

    def find_plan(self, plan_id: str) -> PlanRecord | None:
        found = self._plans_where("WHERE id = ?", (plan_id,))
        return found[0] if found else None

    def plans_by_id(self, plan_ids: list[str]) -> dict[str, PlanRecord]:
        if not plan_ids:
            return {}
        marks = ",".join("?" * len(plan_ids))
        return {p.id: p for p in self._plans_where(f"WHERE id IN ({marks})", tuple(plan_ids))}

    def plans_with_status(self, *statuses: PlanStatus | str) -> list[PlanRecord]:
        marks = ",".join("?" * len(statuses))
        return self._plans_where(
            f"WHERE status IN ({marks})", tuple(str(s) for s in statuses), "ORDER BY created_at, id"
        )

    def plan_for_run(self, run_id: str) -> PlanRecord | None:
        """The plan a discovery run proposed (recorded by the plan tool the moment it accepted it)."""
        found = self._plans_where("WHERE discovery_run_id = ?", (run_id,), "ORDER BY created_at LIMIT 1")
        return found[0] if found else None

    def get_plan(self, plan_id: str) -> PlanRecord:
        """A plan by id, or by an unambiguous start or end of its id."""
        found = self.find_plan(plan_id)
        if found is not None:
            return found
        like = _like(plan_id)
        ids = [
            r[0]
            for r in self.db.rows(
                "SELECT id FROM plans WHERE id LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' LIMIT 2",
                (like + "%", "%" + like),
            )
        ]
        if plan_id and len(ids) == 1:
            return self.find_plan(ids[0])  # type: ignore[return-value]
        raise AlwaysOnError(ErrorCode.PLAN_NOT_FOUND, f"no plan with id '{plan_id}' in this project")

    def _plan_filter(self, status: str | None, search: str | None) -> tuple[str, list]:
        clauses, params = [], []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if search:
            pattern = "%" + _like(search) + "%"
            clauses.append(
                "(title LIKE ? ESCAPE '\\' OR dedupe_key LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\')"
            )
            params += [pattern, pattern, pattern]
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def plan_listing_json(
        self,
        *,
        status: str | None = None,
        search: str | None = None,
        sort: str = "created",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> str:
        """The listing of DESIGN §9 (``plans --json``) as a JSON array text, built by one query."""
        if sort not in PLAN_SORTS:
            raise AlwaysOnError(ErrorCode.USAGE, f"unknown sort '{sort}' (one of {', '.join(PLAN_SORTS)})")
        where, params = self._plan_filter(status, search)
        order = " DESC" if descending else ""
        page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
        rows = self.db.rows(
            f"SELECT {R.LISTING_JSON} FROM plans {where} "
            f"ORDER BY {PLAN_SORTS[sort]}{order}, created_at{order}, id{order}{page}",
            (self.project_id, *params),
        )
        return "[" + ",".join(r[0] for r in rows) + "]"

    def plan_listing(self, **query) -> list[dict]:
        """``plan_listing_json`` as dicts (same arguments: status, search, sort, descending, limit, offset)."""
        return json.loads(self.plan_listing_json(**query))

    def count_plans(self, *, status: str | None = None, search: str | None = None) -> int:
        where, params = self._plan_filter(status, search)
        return self.db.value(f"SELECT count(*) FROM plans {where}", params)

    def plan_counts(self) -> dict[str, int]:
        """How many plans have each status."""
        return dict(self.db.rows("SELECT status, count(*) FROM plans GROUP BY status"))

    def save_plan(self, plan: PlanRecord, markdown: str | None = None) -> None:
        if markdown is not None:
            atomic_write_text(self.plan_md_path(plan.id), markdown)
        with self.db.write() as db:
            self._upsert_plan(db, plan)

    def save_plans(self, plans: list[PlanRecord]) -> None:
        """Many plans in one transaction (imports, seeding)."""
        with self.db.write() as db:
            db.run_many(
                f"INSERT OR REPLACE INTO plans ({R.PLAN_COLUMNS}) VALUES ({R.placeholders(R.PLAN_COLUMNS)})",
                [R.plan_row(p) for p in plans],
            )

    @staticmethod
    def _upsert_plan(db: Database, plan: PlanRecord) -> None:
        db.run(
            f"INSERT OR REPLACE INTO plans ({R.PLAN_COLUMNS}) VALUES ({R.placeholders(R.PLAN_COLUMNS)})",
            R.plan_row(plan),
        )

    def update_plan(self, plan_id: str, fn: Callable[[PlanRecord], None]) -> PlanRecord:
        with self.db.write() as db:
            plan = self.find_plan(plan_id)
            if plan is None:
                raise AlwaysOnError(ErrorCode.PLAN_NOT_FOUND, f"no plan with id '{plan_id}' in this project")
            fn(plan)
            plan.updated_at = utcnow()
            self._upsert_plan(db, plan)
            return plan

    def read_plan_markdown(self, plan_id: str) -> str | None:
        try:
            return self.plan_md_path(plan_id).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None

    # --- cycles ---------------------------------------------------------------------------------------

    def _cycles_where(self, where: str = "", params: tuple = (), tail: str = "") -> list[CycleRecord]:
        db = self.db
        with db.read():
            cycle_rows = db.rows(f"SELECT {R.CYCLE_COLUMNS} FROM cycles {where} {tail}", params)
            if not cycle_rows:
                return []
            ids = [r[0] for r in cycle_rows]
            cols = ", ".join(f"cp.{c.strip()}" for c in R.CYCLE_PLAN_COLUMNS.split(","))
            plan_rows = []
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                plan_rows += db.rows(
                    f"SELECT {cols}, p.status FROM cycle_plans cp LEFT JOIN plans p ON p.id = cp.plan_id "
                    f"WHERE cp.cycle_id IN ({','.join('?' * len(chunk))}) ORDER BY cp.cycle_id, cp.position",
                    chunk,
                )
        return R.cycles_from(self.project_id, cycle_rows, plan_rows)

    def cycles(self) -> dict[str, CycleRecord]:
        return {c.id: c for c in self._cycles_where(tail="ORDER BY created_at, id")}

    def find_cycle(self, cycle_id: str) -> CycleRecord | None:
        found = self._cycles_where("WHERE id = ?", (cycle_id,))
        return found[0] if found else None

    def cycles_with_status(self, *statuses: str) -> list[CycleRecord]:
        marks = ",".join("?" * len(statuses))
        return self._cycles_where(
            f"WHERE status IN ({marks})", tuple(str(s) for s in statuses), "ORDER BY created_at, id"
        )

    def get_cycle(self, cycle_id: str) -> CycleRecord:
        found = self.find_cycle(cycle_id)
        if found is not None:
            return found
        like = _like(cycle_id)
        ids = [
            r[0]
            for r in self.db.rows(
                "SELECT id FROM cycles WHERE id LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' LIMIT 2",
                (like + "%", "%" + like),
            )
        ]
        if cycle_id and len(ids) == 1:
            return self.find_cycle(ids[0])  # type: ignore[return-value]
        raise AlwaysOnError(ErrorCode.CYCLE_NOT_FOUND, f"no cycle with id '{cycle_id}' in this project")

    def save_cycle(self, cycle: CycleRecord) -> None:
        with self.db.write() as db:
            self._write_cycle(db, cycle)

    def save_cycles(self, cycles: list[CycleRecord]) -> None:
        with self.db.write() as db:
            for cycle in cycles:
                self._write_cycle(db, cycle)

    @staticmethod
    def _write_cycle(db: Database, cycle: CycleRecord) -> None:
        db.run(
            f"INSERT OR REPLACE INTO cycles ({R.CYCLE_COLUMNS}) VALUES ({R.placeholders(R.CYCLE_COLUMNS)})",
            R.cycle_row(cycle),
        )
        db.run("DELETE FROM cycle_plans WHERE cycle_id = ?", (cycle.id,))
        db.run_many(
            f"INSERT INTO cycle_plans ({R.CYCLE_PLAN_COLUMNS}) VALUES ({R.placeholders(R.CYCLE_PLAN_COLUMNS)})",
            R.cycle_plan_rows(cycle),
        )

    def update_cycle(self, cycle_id: str, fn: Callable[[CycleRecord], None]) -> CycleRecord:
        with self.db.write() as db:
            cycle = self.find_cycle(cycle_id)
            if cycle is None:
                raise AlwaysOnError(
                    ErrorCode.CYCLE_NOT_FOUND, f"no cycle with id '{cycle_id}' in this project"
                )
            fn(cycle)
            cycle.updated_at = utcnow()
            self._write_cycle(db, cycle)
            return self.find_cycle(cycle_id)  # type: ignore[return-value]  # plan statuses as stored

    def cycle_workspaces(self) -> list[tuple[str, str, str, str | None, str | None]]:
        """(id, status, workspace path, branch, kept branch) of every cycle: what the workspace pruning needs."""
        return [
            (r[0], r[1], r[2], r[3], r[4])
            for r in self.db.rows("SELECT id, status, workspace_path, branch, kept_branch FROM cycles")
        ]

    def active_cycle(self) -> CycleRecord | None:
        cycle_id = self._active_cycle_id(self.db)
        return self.find_cycle(cycle_id) if cycle_id else None

    # --- reports --------------------------------------------------------------------------------------

    def write_report(self, meta: ReportMetadata, markdown: str) -> None:
        atomic_write_text(self.report_path(meta.run_id), markdown)
        data = json.loads(json_line(meta))
        with self.db.write() as db:
            db.run(
                "INSERT OR REPLACE INTO reports (run_id, plan_id, data) VALUES (?, ?, ?)",
                (meta.run_id, meta.plan_id, R.dumps(data)),
            )

    def read_report(self, run_id: str) -> tuple[ReportMetadata | None, str | None]:
        data = self.db.value("SELECT data FROM reports WHERE run_id = ?", (run_id,))
        meta = ReportMetadata.model_validate_json(data) if data else None
        try:
            markdown = self.report_path(run_id).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            markdown = None
        return meta, markdown

    # --- runs (history) -------------------------------------------------------------------------------

    def start_run(
        self, run_id: str, kind: RunKind, agent: str, started_at: datetime, plan_id: str | None = None
    ) -> None:
        """Record a run as it starts, so that one which dies still has its history entry (``interrupted``)."""
        with self.db.write() as db:
            db.run(
                "INSERT OR IGNORE INTO runs (run_id, kind, agent, started_at, plan_id, pid, host) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    kind.value,
                    text.display(agent),
                    R.ts(started_at),
                    plan_id,
                    os.getpid(),
                    socket.gethostname(),
                ),
            )

    def note_run(self, run_id: str, *, plan_id: str | None = None, cycle_id: str | None = None) -> None:
        """Remember which plan and cycle a running run works on (for its entry if it dies)."""
        with self.db.write() as db:
            db.run(
                "UPDATE runs SET plan_id = coalesce(?, plan_id), cycle_id = coalesce(?, cycle_id) "
                "WHERE run_id = ?",
                (plan_id, cycle_id, run_id),
            )

    def append_history(self, entry: RunHistoryEntry) -> None:
        """Record a finished run (its history entry); a run recorded at its start is completed."""
        with self.db.write() as db:
            db.run(
                f"INSERT INTO runs ({R.RUN_COLUMNS}) VALUES ({R.placeholders(R.RUN_COLUMNS)}) "
                "ON CONFLICT (run_id) DO UPDATE SET kind = excluded.kind, agent = excluded.agent, "
                "started_at = excluded.started_at, finished_at = excluded.finished_at, "
                "outcome = excluded.outcome, plan_id = excluded.plan_id, cycle_id = excluded.cycle_id, "
                "error_code = excluded.error_code, error_message = excluded.error_message, error_hint = excluded.error_hint, "
                "report_available = excluded.report_available, denials = excluded.denials",
                R.run_row(entry),
            )

    def append_history_many(self, entries: list[RunHistoryEntry]) -> None:
        with self.db.write():
            for entry in entries:
                self.append_history(entry)

    def history(
        self, *, limit: int | None = None, offset: int = 0, newest_first: bool = False
    ) -> list[RunHistoryEntry]:
        """Finished runs (killed ones included once recovery recorded them), oldest first by default."""
        order = "DESC" if newest_first else ""
        page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
        rows = self.db.rows(
            f"SELECT {R.RUN_COLUMNS} FROM runs WHERE finished_at IS NOT NULL "
            f"ORDER BY started_at {order}, run_id {order}{page}"
        )
        return R.runs_from(self.project_id, rows)

    def count_runs(self) -> int:
        return self.db.value("SELECT count(*) FROM runs WHERE finished_at IS NOT NULL")

    def run_entry(self, run_id: str) -> RunHistoryEntry | None:
        rows = self.db.rows(
            f"SELECT {R.RUN_COLUMNS} FROM runs WHERE run_id = ? AND finished_at IS NOT NULL", (run_id,)
        )
        found = R.runs_from(self.project_id, rows)
        return found[0] if found else None

    def open_runs(self) -> list[dict]:
        """Runs recorded as started and never finished: running now, or killed (recovery decides)."""
        rows = self.db.rows(
            "SELECT run_id, kind, agent, started_at, plan_id, cycle_id, pid, host FROM runs "
            "WHERE finished_at IS NULL ORDER BY started_at"
        )
        keys = ("run_id", "kind", "agent", "started_at", "plan_id", "cycle_id", "pid", "host")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def finish_open_run(
        self, run_id: str, *, outcome: FireOutcome, code: str, message: str, finished_at: datetime
    ) -> None:
        with self.db.write() as db:
            db.run(
                "UPDATE runs SET finished_at = ?, outcome = ?, error_code = ?, error_message = ? "
                "WHERE run_id = ? AND finished_at IS NULL",
                (R.ts(finished_at), outcome.value, code, text.display(message), run_id),
            )

    # --- decisions (issue #14) ------------------------------------------------------------------------

    def add_decision(self, decision: Decision) -> Decision:
        """Record one review decision; returns it with its id."""
        reason = " ".join((decision.reason or "").split()) or None  # one line
        with self.db.write() as db:
            db.run(
                "INSERT INTO decisions (ts, kind, plan_id, cycle_id, path, hunk, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    R.ts(decision.ts),
                    decision.kind.value,
                    decision.plan_id,
                    decision.cycle_id,
                    os.fsencode(decision.path) if decision.path is not None else None,
                    R.safe(decision.hunk),
                    R.safe(reason),
                ),
            )
            new_id = db.value("SELECT last_insert_rowid()")
        return decision.model_copy(update={"id": new_id, "reason": reason})

    def recent_decisions(
        self,
        *,
        limit: int = 50,
        since: datetime | None = None,
        kinds: list[DecisionKind] | None = None,
        dedupe_key: str | None = None,
    ) -> list[Decision]:
        """Decisions newest first, optionally since a time, of some kinds, or about plans with a dedupe key."""
        clauses, params = [], []
        if since is not None:
            clauses.append("d.ts >= ?")
            params.append(R.ts(since))
        if kinds:
            clauses.append(f"d.kind IN ({','.join('?' * len(kinds))})")
            params += [k.value for k in kinds]
        if dedupe_key is not None:
            clauses.append("p.dedupe_key = ?")
            params.append(dedupe_key)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.db.rows(
            "SELECT d.id, d.ts, d.kind, d.plan_id, d.cycle_id, d.path, d.hunk, d.reason, p.dedupe_key "
            f"FROM decisions d LEFT JOIN plans p ON p.id = d.plan_id {where} "
            f"ORDER BY d.ts DESC, d.id DESC LIMIT {int(limit)}",
            params,
        )
        return [
            Decision(
                id=r[0],
                ts=r[1],
                kind=r[2],
                plan_id=r[3],
                cycle_id=r[4],
                path=os.fsdecode(r[5]) if r[5] is not None else None,
                hunk=r[6],
                reason=r[7],
                dedupe_key=r[8],
            )
            for r in rows
        ]

    # --- the apply journal (core.workspace.journal writes and reads the data) ----------------------------

    def begin_apply(self, apply_id: str, cycle_id: str, plan_ids: list[str], data: str) -> None:
        """Record an apply's journal and mark its cycle ``applying``, together, before the checkout changes."""
        from always_on.core.records import CycleStatus

        with self.db.write() as db:
            db.run(
                "INSERT INTO applies (id, cycle_id, plan_ids, started_at, pid, data) VALUES (?, ?, ?, ?, ?, ?)",
                (apply_id, cycle_id, R.dumps(plan_ids), R.ts(utcnow()), os.getpid(), data),
            )
            self.update_cycle(cycle_id, lambda c: c.set_status(CycleStatus.APPLYING))

    def open_applies(self) -> list[tuple[str, str, list[str], str]]:
        """Journals of applies that have not been settled: (id, cycle id, plan ids, journal data)."""
        return [
            (r[0], r[1], json.loads(r[2]), r[3])
            for r in self.db.rows("SELECT id, cycle_id, plan_ids, data FROM applies ORDER BY started_at")
        ]

    def end_apply(self, apply_id: str) -> None:
        """Drop a settled apply's journal (call inside the transaction that records the outcome)."""
        with self.db.write() as db:
            db.run("DELETE FROM applies WHERE id = ?", (apply_id,))

    # --- append-only logs (JSONL) -----------------------------------------------------------------------

    def append_event(self, event: PhaseEvent) -> None:
        append_line(self.events_path, json_line(event))

    def events(self) -> list[PhaseEvent]:
        return read_jsonl(self.events_path, PhaseEvent, self.warnings)

    def append_agent_event(self, event: AgentEvent) -> None:
        append_line(self.agent_events_path(event.run_id), json_line(event))

    def agent_events(self, run_id: str) -> list[AgentEvent]:
        return read_jsonl(self.agent_events_path(run_id), AgentEvent, self.warnings)

    # --- other entry points ---------------------------------------------------------------------------

    @classmethod
    def at(cls, folder: Path) -> ProjectStore:
        """The store in ``folder`` (a project's store folder), for a process that knows only the folder."""
        folder = Path(folder)
        store = cls.__new__(cls)
        store.dir = folder
        store.project_id = folder.name
        store.warnings = []
        found = connect(folder / DB_NAME).row("SELECT path FROM state LIMIT 1")
        store.project_path = Path(found[0]) if found else folder
        return store

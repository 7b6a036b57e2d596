"""The one-time import of a JSON store (before SQLite: state.json, plans.json, cycles.json, history.jsonl,
reports/<run>.json) into the project's database, losing nothing.

Why this way: the database is built completely under a temporary name and renamed into place in one step, so a
process killed during the import leaves the JSON store as it was and the next open imports again. The JSON files
are then moved into ``json-imported-<time>/`` in the same folder (kept, never deleted). A JSON record that does
not parse stops the import with ``store_corrupt`` naming the file (nothing is dropped silently); a torn last line
of history.jsonl (a writer killed mid-line) is skipped with a warning, as the JSON store itself did.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from always_on.core.records import (
    CycleRecord,
    PlanRecord,
    ProjectState,
    ReportMetadata,
    RunHistoryEntry,
    utcnow,
)
from always_on.core.storage import rows as R
from always_on.core.storage.db import StoreCorruptError, create_schema
from always_on.core.storage.files import read_jsonl, short

FILES = ("state.json", "plans.json", "cycles.json", "history.jsonl")


def has_json_store(folder: Path) -> bool:
    return any((folder / name).is_file() for name in FILES) or any((folder / "reports").glob("*.json"))


def _read(path: Path, adapter: TypeAdapter):
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return adapter.validate_json(raw)
    except (ValidationError, ValueError) as exc:
        raise StoreCorruptError(
            path,
            f"it does not parse ({short(exc)}), so the JSON store cannot be imported into the database; "
            "fix the file or move it aside, and the import runs again",
        ) from None


def import_json_store(folder: Path, db_path: Path, project_id: str, project_path: Path) -> list[str]:
    """Build ``db_path`` from the JSON store in ``folder``; returns warnings for the user."""
    warnings: list[str] = []
    state = _read(folder / "state.json", TypeAdapter(ProjectState))
    plans = _read(folder / "plans.json", TypeAdapter(dict[str, PlanRecord])) or {}
    cycles = _read(folder / "cycles.json", TypeAdapter(dict[str, CycleRecord])) or {}
    history = read_jsonl(folder / "history.jsonl", RunHistoryEntry, warnings)
    reports: list[tuple[Path, ReportMetadata]] = []
    for path in sorted((folder / "reports").glob("*.json")):
        meta = _read(path, TypeAdapter(ReportMetadata))
        if meta is not None:
            reports.append((path, meta))
    for cycle in cycles.values():
        for s in cycle.plans:
            if s.plan_id not in plans:
                warnings.append(
                    f"cycle {cycle.id} refers to plan {s.plan_id}, which plans.json does not hold "
                    f"(its status there was '{s.status}')"
                )
    if state is None:
        state = ProjectState(project_id=project_id, path=str(project_path))

    tmp = db_path.with_name(db_path.name + ".import")
    for stale in (tmp, tmp.with_name(tmp.name + "-journal")):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        create_schema(conn)
        conn.execute(
            "INSERT INTO state (project_id, path, data) VALUES (?, ?, ?)",
            (project_id, str(project_path), R.state_data(state)),
        )
        conn.executemany(
            f"INSERT INTO plans ({R.PLAN_COLUMNS}) VALUES ({R.placeholders(R.PLAN_COLUMNS)})",
            [R.plan_row(p) for p in plans.values()],
        )
        for cycle in cycles.values():
            conn.execute(
                f"INSERT INTO cycles ({R.CYCLE_COLUMNS}) VALUES ({R.placeholders(R.CYCLE_COLUMNS)})",
                R.cycle_row(cycle),
            )
            conn.executemany(
                f"INSERT INTO cycle_plans ({R.CYCLE_PLAN_COLUMNS}) VALUES ({R.placeholders(R.CYCLE_PLAN_COLUMNS)})",
                R.cycle_plan_rows(cycle),
            )
        conn.executemany(
            f"INSERT OR REPLACE INTO runs ({R.RUN_COLUMNS}) VALUES ({R.placeholders(R.RUN_COLUMNS)})",
            [R.run_row(entry) for entry in history],
        )
        conn.executemany(
            "INSERT INTO reports (run_id, plan_id, data) VALUES (?, ?, ?)",
            [(meta.run_id, meta.plan_id, meta.model_dump_json()) for _, meta in reports],
        )
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('imported_from_json', ?)",
            (
                f"{stamp}: {len(plans)} plans, {len(cycles)} cycles, {len(history)} runs, "
                f"{len(reports)} reports",
            ),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, db_path)

    kept = folder / f"json-imported-{stamp}"
    kept.mkdir(exist_ok=True)
    for name in FILES:
        with contextlib.suppress(FileNotFoundError):
            os.replace(folder / name, kept / name)
    if reports:
        (kept / "reports").mkdir(exist_ok=True)
        for path, _ in reports:
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, kept / "reports" / path.name)
    warnings.insert(
        0,
        f"imported the JSON store of {project_path} into {db_path.name} ({len(plans)} plans, {len(cycles)} "
        f"cycles, {len(history)} runs); the JSON files are kept in {kept.name}/",
    )
    return warnings

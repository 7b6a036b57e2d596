"""The JSON store written before SQLite (tests/data/json_store_v1, made by the JSON-era code) is imported on first
open, losing nothing; a JSON file that does not parse stops the import, named, with nothing changed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from always_on.core.errors import AlwaysOnError
from always_on.core.records import CycleRecord, PlanRecord, ProjectState, ReportMetadata, RunHistoryEntry
from always_on.core.storage import Store

DATA = Path(__file__).resolve().parents[1] / "data" / "json_store_v1" / "store"


def _install(project: Path) -> Path:
    """The JSON store, as the folder of ``project`` (its id is derived from the path)."""
    project.mkdir(parents=True, exist_ok=True)
    folder = Store().project(project).dir
    shutil.copytree(DATA, folder)
    return folder


def _json(path: Path, adapter):
    return TypeAdapter(adapter).validate_json(path.read_bytes())


def test_a_json_store_is_imported_on_first_open_losing_nothing(tmp_path):
    project = tmp_path / "project"
    folder = _install(project)
    plans = _json(DATA / "plans.json", dict[str, PlanRecord])
    cycles = _json(DATA / "cycles.json", dict[str, CycleRecord])
    state = _json(DATA / "state.json", ProjectState)
    lines = (DATA / "history.jsonl").read_text().splitlines()
    runs = [RunHistoryEntry.model_validate_json(line) for line in lines if "run-torn" not in line]
    reports = {p.stem: _json(p, ReportMetadata) for p in (DATA / "reports").glob("*.json")}
    assert len(plans) == 7 and len(cycles) == 2 and len(runs) == 9 and len(reports) == 4

    store = Store().project(project)
    assert store.exists()
    assert list(store.plans()) == sorted(plans, key=lambda pid: plans[pid].created_at)
    for pid, plan in plans.items():
        got = store.get_plan(pid)
        assert got.model_dump(exclude={"project_id"}) == plan.model_dump(exclude={"project_id"})
        assert store.read_plan_markdown(pid) == (DATA / "plans" / f"{pid}.md").read_text()
    for cid, cycle in cycles.items():
        got = store.get_cycle(cid)
        assert got.model_dump(exclude={"project_id", "plans"}) == cycle.model_dump(
            exclude={"project_id", "plans"}
        )
        for mine, theirs in zip(got.plans, cycle.plans, strict=True):  # status: the plan's own (stored once)
            assert mine.model_dump(exclude={"status"}) == theirs.model_dump(exclude={"status"})
            assert mine.status == plans[theirs.plan_id].status
    got_state = store.read_state()
    assert got_state.model_dump(exclude={"project_id", "path"}) == state.model_dump(
        exclude={"project_id", "path"}
    )
    assert got_state.path == str(project.resolve())
    history = store.history()
    assert {r.run_id: r.model_dump(exclude={"project_id"}) for r in history} == {
        r.run_id: r.model_dump(exclude={"project_id"}) for r in runs
    }
    for run_id, meta in reports.items():
        got_meta, markdown = store.read_report(run_id)
        assert got_meta == meta
        assert markdown == (DATA / "reports" / f"{run_id}.md").read_text()
    assert len(store.events()) == 3 and store.agent_events("run-20250301-000000-r0")[0].text == "hello"
    assert any("imported the JSON store" in w for w in store.warnings)
    assert any("run-torn" in w or "skipped unreadable line" in w for w in store.warnings)

    kept = next(folder.glob("json-imported-*"))  # the JSON files are kept, not deleted
    for name in ("state.json", "plans.json", "cycles.json", "history.jsonl"):
        assert (kept / name).read_bytes() == (DATA / name).read_bytes()
        assert not (folder / name).exists()
    assert sorted(p.name for p in (kept / "reports").iterdir()) == sorted(
        p.name for p in (DATA / "reports").glob("*.json")
    )


def test_the_cli_lists_an_imported_store(tmp_path, always_on_home):
    project = tmp_path / "project"
    _install(project)
    out = subprocess.run(
        [sys.executable, "-P", "-m", "always_on.core.cli", "plans", "--project", str(project), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = json.loads(out.splitlines()[-1])
    plans = _json(DATA / "plans.json", dict[str, PlanRecord])
    assert [p["id"] for p in listed] == sorted(plans, key=lambda pid: plans[pid].created_at)
    assert {p["id"]: p["title"] for p in listed} == {pid: p.content.title for pid, p in plans.items()}


def test_a_json_file_that_does_not_parse_stops_the_import_named_and_nothing_changes(tmp_path):
    project = tmp_path / "project"
    folder = _install(project)
    (folder / "cycles.json").write_text('{"cycle-1": {"id": ')
    with pytest.raises(AlwaysOnError) as err:
        Store().project(project).plans()
    assert err.value.code == "store_corrupt" and str(folder / "cycles.json") in err.value.message
    assert not (folder / "store.db").exists() and not list(folder.glob("json-imported-*"))
    assert (folder / "plans.json").read_bytes() == (DATA / "plans.json").read_bytes()
    (folder / "cycles.json").write_bytes((DATA / "cycles.json").read_bytes())  # fixed: the import runs
    assert len(Store().project(project).plans()) == 7


def test_an_import_killed_half_way_is_redone(tmp_path):
    project = tmp_path / "project"
    folder = _install(project)
    (folder / "store.db.import").write_bytes(b"half a database left by a killed import")
    assert len(Store().project(project).cycles()) == 2
    assert not (folder / "store.db.import").exists()

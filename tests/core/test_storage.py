"""Storage guarantees of DESIGN §3, exercised with real processes and real files: records in SQLite, one
transaction per change, each fact stored once, damaged files reported and never replaced, the fire lock."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from always_on.core.errors import AlwaysOnError
from always_on.core.records import (
    CyclePlanState,
    CycleRecord,
    CycleStatus,
    Decision,
    DecisionKind,
    ErrorInfo,
    FileChange,
    FireOutcome,
    PhaseEvent,
    PhaseEventType,
    PlanContent,
    PlanRecord,
    PlanStatus,
    ReportMetadata,
    RunHistoryEntry,
    RunKind,
    utcnow,
)
from always_on.core.storage import Store, StoreCorruptError, atomic_write_text, process_start

CONTENT = PlanContent(
    title="t",
    summary="s",
    rationale="r",
    dedupe_key="k:1",
    proposed_change="p",
    steps=["a"],
    verification=["`ruff check .`"],
)


def _plan(store, n: int, **fields) -> PlanRecord:
    content = CONTENT.model_copy(update={"title": f"Plan {n}", "dedupe_key": f"k:{n}"})
    return PlanRecord(
        id=f"plan-{n:03d}",
        project_id=store.project_id,
        content=content,
        created_at=utcnow() + timedelta(seconds=n),
        **fields,
    )


def _worker(home: str, project: str, worker: int, count: int) -> None:
    os.environ["ALWAYS_ON_HOME"] = home
    store = Store().project(project)
    for i in range(count):

        def bump(plan: PlanRecord, i=i) -> None:
            plan.run_ids.append(f"w{worker}-{i}")

        store.update_plan("plan-1", bump)
        store.update_state(lambda st: setattr(st, "runs_today", st.runs_today + 1))


def test_concurrent_updates_from_8_processes_lose_nothing(always_on_home, tmp_path):
    store = Store().project(tmp_path)
    store.save_plan(PlanRecord(id="plan-1", project_id=store.project_id, content=CONTENT))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(always_on_home), str(tmp_path), w, 200)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    plan = store.get_plan("plan-1")
    assert len(plan.run_ids) == 1600
    assert len(set(plan.run_ids)) == 1600
    assert store.read_state().runs_today == 1600


WRITER = r"""
import os, sys, json
path = sys.argv[1]
from always_on.core.storage import atomic_write_text
i = 0
sys.stdout.write("ready\n"); sys.stdout.flush()
while True:
    i += 1
    atomic_write_text(__import__("pathlib").Path(path), json.dumps({"n": i, "pad": "x" * 200000}))
"""


def test_sigkill_mid_write_never_leaves_half_written_markdown(tmp_path):
    target = tmp_path / "record.json"
    atomic_write_text(target, json.dumps({"n": 0, "pad": ""}))
    for round_ in range(15):
        proc = subprocess.Popen(
            [sys.executable, "-P", "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(round_ * 3 + 1):
            os.sched_yield()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = json.loads(target.read_text())  # must always parse: old or new, never torn
        assert "n" in data
    leftovers = [p for p in tmp_path.iterdir() if p.name != "record.json"]
    assert all(p.name.startswith(".record.json.") for p in leftovers)


DB_WRITER = r"""
import os, sys
from always_on.core.storage import Store
from always_on.core.records import PlanRecord, PlanContent
store = Store().project(sys.argv[1])
content = PlanContent(title="t", summary="s", rationale="r", dedupe_key="k", proposed_change="p", steps=["a"],
                      verification=["b"])
store.save_plan(PlanRecord(id="plan-x", project_id=store.project_id, content=content))
i = 0
while True:
    i += 1
    with store.transaction():  # two facts that must always agree
        store.update_plan("plan-x", lambda p: p.run_ids.append(f"r{i}"))
        store.update_state(lambda st: setattr(st, "runs_today", i))
    if i == 1:  # one transaction is committed: from here on the kill lands among writes
        sys.stdout.write("ready\n"); sys.stdout.flush()
"""


def test_sigkill_mid_transaction_keeps_the_database_whole_and_consistent(tmp_path):
    store = Store().project(tmp_path)
    seen = -1
    for round_ in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-P", "-c", DB_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(round_ * 50 + 1):
            os.sched_yield()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert store.db.value("PRAGMA integrity_check") == "ok"
        runs = store.get_plan("plan-x").run_ids
        assert store.read_state().runs_today == (int(runs[-1][1:]) if runs else store.read_state().runs_today)
        seen = max(seen, len(runs))
    assert seen > 0


def _replace_file(path: Path, data: bytes) -> None:
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    tmp = path.with_name("replacement")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _foreign_db(tmp_path: Path) -> bytes:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.commit()
    conn.close()
    return other.read_bytes()


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda tmp, good: b"\x00\xff garbage, not a database" * 100, "not a database"),
        (lambda tmp, good: good[: len(good) // 3], "malformed"),
        (_foreign_db, "another program"),
    ],
    ids=["garbage", "truncated", "foreign"],
)
def test_a_damaged_or_foreign_database_is_reported_by_name_and_left_untouched(tmp_path, damage, words):
    store = Store().project(tmp_path / "p")
    (tmp_path / "p").mkdir()
    for n in range(60):
        store.save_plan(_plan(store, n))
    store.update_state(lambda st: setattr(st, "runs_today", 5))
    store.close()
    store.db.run("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    good = store.db_path.read_bytes()
    bad = damage(tmp_path, good) if damage is not _foreign_db else _foreign_db(tmp_path)
    _replace_file(store.db_path, bad)
    with pytest.raises(StoreCorruptError) as err:
        store.plans()
        store.read_state()
    assert err.value.code == "store_corrupt"
    assert str(store.db_path) in err.value.message and "left untouched" in err.value.message
    assert words in err.value.message
    assert store.db_path.read_bytes() == bad  # never replaced, never moved
    other = Store().project(tmp_path / "q")  # other projects keep working
    other.update_state(lambda st: setattr(st, "runs_today", 1))
    assert other.read_state().runs_today == 1


def test_a_database_of_a_newer_schema_is_refused(tmp_path):
    store = Store().project(tmp_path)
    store.update_state(lambda st: None)
    store.db.run("PRAGMA user_version = 99")
    store.close()
    with pytest.raises(StoreCorruptError, match="newer always-on"):
        store.read_state()


def test_a_plans_status_is_stored_once_and_the_active_cycle_is_derived(tmp_path):
    store = Store().project(tmp_path)
    plan = _plan(store, 1, status=PlanStatus.EXECUTING, cycle_id="cycle-1")
    store.save_plan(plan)
    store.save_cycle(
        CycleRecord(
            id="cycle-1",
            project_id=store.project_id,
            strategy="worktree",
            workspace_path="/w",
            base_commit="abc",
            plans=[CyclePlanState(plan_id=plan.id, status=PlanStatus.READY, commit_shas=["1" * 40])],
        )
    )
    assert "status" not in [r[1] for r in store.db.rows("PRAGMA table_info(cycle_plans)")]
    assert store.get_cycle("cycle-1").plans[0].status == PlanStatus.EXECUTING  # the plan's, not a copy
    store.update_plan(plan.id, lambda p: p.set_status(PlanStatus.COMPLETED))
    assert store.get_cycle("cycle-1").plans[0].status == PlanStatus.COMPLETED
    assert store.read_state().active_cycle_id == "cycle-1"
    store.update_cycle("cycle-1", lambda c: c.set_status(CycleStatus.ARCHIVED))
    assert store.read_state().active_cycle_id is None and store.active_cycle() is None


def test_listing_queries_match_the_records_and_sort_filter_and_page(tmp_path):
    store = Store().project(tmp_path)
    statuses = [PlanStatus.READY, PlanStatus.FAILED, PlanStatus.COMPLETED]
    plans = [
        _plan(
            store,
            n,
            status=statuses[n % 3],
            failure=ErrorInfo(code="x", message="m") if statuses[n % 3] == PlanStatus.FAILED else None,
        )
        for n in range(30)
    ]
    plans[4] = plans[4].model_copy(update={"created_at": plans[4].created_at.replace(microsecond=0)})
    store.save_plans(plans)
    assert store.plan_listing() == [p.listing() for p in plans]  # exactly what PlanRecord.listing() gives
    failed = store.plan_listing(status="failed")
    assert [p["id"] for p in failed] == [p.id for p in plans if p.status == PlanStatus.FAILED]
    assert store.count_plans(status="failed") == len(failed) == 10
    page = store.plan_listing(sort="created", descending=True, limit=5, offset=5)
    assert [p["id"] for p in page] == [p.id for p in reversed(plans)][5:10]
    assert [p["title"] for p in store.plan_listing(search="Plan 2")][:2] == ["Plan 2", "Plan 20"]
    assert store.plan_counts() == {"ready": 10, "failed": 10, "completed": 10}
    with pytest.raises(AlwaysOnError, match="unknown sort"):
        store.plan_listing(sort="nonsense")
    assert store.get_plan("029").id == "plan-029"  # an unambiguous end of an id
    with pytest.raises(AlwaysOnError) as err:
        store.get_plan("plan-0")  # ambiguous start
    assert err.value.code == "plan_not_found"


def test_history_is_runs_that_finished_and_a_started_run_is_recorded(tmp_path):
    store = Store().project(tmp_path)
    now = utcnow()
    store.start_run("run-a", RunKind.FIRE, "tidy", now)
    assert store.history() == [] and [r["run_id"] for r in store.open_runs()] == ["run-a"]
    entry = RunHistoryEntry(
        run_id="run-a",
        project_id=store.project_id,
        agent="tidy",
        started_at=now,
        finished_at=now + timedelta(seconds=3),
        outcome=FireOutcome.NO_PLAN,
    )
    store.append_history(entry)
    assert store.history() == [entry] and store.open_runs() == []
    assert store.run_entry("run-a") == entry


def test_an_errors_hint_survives_the_store(tmp_path):
    """The next step an error names (`agent_auth_required`: the variable to set) is shown again from history."""
    store = Store().project(tmp_path)
    error = ErrorInfo(
        code="agent_auth_required", message="agent 'codex' needs a key", hint="export OPENAI_API_KEY"
    )
    plan = _plan(store, 3, status=PlanStatus.FAILED, failure=error)
    store.save_plan(plan)
    assert store.get_plan(plan.id).failure == error
    assert store.plan_listing()[0]["failure"] == error.model_dump(mode="json")
    now = utcnow()
    entry = RunHistoryEntry(
        run_id="run-h",
        project_id=store.project_id,
        agent="codex",
        started_at=now,
        finished_at=now + timedelta(seconds=1),
        outcome=FireOutcome.FAILED,
        error=error,
    )
    store.append_history(entry)
    assert store.run_entry("run-h").error == error


def test_decisions_are_recorded_with_their_plans_dedupe_key(tmp_path):
    store = Store().project(tmp_path)
    plan = _plan(store, 7)
    store.save_plan(plan)
    odd = "src/caf\udce9.py"
    first = store.add_decision(
        Decision(kind=DecisionKind.FILE_EXCLUDED, plan_id=plan.id, path=odd, reason="not\nthis   one")
    )
    store.add_decision(
        Decision(kind=DecisionKind.APPLIED, plan_id=plan.id, ts=utcnow() + timedelta(seconds=1))
    )
    recent = store.recent_decisions()
    assert [d.kind for d in recent] == [DecisionKind.APPLIED, DecisionKind.FILE_EXCLUDED]
    assert recent[1].id == first.id and recent[1].path == odd and recent[1].reason == "not this one"
    assert recent[1].dedupe_key == "k:7"
    assert store.recent_decisions(dedupe_key="k:7", kinds=[DecisionKind.FILE_EXCLUDED]) == [recent[1]]
    assert store.recent_decisions(dedupe_key="other") == []


def test_a_file_name_that_is_not_utf8_survives_the_report_record(tmp_path):
    store = Store().project(tmp_path)
    odd = "src/caf\udce9.py"
    now = utcnow()
    meta = ReportMetadata(
        run_id="run-1",
        project_id=store.project_id,
        plan_id="plan-1",
        started_at=now,
        finished_at=now,
        files_changed=[FileChange(path=odd, added=1)],
    )
    store.write_report(meta, f"# Report\n\n- `{odd}`\n")
    read, markdown = store.read_report("run-1")
    assert read.files_changed[0].path == odd  # exact bytes back
    assert "caf\\xe9.py" in markdown  # people read the display form
    store.append_event(
        PhaseEvent(
            project_id=store.project_id, type=PhaseEventType.APPLY_FAILED, message=f"conflict in {odd}"
        )
    )
    assert store.events()[-1].message == "conflict in src/caf\\xe9.py"


def test_torn_jsonl_line_is_skipped_with_a_warning(tmp_path):
    store = Store().project(tmp_path)
    event = PhaseEvent(project_id=store.project_id, type=PhaseEventType.NO_PLAN)
    store.append_event(event)
    with open(store.events_path, "a") as fh:
        fh.write('{"type": "no_plan", "proj')  # a writer died mid-line
    store.append_event(event.model_copy(update={"message": "third"}))
    events = store.events()
    assert [e.message for e in events] == [None, "third"]
    assert any("skipped unreadable line" in w for w in store.warnings)


def _lock_file(lock, pid: int, **extra) -> None:
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    lock.path.write_text(
        json.dumps({"pid": pid, "host": os.uname().nodename, "started_at": "2026-01-01T00:00:00Z", **extra})
    )


def test_stale_lock_taken_over_and_live_lock_refused(tmp_path):
    store = Store().project(tmp_path)
    lock = store.fire_lock()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _lock_file(lock, dead.pid)
    info = lock.acquire("run-a")
    assert info.pid == os.getpid() and info.proc_start == process_start(os.getpid())
    assert lock.taken_over is not None and lock.taken_over.pid == dead.pid
    lock.release()
    assert not lock.path.exists()

    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        _lock_file(lock, live.pid, proc_start=process_start(live.pid))
        with pytest.raises(AlwaysOnError) as err:
            lock.acquire("run-b")
        assert err.value.code == "lock_busy"
        assert str(live.pid) in err.value.message
        assert lock.busy() is not None
    finally:
        live.stdin.close()
        live.wait()
    assert lock.busy() is None  # holder died: now stale


def test_a_reused_pid_is_recognised_as_stale(tmp_path):
    """The pid in the lock now belongs to another process (it started later): the lock is stale."""
    store = Store().project(tmp_path)
    lock = store.fire_lock()
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        started = process_start(other.pid)
        assert started is not None
        _lock_file(lock, other.pid, proc_start=started - 1)  # the holder started before this process did
        assert lock.busy() is None
        info = lock.acquire("run-c")
        assert lock.taken_over.pid == other.pid and info.pid == os.getpid()
        lock.release()
    finally:
        other.stdin.close()
        other.wait()


def test_illegal_status_transition_names_both_statuses(tmp_path):
    plan = PlanRecord(id="p", project_id="x", content=CONTENT, status=PlanStatus.APPLIED)
    with pytest.raises(AlwaysOnError) as err:
        plan.set_status(PlanStatus.EXECUTING)
    assert "'applied'" in err.value.message and "'executing'" in err.value.message
    assert err.value.code == "illegal_transition"


def test_runs_today_rolls_over_at_day_boundary():
    from datetime import date

    from always_on.core.records import ProjectState

    st = ProjectState(project_id="x", path="/x")
    st.count_run(date(2026, 1, 1))
    st.count_run(date(2026, 1, 1))
    assert st.runs_on(date(2026, 1, 1)) == 2
    assert st.runs_on(date(2026, 1, 2)) == 0
    st.count_run(date(2026, 1, 2))
    assert st.runs_today == 1

"""Storage guarantees of DESIGN §3, exercised with real processes and real files."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from always_on.core.errors import AlwaysOnError
from always_on.core.records import FireOutcome, PlanContent, PlanRecord, PlanStatus, RunHistoryEntry, utcnow
from always_on.core.storage import Store, StoreCorruptError, atomic_write_text

CONTENT = PlanContent(
    title="t",
    summary="s",
    rationale="r",
    dedupe_key="k:1",
    proposed_change="p",
    steps=["a"],
    verification=["`ruff check .`"],
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
sys.path.insert(0, sys.argv[2])
from always_on.core.storage import atomic_write_text
path = sys.argv[1]
i = 0
sys.stdout.write("ready\n"); sys.stdout.flush()
while True:
    i += 1
    atomic_write_text(__import__("pathlib").Path(path), json.dumps({"n": i, "pad": "x" * 200000}))
"""


def test_sigkill_mid_write_never_leaves_half_written_json(tmp_path):
    target = tmp_path / "record.json"
    atomic_write_text(target, json.dumps({"n": 0, "pad": ""}))
    root = str(Path(__file__).resolve().parents[2])
    for round_ in range(15):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), root], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        # let it write a varying number of times, then kill it hard wherever it is
        for _ in range(round_ * 3 + 1):
            os.sched_yield()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = json.loads(target.read_text())  # must always parse: old or new, never torn
        assert "n" in data
    leftovers = [p for p in tmp_path.iterdir() if p.name != "record.json"]
    # temp files of killed writers may remain, but never under the record's own name
    assert all(p.name.startswith(".record.json.") for p in leftovers)


@pytest.mark.parametrize("garbage", [b"", b"{", b"\x00\xff garbage", b'{"project_id": 3}'])
def test_corrupt_state_is_moved_aside_and_reported(tmp_path, garbage):
    store = Store().project(tmp_path)
    store.update_state(lambda st: None)
    store.state_path.write_bytes(garbage)
    with pytest.raises(StoreCorruptError) as err:
        store.read_state()
    assert err.value.code == "store_corrupt"
    assert "moved aside" in err.value.message
    moved = list(store.dir.glob("state.json.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == garbage
    # the rest keeps working: a fresh state can be written and read
    store.update_state(lambda st: setattr(st, "runs_today", 2))
    assert store.read_state().runs_today == 2


def test_truncated_plan_index_is_moved_aside_other_records_keep_working(tmp_path):
    store = Store().project(tmp_path)
    store.save_plan(PlanRecord(id="plan-1", project_id=store.project_id, content=CONTENT))
    store.update_state(lambda st: setattr(st, "runs_today", 5))
    text = store.plans_path.read_text()
    store.plans_path.write_text(text[: len(text) // 2])
    with pytest.raises(AlwaysOnError, match="plans.json"):
        store.plans()
    assert list(store.dir.glob("plans.json.corrupt-*"))
    assert store.plans() == {}
    assert store.read_state().runs_today == 5


def test_torn_jsonl_line_is_skipped_with_a_warning(tmp_path):
    store = Store().project(tmp_path)
    now = utcnow()
    entry = RunHistoryEntry(
        run_id="r1",
        project_id=store.project_id,
        agent="tidy",
        started_at=now,
        finished_at=now,
        outcome=FireOutcome.NO_PLAN,
    )
    store.append_history(entry)
    with open(store.history_path, "a") as fh:
        fh.write('{"run_id": "r2", "proj')  # a writer died mid-line
    store.append_history(entry.model_copy(update={"run_id": "r3"}))
    runs = store.history()
    assert [r.run_id for r in runs] == ["r1", "r3"]
    assert any("skipped unreadable line" in w for w in store.warnings)


def test_stale_lock_taken_over_and_live_lock_refused(tmp_path):
    store = Store().project(tmp_path)
    lock = store.fire_lock()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    lock.path.write_text(
        json.dumps({"pid": dead.pid, "host": os.uname().nodename, "started_at": "2026-01-01T00:00:00Z"})
    )
    info = lock.acquire("run-a")
    assert info.pid == os.getpid()
    assert lock.taken_over is not None and lock.taken_over.pid == dead.pid
    lock.release()
    assert not lock.path.exists()

    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        lock.path.write_text(
            json.dumps({"pid": live.pid, "host": os.uname().nodename, "started_at": "2026-01-01T00:00:00Z"})
        )
        with pytest.raises(AlwaysOnError) as err:
            lock.acquire("run-b")
        assert err.value.code == "lock_busy"
        assert str(live.pid) in err.value.message
        assert lock.busy() is not None
    finally:
        live.stdin.close()
        live.wait()
    assert lock.busy() is None  # holder died: now stale


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

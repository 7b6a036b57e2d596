"""Guards found in review: apply/archive vs a running plan, stuck applies, dormancy, refusals, archive records."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from fire_scripts import DISCOVER, EXECUTE, PLAN, REPORT
from helpers import git

from always_on.core.config import parse_config
from always_on.core.errors import AlwaysOnError
from always_on.core.orchestrator import Orchestrator
from always_on.core.records import CycleStatus, FireOutcome, PhaseEvent, PhaseEventType, PlanStatus
from always_on.core.scheduler import Scheduler
from always_on.core.storage import Store


async def test_apply_and_archive_refused_while_a_plan_executes(harness):
    first = await harness.orchestrator({"discovery": DISCOVER, "execution": EXECUTE, "report": REPORT}).fire()
    started = asyncio.Event()
    plan2 = dict(PLAN, dedupe_key="demo:two", title="Two")
    orch = harness.orchestrator(
        {
            "discovery": [{"op": "mcp", "calls": [{"tool": "always_on_discovery_plan", "arguments": plan2}]}],
            "execution": [{"op": "write", "path": "two.py", "content": "x = 2\n"}, {"op": "hang"}],
        },
        timeout=60,
    )
    orch.add_listener(
        lambda e: (
            started.set()
            if isinstance(e, PhaseEvent) and e.type == PhaseEventType.EXECUTION_STARTED
            else None
        )
    )
    fire = asyncio.create_task(orch.fire())
    await asyncio.wait_for(started.wait(), 60)
    other = Orchestrator(harness.project, config=orch.config)  # e.g. the CLI in another terminal
    with pytest.raises(AlwaysOnError) as err:
        other.apply(first.cycle_id, [first.plan_id])
    assert err.value.code == "lock_busy"
    with pytest.raises(AlwaysOnError) as err:
        other.archive_cycle(first.cycle_id)
    assert err.value.code == "lock_busy"
    assert other.store.get_cycle(first.cycle_id).status == CycleStatus.ACTIVE
    fire.cancel()
    await asyncio.gather(fire, return_exceptions=True)
    assert not (harness.project / "hello.py").exists()


async def test_cycle_left_applying_by_a_dead_process_is_recovered(harness):
    result = await harness.orchestrator(
        {"discovery": DISCOVER, "execution": EXECUTE, "report": REPORT}
    ).fire()
    store = Store().project(harness.project)
    store.update_cycle(result.cycle_id, lambda c: c.set_status(CycleStatus.APPLYING))
    orch = Orchestrator(harness.project, config=parse_config({}))
    report = orch.apply()
    assert report.applied == [result.plan_id] and report.cycle_status == CycleStatus.APPLIED
    assert (harness.project / "hello.py").exists()


async def test_manual_fire_that_finds_work_wakes_a_dormant_project(harness):
    harness.orchestrator(None).store.update_state(lambda st: None)
    await harness.orchestrator({"discovery": [{"op": "message", "text": "nothing"}]}).fire()
    store = Store().project(harness.project)
    assert store.read_state().dormant_since is not None
    result = await harness.orchestrator(
        {"discovery": DISCOVER, "execution": EXECUTE, "report": REPORT}
    ).fire()
    assert result.outcome == FireOutcome.EXECUTED
    assert store.read_state().dormant_since is None


async def test_archive_cycle_records_and_keeps_unapplied_branch(harness):
    result = await harness.orchestrator(
        {"discovery": DISCOVER, "execution": EXECUTE, "report": REPORT}
    ).fire()
    orch = Orchestrator(harness.project, config=parse_config({}))
    kept = orch.archive_cycle(result.cycle_id)
    assert kept and kept.startswith("always-on/")
    assert kept in git(harness.project, "branch", "--list", "always-on/*")
    assert orch.store.get_cycle(result.cycle_id).status == CycleStatus.ARCHIVED
    assert orch.store.get_plan(result.plan_id).status == PlanStatus.ARCHIVED
    assert orch.store.read_state().active_cycle_id is None
    assert "always-on" not in git(harness.project, "worktree", "list")
    assert not (harness.project / "hello.py").exists()
    with pytest.raises(AlwaysOnError) as err:
        orch.archive_cycle(result.cycle_id)
    assert err.value.code == "cycle_not_active"


async def test_workspace_prepare_failure_path(harness, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.py").write_text("x = 1\n")
    harness.project = plain
    orch = harness.orchestrator({"discovery": DISCOVER})
    orch.settings.workspace.strategy = "worktree"  # impossible for a folder without git
    result = await orch.fire()
    assert result.outcome == FireOutcome.FAILED and result.error.code == "workspace_prepare_failed"
    # The workspace is prepared before discovery (discovery reads it, issue 15): no plan is made that could not run.
    assert harness.types() == ["run_failed"] and harness.events[0].phase == "workspace"
    assert "cannot make a git worktree" in result.error.message
    assert result.plan_id is None and orch.store.plans() == {}


def test_run_json_prints_a_json_line_when_refused(harness):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "always_on.core.cli",
            "run",
            "--json",
            "--agent",
            "nosuch",
            "--project",
            str(harness.project),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["outcome"] == "failed" and last["error"]["code"] == "agent_not_found"
    assert set(last) >= {"outcome", "run_id", "plan_id", "cycle_id", "error"}


async def test_a_corrupt_project_does_not_stop_the_daemon_for_others(harness, tmp_path):
    from helpers import make_repo

    good = make_repo(tmp_path / "good", {"a.py": "x = 1\n"})
    store = Store()
    for p in (harness.project, good):
        store.project(p).update_state(lambda st: st.enable())  # as `init` does
    bad = store.project(harness.project)
    bad.close()
    for suffix in ("-wal", "-shm"):
        bad.db_path.with_name(bad.db_path.name + suffix).unlink(missing_ok=True)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)  # a damaged database file
    os.replace(garbage, bad.db_path)
    cmd = harness.orchestrator({"discovery": [{"op": "message", "text": "nothing"}]}).agent_cmd
    scheduler = Scheduler(store, parse_config({}), projects=[harness.project, good], agent_cmd=cmd)
    results = await scheduler.run_once()
    assert [r.outcome for r in results] == [FireOutcome.NO_PLAN]
    assert store.project(good).history()[-1].outcome == FireOutcome.NO_PLAN
    assert bad.db_path.read_bytes() == b"SQLite format 3\x00" + b"\xff" * 4000  # reported, never replaced
    with pytest.raises(AlwaysOnError) as err:
        bad.read_state()
    assert err.value.code == "store_corrupt" and str(bad.db_path) in err.value.message


async def test_failed_attempt_is_set_aside_and_never_leaks_into_the_next_plan(harness):
    crash = [{"op": "write", "path": "leak.py", "content": "leaked = True\n"}, {"op": "crash", "code": 3}]
    failed = await harness.orchestrator({"discovery": DISCOVER, "execution": crash}).fire()
    assert failed.outcome == FireOutcome.FAILED
    store = Store().project(harness.project)
    plan = store.get_plan(failed.plan_id)
    assert "set aside under refs/always-on/attempts/" in plan.failure.message
    ws = store.get_cycle(failed.cycle_id).workspace_path
    assert git(ws, "status", "--porcelain") == ""
    ref = f"refs/always-on/attempts/{failed.plan_id}/{failed.run_id}"
    assert "leak.py" in git(harness.project, "show", "--stat", "--format=", ref)

    plan2 = dict(PLAN, dedupe_key="demo:other", title="Other")
    ok = await harness.orchestrator(
        {
            "discovery": [{"op": "mcp", "calls": [{"tool": "always_on_discovery_plan", "arguments": plan2}]}],
            "execution": EXECUTE,
            "report": REPORT,
        }
    ).fire()
    assert ok.outcome == FireOutcome.EXECUTED and ok.cycle_id == failed.cycle_id
    shas = store.get_cycle(ok.cycle_id).plan_state(ok.plan_id).commit_shas
    changed = git(ws, "show", "--name-only", "--format=", *shas).split()
    assert changed == ["hello.py"]
    Orchestrator(harness.project, config=parse_config({})).apply()
    assert not (harness.project / "leak.py").exists() and (harness.project / "hello.py").exists()

"""The scheduler and daemon (DESIGN §6): ticks, dormancy woken by file changes, disable after failures, signals."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from fire_scripts import DISCOVER, EXECUTE, SCRIPTED_AGENT

from always_on.core.config import parse_config
from always_on.core.records import FireOutcome, PhaseEvent, PhaseEventType, PlanStatus, utcnow
from always_on.core.scheduler import Scheduler
from always_on.core.storage import Store


def agent_cmd(tmp: Path, phases: dict, name: str = "script.json", **extra) -> str:
    path = tmp / name
    path.write_text(json.dumps({"phases": phases, **extra}))
    return (
        f"{shlex.quote(sys.executable)} {shlex.quote(str(SCRIPTED_AGENT))} --script {shlex.quote(str(path))}"
    )


async def test_dormant_on_no_plan_then_woken_by_a_file_change(harness):
    config = parse_config(
        {"scheduler": {"interval_seconds": 3600, "cooldown_seconds": 0}, "dormancy": {"debounce_ms": 100}}
    )
    discoveries: list[PhaseEvent] = []
    second = asyncio.Event()
    no_plan = asyncio.Event()

    def listen(event) -> None:
        if isinstance(event, PhaseEvent):
            if event.type == PhaseEventType.DISCOVERY_STARTED:
                discoveries.append(event)
                if len(discoveries) == 2:
                    second.set()
            if event.type == PhaseEventType.NO_PLAN:
                no_plan.set()

    store = Store()
    store.project(harness.project).update_state(lambda st: st.enable())  # as `init` does
    scheduler = Scheduler(
        store,
        config,
        projects=[harness.project],
        listeners=[listen],
        agent_cmd=agent_cmd(harness.tmp, {"discovery": [{"op": "message", "text": "nothing"}]}),
    )
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.wait_for(no_plan.wait(), 60)
        # wait until the run is fully finished and the gate says dormant
        while scheduler.running:
            await asyncio.wait_for(asyncio.shield(next(iter(scheduler.running.values()))), 60)
        gate = scheduler.gate_status(harness.project)
        assert gate.blocked_by == "dormant"
        # dormancy survives a restart: a new scheduler on the same store sees it too
        assert (
            Scheduler(store, config, projects=[harness.project]).gate_status(harness.project).blocked_by
            == "dormant"
        )
        assert len(discoveries) == 1
        (harness.project / "new_file.py").write_text("x = 1\n")
        await asyncio.wait_for(second.wait(), 60)
        st = store.project(harness.project).read_state()
        assert st.last_change_at is not None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_changes_in_ignored_folders_do_not_wake(harness, tmp_path):
    from always_on.core.scheduler import _ignored

    patterns = parse_config({}).dormancy.ignore
    assert _ignored(str(harness.project / ".git" / "index"), harness.project, patterns)
    assert _ignored(str(harness.project / "node_modules" / "a.js"), harness.project, patterns)
    assert _ignored(str(harness.project / "pkg" / "__pycache__" / "m.pyc"), harness.project, patterns)
    assert not _ignored(str(harness.project / "src" / "m.py"), harness.project, patterns)


async def test_disabled_after_consecutive_failures(harness):
    config = parse_config(
        {"scheduler": {"interval_seconds": 0.01, "cooldown_seconds": 0, "failures_before_disable": 2}}
    )
    events: list[PhaseEvent] = []
    store = Store()
    scheduler = Scheduler(
        store,
        config,
        projects=[harness.project],
        listeners=[events.append],
        agent_cmd=agent_cmd(harness.tmp, {"discovery": [{"op": "crash", "code": 2}]}),
    )
    store.project(harness.project).update_state(lambda st: st.enable())  # as `init` does
    first = await scheduler.tick(harness.project)
    assert first.outcome == FireOutcome.FAILED
    assert scheduler.gate_status(harness.project).blocked_by in (None, "interval")
    # the next tick is due (as if the interval had passed)
    store.project(harness.project).update_state(
        lambda s: setattr(s, "next_tick_at", utcnow() - timedelta(seconds=1))
    )
    second = await scheduler.tick(harness.project)
    assert second is not None and second.outcome == FireOutcome.FAILED
    st = store.project(harness.project).read_state()
    assert st.disabled_reason and "2 consecutive failed fires" in st.disabled_reason
    assert [e.type for e in events if isinstance(e, PhaseEvent)][-1] == PhaseEventType.PROJECT_DISABLED
    assert scheduler.gate_status(harness.project).blocked_by == "project_disabled"
    assert await scheduler.tick(harness.project) is None  # blocked, nothing runs


def _daemon(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "always_on.core.cli", "daemon", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_daemon_once_runs_a_tick(harness):
    env = dict(os.environ)
    cmd = agent_cmd(harness.tmp, {"discovery": [{"op": "message", "text": "nothing"}]})
    subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", "init", "--project", str(harness.project)],
        check=True,
        env=env,
        capture_output=True,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", "daemon", "--once", "--json", "--agent-cmd", cmd],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r["outcome"] for r in results] == ["no_plan"]
    again = subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", "daemon", "--once", "--agent-cmd", cmd],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "dormant" in again.stdout  # the second tick sleeps: no fire


def test_sigterm_cancels_a_running_fire_and_records_it(harness):
    cmd = agent_cmd(harness.tmp, {"discovery": DISCOVER, "execution": [*EXECUTE, {"op": "hang"}]})
    Store().project(harness.project).update_state(lambda st: st.enable())  # as `init` does
    proc = _daemon(["--project", str(harness.project), "--agent-cmd", cmd], dict(os.environ))
    try:
        for line in proc.stderr:  # the daemon prints each phase event as it happens
            if "execution_started" in line:
                break
        else:
            raise AssertionError("the daemon ended before execution started")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    store = Store().project(harness.project)
    last = store.history()[-1]
    assert last.outcome == FireOutcome.FAILED and last.error.code == "interrupted"
    plan = store.get_plan(last.plan_id)
    assert plan.status == PlanStatus.FAILED and plan.failure.code == "interrupted"
    cycle = store.get_cycle(last.cycle_id)
    assert Path(cycle.workspace_path).is_dir()  # the workspace is kept for a rerun
    from helpers import git

    assert git(Path(cycle.workspace_path), "status", "--porcelain") == ""  # clean for the next plan
    assert not store.fire_lock().path.exists()


def test_run_json_after_sigterm_names_the_recorded_run(harness):
    """Issue 15: `run --json` printed `run_id: null` after SIGTERM although the history records the run."""
    cmd = agent_cmd(harness.tmp, {"discovery": DISCOVER, "execution": [*EXECUTE, {"op": "hang"}]})
    proc = subprocess.Popen(
        [sys.executable, "-m", "always_on.core.cli", "run", "--project", str(harness.project)]
        + ["--agent-cmd", cmd, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stderr:
            if "execution_started" in line:
                break
        else:
            raise AssertionError("the run ended before execution started")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    printed = json.loads(out.strip().splitlines()[-1])
    last = Store().project(harness.project).history()[-1]
    assert printed["run_id"] == last.run_id and last.error.code == "interrupted"
    assert printed["outcome"] == "failed" and printed["error"]["code"] == "interrupted"
    assert printed["plan_id"] == last.plan_id and printed["cycle_id"] == last.cycle_id is not None

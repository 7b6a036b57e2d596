"""Issue 15, gates and manual runs: `always-on run` is held back by a full cycle only (``--force`` overrides), never
by the scheduler's cooldown or budget; it does not enable a project for the daemon; and its failures count toward
auto-disable exactly as scheduled ones do."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

from fire_scripts import DISCOVER, EXECUTE, PLAN, REPORT

from always_on.core import paths
from always_on.core.config import parse_config
from always_on.core.records import FireOutcome, PhaseEventType, utcnow
from always_on.core.scheduler import Scheduler
from always_on.core.storage import Store

NOTHING = {"discovery": [{"op": "message", "text": "nothing to do"}]}
CRASH = {"discovery": [{"op": "crash", "code": 2}]}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", *args], capture_output=True, text=True, timeout=180
    )


def test_run_refuses_a_full_cycle_with_the_reason_unless_forced(harness):
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("[scheduler]\nmax_plans_per_cycle = 1\n")
    first = harness.orchestrator({"discovery": DISCOVER, "execution": EXECUTE, "report": REPORT})
    run = cli("run", "--project", str(harness.project), "--agent-cmd", first.agent_cmd, "--json")
    assert json.loads(run.stdout.splitlines()[-1])["outcome"] == "executed", run.stderr
    second_plan = dict(PLAN, title="Add a farewell module", dedupe_key="demo:farewell")
    write = {"op": "write", "path": "bye.py", "content": "def bye():\n    return 'bye'\n"}
    second = harness.orchestrator(
        {
            "discovery": [
                {"op": "mcp", "calls": [{"tool": "always_on_discovery_plan", "arguments": second_plan}]}
            ],
            "execution": [write],
            "report": REPORT,
        }
    )
    refused = cli("run", "--project", str(harness.project), "--agent-cmd", second.agent_cmd, "--json")
    assert refused.returncode == 1
    printed = json.loads(refused.stdout.splitlines()[-1])
    assert printed["run_id"] is None and printed["error"]["code"] == "cycle_full"
    assert "already holds 1 open plans (scheduler.max_plans_per_cycle = 1)" in printed["error"]["message"]
    assert "--force" in printed["error"]["hint"] and "always-on: error: cycle_full: " in refused.stderr
    store = Store().project(harness.project)
    assert len(store.history()) == 1 and len(store.plans()) == 1  # refused before anything started

    forced = cli(
        "run", "--project", str(harness.project), "--agent-cmd", second.agent_cmd, "--json", "--force"
    )
    assert json.loads(forced.stdout.splitlines()[-1])["outcome"] == "executed", forced.stderr
    assert store.active_cycle().open_plan_count() == 2


def test_run_ignores_cooldown_and_budget_and_the_help_says_so(harness):
    config = parse_config({"scheduler": {"cooldown_seconds": 3600, "daily_budget": 1}})
    orch = harness.orchestrator(NOTHING)
    orch.config, orch.settings = config, config.for_project(harness.project)
    outcomes = [_fire(orch).outcome, _fire(orch).outcome]
    assert outcomes == [FireOutcome.NO_PLAN, FireOutcome.NO_PLAN]
    text = " ".join(cli("run", "--help").stdout.split())
    assert "cooldown, daily budget and dormancy hold back scheduled fires only, never this command" in text
    assert "--force" in text and "`always-on init` does that" in text


def _fire(orch):
    import asyncio

    return asyncio.run(orch.fire())


def test_a_run_registers_the_project_without_enabling_it_for_the_daemon(harness):
    cmd = harness.orchestrator(NOTHING).agent_cmd
    run = cli("run", "--project", str(harness.project), "--agent-cmd", cmd, "--json")
    assert json.loads(run.stdout.splitlines()[-1])["outcome"] == "no_plan", run.stderr
    store = Store().project(harness.project)
    assert store.exists() and not store.read_state().enabled
    status = json.loads(cli("status", "--json").stdout)
    assert [(s["path"], s["enabled"], s["blocked_by"]) for s in status] == [
        (str(harness.project), False, "disabled")
    ]
    daemon = cli("daemon", "--once", "--json", "--agent-cmd", cmd)
    assert json.loads(daemon.stdout.splitlines()[-1]) == [] and len(store.history()) == 1
    assert cli("init", "--project", str(harness.project)).returncode == 0
    assert store.read_state().enabled


async def test_failed_manual_and_scheduled_runs_count_the_same_toward_auto_disable(harness):
    config = parse_config(
        {"scheduler": {"interval_seconds": 0.01, "cooldown_seconds": 0, "failures_before_disable": 3}}
    )
    events = []
    store = Store()
    orch = harness.orchestrator(CRASH)
    orch.config, orch.settings = config, config.for_project(harness.project)
    orch.add_listener(events.append)
    store.project(harness.project).update_state(lambda st: st.enable())
    scheduler = Scheduler(store, config, projects=[harness.project], agent_cmd=orch.agent_cmd)
    assert (await orch.fire()).outcome == FireOutcome.FAILED  # manual
    due = lambda s: setattr(s, "next_tick_at", utcnow() - timedelta(seconds=1))  # noqa: E731 - the tick is due
    store.project(harness.project).update_state(due)
    assert (await scheduler.tick(harness.project)).outcome == FireOutcome.FAILED  # scheduled
    st = store.project(harness.project).read_state()
    assert st.consecutive_failures == 2 and not st.disabled_reason
    assert (await orch.fire()).outcome == FireOutcome.FAILED  # manual again: the third in a row
    st = store.project(harness.project).read_state()
    assert st.consecutive_failures == 3 and "3 consecutive failed fires" in st.disabled_reason
    assert [e.type for e in events if getattr(e, "type", None) == PhaseEventType.PROJECT_DISABLED]
    store.project(harness.project).update_state(due)
    assert scheduler.gate_status(harness.project).blocked_by == "project_disabled"

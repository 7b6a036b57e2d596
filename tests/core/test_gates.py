"""Scheduler gates in their fixed order (DESIGN §6), evaluated on real store records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta

import pytest

from always_on.core.config import parse_config
from always_on.core.records import CycleRecord, PlanContent, PlanRecord, PlanStatus, utcnow
from always_on.core.scheduler import evaluate_gates
from always_on.core.storage import Store


@pytest.fixture
def project(tmp_path):
    path = tmp_path / "proj"
    path.mkdir()
    store = Store().project(path)
    store.update_state(lambda st: st.enable())  # as `always-on init` does
    return store


def gate(store, **cfg):
    settings = parse_config(cfg).for_project(store.project_path)
    return evaluate_gates(store, settings)


def test_fresh_project_is_ready(project):
    g = gate(project)
    assert g.blocked_by is None and g.enabled


def test_gate_order_first_failing_blocks(project):
    now = utcnow()

    def everything_blocks(st):
        st.paused = True
        st.disabled_reason = "3 failures"
        st.dormant_since = now
        st.last_fire_finished_at = now
        st.count_run(date.today())

    project.update_state(everything_blocks)
    assert gate(project, scheduler={"enabled": False}).blocked_by == "disabled"
    assert gate(project).blocked_by == "disabled"  # paused
    project.update_state(lambda st: setattr(st, "paused", False))
    assert gate(project).blocked_by == "project_disabled"
    project.update_state(lambda st: setattr(st, "disabled_reason", None))
    assert gate(project).blocked_by == "dormant"
    project.update_state(lambda st: setattr(st, "dormant_since", None))
    assert (
        evaluate_gates(project, parse_config({}).for_project(project.project_path), busy=True).blocked_by
        == "agent_busy"
    )
    assert gate(project, scheduler={"cooldown_seconds": 600}).blocked_by == "cooldown"
    assert gate(project, scheduler={"cooldown_seconds": 0, "daily_budget": 1}).blocked_by == "daily_budget"


def test_daily_budget_message_counts_the_runs(project):
    """Issue 15: the message said "3 runs today" (the budget) when 8 had run (manual runs ignore the budget)."""

    def eight_runs(st):
        for _ in range(8):
            st.count_run(date.today())

    project.update_state(eight_runs)
    g = gate(project, scheduler={"daily_budget": 3})
    assert g.blocked_by == "daily_budget"
    assert g.detail == "8 runs today (manual runs included); the daily budget is 3"


def test_project_missing(project):
    project.project_path.rmdir()
    assert gate(project).blocked_by == "project_missing"


def test_lock_busy_only_for_a_live_holder(project):
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        lock = project.fire_lock()
        lock.path.write_text(
            json.dumps({"pid": live.pid, "host": os.uname().nodename, "started_at": "2026-01-01T00:00:00Z"})
        )
        assert gate(project).blocked_by == "lock_busy"
    finally:
        live.stdin.close()
        live.wait()
    assert gate(project).blocked_by is None


def test_cycle_full(project):
    content = PlanContent(
        title="t",
        summary="s",
        rationale="r",
        dedupe_key="k:1",
        proposed_change="p",
        steps=["a"],
        verification=["`true`"],
    )
    cycle = CycleRecord(
        id="cycle-1",
        project_id=project.project_id,
        strategy="worktree",
        workspace_path="/x",
        base_commit="abc",
    )
    for i in range(2):
        project.save_plan(
            PlanRecord(
                id=f"plan-{i}",
                project_id=project.project_id,
                content=content,
                status=PlanStatus.READY,
                cycle_id=cycle.id,
            )
        )
        cycle.plan_state(f"plan-{i}")
    project.save_cycle(cycle)
    project.update_state(lambda st: setattr(st, "active_cycle_id", cycle.id))
    assert gate(project, scheduler={"max_plans_per_cycle": 2}).blocked_by == "cycle_full"
    assert gate(project, scheduler={"max_plans_per_cycle": 3}).blocked_by is None


def test_next_tick_after_interval(project):
    finished = utcnow() - timedelta(seconds=30)
    project.update_state(lambda st: setattr(st, "last_fire_finished_at", finished))
    g = gate(project, scheduler={"cooldown_seconds": 0, "interval_seconds": 60})
    assert g.blocked_by == "interval"
    assert g.next_tick_at == finished + timedelta(seconds=60)
    assert gate(project, scheduler={"cooldown_seconds": 0, "interval_seconds": 10}).blocked_by is None

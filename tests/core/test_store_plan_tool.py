"""The plan tool records an accepted plan in the project's store at once (a runtime that dies right after the
call loses nothing), one per run."""

from __future__ import annotations

from always_on.core.agents.mcp_server import PLAN_FILE, ToolServer
from always_on.core.records import PlanStatus
from always_on.core.storage import Store

PLAN = {
    "title": "Add a greeting module",
    "summary": "Add a module with a greet() function.",
    "rationale": "The project has no greeting.",
    "dedupe_key": "demo:greeting",
    "context_signals": ["README.md"],
    "proposed_change": "Create a module.",
    "steps": ["Write it"],
    "verification": ["`python -c 'pass'`"],
}


def test_an_accepted_plan_is_recorded_at_once_and_only_one_per_run(tmp_path):
    store = Store().project(tmp_path / "project")
    store.update_state(lambda st: None)
    outbox = store.outbox("run-1", "discovery")
    outbox.mkdir(parents=True)
    tools = ToolServer(phase="discovery", run_id="run-1", outbox=outbox, digest=None, store=store.dir)
    ok, text = tools.submit_plan(dict(PLAN))
    assert ok, text
    plan = store.plan_for_run("run-1")
    assert plan is not None and plan.status == PlanStatus.READY and plan.content.title == PLAN["title"]
    assert store.read_plan_markdown(plan.id).startswith("# Add a greeting module")
    assert (outbox / PLAN_FILE).exists()
    (outbox / PLAN_FILE).unlink()  # even without the outbox file, the store says this run has its plan
    ok, text = tools.submit_plan(dict(PLAN, dedupe_key="demo:other"))
    assert not ok and "plan_quota_exhausted" in text
    assert [p.id for p in store.plans_list()] == [plan.id]

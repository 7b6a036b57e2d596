"""Every path of a fire, end to end: real git project, real scripted ACP agent subprocess, real MCP server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fire_scripts import DISCOVER, EXECUTE, PLAN, REPORT
from helpers import git, tree_hashes

from always_on.core.errors import AlwaysOnError
from always_on.core.records import CycleStatus, DependencyStatus, FireOutcome, PlanStatus
from always_on.core.storage import Store

SUCCESS = [
    "discovery_started",
    "plan_produced",
    "workspace_started",
    "workspace_ready",
    "execution_started",
    "execution_completed",
    "report_started",
    "report_produced",
    "run_completed",
]


async def test_success_path_records_and_events(harness):
    before = tree_hashes(harness.project)
    orch = harness.orchestrator({"discovery": DISCOVER, "execution": EXECUTE, "report": REPORT})
    result = await orch.fire()
    assert result.outcome == FireOutcome.EXECUTED, result.error
    assert harness.types() == SUCCESS
    assert tree_hashes(harness.project) == before  # the user's checkout is untouched

    store = orch.store
    plan = store.get_plan(result.plan_id)
    assert plan.status == PlanStatus.COMPLETED and plan.content.dedupe_key == "demo:greeting"
    assert plan.report_run_id == result.run_id
    cycle = store.get_cycle(result.cycle_id)
    assert cycle.status == CycleStatus.ACTIVE
    state = cycle.plan_state(plan.id)
    assert len(state.commit_shas) == 1 and state.attempts == 1
    assert state.dependency_status == DependencyStatus.CLEAN
    ws = Path(cycle.workspace_path)
    assert (ws / "hello.py").read_text().startswith("def greet")
    assert git(ws, "status", "--porcelain") == ""
    assert store.read_state().active_cycle_id == cycle.id

    meta, report = store.read_report(result.run_id)
    assert "Wrote hello.py" in report and "`hello.py` (added, +2 −0)" in report
    assert meta.files_changed[0].path == "hello.py"
    history = store.history()
    assert [h.outcome for h in history] == [FireOutcome.EXECUTED] and history[0].report_available
    st = store.read_state()
    assert st.last_outcome == FireOutcome.EXECUTED and st.consecutive_failures == 0 and st.runs_today == 1
    # agent events were logged for the run, including the streamed message
    events = store.agent_events(result.run_id)
    assert any(e.kind.value == "message" and "Writing hello.py" in e.text for e in events)
    assert not store.fire_lock().path.exists()


async def test_no_plan_makes_the_project_dormant(harness):
    orch = harness.orchestrator({"discovery": [{"op": "message", "text": "Nothing worth doing."}]})
    result = await orch.fire()
    assert result.outcome == FireOutcome.NO_PLAN and result.plan_id is None
    assert harness.types() == ["discovery_started", "no_plan"]
    st = orch.store.read_state()
    assert st.dormant_since is not None and st.active_cycle_id is None
    assert orch.store.cycles() == {}


async def test_discovery_crash_without_plan_fails(harness):
    orch = harness.orchestrator({"discovery": [{"op": "crash", "code": 3}]})
    result = await orch.fire()
    assert result.outcome == FireOutcome.FAILED
    assert result.error.code == "discovery_failed" and "agent_crashed" in result.error.message
    assert harness.types() == ["discovery_started", "run_failed"]
    assert orch.store.read_state().consecutive_failures == 1


async def test_plan_produced_despite_discovery_crash_still_continues(harness):
    crash_after_plan = [
        {"op": "mcp", "calls": [{"tool": "always_on_discovery_plan", "arguments": PLAN}]},
        {"op": "crash", "code": 9},
    ]
    orch = harness.orchestrator({"discovery": crash_after_plan, "execution": EXECUTE, "report": REPORT})
    result = await orch.fire()
    assert result.outcome == FireOutcome.EXECUTED, result.error
    assert harness.types() == SUCCESS


async def test_invalid_then_valid_plan_is_accepted(harness):
    bad = dict(PLAN, summary="x" * 300)
    orch = harness.orchestrator(
        {
            "discovery": [
                {
                    "op": "mcp",
                    "calls": [
                        {"tool": "always_on_discovery_plan", "arguments": bad},
                        {"tool": "always_on_discovery_plan", "arguments": PLAN},
                        {"tool": "always_on_discovery_plan", "arguments": PLAN},
                    ],
                }
            ],
            "execution": EXECUTE,
            "report": REPORT,
        }
    )
    result = await orch.fire()
    assert result.outcome == FireOutcome.EXECUTED
    assert len(orch.store.plans()) == 1  # one plan per fire: the third call hit the quota
    log = [json.loads(x) for x in (harness.tmp / "agent-log.jsonl").read_text().splitlines()]
    mcp_results = [entry for entry in log if entry.get("step") == "mcp"]
    assert [r["is_error"] for r in mcp_results][:3] == [True, False, True]
    assert "shorten it to at most 200" in mcp_results[0]["text"]
    assert "plan_quota_exhausted" in mcp_results[2]["text"]


async def test_execution_crash_fails_plan_with_fallback_report(harness):
    before = tree_hashes(harness.project)
    orch = harness.orchestrator({"discovery": DISCOVER, "execution": [*EXECUTE, {"op": "crash", "code": 5}]})
    result = await orch.fire()
    assert result.outcome == FireOutcome.FAILED and result.error.code == "execution_failed"
    assert "agent_crashed" in result.error.message
    assert harness.types() == SUCCESS[:5] + ["run_failed"]
    plan = orch.store.get_plan(result.plan_id)
    assert plan.status == PlanStatus.FAILED and plan.failure.code == "agent_crashed"
    _meta, report = orch.store.read_report(result.run_id)
    assert "fallback report" in report and "agent_crashed" in report
    assert f"**Add a greeting module** (plan `{result.plan_id}`, dedupe key `demo:greeting`)" in report
    assert tree_hashes(harness.project) == before


async def test_execution_without_changes_fails(harness):
    orch = harness.orchestrator({"discovery": DISCOVER, "execution": [{"op": "message", "text": "done!"}]})
    result = await orch.fire()
    assert result.outcome == FireOutcome.FAILED
    assert "without changing any file" in result.error.message
    assert orch.store.get_plan(result.plan_id).status == PlanStatus.FAILED


async def test_missing_report_salvages_last_text(harness):
    orch = harness.orchestrator(
        {
            "discovery": DISCOVER,
            "execution": EXECUTE,
            "report": [{"op": "message", "text": "## Steps Performed\nI wrote hello.py"}],
        }
    )
    result = await orch.fire()
    assert result.outcome == FireOutcome.EXECUTED
    assert orch.store.get_plan(result.plan_id).status == PlanStatus.COMPLETED_NO_REPORT
    _meta, report = orch.store.read_report(result.run_id)
    assert "I wrote hello.py" in report and "salvaged" in report
    assert harness.types() == SUCCESS
    # Issue 15: the runtime knows the plan, so a report without one says which plan it is about.
    reference = report.split("## Plan Reference\n\n", 1)[1].split("\n## ", 1)[0]
    assert "Not provided" not in reference
    assert f"**Add a greeting module** (plan `{result.plan_id}`, dedupe key `demo:greeting`)" in reference
    assert PLAN["summary"] in reference and "filled from the plan record" in report


async def test_report_phase_hang_times_out_to_fallback(harness):
    """Only the report phase is bounded tightly (its own limit): discovery and execution keep the default, so a
    slow machine cannot make them time out instead."""
    orch = harness.orchestrator(
        {"discovery": DISCOVER, "execution": EXECUTE, "report": [{"op": "hang"}]},
        limits={"phase_timeouts": {"report": 1}},
    )
    result = await orch.fire()
    assert result.outcome == FireOutcome.EXECUTED
    assert orch.store.get_plan(result.plan_id).status == PlanStatus.COMPLETED_NO_REPORT
    _meta, report = orch.store.read_report(result.run_id)
    assert "agent_timeout" in report and "fallback report" in report and "within 1 s" in report


async def test_discovery_hang_times_out(harness):
    orch = harness.orchestrator({"discovery": [{"op": "hang"}]}, limits={"phase_timeouts": {"discovery": 1}})
    result = await orch.fire()
    assert result.outcome == FireOutcome.FAILED and "agent_timeout" in result.error.message


async def test_agent_that_cannot_start_fails_the_fire(harness):
    orch = harness.orchestrator(on_initialize="exit")
    result = await orch.fire()
    assert result.outcome == FireOutcome.FAILED and result.error.code == "agent_crashed"
    assert harness.types() == ["run_failed"]
    assert orch.store.history()[-1].outcome == FireOutcome.FAILED


async def test_second_plan_reuses_the_cycle_and_rerun(harness):
    first = await harness.orchestrator({"discovery": DISCOVER, "execution": EXECUTE, "report": REPORT}).fire()
    plan2 = dict(PLAN, dedupe_key="demo:second", title="Second")
    orch = harness.orchestrator(
        {
            "discovery": [{"op": "mcp", "calls": [{"tool": "always_on_discovery_plan", "arguments": plan2}]}],
            "execution": [{"op": "crash", "code": 4}],
        }
    )
    second = await orch.fire()
    assert second.cycle_id == first.cycle_id and second.outcome == FireOutcome.FAILED
    with pytest.raises(AlwaysOnError) as err:
        await orch.rerun(first.plan_id)
    assert err.value.code == "plan_not_rerunnable"
    harness.events.clear()
    rerun = await harness.orchestrator(
        {
            "execution": [
                {"op": "write", "path": "hello.py", "content": "def greet():\n    return 'hello'\n"}
            ],
            "report": REPORT,
        }
    ).rerun(second.plan_id)
    assert rerun.outcome == FireOutcome.EXECUTED and rerun.run_id != second.run_id
    assert harness.types() == SUCCESS[2:]
    cycle = orch.store.get_cycle(first.cycle_id)
    assert cycle.plan_state(second.plan_id).attempts == 2
    # plan 2 edits plan 1's new file: it depends on plan 1
    dep = cycle.plan_state(second.plan_id)
    assert dep.dependency_status == DependencyStatus.DEPENDENT and dep.depends_on == [first.plan_id]
    problems = orch.prepare_apply(cycle.id, [second.plan_id]).problems
    assert any("depends on unselected" in p.message and p.needs == [first.plan_id] for p in problems)
    report = orch.apply(cycle.id, [first.plan_id, second.plan_id])
    assert sorted(report.applied) == sorted([first.plan_id, second.plan_id])
    assert (harness.project / "hello.py").read_text() == "def greet():\n    return 'hello'\n"
    assert report.cycle_status == CycleStatus.APPLIED
    assert orch.store.read_state().active_cycle_id is None
    assert "always-on" not in git(harness.project, "worktree", "list")
    assert git(harness.project, "log", "--oneline").count("\n") == 0  # no commit in the user's checkout


async def test_recovery_marks_interrupted_plans_failed(harness):
    orch = harness.orchestrator({"discovery": DISCOVER, "execution": EXECUTE, "report": REPORT})
    result = await orch.fire()
    orch.store.update_plan(result.plan_id, lambda p: p.set_status(PlanStatus.APPLIED))
    # simulate a plan left executing by a dead process, with its stale lock
    from always_on.core.records import PlanContent, PlanRecord

    stuck = PlanRecord(
        id="plan-stuck",
        project_id=orch.store.project_id,
        status=PlanStatus.EXECUTING,
        content=PlanContent(**PLAN),
    )
    orch.store.save_plan(stuck)
    orch.store.fire_lock().path.write_text(
        json.dumps({"pid": 999999, "host": os.uname().nodename, "started_at": "2026-01-01T00:00:00Z"})
    )
    notes = orch.recover()
    assert any("stale fire lock" in n for n in notes)
    plan = orch.store.get_plan("plan-stuck")
    assert plan.status == PlanStatus.FAILED and plan.failure.code == "interrupted"
    assert not orch.store.fire_lock().path.exists()


async def test_permission_denials_are_events_and_user_config_untouched(harness):
    config_before = (harness.project / ".git" / "config").read_bytes()
    execution = [
        {
            "op": "terminal",
            "command": "git",
            "args": ["remote", "add", "evil", "https://example.invalid/x.git"],
        },
        {"op": "terminal", "command": "sh", "args": ["-c", "git config user.email evil@x"]},
        {
            "op": "permission",
            "title": "git push origin main",
            "kind": "execute",
            "raw_input": {"command": "git push origin main"},
        },
        {"op": "write", "path": "../outside.txt", "content": "x"},
        *EXECUTE,
    ]
    orch = harness.orchestrator({"discovery": DISCOVER, "execution": execution, "report": REPORT})
    result = await orch.fire()
    assert result.outcome == FireOutcome.EXECUTED
    assert (harness.project / ".git" / "config").read_bytes() == config_before
    assert not (harness.project.parent / "outside.txt").exists()
    denials = [e for e in orch.store.agent_events(result.run_id) if e.allowed is False]
    assert len(denials) >= 4 and all(e.reason for e in denials)


async def test_lock_busy_refuses_a_second_fire(harness):
    orch = harness.orchestrator({"discovery": DISCOVER})
    orch.store.update_state(lambda st: None)
    with orch.store.fire_lock().held("other"):
        with pytest.raises(AlwaysOnError) as err:
            await orch.fire()
    assert err.value.code == "lock_busy"


def test_store_is_per_project(harness, tmp_path):
    assert Store().project(harness.project).dir != Store().project(tmp_path).dir


def _with_submodule(harness) -> None:
    """Give the project a submodule `lib` (a gitlink; the worktree gets it as an empty, uninitialised folder)."""
    lib = harness.tmp / "lib-origin"
    lib.mkdir()
    git(lib, "init", "-q")
    (lib / "a.txt").write_text("a\n")
    git(lib, "add", "-A")
    git(lib, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "lib")
    sha = git(lib, "rev-parse", "HEAD")
    (harness.project / ".gitmodules").write_text(f'[submodule "lib"]\n\tpath = lib\n\turl = {lib}\n')
    git(harness.project, "update-index", "--add", "--cacheinfo", f"160000,{sha},lib")
    git(harness.project, "add", ".gitmodules")
    git(harness.project, "commit", "-qm", "add the lib submodule")


async def test_a_file_written_inside_an_uninitialised_submodule_is_named(harness):
    """Issue 15: git records nothing written inside an uninitialised submodule folder, so such a file was dropped
    without a word. Alone it fails the plan saying so; beside a real change the report and the event say so."""
    _with_submodule(harness)
    inside = {"op": "write", "path": "lib/new.txt", "content": "lost\n"}
    orch = harness.orchestrator({"discovery": DISCOVER, "execution": [inside]})
    result = await orch.fire()
    assert result.outcome == FireOutcome.FAILED
    assert "only wrote 1 file inside submodule folders that are not initialised" in result.error.message
    assert "`lib/new.txt`" in result.error.message and "nothing was kept" in result.error.message

    inside = {"op": "write", "path": "lib/more.txt", "content": "lost too\n"}
    orch = harness.orchestrator({"execution": [*EXECUTE, inside], "report": REPORT})
    second = await orch.rerun(result.plan_id)
    assert second.outcome == FireOutcome.EXECUTED, second.error
    _meta, report = orch.store.read_report(second.run_id)
    notes = report.split("## Notes", 1)[1]
    assert "Not kept: the agent wrote 1 file inside submodule folders" in notes and "`lib/more.txt`" in notes
    done = [e for e in harness.events if e.type.value == "execution_completed"][-1]
    assert "not kept" in done.message and "lib/more.txt" in done.message

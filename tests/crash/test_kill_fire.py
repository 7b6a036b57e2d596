"""``kill -9`` of a real ``always-on run`` at every boundary of a fire — and right after the plan tool accepted a
plan — then the next fire: nothing is lost (every accepted plan is in the records), the killed run is in the
history, no worktree, branch or folder is left that no record refers to, and the next fire executes. A crash
loop disables the project after N failures."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from crashkit import cli, killed, last_json
from helpers import git, make_repo

from always_on.core.records import FireOutcome, PlanStatus
from always_on.core.storage import Store

SCRIPTED_AGENT = Path(__file__).resolve().parents[1] / "agents" / "scripted_agent.py"
PLAN = {
    "title": "Add a greeting module",
    "summary": "Add a module with a greet() function.",
    "rationale": "The project has no greeting.",
    "dedupe_key": "demo:greeting",
    "context_signals": ["README.md"],
    "proposed_change": "Create a module.",
    "steps": ["Write it", "Run the verification"],
    "verification": ["`python -c 'pass'`"],
}
REPORT = "## Steps Performed\nWrote the module\n## Verification Results\nok\n"
POINTS = [
    "fire.started",
    "fire.discovery_started",
    "mcp.plan_accepted",  # in the tool server: the runtime is killed right after the plan was accepted
    "fire.plan_recorded",
    "fire.workspace_started",
    "fire.worktree_added",  # the worktree exists, its cycle is not recorded yet
    "fire.execution_started",
    "fire.committed",
    "fire.report_started",
    "fire.report_written",
    "fire.plan_completed",
    "fire.finished",
]


def agent_cmd(tmp: Path, name: str) -> str:
    """The scripted ACP agent: proposes PLAN, writes ``<name>.py``, reports."""
    script = tmp / f"script-{name}.json"
    phases = {
        "discovery": [{"op": "mcp", "calls": [{"tool": "always_on_discovery_plan", "arguments": PLAN}]}],
        "execution": [
            {"op": "write", "path": f"{name}.py", "content": f"def greet():\n    return '{name}'\n"}
        ],
        "report": [{"op": "mcp", "calls": [{"tool": "always_on_report", "arguments": {"content": REPORT}}]}],
    }
    script.write_text(json.dumps({"phases": phases}))
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(SCRIPTED_AGENT))} --script {shlex.quote(str(script))}"


def run(project: Path, tmp: Path, name: str, fault: str | None = None) -> subprocess.CompletedProcess:
    return cli("run", "--project", str(project), "--agent-cmd", agent_cmd(tmp, name), "--json", fault=fault)


def _kill_after_the_tool_accepted(project: Path, tmp: Path) -> None:
    """The tool server freezes right after it recorded the plan; the runtime is then killed from outside."""
    fifo = tmp / "fault.fifo"
    os.mkfifo(fifo)
    env = dict(os.environ, ALWAYS_ON_FAULT="stop@mcp.plan_accepted", ALWAYS_ON_FAULT_NOTIFY=str(fifo))
    args = ["run", "--project", str(project), "--agent-cmd", agent_cmd(tmp, "first"), "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "always_on.core.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    with open(fifo, encoding="utf-8") as fh:
        point, server = fh.readline().split()
    assert point == "mcp.plan_accepted"
    os.killpg(proc.pid, signal.SIGKILL)  # the runtime and whatever it started in its group
    assert proc.wait() == -signal.SIGKILL
    os.kill(int(server), signal.SIGKILL)  # the frozen tool server (its agent ends with the runtime's pipes)


def assert_no_leftovers(project: Path, home: Path) -> None:
    """Only the active cycle's workspace exists, in git and on disk; no lock, no open run, nothing half-done."""
    store = Store().project(project)
    active = store.active_cycle()
    worktrees = [
        block.split("\n")[0].removeprefix("worktree ")
        for block in git(project, "worktree", "list", "--porcelain").strip().split("\n\n")
    ][1:]
    expected = [active.workspace_path] if active else []
    assert worktrees == expected
    assert git(project, "branch", "--list", "always-on/*", "--format=%(refname:short)").split() == (
        [active.branch] if active else []
    )
    base = home / "workspaces" / store.project_id
    assert sorted(str(p) for p in base.iterdir()) == expected if base.exists() else not expected
    assert store.open_runs() == [] and not store.fire_lock().path.exists()
    assert store.plans_with_status(PlanStatus.EXECUTING, PlanStatus.READY) == []
    assert git(project, "status", "--porcelain") == ""  # the user's checkout was never touched


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_a_fire_boundary_loses_nothing(point, tmp_path, always_on_home):
    project = make_repo(tmp_path / "project", {"README.md": "# demo\n", "app.py": "print('app')\n"})
    if point == "mcp.plan_accepted":
        _kill_after_the_tool_accepted(project, tmp_path)
    else:
        first = run(project, tmp_path, "first", fault=f"kill@{point}")
        assert killed(first), (point, first.returncode, first.stderr[-2000:])
    store = Store().project(project)
    accepted = [p.id for p in store.plans_list()]  # every plan the tool accepted is recorded at once
    if point not in ("fire.started", "fire.discovery_started"):
        assert len(accepted) == 1, point

    second = run(project, tmp_path, "second")
    result = last_json(second.stdout)
    assert second.returncode == 0 and result["outcome"] == "executed", (point, second.stderr[-2000:])
    assert "recovered:" in second.stderr or point == "fire.finished"  # the user is told what was repaired

    history = store.history()
    assert len(history) == 2 and history[-1].run_id == result["run_id"]
    killed_run = history[0]
    if point == "fire.finished":  # killed after its entry was written: nothing to repair
        assert killed_run.outcome == FireOutcome.EXECUTED
    else:
        assert killed_run.outcome == FireOutcome.FAILED and killed_run.error.code == "interrupted"
        assert store.read_state().last_outcome == FireOutcome.EXECUTED
    plans = {p.id: p for p in store.plans_list()}
    assert set(accepted) <= set(plans)  # 0 lost plans
    if accepted and point in (
        "mcp.plan_accepted",
        "fire.plan_recorded",
        "fire.workspace_started",
        "fire.worktree_added",
    ):
        assert result["plan_id"] == accepted[0]  # the accepted plan was executed by the next fire
        assert plans[accepted[0]].status == PlanStatus.COMPLETED
    assert_no_leftovers(project, always_on_home)


def test_a_crash_loop_disables_the_project(tmp_path, always_on_home):
    project = make_repo(tmp_path / "project", {"README.md": "# demo\n"})
    config = always_on_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[scheduler]\nfailures_before_disable = 3\n")
    assert cli("init", "--project", str(project)).returncode == 0
    for n in range(3):
        proc = run(project, tmp_path, f"loop{n}", fault="kill@fire.started")
        assert killed(proc)
    status = cli("status", "--project", str(project), "--json")  # the next command records the third crash
    gate = last_json(status.stdout)[0]
    assert gate["blocked_by"] == "project_disabled", status.stderr
    assert "3 consecutive failed fires (last: interrupted)" in gate["detail"]
    store = Store().project(project)
    assert [r.error.code for r in store.history()] == ["interrupted"] * 3
    assert [e.type for e in store.events()].count("project_disabled") == 1
    daemon = cli("daemon", "--once", "--project", str(project), "--json")
    assert daemon.returncode == 0 and last_json(daemon.stdout) == []  # no fire while disabled
    assert cli("init", "--project", str(project)).returncode == 0  # the user re-enables it
    assert Store().project(project).read_state().disabled_reason is None

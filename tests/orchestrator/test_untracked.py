"""Issue 15, untracked files: discovery reads the workspace execution will work in (the last commit), so a plan is
never about a file the workspace does not hold; a plan naming one anyway is refused at plan time with the reason
(nothing recorded, no failure); the run says how many files of the checkout were left out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fire_scripts import EXECUTE, PLAN, REPORT
from helpers import git, make_repo

from always_on.core.agents.mcp_server import ToolServer
from always_on.core.records import FireOutcome
from always_on.core.storage import Store

PYPROJECT = '[project]\nname = "demo"\nversion = "0"\n\n[tool.ruff.lint]\nselect = ["E", "F"]\n'


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def last_json(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_nothing_left(project: Path) -> None:
    """No worktree or branch of always-on stays behind after fires that found nothing."""
    assert git(project, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(project, "branch", "--list", "always-on/*") == ""


def test_the_issue_repro_two_runs_end_no_plan_and_say_what_was_left_out(tmp_path):
    """`git init`, one commit, `import os` in an untracked module, `always-on run` twice: was failed, then a
    blocked rule and a step toward auto-disable; now both runs end no_plan and say the file was left out."""
    project = make_repo(tmp_path / "repo", {"app.py": "X = 1\n"})
    (project / "untracked_mod.py").write_text("import os\n")
    for _ in range(2):
        proc = cli("run", "--json", cwd=project)
        result = last_json(proc)
        assert result["outcome"] == "no_plan", proc.stderr
        assert result["untracked"] == 1 and result["uncommitted"] == 0
        assert "discovery_started — 1 untracked file of the checkout left out" in proc.stderr
    text = cli("run", cwd=project)
    assert "Note:    1 untracked file of the checkout left out" in text.stdout
    store = Store().project(project)
    assert [r.outcome for r in store.history()] == [FireOutcome.NO_PLAN] * 3
    assert store.plans() == {} and store.read_state().consecutive_failures == 0
    assert_nothing_left(project)
    assert (project / "untracked_mod.py").read_text() == "import os\n"


def test_with_tracked_findings_too_two_runs_end_executed_then_no_plan(tmp_path):
    project = make_repo(tmp_path / "repo", {"pyproject.toml": PYPROJECT, "app.py": "import sys\n\nX = 1\n"})
    (project / "untracked_mod.py").write_text("import os\n")
    (project / "app.py").write_text("import sys\n\nX = 2\n")  # an uncommitted edit: left out too
    first = cli("run", "--json", cwd=project)
    assert last_json(first)["outcome"] == "executed", first.stderr
    assert last_json(first)["untracked"] == 1 and last_json(first)["uncommitted"] == 1
    store = Store().project(project)
    (plan,) = store.plans().values()
    assert "untracked_mod.py" not in plan.content.model_dump_json()
    assert [f.path for f in store.read_report(last_json(first)["run_id"])[0].files_changed] == ["app.py"]
    second = cli("run", "--json", cwd=project)
    assert last_json(second)["outcome"] == "no_plan", second.stderr
    assert store.read_state().consecutive_failures == 0


def test_the_demo_then_a_second_fire_never_fail(tmp_path):
    project = tmp_path / "demo"
    demo = cli("demo", str(project))
    assert demo.returncode == 0 and "Outcome: executed" in demo.stdout, demo.stderr
    second = cli("run", "--json", cwd=project)
    assert last_json(second)["outcome"] in ("executed", "no_plan"), second.stderr


async def test_discovery_reads_the_workspace_not_the_checkout(harness):
    """The discovery session's folder is the workspace: an untracked file of the checkout is not there."""
    (harness.project / "untracked_mod.py").write_text("import os\n")
    discovery = [
        {"op": "read", "path": "untracked_mod.py"},
        {"op": "read", "path": "app.py"},
        {"op": "message", "text": "nothing to do"},
    ]
    orch = harness.orchestrator({"discovery": discovery})
    result = await orch.fire()
    assert result.outcome == FireOutcome.NO_PLAN and result.untracked == 1
    log = [json.loads(line) for line in (harness.tmp / "agent-log.jsonl").read_text().splitlines()]
    reads = {e["path"]: e["ok"] for e in log if e.get("step") == "read"}
    assert reads == {"untracked_mod.py": False, "app.py": True}
    started = harness.events[0]
    assert started.type.value == "discovery_started" and started.data["untracked"] == 1
    assert "workspaces" in started.data["workspace"] and not Path(started.data["workspace"]).exists()
    assert_nothing_left(harness.project)


async def test_a_plan_naming_an_untracked_file_is_refused_at_plan_time(harness):
    """The agent learnt of the file elsewhere (a chat): the plan tool refuses the plan with the reason, nothing is
    recorded, the fire ends no_plan (not failed), and the dedupe key stays free for a plan that can be done."""
    (harness.project / "untracked_mod.py").write_text("import os\n")
    bad = dict(
        PLAN, dedupe_key="ruff:F401", context_signals=["untracked_mod.py:1:8 F401 `os` imported but unused"]
    )
    orch = harness.orchestrator(
        {"discovery": [{"op": "mcp", "calls": [{"tool": "always_on_discovery_plan", "arguments": bad}]}]}
    )
    result = await orch.fire()
    assert result.outcome == FireOutcome.NO_PLAN
    log = [json.loads(line) for line in (harness.tmp / "agent-log.jsonl").read_text().splitlines()]
    (answer,) = [e for e in log if e.get("step") == "mcp"]
    assert answer["is_error"] and "`untracked_mod.py`" in answer["text"]
    assert "not in the workspace" in answer["text"] and "cannot be carried out" in answer["text"]
    assert orch.store.plans() == {} and orch.store.read_state().consecutive_failures == 0

    good = dict(PLAN, dedupe_key="ruff:F401")  # the same key, about files the workspace holds
    orch = harness.orchestrator(
        {
            "discovery": [{"op": "mcp", "calls": [{"tool": "always_on_discovery_plan", "arguments": good}]}],
            "execution": EXECUTE,
            "report": REPORT,
        }
    )
    assert (await orch.fire()).outcome == FireOutcome.EXECUTED


def test_the_plan_tool_refuses_files_only_the_checkout_has(tmp_path):
    checkout = make_repo(tmp_path / "checkout", {"src/app.py": "X = 1\n", "README.md": "# x\n"})
    workspace = tmp_path / "ws"
    git(checkout, "worktree", "add", "-q", "--detach", str(workspace))
    (checkout / "src" / "scratch.py").write_text("import os\n")
    tools = ToolServer(
        phase="discovery",
        run_id="run-1",
        outbox=tmp_path / "out",
        digest=None,
        checkout=checkout,
        workspace=workspace,
    )
    (tmp_path / "out").mkdir()
    for signals in (["src/scratch.py:1:8 F401"], [f"{checkout}/src/scratch.py"]):
        ok, text = tools.submit_plan(dict(PLAN, context_signals=signals))
        assert not ok and text.startswith("plan_invalid: ") and "`src/scratch.py`" in text
        assert not (tmp_path / "out" / "plan.json").exists()
    ok, text = tools.submit_plan(
        dict(PLAN, context_signals=["src/app.py:1:1", "README.md", "e.g. a new file x.py"])
    )
    assert ok, text

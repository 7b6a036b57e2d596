"""A fire whose agent cannot do its job ends with the agent's own error code and the next step, the same in the
run record, the `--json` object and the CLI line; the agent's initialize response is in the run's event log."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

from fire_scripts import SCRIPTED_AGENT

from always_on.core.records import AgentEventKind, FireOutcome


async def test_a_stalled_agent_fails_the_fire_as_stalled(harness):
    orch = harness.orchestrator(
        {"discovery": [{"op": "message", "text": "let me think"}, {"op": "hang"}]},
        timeout=120,
        limits={"stall_seconds": 1},
    )
    result = await orch.fire()
    assert result.outcome == FireOutcome.FAILED
    assert result.error.code == "agent_stalled"  # not wrapped in discovery_failed: it is what to act on
    assert result.error.message.startswith("agent 'scripted_agent.py' stalled")
    assert "in the discovery phase" in result.error.message and "stall_seconds" in result.error.hint
    assert orch.store.read_state().last_error.hint == result.error.hint
    events = orch.store.agent_events(result.run_id)
    ready = [e for e in events if e.kind == AgentEventKind.LIFECYCLE and e.text.startswith("agent ready")]
    assert ready[0].data["initialize"]["agentInfo"] == {"name": "scripted-agent", "version": "1"}
    assert any(e.data.get("stall_warning") for e in events)


async def test_an_agent_error_answer_is_not_a_protocol_error(harness):
    error = {
        "op": "error",
        "code": -32603,
        "message": "Internal error",
        "data": {"details": "quota exceeded"},
    }
    orch = harness.orchestrator({"discovery": [error]})
    result = await orch.fire()
    assert result.error.code == "discovery_failed"
    assert result.error.message == (
        "agent_error: agent 'scripted_agent.py' answered session/prompt with an error: "
        "Internal error: quota exceeded"
    )


def test_cli_json_line_and_stderr_carry_the_same_code_and_hint(tmp_path, always_on_home, repo):
    config = always_on_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[limits]\nstall_seconds = 1\nphase_timeout_seconds = 120\n")
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"steps": [{"op": "hang"}]}))
    agent = f"{shlex.quote(sys.executable)} {shlex.quote(str(SCRIPTED_AGENT))} --script {shlex.quote(str(script))}"
    common = ["--project", str(repo), "--agent-cmd", agent]
    run = subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", "run", "--json", *common],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    error = json.loads(run.stdout.strip().splitlines()[-1])["error"]
    assert error["code"] == "agent_stalled" and "stall_seconds" in error["hint"]
    assert f"agent_stalled: {error['message']}" in run.stderr and f"hint: {error['hint']}" in run.stderr
    assert "no activity for" in run.stderr  # the warning at half the stall limit
    text = subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", "run", *common],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Error:   agent_stalled: agent 'scripted_agent.py' stalled" in text.stdout
    assert f"Hint:    {error['hint']}" in text.stdout

"""The real ACP adapters from npm (claude-agent-acp, codex-acp, gemini-cli) driven by `always-on run`, with no model
API reachable from here: with a (fake) key each gets past initialize and session/new (codex after ACP
`authenticate`) and the fire ends within the configured bounds with an error naming the agent; without a key the
error names the variable to set. Nothing they started is left running."""

from __future__ import annotations

import pytest
from conftest import KEYS, LIMITS

pytestmark = pytest.mark.interop

AGENT_NAMES = {  # what each says its name is in initialize
    "claude": "@agentclientprotocol/claude-agent-acp",
    "codex": "codex-acp",
    "gemini": "gemini-cli",
}


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_with_a_key_the_fire_gets_past_authentication_and_ends_named(fire, agent):
    result = fire(agent, key=True)
    assert result.error["code"] in ("model_unreachable", "agent_stalled"), result.error
    assert result.error["message"].startswith(f"agent '{agent}' "), result.error
    assert result.error["hint"]
    assert result.seconds < LIMITS["phase_timeout_seconds"]  # the stall bound ended it, not the phase limit
    texts = [e.text for e in result.lifecycle()]
    ready = [t for t in texts if t.startswith("agent ready: ")]
    assert ready and ready[0].startswith(f"agent ready: {AGENT_NAMES[agent]} ")  # initialize passed
    assert "discovery session started" in texts  # session/new passed
    if agent == "codex":
        assert "authenticated with openai-api-key" in texts
    assert result.leftovers == []


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_without_a_key_the_error_names_the_variable(fire, agent):
    result = fire(agent, key=False)
    assert result.error["code"] == "agent_auth_required", result.error
    assert result.error["message"].startswith(f"agent '{agent}' needs authentication")
    assert f"export {KEYS[agent]}" in result.error["hint"]
    assert f"hint: {result.error['hint']}" in result.stderr
    assert result.leftovers == []

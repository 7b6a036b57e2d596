"""What a real agent needs to run unattended, against the scripted agent (real subprocess, real ACP): its
credentials (agent process only), ACP `authenticate` and one retry, errors that say what to do, stall detection
and configured start timeouts (DESIGN §4)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from always_on.core.agents.presets import PRESETS
from always_on.core.errors import ErrorCode
from always_on.core.records import AgentEventKind

CREDENTIALS = sorted({v for p in PRESETS.values() for v in p.credentials})

CODEX_METHODS = [  # what codex-acp 0.16 lists in initialize
    {"id": "chatgpt", "name": "Login with ChatGPT", "description": "Use your ChatGPT login"},
    {
        "type": "env_var",
        "id": "codex-api-key",
        "name": "Use CODEX_API_KEY",
        "vars": [{"name": "CODEX_API_KEY"}],
    },
    {
        "type": "env_var",
        "id": "openai-api-key",
        "name": "Use OPENAI_API_KEY",
        "vars": [{"name": "OPENAI_API_KEY"}],
    },
]
CODEX_AUTH = {"at": "new_session", "accept": ["openai-api-key", "codex-api-key"]}


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    """Whatever the machine has exported, each test starts with no credential variable set."""
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)


def preset(name: str, **more: Any) -> dict[str, Any]:
    """AgentSpec fields of a real preset, for the scripted agent standing in for that agent."""
    p = PRESETS[name]
    fields = {
        "name": name,
        "env": dict(p.env),
        "pass_env": p.pass_env,
        "credentials": list(p.credentials),
        "auth_methods": dict(p.auth_methods),
        "login_hint": p.login,
    }
    return {**fields, **more}


# --- credentials --------------------------------------------------------------------------------------------


async def test_credentials_reach_the_agent_process_only(
    make_gateway, workspace, run_phase, agent_events, agent_steps, monkeypatch
):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake-123")
    monkeypatch.setenv("SOME_OTHER_API_KEY", "not-for-agents")
    (workspace / "show_env.py").write_text(
        "import os\nprint('key=' + os.environ.get('ANTHROPIC_API_KEY', '<unset>'))\n"
    )
    gateway = make_gateway(
        {
            "report_env": ["ANTHROPIC_API_KEY", "SOME_OTHER_API_KEY"],
            "steps": [
                {"op": "terminal", "command": "printenv", "args": ["ANTHROPIC_API_KEY"]},
                {"op": "terminal", "command": "python3", "args": ["show_env.py"]},
            ],
        },
        spec=preset("claude"),
    )
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()
    assert result.error is None
    (init,) = agent_events("initialize")
    assert init["env"] == {"ANTHROPIC_API_KEY": "sk-ant-fake-123", "SOME_OTHER_API_KEY": None}
    printenv, script = agent_steps("terminal")
    assert printenv["ok"] is False and "sk-ant" not in str(printenv)  # refused, printed nothing
    assert script["ok"] is True and script["output"].strip() == "key=<unset>"


async def test_preset_environment_reaches_the_agent(make_gateway, workspace, run_phase, agent_events):
    gateway = make_gateway({"report_env": ["GEMINI_CLI_TRUST_WORKSPACE"], "steps": []}, spec=preset("gemini"))
    await gateway.start()
    await run_phase(gateway, workspace)
    await gateway.close()
    assert agent_events("initialize")[0]["env"] == {"GEMINI_CLI_TRUST_WORKSPACE": "true"}


# --- authenticate -------------------------------------------------------------------------------------------


async def test_authenticate_with_the_method_whose_key_is_present_then_retry(
    make_gateway, workspace, run_phase, agent_events, monkeypatch, sink
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    gateway = make_gateway(
        {
            "auth_methods": CODEX_METHODS,
            "require_auth": CODEX_AUTH,
            "steps": [{"op": "message", "text": "hi"}],
        },
        spec=preset("codex"),
    )
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()
    assert result.error is None and result.last_text == "hi"
    assert [e["method_id"] for e in agent_events("authenticate")] == ["openai-api-key"]
    assert "authenticated with openai-api-key" in [e.text for e in sink.of(AgentEventKind.LIFECYCLE)]
    assert len(agent_events("new_session_request")) == 2 and len(agent_events("new_session")) == 1


async def test_configured_auth_method_wins(make_gateway, workspace, run_phase, agent_events, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    gateway = make_gateway(
        {"auth_methods": CODEX_METHODS, "require_auth": CODEX_AUTH, "steps": []},
        spec=preset("codex", auth_method="codex-api-key", env={"CODEX_API_KEY": "from-config"}),
    )
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()
    assert result.error is None
    assert [e["method_id"] for e in agent_events("authenticate")] == ["codex-api-key"]


async def test_no_key_is_auth_required_naming_the_variable(make_gateway, workspace, run_phase, agent_events):
    gateway = make_gateway(
        {"auth_methods": CODEX_METHODS, "require_auth": CODEX_AUTH, "steps": []}, spec=preset("codex")
    )
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()
    error = result.error
    assert error.code == ErrorCode.AGENT_AUTH_REQUIRED
    assert error.message.startswith("agent 'codex' needs authentication")
    assert "Authentication required" in error.message and "openai-api-key (OPENAI_API_KEY)" in error.message
    assert "export OPENAI_API_KEY (or CODEX_API_KEY)" in error.hint and "`codex login`" in error.hint
    assert agent_events("authenticate") == []  # nothing to authenticate with


async def test_a_refused_key_is_tried_once(make_gateway, workspace, run_phase, agent_events, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    gateway = make_gateway(
        {"auth_methods": CODEX_METHODS, "require_auth": {"at": "new_session", "accept": []}, "steps": []},
        spec=preset("codex"),
    )
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()
    assert result.error.code == ErrorCode.AGENT_AUTH_REQUIRED
    assert "even after `authenticate` with openai-api-key" in result.error.message
    assert "check the key in OPENAI_API_KEY" in result.error.hint and "sk-wrong" not in str(result.error)
    assert len(agent_events("authenticate")) == 1 and len(agent_events("new_session_request")) == 2


async def test_auth_required_at_prompt_without_methods_names_login(make_gateway, workspace, run_phase):
    """claude-agent-acp: no authMethods; the prompt answers -32000 when there is no key."""
    gateway = make_gateway({"require_auth": {"at": "prompt"}, "steps": []}, spec=preset("claude"))
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()
    assert result.error.code == ErrorCode.AGENT_AUTH_REQUIRED
    assert result.error.message.startswith("agent 'claude' needs authentication: it answered session/prompt")
    assert "export ANTHROPIC_API_KEY" in result.error.hint
    assert "claude-agent-acp --cli auth login" in result.error.hint


# --- error answers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "code", "fragments"),
    [
        (  # codex-acp 0.16 with no route to api.openai.com
            {
                "code": -32603,
                "message": "Internal error",
                "data": {
                    "message": "stream disconnected before completion: error sending request for url "
                    "(https://api.openai.com/v1/responses)"
                },
            },
            ErrorCode.MODEL_UNREACHABLE,
            [
                "agent 'scripted' could not reach its model API at https://api.openai.com/v1/responses",
                "stream",
            ],
        ),
        (  # the built-in openai agent says it outright
            {
                "code": -32603,
                "message": "model_unreachable: http://127.0.0.1:9/v1 — ReadTimeout after 30 s",
                "data": {
                    "errorCode": "model_unreachable",
                    "endpoint": "http://127.0.0.1:9/v1",
                    "reason": "ReadTimeout after 30 s",
                },
            },
            ErrorCode.MODEL_UNREACHABLE,
            ["could not reach its model API at http://127.0.0.1:9/v1: ReadTimeout after 30 s"],
        ),
        (
            {"code": -32603, "message": "Internal error", "data": {"details": "out of cheese"}},
            ErrorCode.AGENT_ERROR,
            ["agent 'scripted' answered session/prompt with an error: Internal error: out of cheese"],
        ),
    ],
)
async def test_error_answers_become_errors_that_say_what_happened(
    make_gateway, workspace, run_phase, step, code, fragments
):
    gateway = make_gateway({"steps": [{"op": "error", **step}]})
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()
    assert result.error.code == code
    for fragment in fragments:
        assert fragment in result.error.message
    assert result.error.message.count("model_unreachable") == 0  # no code repeated inside the message
    if code == ErrorCode.MODEL_UNREACHABLE:
        assert "is reachable from this machine" in result.error.hint


# --- stalls and start timeouts ------------------------------------------------------------------------------


async def test_a_silent_agent_is_stalled_after_a_warning(make_gateway, workspace, run_phase, sink, procs):
    gateway = make_gateway({"steps": [{"op": "message", "text": "thinking..."}, {"op": "hang"}]})
    await gateway.start()
    pid = gateway.pid
    result = await run_phase(gateway, workspace, timeout=120, stall_seconds=1.0)
    assert result.error.code == ErrorCode.AGENT_STALLED
    assert result.error.message.startswith(
        "agent 'scripted' stalled: no update, tool call or terminal output"
    )
    assert "stall_seconds" in result.error.hint
    lifecycle = [e for e in sink.of(AgentEventKind.LIFECYCLE)]
    warnings = [e for e in lifecycle if e.data.get("stall_warning")]
    assert len(warnings) == 1 and warnings[0].text.startswith("no activity for ")
    assert lifecycle.index(warnings[0]) < len(lifecycle) - 1  # the warning came before the phase ended
    assert not procs.alive(pid)  # the hang ignored session/cancel: killed
    await gateway.close()


async def test_waiting_on_a_terminal_is_not_a_stall(make_gateway, workspace, run_phase, agent_steps):
    """While the agent waits for a command it ran (a request to us in flight), its clock stands still."""
    gateway = make_gateway({"steps": [{"op": "terminal", "command": "sleep", "args": ["2.5"]}]})
    await gateway.start()
    result = await run_phase(gateway, workspace, timeout=120, stall_seconds=1.0)
    await gateway.close()
    assert result.error is None and agent_steps("terminal")[0]["exit_code"] == 0


async def test_per_agent_stall_seconds_override_the_limits(make_gateway, workspace, run_phase):
    gateway = make_gateway({"steps": [{"op": "hang"}]}, spec={"stall_seconds": 0.5})
    await gateway.start()
    result = await run_phase(gateway, workspace, timeout=120, stall_seconds=600)
    await gateway.close()
    assert result.error.code == ErrorCode.AGENT_STALLED and "0.5 s" in result.error.message


async def test_session_new_within_the_configured_start_timeout(make_gateway, workspace, run_phase):
    gateway = make_gateway({"on_new_session": "hang"}, start_timeout=1.0)
    await gateway.start()
    result = await run_phase(gateway, workspace, timeout=120)
    await gateway.close()
    assert result.error.code == ErrorCode.AGENT_TIMEOUT
    assert result.error.message.startswith("agent 'scripted' did not answer session/new within 1 s")


def test_python_launcher_is_not_the_agent_name() -> None:
    from always_on.core.agents.spec import AgentSpec

    spec = AgentSpec.from_command_line(f"{sys.executable} -P /x/my_agent.py --acp")
    assert spec.name == "my_agent.py"
    assert AgentSpec.from_command_line("npx @zed-industries/codex-acp@0.16.0").name == "codex-acp"


async def test_silence_after_network_errors_on_stderr_is_model_unreachable(
    make_gateway, workspace, run_phase
):
    """codex-acp retries an unreachable API silently on stdout, logging each failure (in colour) on stderr."""
    line = (
        "\x1b[2m2026-12-01T05:34:17.252310Z\x1b[0m \x1b[31mERROR\x1b[0m codex_api: failed to connect to websocket: "
        "IO error: failed to lookup address information: Name or service not known, url: wss://api.example.test/v1"
    )
    gateway = make_gateway({"steps": [{"op": "stderr", "text": line}, {"op": "hang"}]}, spec=preset("codex"))
    await gateway.start()
    result = await run_phase(gateway, workspace, timeout=120, stall_seconds=1.0)
    await gateway.close()
    assert result.error.code == ErrorCode.MODEL_UNREACHABLE
    assert result.error.message.startswith(
        "agent 'codex' could not reach its model API at wss://api.example.test/v1"
    )
    assert "\x1b" not in result.error.message and "(then nothing for 1 s)" in result.error.message
    assert "OPENAI_BASE_URL" in result.error.hint

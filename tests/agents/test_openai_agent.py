"""The built-in openai agent against a scripted OpenAI-compatible server on 127.0.0.1, over real ACP pipes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from acp import RequestError, text_block
from builtin_harness import BIN, RecordingClient, context_prompt, mcp_server, prompt, spawn
from fake_openai_server import FakeOpenAI, Hold, text, tool_call
from helpers import make_repo

from always_on.core.agents.builtin.openai_agent import OpenAIConfig
from always_on.core.agents.gateway import AgentGateway
from always_on.core.agents.spec import PhaseLimits
from always_on.core.config import parse_config
from always_on.core.records import Phase, PlanContent

OLD = "def add(a, b):\n    return a+b\n"
NEW = "def add(a: int, b: int) -> int:\n    return a + b\n"
PLAN = {
    "title": "Type-annotate add()",
    "summary": "Add type hints to add() in app.py.",
    "rationale": "add() is the public entry point and has no annotations.",
    "dedupe_key": "types:add",
    "context_signals": ["app.py:1"],
    "proposed_change": "Annotate the parameters and return type of add().",
    "steps": ["Edit app.py", "Run the checks"],
    "verification": ["`python -c 'import app'`"],
}


def env(api: FakeOpenAI, **extra: str) -> dict[str, str]:
    return {"ALWAYS_ON_OPENAI_BASE_URL": api.base_url, "ALWAYS_ON_OPENAI_MODEL": "fake-model", **extra}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project", {"app.py": OLD})


async def test_tool_loop_reads_writes_and_proposes_a_plan(tmp_path: Path, project: Path) -> None:
    script = [
        tool_call("read_file", {"path": "app.py"}, "c1"),
        tool_call("write_file", {"path": "app.py", "content": NEW}, "c2"),
        tool_call("always_on_discovery_plan", PLAN, "c3"),
        text("All done: plan proposed."),
    ]
    client = RecordingClient()
    with FakeOpenAI(script) as api:
        async with spawn(
            "openai", client, **env(api, ALWAYS_ON_OPENAI_API_KEY_ENV="MY_TEST_KEY", MY_TEST_KEY="sk-test")
        ) as (conn, _):
            session = await conn.new_session(
                cwd=str(project), mcp_servers=[mcp_server("discovery", tmp_path / "o")]
            )
            resp = await prompt(conn, session.session_id, context_prompt("discovery"))

    assert resp.stop_reason == "end_turn"
    assert len(api.requests) == 4
    first = api.requests[0]
    assert first["model"] == "fake-model" and first["stream"] is False
    offered = {t["function"]["name"] for t in first["tools"]}
    assert {
        "read_file",
        "write_file",
        "list_dir",
        "search",
        "run_command",
        "always_on_discovery_plan",
        "always_on_read_chat_history",
    } <= offered
    assert "```always-on-context" in first["messages"][-1]["content"]
    assert api.headers[0].get("Authorization") == "Bearer sk-test"
    # the file was read and written through the ACP client, and each result went back to the model
    assert client.reads == [str(project / "app.py")] and client.writes == [str(project / "app.py")]
    assert (project / "app.py").read_text() == NEW
    assert api.requests[1]["messages"][-1] == {"role": "tool", "tool_call_id": "c1", "content": OLD}
    assert api.requests[1]["messages"][-2]["tool_calls"][0]["id"] == "c1"
    # the MCP plan tool was called through the product's MCP server
    assert (
        PlanContent.model_validate_json((tmp_path / "o" / "plan.json").read_text()).dedupe_key == "types:add"
    )
    assert api.requests[3]["messages"][-1]["content"].startswith("Plan accepted")
    assert "All done: plan proposed." in client.messages()
    starts = [u for u in client.tool_updates() if u.session_update == "tool_call"]
    ends = [u for u in client.tool_updates() if u.session_update == "tool_call_update"]
    assert [u.kind for u in starts] == ["read", "edit", "other"]
    assert [u.status for u in ends] == ["completed"] * 3


async def test_max_turns_is_respected(project: Path) -> None:
    client = RecordingClient()
    with FakeOpenAI([tool_call("run_command", {"command": "echo still-working"})]) as api:
        async with spawn("openai", client, **env(api, ALWAYS_ON_OPENAI_MAX_TURNS="3")) as (conn, _):
            session = await conn.new_session(cwd=str(project), mcp_servers=[])
            resp = await prompt(conn, session.session_id, [text_block("keep going")])
    assert resp.stop_reason == "max_turn_requests"
    assert len(api.requests) == 3
    assert client.commands == [["echo", "still-working"]] * 3  # ran through the client's terminal
    assert api.requests[1]["messages"][-1]["content"] == "exit 0\nstill-working\n"
    assert "ALWAYS_ON_OPENAI_MAX_TURNS" in client.messages()


async def test_http_error_fails_the_turn_clearly(project: Path) -> None:
    client = RecordingClient()
    with FakeOpenAI([(500, {"error": {"message": "model exploded"}})]) as api:
        async with spawn("openai", client, **env(api)) as (conn, proc):
            session = await conn.new_session(cwd=str(project), mcp_servers=[])
            with pytest.raises(RequestError) as failure:
                await prompt(conn, session.session_id, [text_block("hello")])
            assert proc.returncode is None  # an endpoint failure fails the turn, not the agent
    message = f"model_unreachable: {api.base_url} — HTTP 500 Internal Server Error: model exploded"
    assert str(failure.value) == message
    assert failure.value.data["errorCode"] == "model_unreachable"
    assert failure.value.data["reason"] == "HTTP 500 Internal Server Error"
    assert "Model request failed" in client.messages() and message in client.messages()


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_key_is_agent_auth_required_naming_the_variable(project: Path, status: int) -> None:
    client = RecordingClient()
    body = {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
    with FakeOpenAI([(status, body)]) as api:
        async with spawn("openai", client, **env(api, ALWAYS_ON_OPENAI_API_KEY_ENV="MY_LLM_KEY")) as (
            conn,
            _,
        ):
            session = await conn.new_session(cwd=str(project), mcp_servers=[])
            with pytest.raises(RequestError) as failure:
                await prompt(conn, session.session_id, [text_block("hello")])
    assert "Authorization" not in api.headers[0]  # no key set: none sent
    text_ = str(failure.value)
    assert text_.startswith(f"agent_auth_required: {api.base_url} answered HTTP {status} ")
    assert "Incorrect API key provided" in text_ and "MY_LLM_KEY is not set" in text_
    assert failure.value.data["errorCode"] == "agent_auth_required"


async def test_a_model_that_does_not_answer_in_time_is_a_named_timeout(project: Path) -> None:
    client = RecordingClient()
    hold = Hold()
    with FakeOpenAI([hold]) as api:
        async with spawn("openai", client, **env(api, ALWAYS_ON_OPENAI_TIMEOUT="0.5")) as (conn, proc):
            session = await conn.new_session(cwd=str(project), mcp_servers=[])
            with pytest.raises(RequestError) as failure:
                await prompt(conn, session.session_id, [text_block("hello")])
            assert hold.reached.is_set() and proc.returncode is None
    assert str(failure.value) == f"model_unreachable: {api.base_url} — ReadTimeout after 0.5 s"
    assert failure.value.data == {
        "errorCode": "model_unreachable",
        "endpoint": api.base_url,
        "reason": "ReadTimeout after 0.5 s",
        "details": str(failure.value),
    }


async def test_an_endpoint_nobody_listens_on_names_the_connection_error(project: Path) -> None:
    with FakeOpenAI([text("unused")]) as api:
        closed = api.base_url  # the port is free again once the server is gone
    client = RecordingClient()
    async with spawn("openai", client, ALWAYS_ON_OPENAI_BASE_URL=closed, ALWAYS_ON_OPENAI_MODEL="m") as (
        conn,
        _,
    ):
        session = await conn.new_session(cwd=str(project), mcp_servers=[])
        with pytest.raises(RequestError) as failure:
            await prompt(conn, session.session_id, [text_block("hello")])
    assert str(failure.value).startswith(f"model_unreachable: {closed} — ConnectError: ")


async def test_refusals_and_bad_arguments_go_back_to_the_model(project: Path) -> None:
    script = [
        tool_call("write_file", {"path": "app.py", "content": "x = 1\n"}, "c1"),
        tool_call("read_file", "{not json", "c2"),
        text("I could not write; stopping."),
    ]
    client = RecordingClient(deny_write=lambda path: "writes are outside the workspace")
    with FakeOpenAI(script) as api:
        async with spawn("openai", client, **env(api)) as (conn, _):
            session = await conn.new_session(cwd=str(project), mcp_servers=[])
            resp = await prompt(conn, session.session_id, [text_block("edit app.py")])
    assert resp.stop_reason == "end_turn"
    assert (project / "app.py").read_text() == OLD
    refused = api.requests[1]["messages"][-1]["content"]
    assert refused.startswith("ERROR:") and "writes are outside the workspace" in refused
    bad = api.requests[2]["messages"][-1]["content"]
    assert bad.startswith("ERROR:") and "not a valid JSON object" in bad
    assert [u.status for u in client.tool_updates() if u.session_update == "tool_call_update"] == [
        "failed"
    ] * 2


async def test_list_dir_and_search_run_through_the_client(project: Path) -> None:
    (project / "pkg").mkdir()
    script = [
        tool_call("list_dir", {"path": "."}, "c1"),
        tool_call("search", {"pattern": "def add"}, "c2"),
        tool_call("search", {"pattern": "no-such-text"}, "c3"),
        text("Found it."),
    ]
    client = RecordingClient()
    with FakeOpenAI(script) as api:
        async with spawn("openai", client, **env(api)) as (conn, _):
            session = await conn.new_session(cwd=str(project), mcp_servers=[])
            await prompt(conn, session.session_id, [text_block("where is add?")])
    listing = api.requests[1]["messages"][-1]["content"]
    assert "app.py" in listing.splitlines() and "pkg/" in listing.splitlines()
    assert f"{project}/app.py:1:def add(a, b):" in api.requests[2]["messages"][-1]["content"]
    assert api.requests[3]["messages"][-1]["content"] == "no matches"
    assert [argv[0] for argv in client.commands] == ["ls", "grep", "grep"]


async def test_missing_model_is_a_clear_error(project: Path) -> None:
    client = RecordingClient()
    async with spawn("openai", client, ALWAYS_ON_OPENAI_MODEL="") as (conn, _):
        session = await conn.new_session(cwd=str(project), mcp_servers=[])
        with pytest.raises(RequestError, match="ALWAYS_ON_OPENAI_MODEL is not set"):
            await prompt(conn, session.session_id, [text_block("hello")])


def test_config_reads_the_key_from_the_named_variable() -> None:
    config = OpenAIConfig.from_env(
        {
            "ALWAYS_ON_OPENAI_MODEL": "m",
            "ALWAYS_ON_OPENAI_API_KEY_ENV": "K",
            "K": "secret",
            "OPENAI_API_KEY": "other",
        }
    )
    assert config.api_key == "secret" and config.max_turns == 30
    assert config.base_url == "http://127.0.0.1:11434/v1"
    assert OpenAIConfig.from_env({"ALWAYS_ON_OPENAI_MODEL": "m"}).api_key is None
    with pytest.raises(ValueError, match="ALWAYS_ON_OPENAI_MAX_TURNS"):
        OpenAIConfig.from_env({"ALWAYS_ON_OPENAI_MODEL": "m", "ALWAYS_ON_OPENAI_MAX_TURNS": "0"})


async def test_api_key_env_reaches_the_endpoint_through_the_runtime_and_not_the_terminals(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch, policy_for, sink
) -> None:
    """Configured like a user would: `api_key_env` names a variable exported where always-on runs."""
    monkeypatch.setenv("MY_LLM_KEY", "sk-from-the-users-env")
    script = [tool_call("run_command", {"command": "printenv MY_LLM_KEY"}, "c1"), text("done")]
    with FakeOpenAI(script) as api:
        agent = {
            "command": [],
            "kind": "openai",
            "base_url": api.base_url,
            "model": "m",
            "api_key_env": "MY_LLM_KEY",
        }
        spec = parse_config({"agents": {"local": agent}}).agent_spec("local")
        async with AgentGateway(spec, on_event=sink, cwd=project) as gateway:
            result = await gateway.run_phase(
                run_id="run-key",
                phase=Phase.EXECUTION,
                cwd=project,
                policy=policy_for(project),
                prompt="check the key",
                mcp_servers=[],
                limits=PhaseLimits(timeout_seconds=60, max_tool_calls=10),
            )
    assert result.error is None and result.stop_reason == "end_turn"
    assert [h.get("Authorization") for h in api.headers] == ["Bearer sk-from-the-users-env"] * 2
    terminal_answer = api.requests[1]["messages"][-1]["content"]
    assert "sk-from-the-users-env" not in terminal_answer  # the agent has the key; its terminals do not


async def test_ruff_runs_from_always_ons_environment_when_not_on_path(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """always-on started as `~/venv/bin/always-on` without activating the venv: ruff is not on PATH."""
    without_ruff = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if p and not shutil.which("ruff", path=p)
    )
    monkeypatch.setenv("PATH", without_ruff)  # the client's terminals inherit it too
    script = [
        tool_call("run_command", {"command": "ruff --version"}, "c1"),
        tool_call("run_command", {"command": "ruff check --select F401 . && echo all-clean"}, "c2"),
        text("ok"),
    ]
    client = RecordingClient()
    with FakeOpenAI(script) as api:
        async with spawn("openai", client, **env(api, PATH=without_ruff)) as (conn, _):
            session = await conn.new_session(cwd=str(project), mcp_servers=[])
            resp = await prompt(conn, session.session_id, [text_block("lint")])
    assert resp.stop_reason == "end_turn"
    bundled = str(Path(BIN) / "ruff")
    assert client.commands[0] == [bundled, "--version"]
    assert client.commands[1] == ["sh", "-c", f"{bundled} check --select F401 . && echo all-clean"]
    assert api.requests[1]["messages"][-1]["content"].startswith("exit 0\nruff ")
    assert api.requests[2]["messages"][-1]["content"].endswith("All checks passed!\nall-clean\n")

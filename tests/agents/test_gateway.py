"""The ACP client gateway against the scripted agent: real subprocesses over real pipes, the real policy."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from helpers import git, make_repo

from always_on.core.agents.gateway import AGENT_TOOL_LIMIT, AgentGateway
from always_on.core.agents.mcp_server import PLAN_TOOL, REPORT_TOOL, mcp_server_spec
from always_on.core.agents.spec import AgentSpec
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import AgentEventKind, Phase, PlanContent

SCRIPTED_AGENT = Path(__file__).resolve().with_name("scripted_agent.py")

# --- streaming ----------------------------------------------------------------------------------------------


async def test_streamed_updates_arrive_in_order_as_events(make_gateway, workspace, sink, run_phase):
    gateway = make_gateway(
        {
            "steps": [
                {"op": "thought", "text": "thinking"},
                {"op": "chunks", "count": 3000, "text": "c{i};"},
                {"op": "chunks", "count": 50, "text": "s{i};", "raw": False},
                {"op": "plan", "entries": ["read", "fix"]},
                {"op": "tool_call", "title": "Run tests", "kind": "execute"},
                {"op": "message", "text": "final "},
                {"op": "message", "text": "words"},
                {"op": "update", "update": {"sessionUpdate": "usage_update", "used": 10, "size": 100}},
            ]
        }
    )
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()

    assert result.error is None and result.stop_reason == "end_turn"
    texts = [e.text for e in sink.of(AgentEventKind.MESSAGE)]
    assert texts == [f"c{i};" for i in range(3000)] + [f"s{i};" for i in range(50)] + ["final ", "words"]
    assert result.last_text == "final words"  # the last message, after the tool call
    assert [e.text for e in sink.of(AgentEventKind.THOUGHT)] == ["thinking"]
    assert sink.of(AgentEventKind.PLAN)[0].text == "[pending] read\n[pending] fix"
    tool = sink.of(AgentEventKind.TOOL_CALL)[0]
    assert tool.text == "Run tests" and tool.data["kind"] == "execute"
    assert sink.of(AgentEventKind.USAGE)[0].data["used"] == 10
    assert result.tool_calls == 1
    assert all(e.run_id == "run-test" and e.phase == Phase.EXECUTION for e in sink.events)
    lifecycle = [e.text for e in sink.of(AgentEventKind.LIFECYCLE)]
    assert lifecycle[:2] == ["agent ready: scripted-agent 1, ACP v1", "execution session started"]
    assert lifecycle[-1].startswith("execution phase ended")


async def test_streaming_throughput(make_gateway, workspace, sink, run_phase):
    count = 50_000
    gateway = make_gateway({"steps": [{"op": "chunks", "count": count, "text": "token {i} "}]})
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()
    assert result.error is None
    messages = sink.of(AgentEventKind.MESSAGE)
    assert len(messages) == count  # none lost; the rate itself is measured by `python -m bench events`
    assert [m.text for m in messages[:3]] == ["token 0 ", "token 1 ", "token 2 "]
    assert messages[-1].text == f"token {count - 1} "


# --- policy at the client methods -------------------------------------------------------------------------


async def test_permission_request_answered_by_policy(make_gateway, workspace, sink, run_phase, agent_steps):
    gateway = make_gateway(
        {
            "steps": [
                {
                    "op": "permission",
                    "title": "git push origin main",
                    "kind": "execute",
                    "raw_input": {"command": "git push origin main"},
                },
                {
                    "op": "permission",
                    "title": "Read README.md",
                    "kind": "read",
                    "raw_input": {"path": str(workspace / "README.md")},
                },
            ]
        }
    )
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()

    denied, allowed = agent_steps("permission")
    assert denied["option_id"] == "reject-once"
    assert allowed["option_id"] == "allow-once"
    events = sink.of(AgentEventKind.PERMISSION)
    assert [e.allowed for e in events] == [False, True]
    assert events[0].reason and events[0].data["option_id"] == "reject-once"
    assert result.denials == 1 and result.error is None


async def test_files_confined_to_the_workspace(
    make_gateway, workspace, tmp_path, sink, run_phase, agent_steps
):
    outside = tmp_path / "outside.txt"
    gateway = make_gateway(
        {
            "steps": [
                {"op": "write", "path": str(outside), "content": "escaped"},
                {"op": "write", "path": str(workspace / "../sneaky.txt"), "content": "escaped"},
                {"op": "write", "path": "sub/new.txt", "content": "inside"},
                {"op": "read", "path": str(workspace / "README.md"), "line": 2, "limit": 1},
                {"op": "read", "path": str(tmp_path / "script-0.json")},
            ]
        }
    )
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()

    writes = agent_steps("write")
    assert [w["ok"] for w in writes] == [False, False, True]
    assert "denied by the always-on policy" in writes[0]["error"]
    assert not outside.exists() and not (tmp_path / "sneaky.txt").exists()
    assert (workspace / "sub" / "new.txt").read_text() == "inside"
    reads = agent_steps("read")
    assert reads[0] == {
        "step": "read",
        "path": str(workspace / "README.md"),
        "ok": True,
        "content": "line 2\n",
    }
    assert reads[1]["ok"] is False
    denied = [e for e in sink.events if e.allowed is False]
    assert [e.kind for e in denied] == [
        AgentEventKind.FILE_WRITE,
        AgentEventKind.FILE_WRITE,
        AgentEventKind.FILE_READ,
    ]
    assert all(e.reason for e in denied)
    assert result.denials == 3 and result.tool_calls == 5 and result.error is None


async def test_terminal_commands_run_only_when_allowed(make_gateway, workspace, sink, run_phase, agent_steps):
    marker = workspace / "marker"
    gateway = make_gateway(
        {
            "steps": [
                {
                    "op": "terminal",
                    "command": "sh",
                    "args": ["-c", f"touch {marker} && git push origin main"],
                },
                {"op": "terminal", "command": f"touch {marker}; git push"},
                {"op": "terminal", "command": "echo", "args": ["hello", "terminal"]},
                {"op": "terminal", "command": "echo one && echo two"},
                {"op": "write", "path": "big.py", "content": "print('é' * 3000)\n"},
                {"op": "terminal", "command": sys.executable, "args": ["big.py"], "output_byte_limit": 101},
                {"op": "terminal", "command": "sh", "args": ["-c", "exit 7"]},
                {"op": "terminal", "command": "echo", "args": ["x"], "cwd": "/"},
                {"op": "terminal", "command": "echo", "args": ["x"], "env": {"GIT_DIR": "/elsewhere"}},
            ]
        }
    )
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()

    terms = agent_steps("terminal")
    assert [t["ok"] for t in terms] == [False, False, True, True, True, True, False, False]
    assert not marker.exists()  # the denied commands never ran, not even their harmless first half
    assert terms[2]["output"] == "hello terminal\n" and terms[2]["exit_code"] == 0
    assert terms[3]["output"] == "one\ntwo\n"
    limited = terms[4]
    assert limited["truncated"] is True and len(limited["output"].encode()) <= 101
    assert set(limited["output"].strip()) == {"é"}  # cut on a character boundary
    assert terms[5]["exit_code"] == 7
    assert "outside the workspace" in terms[6]["error"] and "GIT_DIR" in terms[7]["error"]
    denied = [e for e in sink.of(AgentEventKind.TERMINAL) if e.allowed is False]
    assert len(denied) == 4 and all(e.reason for e in denied)
    exits = [e for e in sink.of(AgentEventKind.TERMINAL) if "exit_code" in e.data]
    assert sorted(e.data["exit_code"] for e in exits) == [0, 0, 0, 7]
    assert result.denials == 4 and result.tool_calls == 9


async def test_git_remote_and_config_in_a_worktree_leave_the_user_repo_untouched(
    tmp_path, make_gateway, run_phase, agent_steps
):
    project = make_repo(tmp_path / "project")
    worktree = tmp_path / "workspaces" / "cycle-1"
    git(project, "worktree", "add", "-q", "-b", "always-on/cycle-1", str(worktree))
    config_before = (project / ".git" / "config").read_bytes()
    gateway = make_gateway(
        {
            "steps": [
                {"op": "terminal", "command": "git", "args": ["remote", "add", "evil", "x"]},
                {"op": "terminal", "command": "git", "args": ["config", "user.email", "x"]},
                {"op": "terminal", "command": "git remote add evil2 x"},
                {"op": "terminal", "command": "sh", "args": ["-c", "cd . && git config user.email y"]},
                {"op": "terminal", "command": "git", "args": ["status", "--short"]},
            ]
        },
        cwd=worktree,
    )
    await gateway.start()
    result = await run_phase(gateway, worktree.resolve())
    await gateway.close()

    assert (project / ".git" / "config").read_bytes() == config_before
    terms = agent_steps("terminal")
    assert [t["ok"] for t in terms] == [False, False, False, False, True]
    assert terms[4]["exit_code"] == 0
    assert result.denials == 4


# --- agent faults -----------------------------------------------------------------------------------------


async def test_stderr_reaches_the_stream_without_terminal_escapes(make_gateway, workspace, sink, run_phase):
    """Issue 15: agents' stderr (codex-acp's coloured tracing, hyperlinks, progress bars) reached the stream with
    raw escape codes."""
    lines = [
        "\x1b[2m2026-12-01T05:34:17Z\x1b[0m \x1b[31mERROR\x1b[0m codex_api: failed",
        "see \x1b]8;;https://example.test/doc\x1b\\the docs\x1b]8;;\x1b\\ for more",
        "\x1b[?25l\x1b[2Kprogress 50%\r\x1b(B done",
    ]
    gateway = make_gateway(
        {"steps": [*({"op": "stderr", "text": line} for line in lines), {"op": "message", "text": "ok"}]}
    )
    await gateway.start()
    result = await run_phase(gateway, workspace)
    await gateway.close()
    assert result.error is None
    texts = [e.text for e in sink.of(AgentEventKind.STDERR)]
    assert texts == [
        "2026-12-01T05:34:17Z ERROR codex_api: failed",
        "see the docs for more",
        "progress 50% done",
    ]


async def test_crash_mid_turn_is_agent_crashed_and_next_phase_restarts(
    make_gateway, workspace, sink, run_phase, procs
):
    gateway = make_gateway(
        {
            "phases": {
                "discovery": [
                    {"op": "message", "text": "working on it"},
                    {"op": "stderr", "text": "fatal: out of cheese"},
                    {"op": "crash", "code": 3},
                ],
                "execution": [{"op": "message", "text": "fresh process"}],
            }
        }
    )
    await gateway.start()
    first_pid = gateway.pid
    crashed = await run_phase(gateway, workspace, phase=Phase.DISCOVERY)
    assert crashed.error is not None and crashed.error.code == ErrorCode.AGENT_CRASHED
    assert "exited with code 3" in crashed.error.message and "out of cheese" in crashed.error.message
    assert crashed.last_text == "working on it"
    assert not procs.alive(first_pid)
    # A plan found before the crash still gets executed: the next phase runs on a fresh agent process.
    context = '```always-on-context\n{"phase": "execution"}\n```'
    again = await run_phase(gateway, workspace, prompt=f"Execute the plan.\n\n{context}\n")
    assert gateway.pid != first_pid and procs.alive(gateway.pid)
    assert again.error is None and again.last_text == "fresh process"
    assert any("restarting the agent" in e.text for e in sink.of(AgentEventKind.LIFECYCLE))
    await gateway.close()


async def test_hang_times_out_and_the_agent_is_killed(make_gateway, workspace, run_phase, procs):
    gateway = make_gateway(
        {"steps": [{"op": "message", "text": "thinking hard"}, {"op": "hang"}]}, cancel_grace=0.5
    )
    await gateway.start()
    pid = gateway.pid
    t0 = time.perf_counter()
    result = await run_phase(gateway, workspace, timeout=1.5)
    elapsed = time.perf_counter() - t0
    assert result.error is not None and result.error.code == ErrorCode.AGENT_TIMEOUT
    assert "1.5 s" in result.error.message
    assert elapsed >= 1.5  # it waited for the limit, not less
    assert not procs.alive(pid) and procs.group(pid) == []
    assert result.last_text == "thinking hard"
    await gateway.close()


async def test_timeout_cancels_a_cooperative_agent_which_stays_usable(
    make_gateway, workspace, run_phase, agent_events, procs
):
    gateway = make_gateway({"sessions": [[{"op": "wait_cancel"}], [{"op": "message", "text": "second"}]]})
    await gateway.start()
    pid = gateway.pid
    result = await run_phase(gateway, workspace, timeout=1.0)
    assert result.error.code == ErrorCode.AGENT_TIMEOUT and result.stop_reason == "cancelled"
    assert procs.alive(pid)
    second = await run_phase(gateway, workspace)
    assert second.error is None and second.last_text == "second" and gateway.pid == pid
    await gateway.close()
    assert agent_events("cancel")


async def test_garbage_on_stdout_is_a_protocol_error(make_gateway, workspace, run_phase, procs):
    gateway = make_gateway({"steps": [{"op": "garbage", "text": "Loading model... done"}, {"op": "hang"}]})
    await gateway.start()
    pid = gateway.pid
    result = await run_phase(gateway, workspace, timeout=20)
    assert result.error.code == ErrorCode.AGENT_PROTOCOL_ERROR
    assert "Loading model" in result.error.message
    assert not procs.alive(pid)  # a broken agent is not reused
    await gateway.close()


@pytest.mark.parametrize(
    "script",
    [
        {"on_new_session": "exit"},
        {"on_initialize": "answer_then_exit", "steps": [{"op": "hang"}]},
    ],
)
async def test_exit_after_initialize_is_agent_crashed(make_gateway, workspace, run_phase, script):
    gateway = make_gateway(script)
    await gateway.start()
    result = await run_phase(gateway, workspace)
    assert result.error.code == ErrorCode.AGENT_CRASHED and "exited with code" in result.error.message
    await gateway.close()


@pytest.mark.parametrize(
    ("mode", "code", "fragment"),
    [
        ("exit", ErrorCode.AGENT_CRASHED, "exited with code 3"),
        ("hang", ErrorCode.AGENT_TIMEOUT, "did not answer `initialize`"),
        ("garbage", ErrorCode.AGENT_PROTOCOL_ERROR, "Welcome to SuperAgent"),
        ("bad_version", ErrorCode.AGENT_PROTOCOL_ERROR, "protocol version 99"),
    ],
)
async def test_start_failures_raise_clear_errors(make_gateway, mode, code, fragment):
    # Only the hanging agent needs a short start timeout; the others must fail on their own, even on a slow machine.
    gateway = make_gateway({"on_initialize": mode}, start_timeout=1.5 if mode == "hang" else 60)
    with pytest.raises(AlwaysOnError) as info:
        await gateway.start()
    assert info.value.code == code
    assert fragment in info.value.message and "agent 'scripted'" in info.value.message
    assert gateway.pid is None
    await gateway.close()


async def test_missing_agent_command_is_agent_not_found(workspace, sink, run_phase):
    gateway = AgentGateway(
        AgentSpec(name="ghost", command=["definitely-not-an-agent-xyz"]), on_event=sink, cwd=workspace
    )
    with pytest.raises(AlwaysOnError) as info:
        await gateway.start()
    assert (
        info.value.code == ErrorCode.AGENT_NOT_FOUND and "definitely-not-an-agent-xyz" in info.value.message
    )
    # run_phase reports the same instead of raising
    result = await run_phase(gateway, workspace)
    assert result.error.code == ErrorCode.AGENT_NOT_FOUND
    await gateway.close()


# --- limits ---------------------------------------------------------------------------------------------


async def test_max_tool_calls_counts_updates_and_client_calls(
    make_gateway, workspace, run_phase, agent_steps
):
    gateway = make_gateway(
        {
            "sessions": [
                [{"op": "tool_call", "title": "grep", "count": 5}, {"op": "wait_cancel"}],
                [
                    {"op": "read", "path": "README.md"},
                    {"op": "tool_call", "title": "edit"},
                    {"op": "read", "path": "README.md"},
                    {"op": "wait_cancel"},
                ],
            ]
        }
    )
    await gateway.start()
    updates = await run_phase(gateway, workspace, max_tool_calls=3)
    assert updates.error.code == AGENT_TOOL_LIMIT and "limit of 3 tool calls" in updates.error.message
    assert updates.stop_reason == "cancelled" and updates.tool_calls == 5

    mixed = await run_phase(gateway, workspace, max_tool_calls=2)
    assert mixed.error.code == AGENT_TOOL_LIMIT and mixed.stop_reason == "cancelled"
    reads = agent_steps("read")
    assert [r["ok"] for r in reads] == [True, False] and "limit" in reads[1]["error"]
    await gateway.close()


# --- sessions, MCP tools ----------------------------------------------------------------------------------


@pytest.mark.parametrize("supports_close", [True, False])
async def test_each_phase_session_is_closed(make_gateway, workspace, supports_close, run_phase, agent_events):
    gateway = make_gateway({"supports_close": supports_close, "steps": [{"op": "message", "text": "ok"}]})
    await gateway.start()
    for phase in (Phase.DISCOVERY, Phase.EXECUTION):
        assert (await run_phase(gateway, workspace, phase=phase)).error is None
    await gateway.close()
    sessions = [e["session_id"] for e in agent_events("new_session")]
    closed = [e["session_id"] for e in agent_events("close_session" if supports_close else "cancel")]
    assert len(sessions) == 2 and closed == sessions


async def test_a_cancelled_turn_is_cancelled_once_without_session_close(
    make_gateway, workspace, run_phase, agent_events
):
    """Issue 15: an agent without session/close got session/cancel twice after a timeout (once to stop the turn,
    once more to "close" the session). Once is what ACP asks for."""
    gateway = make_gateway({"supports_close": False, "sessions": [[{"op": "wait_cancel"}]]})
    await gateway.start()
    result = await run_phase(gateway, workspace, timeout=1.0)
    assert result.error.code == ErrorCode.AGENT_TIMEOUT and result.stop_reason == "cancelled"
    await gateway.close()
    session = agent_events("new_session")[0]["session_id"]
    assert [e["session_id"] for e in agent_events("cancel")] == [session]


async def test_discovery_plan_through_mcp_survives_a_crash(
    make_gateway, workspace, tmp_path, run_phase, agent_steps, agent_events, policy_for, valid_plan
):
    outbox = tmp_path / "outbox"
    invalid = {k: v for k, v in valid_plan.items() if k != "verification"}
    gateway = make_gateway(
        {
            "steps": [
                {
                    "op": "mcp",
                    "calls": [
                        {"tool": PLAN_TOOL, "arguments": invalid},
                        {"tool": PLAN_TOOL, "arguments": valid_plan},
                        {"tool": PLAN_TOOL, "arguments": valid_plan},
                    ],
                },
                {"op": "crash", "code": 9},
            ]
        }
    )
    await gateway.start()
    spec = mcp_server_spec(phase=Phase.DISCOVERY, run_id="run-test", outbox=outbox, digest=None)
    result = await run_phase(
        gateway,
        workspace,
        phase=Phase.DISCOVERY,
        policy=policy_for(workspace, writable=False),
        mcp_servers=[spec],
    )
    await gateway.close()

    assert result.error.code == ErrorCode.AGENT_CRASHED
    calls = agent_steps("mcp")
    assert [c["is_error"] for c in calls] == [True, False, True]
    assert "`verification` is missing" in calls[0]["text"] and "plan_quota_exhausted" in calls[2]["text"]
    assert PlanContent.model_validate_json((outbox / "plan.json").read_text()).title == valid_plan["title"]
    sent = agent_events("new_session")[0]["mcp_servers"][0]
    assert sent["name"] == "always-on" and sent["args"][:3] == [
        "-P",
        "-m",
        "always_on.core.agents.mcp_server",
    ]


async def test_report_through_mcp(make_gateway, workspace, tmp_path, run_phase):
    outbox = tmp_path / "outbox"
    gateway = make_gateway(
        {
            "steps": [
                {
                    "op": "mcp",
                    "calls": [
                        {"tool": REPORT_TOOL, "arguments": {"content": "## Steps Performed\nfixed it\n"}}
                    ],
                },
                {"op": "message", "text": "Report submitted."},
            ]
        }
    )
    await gateway.start()
    spec = mcp_server_spec(phase=Phase.REPORT, run_id="run-test", outbox=outbox)
    result = await run_phase(gateway, workspace, phase=Phase.REPORT, mcp_servers=[spec])
    await gateway.close()
    assert result.error is None and result.last_text == "Report submitted."
    assert (outbox / "report.md").read_text() == "## Steps Performed\nfixed it\n"


# --- no process outlives the gateway ----------------------------------------------------------------------


async def test_close_kills_agent_terminals_and_mcp_servers(
    make_gateway, workspace, tmp_path, sink, run_phase, procs
):
    gateway = make_gateway(
        {
            "steps": [
                {"op": "terminal", "command": "sh", "args": ["-c", "sleep 1000 & sleep 1000"], "wait": False},
                {"op": "mcp", "calls": [], "then": [{"op": "message", "text": "ready"}, {"op": "hang"}]},
            ]
        }
    )
    await gateway.start()
    agent_pid = gateway.pid
    phase = asyncio.create_task(
        run_phase(
            gateway,
            workspace,
            phase=Phase.REPORT,
            mcp_servers=[mcp_server_spec(phase=Phase.REPORT, run_id="run-test", outbox=tmp_path / "outbox")],
        )
    )
    started = await sink.wait_for(lambda e: e.kind == AgentEventKind.TERMINAL and e.allowed is True)
    await sink.wait_for(lambda e: e.kind == AgentEventKind.MESSAGE and e.text == "ready")
    term_pid = started.data["pid"]
    assert len(procs.group(term_pid)) >= 2  # the shell and its background sleep
    # The MCP SDK starts stdio servers in a session of their own: they are not in the agent's process group.
    mcp_server = procs.tree(agent_pid)
    assert mcp_server and not set(mcp_server) & set(procs.group(agent_pid))

    await gateway.close()
    result = await asyncio.wait_for(phase, 10)
    assert result.error is not None and result.error.code == ErrorCode.INTERRUPTED
    assert not procs.alive(agent_pid) and not procs.alive(term_pid)
    assert procs.group(agent_pid) == [] and procs.group(term_pid) == []
    assert not any(procs.alive(pid) for pid in mcp_server)
    await gateway.close()  # idempotent


async def test_terminals_are_killed_when_the_phase_ends(make_gateway, workspace, sink, run_phase, procs):
    gateway = make_gateway(
        {"steps": [{"op": "terminal", "command": "sleep", "args": ["1000"], "wait": False}]}
    )
    await gateway.start()
    result = await run_phase(gateway, workspace)
    pid = next(e for e in sink.of(AgentEventKind.TERMINAL) if e.allowed).data["pid"]
    assert result.error is None
    assert not procs.alive(pid)
    await gateway.close()


async def test_a_failing_event_consumer_does_not_break_the_phase(workspace, run_phase, procs):
    seen = []

    def broken_sink(event):
        seen.append(event)
        raise RuntimeError("the store is full")

    script = '{"steps": [{"op": "message", "text": "still fine"}]}'  # --script also takes JSON text
    spec = AgentSpec(name="scripted", command=[sys.executable, str(SCRIPTED_AGENT), "--script", script])
    async with AgentGateway(spec, on_event=broken_sink, cwd=workspace) as gateway:
        pid = gateway.pid
        result = await run_phase(gateway, workspace)
    assert result.error is None and result.last_text == "still fine"
    assert any(e.kind == AgentEventKind.MESSAGE for e in seen)
    assert gateway.pid is None and not procs.alive(pid)

"""A scripted ACP agent: a real subprocess speaking ACP on stdio, doing exactly what a JSON script says.

Used by the gateway tests, the orchestrator tests and the benchmarks. Run it as

    python tests/agents/scripted_agent.py --script steps.json
    python tests/agents/scripted_agent.py --script '{"steps": [...]}'    (JSON text works too)
    SCRIPTED_AGENT_SCRIPT=<json or path> python tests/agents/scripted_agent.py

It imports only `acp` and `mcp` (not `core`), so it runs with the allow-listed agent environment.

Script (all keys optional)::

    {
      "log": "/tmp/x/agent.jsonl",   # JSON lines: protocol events (initialize, new_session, prompt with
                                     # its text and phase, cancel, close_session, turn_end) and step results
      "on_initialize": "ok",         # ok | exit | answer_then_exit | hang | garbage | bad_version
                                     # exit: os._exit(3) unanswered; answer_then_exit: exit(4) 0.2 s later
      "on_new_session": "ok",        # ok | exit (os._exit(3) before answering session/new) | hang
      "auth_methods": [{...}],       # authMethods listed in initialize (ACP AuthMethod objects, as JSON)
      "require_auth": {"at": "new_session", "accept": ["openai-api-key"], "message": "Authentication required"}
                                     # session/new (or "prompt") answers -32000 `message` until `authenticate`
                                     # was called with a method in `accept`; authenticate logs each call
      "report_env": ["NAME", ...],   # initialize logs {"env": {NAME: the value or null}} of its own environment
      "supports_close": false,       # advertise session/close (close_session is then logged)
      "sessions": [[...], [...]],    # steps per session, in order of session/new (1st, 2nd, ...)
      "phases": {"discovery": [...], "execution": [...], "report": [...]},
      "steps": [...]                 # fallback steps for any session
    }

Steps for a session come from `sessions[k-1]`, else `phases[<phase>]` where the phase is the "phase" key of
the prompt's ```always-on-context``` JSON block or, without one, the session index (1 discovery,
2 execution, 3 report), else `steps`. The session index restarts with each agent process. Each step is an
object with an "op":

    {"op": "chunks", "count": N, "text": "chunk {i} ", "raw": true}
        N agent_message_chunk updates ({i} is the index). raw (the default) writes pre-serialised lines in
        batches, fast enough for benchmarks; raw=false sends each one through the SDK.
    {"op": "message", "text": "..."}             one agent_message_chunk
    {"op": "thought", "text": "..."}             one agent_thought_chunk
    {"op": "tool_call", "title": "t", "kind": "execute", "count": 1}
        tool_call updates, each with a new id
    {"op": "plan", "entries": ["a", "b"]}        a plan update
    {"op": "update", "update": {...}}            any raw session/update payload
    {"op": "permission", "title": "git push", "kind": "execute", "raw_input": {...}}
        session/request_permission offering allow_once/allow_always/reject_once; logs the outcome
    {"op": "terminal", "command": "sh", "args": [...], "cwd": null, "env": {}, "output_byte_limit": null,
     "wait": true, "release": true}
        create_terminal (+ wait_for_terminal_exit, terminal_output, release_terminal when wait is true);
        logs terminal_id, exit_code, signal, output, truncated, or the error
    {"op": "write", "path": "...", "content": "..."}              fs/write_text_file; logs ok or the error
    {"op": "read", "path": "...", "line": null, "limit": null}    fs/read_text_file; logs content or error
    {"op": "mcp", "calls": [{"tool": "name", "arguments": {...}}], "then": [...]}
        connect to the session's first MCP server (stdio), call the tools in order and log is_error and
        text of each; then run the "then" steps while the connection (and the server process) is open
    {"op": "stderr", "text": "..."}              a line on stderr
    {"op": "garbage", "text": "not json"}        a raw line on stdout
    {"op": "crash", "code": 3}                   os._exit(code) mid-turn
    {"op": "hang"}                               await an event that never fires (ignores session/cancel)
    {"op": "wait_cancel"}                        block until session/cancel, then end the turn "cancelled"
    {"op": "stop", "reason": "end_turn"}         the turn's stopReason (default end_turn)
    {"op": "error", "code": -32603, "message": "...", "data": {...}}
                                                 answer the prompt with this JSON-RPC error
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from acp import (
    PROTOCOL_VERSION,
    InitializeResponse,
    NewSessionResponse,
    PromptResponse,
    RequestError,
    plan_entry,
    run_agent,
    start_tool_call,
    stdio_streams,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
)
from acp.schema import (
    AgentCapabilities,
    EnvVariable,
    PermissionOption,
    SessionCapabilities,
    SessionCloseCapabilities,
    ToolCallUpdate,
)

CONTEXT_RE = re.compile(r"```always-on-context[ \t]*\r?\n(.*?)\r?\n[ \t]*```", re.DOTALL)
PHASE_BY_INDEX = {1: "discovery", 2: "execution", 3: "report"}


def load_script(path: str | None) -> dict[str, Any]:
    raw = path or os.environ.get("SCRIPTED_AGENT_SCRIPT", "")
    if not raw:
        return {}
    text = raw if raw.lstrip().startswith("{") else Path(raw).read_text()
    return json.loads(text)


class ScriptedAgent:
    def __init__(self, script: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        self.script = script
        self.writer = writer
        self.conn: Any = None
        self.sessions: dict[str, dict[str, Any]] = {}
        self.cancelled: dict[str, asyncio.Event] = {}
        self.authenticated = False
        log = script.get("log")
        self.log_file = open(log, "a", encoding="utf-8") if log else None

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    def log(self, **entry: Any) -> None:
        if self.log_file is not None:
            self.log_file.write(json.dumps(entry, default=str) + "\n")
            self.log_file.flush()

    # --- Agent protocol -------------------------------------------------------------------------------------

    async def initialize(
        self, protocol_version: int, client_capabilities: Any = None, client_info: Any = None, **_: Any
    ) -> InitializeResponse:
        self.log(
            event="initialize",
            pid=os.getpid(),
            env={name: os.environ.get(name) for name in self.script.get("report_env", [])},
            client_capabilities=client_capabilities.model_dump(mode="json", by_alias=True)
            if client_capabilities
            else None,
        )
        mode = self.script.get("on_initialize", "ok")
        if mode == "exit":
            os._exit(3)
        if mode == "hang":
            await asyncio.Event().wait()
        if mode == "answer_then_exit":
            asyncio.get_running_loop().call_later(0.2, os._exit, 4)
        if mode == "garbage":
            self.writer.write(b"Welcome to SuperAgent v1!\n")
            await self.writer.drain()
            await asyncio.Event().wait()
        caps = AgentCapabilities(
            session_capabilities=SessionCapabilities(
                close=SessionCloseCapabilities() if self.script.get("supports_close") else None
            )
        )
        return InitializeResponse.model_validate(
            {
                "protocolVersion": 99 if mode == "bad_version" else PROTOCOL_VERSION,
                "agentCapabilities": caps.model_dump(mode="json", by_alias=True, exclude_none=True),
                "agentInfo": {"name": "scripted-agent", "version": "1"},
                "authMethods": self.script.get("auth_methods", []),
            }
        )

    async def authenticate(self, method_id: str, **_: Any) -> None:
        accepted = method_id in (self.script.get("require_auth") or {}).get("accept", [])
        self.log(event="authenticate", method_id=method_id, accepted=accepted)
        if accepted:
            self.authenticated = True

    def _check_auth(self, at: str) -> None:
        rule = self.script.get("require_auth")
        if rule and rule.get("at", "new_session") == at and not self.authenticated:
            raise RequestError(-32000, rule.get("message", "Authentication required"))

    async def new_session(
        self, cwd: str, mcp_servers: list[Any] | None = None, **_: Any
    ) -> NewSessionResponse:
        if self.script.get("on_new_session") == "exit":
            os._exit(3)
        if self.script.get("on_new_session") == "hang":
            await asyncio.Event().wait()
        self.log(event="new_session_request")
        self._check_auth("new_session")
        session_id = f"sess-{len(self.sessions) + 1}-{uuid.uuid4().hex[:6]}"
        self.sessions[session_id] = {
            "index": len(self.sessions) + 1,
            "cwd": cwd,
            "mcp": list(mcp_servers or []),
        }
        self.cancelled[session_id] = asyncio.Event()
        self.log(
            event="new_session",
            session_id=session_id,
            cwd=cwd,
            mcp_servers=[s.model_dump(mode="json", by_alias=True) for s in mcp_servers or []],
        )
        return NewSessionResponse(session_id=session_id)

    async def cancel(self, session_id: str, **_: Any) -> None:
        self.log(event="cancel", session_id=session_id)
        if session_id in self.cancelled:
            self.cancelled[session_id].set()

    async def close_session(self, session_id: str, **_: Any) -> None:
        self.log(event="close_session", session_id=session_id)

    async def prompt(self, prompt: list[Any], session_id: str, **_: Any) -> PromptResponse:
        session = self.sessions[session_id]
        text = "\n".join(getattr(block, "text", "") or "" for block in prompt)
        phase = self._phase(text, session["index"])
        self.log(event="prompt", session_id=session_id, index=session["index"], phase=phase, text=text)
        self._check_auth("prompt")
        stop = "end_turn"
        for step in self._steps(session["index"], phase):
            result = await self._run(step, session_id, session)
            if isinstance(result, str):
                stop = result
        self.log(event="turn_end", session_id=session_id, stop_reason=stop)
        return PromptResponse(stop_reason=stop)

    # --- steps ----------------------------------------------------------------------------------------------

    @staticmethod
    def _phase(text: str, index: int) -> str | None:
        found = CONTEXT_RE.findall(text or "")
        if found:
            try:
                data = json.loads(found[-1])
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("phase"), str):
                return data["phase"]
        return PHASE_BY_INDEX.get(index)

    def _steps(self, index: int, phase: str | None) -> list[dict[str, Any]]:
        sessions = self.script.get("sessions")
        if isinstance(sessions, list) and index <= len(sessions):
            return sessions[index - 1]
        phases = self.script.get("phases") or {}
        if phase in phases:
            return phases[phase]
        return self.script.get("steps", [])

    async def _run(self, step: dict[str, Any], sid: str, session: dict[str, Any]) -> str | None:
        op = step["op"]
        conn = self.conn
        if op == "chunks":
            template = step.get("text", "chunk {i} ")
            if step.get("raw", True):
                await self._raw_chunks(sid, template, int(step["count"]))
            else:
                for i in range(int(step["count"])):
                    await conn.session_update(
                        session_id=sid, update=update_agent_message_text(template.format(i=i))
                    )
        elif op == "message":
            await conn.session_update(session_id=sid, update=update_agent_message_text(step["text"]))
        elif op == "thought":
            await conn.session_update(session_id=sid, update=update_agent_thought_text(step["text"]))
        elif op == "tool_call":
            for _ in range(int(step.get("count", 1))):
                update = start_tool_call(
                    f"call-{uuid.uuid4().hex[:8]}",
                    step.get("title", "tool"),
                    kind=step.get("kind", "other"),
                    status="pending",
                )
                await conn.session_update(session_id=sid, update=update)
        elif op == "plan":
            entries = [plan_entry(e) for e in step.get("entries", [])]
            await conn.session_update(session_id=sid, update=update_plan(entries))
        elif op == "update":
            await conn._conn.send_notification("session/update", {"sessionId": sid, "update": step["update"]})
        elif op == "permission":
            await self._permission(step, sid)
        elif op == "terminal":
            await self._terminal(step, sid)
        elif op == "write":
            try:
                await conn.write_text_file(session_id=sid, path=step["path"], content=step.get("content", ""))
                self.log(step="write", path=step["path"], ok=True)
            except RequestError as exc:
                self.log(step="write", path=step["path"], ok=False, error=str(exc), data=exc.data)
        elif op == "read":
            try:
                resp = await conn.read_text_file(
                    session_id=sid, path=step["path"], line=step.get("line"), limit=step.get("limit")
                )
                self.log(step="read", path=step["path"], ok=True, content=resp.content)
            except RequestError as exc:
                self.log(step="read", path=step["path"], ok=False, error=str(exc), data=exc.data)
        elif op == "mcp":
            return await self._mcp(step, sid, session)
        elif op == "stderr":
            print(step.get("text", ""), file=sys.stderr, flush=True)
        elif op == "garbage":
            self.writer.write(step.get("text", "this is not json").encode() + b"\n")
            await self.writer.drain()
        elif op == "crash":
            os._exit(int(step.get("code", 3)))
        elif op == "hang":
            self.log(step="hang")
            await asyncio.Event().wait()
        elif op == "wait_cancel":
            self.log(step="wait_cancel")
            await self.cancelled[sid].wait()
            return "cancelled"
        elif op == "stop":
            return step.get("reason", "end_turn")
        elif op == "error":
            raise RequestError(
                int(step.get("code", -32603)), step.get("message", "Internal error"), step.get("data")
            )
        else:
            raise RequestError.invalid_params({"unknown op": op})
        return None

    async def _raw_chunks(self, sid: str, template: str, count: int) -> None:
        head = (
            '{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":'
            + json.dumps(sid)
            + ',"update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":'
        )
        batch: list[str] = []
        for i in range(count):
            batch.append(head + json.dumps(template.format(i=i)) + "}}}}\n")
            if len(batch) == 512:
                self.writer.write("".join(batch).encode())
                batch.clear()
                await self.writer.drain()
        if batch:
            self.writer.write("".join(batch).encode())
            await self.writer.drain()

    async def _permission(self, step: dict[str, Any], sid: str) -> None:
        options = [
            PermissionOption(option_id="allow-once", name="Allow once", kind="allow_once"),
            PermissionOption(option_id="allow-always", name="Always allow", kind="allow_always"),
            PermissionOption(option_id="reject-once", name="Reject", kind="reject_once"),
        ]
        tool_call = ToolCallUpdate(
            tool_call_id=f"perm-{uuid.uuid4().hex[:6]}",
            title=step.get("title"),
            kind=step.get("kind", "execute"),
            raw_input=step.get("raw_input"),
        )
        resp = await self.conn.request_permission(session_id=sid, tool_call=tool_call, options=options)
        outcome = resp.outcome
        self.log(
            step="permission",
            title=step.get("title"),
            outcome=outcome.outcome,
            option_id=getattr(outcome, "option_id", None),
        )

    async def _terminal(self, step: dict[str, Any], sid: str) -> None:
        env = [EnvVariable(name=k, value=v) for k, v in (step.get("env") or {}).items()]
        try:
            created = await self.conn.create_terminal(
                session_id=sid,
                command=step["command"],
                args=step.get("args"),
                env=env or None,
                cwd=step.get("cwd"),
                output_byte_limit=step.get("output_byte_limit"),
            )
        except RequestError as exc:
            self.log(step="terminal", command=step["command"], ok=False, error=str(exc), data=exc.data)
            return
        tid = created.terminal_id
        entry: dict[str, Any] = {
            "step": "terminal",
            "command": step["command"],
            "ok": True,
            "terminal_id": tid,
        }
        if step.get("wait", True):
            exit_status = await self.conn.wait_for_terminal_exit(session_id=sid, terminal_id=tid)
            out = await self.conn.terminal_output(session_id=sid, terminal_id=tid)
            entry.update(
                exit_code=exit_status.exit_code,
                signal=exit_status.signal,
                output=out.output,
                truncated=out.truncated,
            )
            if step.get("release", True):
                await self.conn.release_terminal(session_id=sid, terminal_id=tid)
        self.log(**entry)

    async def _mcp(self, step: dict[str, Any], sid: str, session: dict[str, Any]) -> str | None:
        from mcp import ClientSession
        from mcp.client.stdio import StdioServerParameters, stdio_client

        server = session["mcp"][0]
        params = StdioServerParameters(
            command=server.command,
            args=list(server.args),
            env={e.name: e.value for e in server.env},
            cwd=session["cwd"],
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            for call in step.get("calls", []):
                result = await client.call_tool(call["tool"], call.get("arguments") or {})
                text = "\n".join(getattr(b, "text", "") for b in result.content)
                self.log(step="mcp", tool=call["tool"], is_error=bool(result.is_error), text=text)
            stop = None
            # The "then" steps run while the MCP connection (and its server process) is still open.
            for inner in step.get("then", []):
                stop = await self._run(inner, sid, session) or stop
            return stop


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", default=None)
    args = parser.parse_args()
    script = load_script(args.script)
    reader, writer = await stdio_streams(limit=50 * 1024 * 1024)
    agent = ScriptedAgent(script, writer)
    await run_agent(agent, writer, reader, use_unstable_protocol=bool(script.get("supports_close")))


if __name__ == "__main__":
    asyncio.run(main())

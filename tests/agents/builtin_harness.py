"""A minimal ACP client for driving the built-in agents in tests, over real pipes to a real agent subprocess.

It serves fs reads/writes and terminals (real subprocesses in the requested cwd), records every session update,
and can refuse writes or commands, or hold a command open, to exercise the agents' error and cancel paths.
The MCP server handed to the agent is the product's own (`always_on.core.agents.mcp_server`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import acp
from acp import RequestError, text_block
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    CreateTerminalResponse,
    EnvVariable,
    FileSystemCapabilities,
    Implementation,
    McpServerStdio,
    ReadTextFileResponse,
    RequestPermissionResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    WaitForTerminalExitResponse,
    WriteTextFileResponse,
)

from always_on.core.agents.mcp_server import mcp_server_spec

ROOT = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)
CAPS = ClientCapabilities(fs=FileSystemCapabilities(read_text_file=True, write_text_file=True), terminal=True)


class _Terminal:
    def __init__(self, argv: list[str], proc: asyncio.subprocess.Process | None) -> None:
        self.argv = argv
        self.proc = proc
        self.output = bytearray()
        self.released = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None
        if proc is not None:
            self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(65536):
            self.output.extend(chunk)


class RecordingClient:
    """ACP client side: records updates, serves fs and terminals; `deny_*` return a reason to refuse."""

    def __init__(
        self,
        deny_write: Callable[[str], str | None] = lambda path: None,
        deny_command: Callable[[list[str]], str | None] = lambda argv: None,
        hold_command: Callable[[list[str]], bool] = lambda argv: False,
    ) -> None:
        self.deny_write = deny_write
        self.deny_command = deny_command
        self.hold_command = hold_command
        self.updates: list[tuple[str, Any]] = []
        self.reads: list[str] = []
        self.writes: list[str] = []
        self.commands: list[list[str]] = []
        self.released: list[list[str]] = []
        self.held = asyncio.Event()
        self.terminals: dict[str, _Terminal] = {}

    # --- what tests read -----------------------------------------------------------------------------------

    def messages(self, session_id: str | None = None) -> str:
        return "".join(
            u.content.text
            for sid, u in self.updates
            if u.session_update == "agent_message_chunk" and (session_id is None or sid == session_id)
        )

    def tool_updates(self, session_id: str | None = None) -> list[Any]:
        return [
            u
            for sid, u in self.updates
            if u.session_update in ("tool_call", "tool_call_update")
            and (session_id is None or sid == session_id)
        ]

    def command_lines(self) -> list[str]:
        return [" ".join([Path(a[0]).name, *a[1:]]) for a in self.commands]

    # --- the Client protocol -------------------------------------------------------------------------------

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any], **kw: Any) -> Any:
        return RequestPermissionResponse(
            outcome=AllowedOutcome(option_id=options[0].option_id, outcome="selected")
        )

    async def session_update(self, session_id: str, update: Any, **kw: Any) -> None:
        self.updates.append((session_id, update))

    async def read_text_file(
        self, session_id: str, path: str, line: int | None = None, limit: int | None = None, **kw: Any
    ) -> ReadTextFileResponse:
        self.reads.append(path)
        try:
            lines = Path(path).read_text().splitlines(keepends=True)
        except OSError as exc:
            raise RequestError.resource_not_found(path) from exc
        start = (line or 1) - 1
        return ReadTextFileResponse(content="".join(lines[start : start + limit if limit else None]))

    async def write_text_file(
        self, session_id: str, path: str, content: str, **kw: Any
    ) -> WriteTextFileResponse:
        reason = self.deny_write(path)
        if reason:
            raise RequestError(-32000, f"denied by policy: {reason}", {"path": path})
        Path(path).write_text(content)
        self.writes.append(path)
        return WriteTextFileResponse()

    async def create_terminal(
        self,
        session_id: str,
        command: str,
        args: list[str] | None = None,
        env: list[EnvVariable] | None = None,
        cwd: str | None = None,
        output_byte_limit: int | None = None,
        **kw: Any,
    ) -> CreateTerminalResponse:
        argv = [command, *(args or [])]
        reason = self.deny_command(argv)
        if reason:
            raise RequestError(-32000, f"denied by policy: {reason}", {"command": argv})
        self.commands.append(argv)
        tid = uuid.uuid4().hex[:8]
        if self.hold_command(argv):
            self.terminals[tid] = _Terminal(argv, None)
            self.held.set()
            return CreateTerminalResponse(terminal_id=tid)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **{e.name: e.value for e in env or []}},
        )
        self.terminals[tid] = _Terminal(argv, proc)
        return CreateTerminalResponse(terminal_id=tid)

    async def wait_for_terminal_exit(
        self, session_id: str, terminal_id: str, **kw: Any
    ) -> WaitForTerminalExitResponse:
        term = self.terminals[terminal_id]
        if term.proc is None:
            await term.released.wait()
            return WaitForTerminalExitResponse(exit_code=None, signal="SIGKILL")
        code = await term.proc.wait()
        if term.reader:
            await term.reader
        return WaitForTerminalExitResponse(exit_code=code)

    async def terminal_output(self, session_id: str, terminal_id: str, **kw: Any) -> TerminalOutputResponse:
        term = self.terminals[terminal_id]
        code = term.proc.returncode if term.proc else None
        return TerminalOutputResponse(
            output=term.output.decode(errors="replace"),
            truncated=False,
            exit_status=TerminalExitStatus(exit_code=code) if code is not None else None,
        )

    async def release_terminal(self, session_id: str, terminal_id: str, **kw: Any) -> None:
        term = self.terminals.pop(terminal_id, None)
        if term is None:
            return
        self.released.append(term.argv)
        term.released.set()
        if term.proc and term.proc.returncode is None:
            term.proc.kill()
            await term.proc.wait()

    async def kill_terminal(self, session_id: str, terminal_id: str, **kw: Any) -> None:
        term = self.terminals.get(terminal_id)
        if term and term.proc and term.proc.returncode is None:
            term.proc.kill()

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(method)

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None


def agent_env(**extra: str) -> dict[str, str]:
    return {
        "PATH": os.pathsep.join([BIN, os.environ.get("PATH", "")]),
        "ALWAYS_ON_HOME": os.environ.get("ALWAYS_ON_HOME", ""),
        **extra,
    }


@contextlib.asynccontextmanager
async def spawn(name: str, client: RecordingClient, **env: str) -> AsyncIterator[tuple[Any, Any]]:
    """`python -m always_on.core.agents.builtin <name>` on real pipes, initialized; yields (connection, process)."""
    async with acp.spawn_agent_process(
        client,
        sys.executable,
        "-P",
        "-m",
        "always_on.core.agents.builtin",
        name,
        env=agent_env(**env),
        cwd=ROOT,
        transport_kwargs={"stderr": None},
    ) as (conn, proc):
        await asyncio.wait_for(
            conn.initialize(
                protocol_version=acp.PROTOCOL_VERSION,
                client_capabilities=CAPS,
                client_info=Implementation(name="builtin-test-client", version="0"),
            ),
            timeout=30,
        )
        yield conn, proc


def mcp_server(phase: str, outbox: Path, script: Path | None = None) -> McpServerStdio:
    """The product's MCP server for a phase (or a test script wrapping it), as ACP's session/new entry."""
    spec = mcp_server_spec(phase=phase, run_id="R-test", outbox=outbox)
    args = list(spec.args)
    if script is not None:
        args = [str(script), *args[args.index("always_on.core.agents.mcp_server") + 1 :]]
    env = dict(spec.env)
    return McpServerStdio(
        name=spec.name,
        command=spec.command,
        args=args,
        env=[EnvVariable(name=k, value=v) for k, v in env.items()],
    )


def context_prompt(phase: str, **fields: Any) -> list[Any]:
    ctx = {
        "phase": phase,
        "run_id": "R-test",
        "language": "en",
        "tools": [],
        "limits": {},
        "existing_plans": [],
        "plan": None,
        "plan_id": None,
        "files_changed": [],
        "digest": [],
        **fields,
    }
    text = f"Do the {phase} phase of always-on.\n\n```always-on-context\n{json.dumps(ctx, indent=2)}\n```\n"
    return [text_block(text)]


async def prompt(conn: Any, session_id: str, blocks: list[Any], timeout: float = 60) -> Any:
    return await asyncio.wait_for(conn.prompt(session_id=session_id, prompt=blocks), timeout=timeout)

"""Plumbing shared by the built-in ACP agents: sessions, the context block, and every action through the client.

Files are read and written, and commands run, only through the ACP client (fs and terminal methods), so the
runtime's permission policy sees everything. A refusal comes back as a value the agent reports, never as a crash.
The session's MCP servers (the always-on tools) are opened per turn, inside the prompt's own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import shlex
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from acp import (
    PROTOCOL_VERSION,
    InitializeResponse,
    NewSessionResponse,
    PromptResponse,
    RequestError,
    start_tool_call,
    text_block,
    tool_content,
    update_agent_message_text,
    update_tool_call,
)
from acp.schema import (
    AgentCapabilities,
    ClientCapabilities,
    Implementation,
    McpServerStdio,
    ToolCallLocation,
)

log = logging.getLogger(__name__)

VERSION = "0.1.0"
OUTPUT_LIMIT = 1_000_000  # bytes of terminal output kept by the client
SHOWN_OUTPUT = 4_000  # characters of output attached to a tool-call update
CONTEXT_RE = re.compile(r"```always-on-context[ \t]*\r?\n(.*?)\r?\n[ \t]*```", re.DOTALL)
SHELL_CHARS = re.compile(r"[|&;<>()$`\\*?~{}\[\]\n]")


def parse_context(text: str) -> dict[str, Any] | None:
    """The runtime's ```always-on-context``` JSON block (the last one in the prompt), or None when absent/bad."""
    matches = CONTEXT_RE.findall(text or "")
    if not matches:
        return None
    try:
        data = json.loads(matches[-1])
    except json.JSONDecodeError:
        log.warning("the always-on-context block is not valid JSON; ignoring it")
        return None
    return data if isinstance(data, dict) else None


def prompt_text(blocks: list[Any]) -> str:
    """The text of a prompt's content blocks (text and embedded text resources), in order."""
    parts: list[str] = []
    for block in blocks:
        text = getattr(block, "text", None)
        if text is None:
            resource = getattr(block, "resource", None)
            text = getattr(resource, "text", None)
        if isinstance(text, str):
            parts.append(text)
    return "\n".join(parts)


def find_program(name: str) -> str:
    """The bare name when it is on PATH (terminals get the same PATH), else the copy next to this interpreter
    (a venv's bin that is not on PATH, e.g. under pipx), else the bare name and the client decides."""
    if shutil.which(name):
        return name
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


BUNDLED_TOOLS = ("ruff",)  # programs always-on itself depends on, so they are in its own environment


def bundled_program(name: str) -> str:
    """always-on's own copy of a tool it ships with (ruff: where pip installed it for this interpreter, found
    with ruff's `find_ruff_bin`), so tidy runs the ruff version always-on was built with, activated venv or not.
    Other names, or no copy: `find_program`."""
    if name == "ruff":
        try:
            from ruff import find_ruff_bin

            return os.fsdecode(find_ruff_bin())
        except (ImportError, FileNotFoundError):
            pass
    return find_program(name)


_COMMAND_START = re.compile(r"(^|[;&|(`]\s*|\$\(\s*|\n\s*)(" + "|".join(BUNDLED_TOOLS) + r")(?=[\s;&|)`]|$)")


def with_bundled_tools(argv: list[str]) -> list[str]:
    """`ruff ...` runs from always-on's environment when it is not on PATH (always-on started from a venv that is
    not activated, e.g. `~/.venvs/always-on/bin/always-on`); in `sh -c` lines too, where ruff starts a command."""
    if not argv:
        return argv
    if argv[0] in BUNDLED_TOOLS and not shutil.which(argv[0]):
        return [bundled_program(argv[0]), *argv[1:]]
    if argv[0] == "sh" and len(argv) == 3 and argv[1] == "-c":
        line = _COMMAND_START.sub(
            lambda m: (
                m.group(1)
                + (shlex.quote(bundled_program(m.group(2))) if not shutil.which(m.group(2)) else m.group(2))
            ),
            argv[2],
        )
        return [*argv[:2], line]
    return argv


def command_argv(line: str) -> list[str]:
    """Split a command line for create_terminal; shell syntax goes to `sh -c` so the client's policy parses it."""
    if SHELL_CHARS.search(line.replace("\\ ", "")):
        return ["sh", "-c", line]
    try:
        argv = shlex.split(line)
    except ValueError:
        return ["sh", "-c", line]
    return argv or ["sh", "-c", line]


def clip(text: str, limit: int = SHOWN_OUTPUT) -> str:
    if len(text) <= limit:
        return text
    return text[: limit // 2] + f"\n… [{len(text) - limit} characters cut] …\n" + text[-limit // 2 :]


@dataclass
class CommandResult:
    """One command run through an ACP terminal. `error` is set when it could not run at all (refused, missing)."""

    command: str
    exit_code: int | None = None
    output: str = ""
    truncated: bool = False
    signal: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_code == 0

    def status(self) -> str:
        if self.error is not None:
            return f"not run: {self.error}"
        if self.signal:
            return f"killed by {self.signal}"
        return f"exit {self.exit_code}"

    def markdown(self, limit: int = SHOWN_OUTPUT) -> str:
        body = self.error if self.error is not None else (self.output.rstrip() or "(no output)")
        body = clip(body, limit).replace("```", "ˋˋˋ")
        return f"`$ {self.command}` ({self.status()})\n\n```text\n{body}\n```"


@dataclass
class ToolOutcome:
    ok: bool
    text: str


@dataclass
class Session:
    id: str
    cwd: str
    mcp_servers: list[McpServerStdio] = field(default_factory=list)
    task: asyncio.Task[Any] | None = None
    cancelled: bool = False


class McpTools:
    """The session's stdio MCP servers, connected for one turn (async context manager; same task throughout)."""

    def __init__(self, servers: list[McpServerStdio]) -> None:
        self.servers = servers
        self.tools: dict[str, tuple[Any, Any]] = {}  # name -> (ClientSession, mcp Tool)
        self.problems: list[str] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        from mcp.client.session import ClientSession
        from mcp.client.stdio import StdioServerParameters, stdio_client

        await self._stack.__aenter__()
        for server in self.servers:
            try:
                params = StdioServerParameters(
                    command=server.command, args=list(server.args), env={e.name: e.value for e in server.env}
                )
                read, write = await self._stack.enter_async_context(stdio_client(params, errlog=sys.stderr))
                client = await self._stack.enter_async_context(ClientSession(read, write))
                await client.initialize()
                listing = await client.list_tools()
            except Exception as exc:  # noqa: BLE001 - a broken tool server must not take the agent down
                log.warning("MCP server %s failed: %s", server.name, exc)
                self.problems.append(f"MCP server '{server.name}' could not be started: {exc}")
                continue
            for tool in listing.tools:
                name = tool.name if tool.name not in self.tools else f"{server.name}__{tool.name}"
                self.tools[name] = (client, tool)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self._stack.__aexit__(None, None, None)

    def has(self, name: str) -> bool:
        return name in self.tools

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        if name not in self.tools:
            return ToolOutcome(False, f"tool '{name}' is not offered in this session")
        client, tool = self.tools[name]
        try:
            result = await client.call_tool(tool.name, arguments)
        except Exception as exc:  # noqa: BLE001 - the tool's failure is reported to the caller
            return ToolOutcome(False, f"calling {name} failed: {exc}")
        parts = [getattr(c, "text", "") for c in result.content if getattr(c, "text", None)]
        if not parts and result.structured_content is not None:
            parts.append(json.dumps(result.structured_content))
        return ToolOutcome(not result.is_error, "\n".join(parts))


class Turn:
    """One prompt turn: messages, tool-call updates, and fs/terminal actions through the client."""

    _ids = itertools.count(1)

    def __init__(self, conn: Any, session: Session, caps: ClientCapabilities | None) -> None:
        self.conn = conn
        self.session = session
        self.caps = caps or ClientCapabilities()

    @property
    def can_run(self) -> bool:
        return bool(self.caps.terminal)

    @property
    def can_read(self) -> bool:
        return bool(self.caps.fs and self.caps.fs.read_text_file)

    @property
    def can_write(self) -> bool:
        return bool(self.caps.fs and self.caps.fs.write_text_file)

    def path(self, path: str) -> str:
        """Absolute path for the client: relative paths are taken from the session's cwd."""
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else Path(self.session.cwd) / p)

    async def say(self, text: str) -> None:
        """One whole message; ends with a newline so consecutive messages never run together in a transcript."""
        if not text.endswith("\n"):
            text += "\n"
        await self.conn.session_update(session_id=self.session.id, update=update_agent_message_text(text))

    async def tool_start(
        self, title: str, kind: str, raw_input: Any = None, paths: list[str] | None = None
    ) -> str:
        call_id = f"call-{next(self._ids)}"
        locations = [ToolCallLocation(path=p) for p in paths] if paths else None
        await self.conn.session_update(
            session_id=self.session.id,
            update=start_tool_call(
                call_id, title, kind=kind, status="in_progress", raw_input=raw_input, locations=locations
            ),
        )
        return call_id

    async def tool_end(self, call_id: str, ok: bool, text: str, raw_output: Any = None) -> None:
        await self.conn.session_update(
            session_id=self.session.id,
            update=update_tool_call(
                call_id,
                status="completed" if ok else "failed",
                content=[tool_content(text_block(clip(text)))] if text else None,
                raw_output=raw_output,
            ),
        )

    async def run(
        self,
        argv: list[str],
        *,
        display: str | None = None,
        cwd: str | None = None,
        title: str | None = None,
        ok_codes: tuple[int, ...] = (0,),
    ) -> CommandResult:
        """Run a command in a client terminal, reported as an `execute` tool call; never raises for a refusal."""
        display = display or shlex.join(argv)
        call_id = await self.tool_start(
            title or display, "execute", {"command": display, "cwd": cwd or self.session.cwd}
        )
        result = await self.run_quiet(argv, display=display, cwd=cwd)
        ok = result.error is None and result.exit_code in ok_codes
        await self.tool_end(
            call_id,
            ok,
            result.error or result.output or result.status(),
            {"exit_code": result.exit_code, "truncated": result.truncated},
        )
        return result

    async def run_quiet(
        self, argv: list[str], *, display: str | None = None, cwd: str | None = None
    ) -> CommandResult:
        display = display or shlex.join(argv)
        if not self.can_run:
            return CommandResult(display, error="the client does not offer terminals (terminal capability)")
        sid = self.session.id
        try:
            created = await self.conn.create_terminal(
                session_id=sid,
                command=argv[0],
                args=argv[1:],
                cwd=cwd or self.session.cwd,
                output_byte_limit=OUTPUT_LIMIT,
            )
        except RequestError as exc:
            return CommandResult(display, error=describe_error(exc))
        tid = created.terminal_id
        try:
            exited = await self.conn.wait_for_terminal_exit(session_id=sid, terminal_id=tid)
            out = await self.conn.terminal_output(session_id=sid, terminal_id=tid)
        except RequestError as exc:
            return CommandResult(display, error=describe_error(exc))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.conn.release_terminal(session_id=sid, terminal_id=tid))
        code = exited.exit_code
        if code is None and out.exit_status is not None:
            code = out.exit_status.exit_code
        return CommandResult(
            display, exit_code=code, output=out.output, truncated=out.truncated, signal=exited.signal
        )

    async def read_text(self, path: str, line: int | None = None, limit: int | None = None) -> ToolOutcome:
        if not self.can_read:
            return ToolOutcome(False, "the client does not offer fs/read_text_file")
        try:
            resp = await self.conn.read_text_file(
                session_id=self.session.id, path=self.path(path), line=line, limit=limit
            )
        except RequestError as exc:
            return ToolOutcome(False, describe_error(exc))
        return ToolOutcome(True, resp.content)

    async def write_text(self, path: str, content: str) -> ToolOutcome:
        if not self.can_write:
            return ToolOutcome(False, "the client does not offer fs/write_text_file")
        try:
            await self.conn.write_text_file(session_id=self.session.id, path=self.path(path), content=content)
        except RequestError as exc:
            return ToolOutcome(False, describe_error(exc))
        return ToolOutcome(True, f"wrote {len(content)} characters to {path}")


def describe_error(exc: RequestError) -> str:
    """A JSON-RPC error as one readable line (message plus any details the client gave)."""
    text = str(exc)
    data = exc.data
    if isinstance(data, dict):
        detail = data.get("details") or data.get("reason") or data.get("message")
        if detail:
            text = f"{text}: {detail}" if str(detail) not in text else text
        elif data:
            text = f"{text}: {json.dumps(data)[:300]}"
    elif data:
        text = f"{text}: {data}"
    return text


class BuiltinAgent:
    """ACP agent skeleton: initialize, sessions (several per process), prompt turns in their own task, cancel.

    Subclasses implement `turn(turn, text)` and return an ACP stop reason.
    """

    name = "builtin"
    title = "always-on built-in agent"

    def __init__(self) -> None:
        self.conn: Any = None
        self.client_caps: ClientCapabilities | None = None
        self.sessions: dict[str, Session] = {}

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    async def initialize(
        self,
        protocol_version: int,
        client_capabilities: ClientCapabilities | None = None,
        client_info: Implementation | None = None,
        **kwargs: Any,
    ) -> InitializeResponse:
        self.client_caps = client_capabilities
        return InitializeResponse(
            protocol_version=min(protocol_version, PROTOCOL_VERSION),
            agent_capabilities=AgentCapabilities(load_session=False),
            agent_info=Implementation(name=f"always-on-{self.name}", title=self.title, version=VERSION),
        )

    async def new_session(
        self,
        cwd: str,
        additional_directories: list[str] | None = None,
        mcp_servers: list[Any] | None = None,
        **kwargs: Any,
    ) -> NewSessionResponse:
        stdio = [s for s in (mcp_servers or []) if isinstance(s, McpServerStdio)]
        session = Session(id=f"{self.name}-{uuid.uuid4().hex[:12]}", cwd=cwd, mcp_servers=stdio)
        self.sessions[session.id] = session
        return NewSessionResponse(session_id=session.id)

    async def close_session(self, session_id: str, **kwargs: Any) -> None:
        session = self.sessions.pop(session_id, None)
        if session and session.task:
            session.cancelled = True
            session.task.cancel()

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        session = self.sessions.get(session_id)
        if session and session.task and not session.task.done():
            session.cancelled = True
            session.task.cancel()

    async def prompt(self, session_id: str, prompt: list[Any], **kwargs: Any) -> PromptResponse:
        session = self.sessions.get(session_id)
        if session is None:
            raise RequestError.invalid_params({"sessionId": f"unknown session '{session_id}'"})
        if session.task is not None and not session.task.done():
            raise RequestError.invalid_request({"details": "a prompt is already running in this session"})
        session.cancelled = False
        turn = Turn(self.conn, session, self.client_caps)
        session.task = asyncio.ensure_future(self.turn(turn, prompt_text(prompt)))
        try:
            stop = await session.task
        except asyncio.CancelledError:
            if session.cancelled:
                return PromptResponse(stop_reason="cancelled")
            raise
        finally:
            session.task = None
        return PromptResponse(stop_reason=stop)

    async def turn(self, turn: Turn, text: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

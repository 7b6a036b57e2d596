"""The agent process: how it is started, the stdio transport that frames its JSON-RPC, and how it is stopped.

`start_agent_process` is the one place the agent process is launched (an OS sandbox wraps it there). The agent
runs in its own session and process group, so that `AgentProcess.stop` takes its children (MCP servers, tools)
with it, including those that left the group.

Our own transport rather than the SDK's: non-JSON-RPC output on stdout is a protocol fault (the SDK silently
skips it), and `session/update` notifications are handed to `on_update` inline from the parsed dict, in stream
order, without a task and a model validation each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from acp import Client, connect_to_agent
from acp.schema import InitializeResponse

from always_on.core.agents.gateway.stall import Activity
from always_on.core.agents.policy import agent_environment
from always_on.core.agents.spec import AgentSpec
from always_on.core.agents.terminals import kill_tree, process_tree
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import ErrorInfo

_STREAM_LIMIT = 1 << 20  # asyncio reader buffer; longer lines are reassembled, up to _MAX_MESSAGE
_MAX_MESSAGE = 64 << 20
_STDERR_LINES = 40
# Terminal escapes in an agent's logs (colours of codex-acp's tracing, hyperlinks, cursor moves) are noise in the
# stream and the error messages: CSI sequences, OSC strings (ended by BEL or ST), two-byte escapes, and the other
# C0 controls but tab.
_ANSI_RE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]|[\x00-\x08\x0b-\x1f\x7f]"
)
FAULT_SETTLE = 3.0  # after the pipe closes, how long to wait for the exit status that explains it


async def start_agent_process(spec: AgentSpec, cwd: Path) -> asyncio.subprocess.Process:
    """Start the agent's command line in `cwd`, stdio piped, in a new session (process group), with the
    allow-listed environment plus the agent's configured env and the variables it is passed (`pass_env`: its
    credentials and endpoints, for this process only), see `agent_environment`.

    Raises AlwaysOnError: agent_not_found (no command, not found, not executable), not_a_directory, or
    config_invalid (a configured variable that would bypass the policy).
    """
    argv: Sequence[str] = list(spec.command)
    name = spec.name
    if not argv:
        raise AlwaysOnError(ErrorCode.AGENT_NOT_FOUND, f"agent '{name}' has an empty command line")
    if not cwd.is_dir():
        raise AlwaysOnError(
            ErrorCode.NOT_A_DIRECTORY, f"cannot start agent '{name}': {cwd} is not a directory"
        )
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(cwd),
            env=agent_environment(extra=spec.env, pass_env=spec.pass_env),
            start_new_session=True,
            limit=_STREAM_LIMIT,
        )
    except FileNotFoundError:
        install = f"install it: {spec.install_hint}" if spec.install_hint else "install it"
        raise AlwaysOnError(
            ErrorCode.AGENT_NOT_FOUND,
            f"agent '{name}': command '{argv[0]}' was not found; is it installed and on PATH?",
            hint=f"{install}, or set its command line with `command` in [agents.{name}]",
        ) from None
    except PermissionError:
        raise AlwaysOnError(
            ErrorCode.AGENT_NOT_FOUND, f"agent '{name}': command '{argv[0]}' is not executable"
        ) from None
    except OSError as exc:
        raise AlwaysOnError(
            ErrorCode.AGENT_NOT_FOUND, f"agent '{name}' could not be started: {exc}"
        ) from None


class StdioTransport:
    """acp Transport over the agent's stdio: strict JSON-RPC framing, session/update handled inline."""

    def __init__(
        self, agent: AgentProcess, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._agent = agent
        self._reader = reader
        self._writer = writer
        self._closed = False

    async def send(self, message: dict[str, Any]) -> None:
        if self._closed:
            raise ConnectionError("the connection to the agent is closed")
        if "method" not in message and "id" in message:  # our answer to one of the agent's requests
            activity = self._agent.activity
            activity.waiting.discard(message["id"])
            activity.touch()
        try:
            self._writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            raise ConnectionError(f"cannot write to the agent: {exc}") from exc

    async def receive(self) -> dict[str, Any] | None:
        on_update = self._agent.on_update
        activity = self._agent.activity
        while True:
            line = await self._read_line()
            if line is None:
                return None
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if (
                not isinstance(message, dict)
                or message.get("jsonrpc") != "2.0"
                or not (isinstance(message.get("method"), str) or "id" in message)
            ):
                self._agent.protocol_fault(
                    f"wrote something that is not JSON-RPC on stdout: {line[:200].decode('utf-8', 'replace')!r}"
                )
                return None
            activity.touch()
            if message.get("method") == "session/update" and "id" not in message:
                on_update(message.get("params"))
                continue
            if "method" in message and "id" in message:  # a request to the client: the agent now waits on us
                activity.waiting.add(message["id"])
            return message

    async def _read_line(self) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                try:
                    line = await self._reader.readuntil(b"\n")
                except asyncio.LimitOverrunError as exc:
                    part = await self._reader.readexactly(exc.consumed)
                    chunks.append(part)
                    size += len(part)
                    if size > _MAX_MESSAGE:
                        self._agent.protocol_fault(f"sent a message larger than {_MAX_MESSAGE} bytes")
                        return None
                    continue
                chunks.append(line)
                return b"".join(chunks)
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip() or chunks:
                self._agent.protocol_fault("ended its output in the middle of a message")
            else:
                self._agent.on_eof()
            return None
        except (OSError, RuntimeError):
            self._agent.on_eof()
            return None

    async def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            self._writer.close()


class AgentProcess:
    """One running agent: its ACP connection, stderr tail, activity, what it said in `initialize`, and the first
    fault that broke it.

    `client` answers the agent's requests; `on_update` gets each session/update's params and `on_stderr` each
    stderr line, both as they arrive.
    """

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        *,
        spec: AgentSpec,
        client: Client,
        on_update: Callable[[Any], None],
        on_stderr: Callable[[str], None],
    ) -> None:
        self.process = process
        self.pid = process.pid
        self.spec = spec
        self.activity = Activity()
        self.initialized: InitializeResponse | None = None
        self.authenticated_with: str | None = None  # the ACP auth method used (once per process)
        self.announced = False  # its initialize response is in the event log
        self.start_timeout = (
            60.0  # initialize, authenticate, session/new: each within this (the gateway sets it)
        )
        self.on_update = on_update
        self._on_stderr = on_stderr
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES)
        self.stderr_count = 0  # lines written so far (what came after a point: `recent_stderr`)
        self.fault: asyncio.Future[ErrorInfo] = asyncio.get_running_loop().create_future()
        self.stopping = False
        self.supports_close = False
        assert process.stdout is not None and process.stdin is not None
        self.transport = StdioTransport(self, process.stdout, process.stdin)
        self.conn = connect_to_agent(client, self.transport)
        self._stderr_task = asyncio.create_task(self._read_stderr(), name=f"agent-stderr-{self.pid}")
        self._watch_task = asyncio.create_task(self._watch(), name=f"agent-watch-{self.pid}")

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and not self.fault.done() and not self.stopping

    def recent_stderr(self, since: int, limit: int = _STDERR_LINES) -> list[str]:
        """Non-empty stderr lines written after the first `since` lines (at most `limit`, the latest)."""
        count = min(self.stderr_count - since, len(self.stderr_tail))
        lines = list(self.stderr_tail)[len(self.stderr_tail) - count :] if count > 0 else []
        return [line for line in lines if line.strip()][-limit:]

    def tail(self) -> str:
        lines = [line for line in self.stderr_tail if line.strip()]
        return ("; stderr: " + " | ".join(lines[-10:]))[-2000:] if lines else ""

    def set_fault(self, code: str, message: str) -> None:
        if not self.fault.done():
            self.fault.set_result(ErrorInfo(code=code, message=message))

    def protocol_fault(self, detail: str) -> None:
        """A real protocol violation; `detail` continues "agent 'NAME' ..."."""
        self.set_fault(ErrorCode.AGENT_PROTOCOL_ERROR, f"agent '{self.spec.name}' {detail}")

    def on_eof(self) -> None:
        """stdout closed: the exit watcher explains why; an agent still running without stdout is broken."""
        if not self.stopping:
            asyncio.get_running_loop().call_later(FAULT_SETTLE, self._eof_without_exit)

    def _eof_without_exit(self) -> None:
        if self.process.returncode is None and not self.stopping:
            self.protocol_fault("closed its stdout but kept running")

    async def _read_stderr(self) -> None:
        """Drain stderr (a full pipe would block the agent), keeping a tail for error messages."""
        stream = self.process.stderr
        assert stream is not None
        pending = b""
        with contextlib.suppress(Exception):
            while chunk := await stream.read(65_536):
                *lines, pending = (pending + chunk).split(b"\n")
                if len(pending) > 65_536:  # no newline in sight: treat what we have as a line
                    lines.append(pending)
                    pending = b""
                for raw in lines:
                    self._stderr_line(raw)
        if pending:
            self._stderr_line(pending)

    def _stderr_line(self, raw: bytes) -> None:
        line = _ANSI_RE.sub("", raw.decode("utf-8", "replace")).rstrip()
        self.stderr_tail.append(line[:500])
        self.stderr_count += 1
        self._on_stderr(line)

    async def _watch(self) -> None:
        code = await self.process.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 1.0)
        if self.stopping:
            return
        how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
        self.set_fault(ErrorCode.AGENT_CRASHED, f"agent '{self.spec.name}' {how}{self.tail()}")

    async def wait_fault(self, timeout: float) -> ErrorInfo | None:
        with contextlib.suppress(asyncio.TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self.fault), timeout)
        return None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def stop(self, *, graceful: bool) -> None:
        """Stop the agent and everything in its process group (its MCP servers included); reap the process."""
        self.stopping = True
        self.set_fault(ErrorCode.INTERRUPTED, f"agent '{self.spec.name}' was stopped by the runtime")
        descendants = process_tree(self.pid)  # before anything exits: orphans lose their link to the agent
        await self.transport.close()  # closes stdin: well-behaved agents exit on EOF
        if graceful:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.process.wait(), 1.0)
            if self.process.returncode is None:
                self.signal_group(signal.SIGTERM)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.process.wait(), 1.0)
        # Also takes leftover group members after the leader exited, and children in their own sessions.
        kill_tree(self.pid, descendants + [p for p in process_tree(self.pid) if p not in descendants])
        with contextlib.suppress(Exception):
            await self.process.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.conn.close(), 2.0)
        for task in (self._stderr_task, self._watch_task):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"

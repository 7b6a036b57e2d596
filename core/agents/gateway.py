"""The ACP client gateway (DESIGN §4, §5): one agent process per fire, one ACP session per phase.

The runtime is the agent's *client*: it advertises file-system and terminal capabilities so that reads, writes
and commands come back through here, where the permission policy is enforced; it answers permission requests
itself; it turns every `session/update` into an AgentEvent; and it bounds each phase (wall-clock timeout, max
tool calls). Whatever the agent does — crash, hang, write garbage, exceed its limits — `run_phase` returns a
PhaseResult with an error code; it never raises for an agent fault and never lets a process outlive `close()`.

Two deliberate departures from the plain SDK path:
- our own stdio transport, so that non-JSON-RPC output is detected (the SDK silently skips it) and so
  that `session/update` notifications are handled inline from the parsed dict, in stream order, without a
  task and a model validation each (the UI streams tens of thousands of chunks);
- the agent and each terminal run in their own process group, so that kill takes their children too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from acp import PROTOCOL_VERSION, RequestError, connect_to_agent, text_block
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    CreateTerminalResponse,
    DeniedOutcome,
    EnvVariable,
    FileSystemCapabilities,
    Implementation,
    KillTerminalResponse,
    McpServerStdio,
    ReadTextFileResponse,
    ReleaseTerminalResponse,
    RequestPermissionResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    WaitForTerminalExitResponse,
    WriteTextFileResponse,
)
from pydantic import BaseModel, ValidationError

from always_on.core.agents.spec import AgentSpec, McpServerSpec, PhaseLimits
from always_on.core.agents.terminals import Terminal, TerminalManager, kill_tree, process_tree
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import AgentEvent, AgentEventKind, ErrorInfo, Phase

if TYPE_CHECKING:
    from always_on.core.agents.policy import Policy

log = logging.getLogger(__name__)

#: Error code of a phase stopped for exceeding `PhaseLimits.max_tool_calls` (not yet a member of ErrorCode).
AGENT_TOOL_LIMIT = ErrorCode.AGENT_TOOL_LIMIT
#: JSON-RPC error code of a request the policy refused (ACP reserves -32000..-32099 for implementations).
POLICY_DENIED_RPC_CODE = -32003

_STREAM_LIMIT = 1 << 20  # asyncio reader buffer; longer lines are reassembled, up to _MAX_MESSAGE
_MAX_MESSAGE = 64 << 20
_MAX_READ_BYTES = 10 << 20
_STDERR_LINES = 40
_FAULT_SETTLE = 3.0  # after the pipe closes, how long to wait for the exit status that explains it
_CLIENT_INFO = Implementation(name="always-on", title="always-on", version="0.1.0")
_MESSAGE_CLOSERS = frozenset({"tool_call", "tool_call_update", "plan"})


class PhaseResult(BaseModel):
    stop_reason: str | None = None
    error: ErrorInfo | None = None
    last_text: str = ""  # the agent's last assistant message of the phase (to salvage a report)
    tool_calls: int = 0
    denials: int = 0


class _PhaseFailed(Exception):
    def __init__(self, info: ErrorInfo, pending: asyncio.Future[Any] | None = None) -> None:
        super().__init__(info.message)
        self.info = info
        self.pending = pending


class _Phase:
    """Mutable state of the phase in progress."""

    __slots__ = (
        "cwd",
        "denials",
        "fault",
        "limits",
        "message_open",
        "parts",
        "phase",
        "policy",
        "run_id",
        "session_id",
        "tool_calls",
    )

    def __init__(self, run_id: str, phase: Phase, cwd: Path, policy: Policy, limits: PhaseLimits) -> None:
        self.run_id = run_id
        self.phase = phase
        self.cwd = cwd
        self.policy = policy
        self.limits = limits
        self.session_id: str | None = None
        self.tool_calls = 0
        self.denials = 0
        self.parts: list[str] = []
        self.message_open = False
        self.fault: asyncio.Future[ErrorInfo] = asyncio.get_running_loop().create_future()

    def fail(self, code: str, message: str) -> None:
        if not self.fault.done():
            self.fault.set_result(ErrorInfo(code=code, message=message))


# --- the agent process and its stdio transport -------------------------------------------------------------


class _Transport:
    """acp Transport over the agent's stdio: strict JSON-RPC framing, session/update handled inline."""

    def __init__(self, agent: _Agent, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._agent = agent
        self._reader = reader
        self._writer = writer
        self._closed = False

    async def send(self, message: dict[str, Any]) -> None:
        if self._closed:
            raise ConnectionError("the connection to the agent is closed")
        try:
            self._writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            raise ConnectionError(f"cannot write to the agent: {exc}") from exc

    async def receive(self) -> dict[str, Any] | None:
        on_update = self._agent.on_update
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
                    f"the agent wrote something that is not JSON-RPC on stdout: "
                    f"{line[:200].decode('utf-8', 'replace')!r}"
                )
                return None
            if message.get("method") == "session/update" and "id" not in message:
                on_update(message.get("params"))
                continue
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
                        self._agent.protocol_fault(
                            f"the agent sent a message larger than {_MAX_MESSAGE} bytes"
                        )
                        return None
                    continue
                chunks.append(line)
                return b"".join(chunks)
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip() or chunks:
                self._agent.protocol_fault("the agent's output ended in the middle of a message")
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


class _Agent:
    """One agent process: its connection, stderr tail and the first fault that broke it."""

    def __init__(self, gateway: AgentGateway, process: asyncio.subprocess.Process) -> None:
        self.gateway = gateway
        self.process = process
        self.pid = process.pid
        self.on_update = gateway._on_update
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES)
        self.fault: asyncio.Future[ErrorInfo] = asyncio.get_running_loop().create_future()
        self.stopping = False
        self.supports_close = False
        assert process.stdout is not None and process.stdin is not None
        self.transport = _Transport(self, process.stdout, process.stdin)
        self.conn = connect_to_agent(gateway._client, self.transport)
        self._stderr_task = asyncio.create_task(self._read_stderr(), name=f"agent-stderr-{self.pid}")
        self._watch_task = asyncio.create_task(self._watch(), name=f"agent-watch-{self.pid}")

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and not self.fault.done() and not self.stopping

    def tail(self) -> str:
        lines = [line for line in self.stderr_tail if line.strip()]
        return ("; stderr: " + " | ".join(lines[-10:]))[-2000:] if lines else ""

    def set_fault(self, code: str, message: str) -> None:
        if not self.fault.done():
            self.fault.set_result(ErrorInfo(code=code, message=message))

    def protocol_fault(self, detail: str) -> None:
        self.set_fault(ErrorCode.AGENT_PROTOCOL_ERROR, detail)

    def on_eof(self) -> None:
        """stdout closed: the exit watcher explains why; an agent still running without stdout is broken."""
        if not self.stopping:
            asyncio.get_running_loop().call_later(_FAULT_SETTLE, self._eof_without_exit)

    def _eof_without_exit(self) -> None:
        if self.process.returncode is None and not self.stopping:
            self.protocol_fault("the agent closed its stdout but kept running")

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
        line = raw.decode("utf-8", "replace").rstrip()
        self.stderr_tail.append(line[:500])
        self.gateway._on_stderr(line)

    async def _watch(self) -> None:
        code = await self.process.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 1.0)
        if self.stopping:
            return
        how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
        self.set_fault(ErrorCode.AGENT_CRASHED, f"the agent process {how}{self.tail()}")

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
        self.set_fault(ErrorCode.INTERRUPTED, "the agent was stopped by the runtime")
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


# --- the ACP Client the agent talks to ---------------------------------------------------------------------


class _Client:
    """The ACP `Client` protocol, delegating to the gateway (separate, so the gateway's API stays small)."""

    def __init__(self, gateway: AgentGateway) -> None:
        self._g = gateway

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any], **_: Any):
        return self._g._request_permission(session_id, tool_call, options)

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        # Only reached if the transport's inline path is bypassed; keep the behaviour identical.
        self._g._on_update({"sessionId": session_id, "update": update.model_dump(mode="json", by_alias=True)})

    async def read_text_file(
        self, session_id: str, path: str, line: int | None = None, limit: int | None = None, **_: Any
    ):
        return self._g._read_text_file(session_id, path, line, limit)

    async def write_text_file(self, session_id: str, path: str, content: str, **_: Any):
        return self._g._write_text_file(session_id, path, content)

    async def create_terminal(
        self,
        session_id: str,
        command: str,
        args: list[str] | None = None,
        env: list[EnvVariable] | None = None,
        cwd: str | None = None,
        output_byte_limit: int | None = None,
        **_: Any,
    ):
        return await self._g._create_terminal(session_id, command, args, env, cwd, output_byte_limit)

    async def terminal_output(self, session_id: str, terminal_id: str, **_: Any):
        term = self._g._terminal(session_id, terminal_id)
        status = term.exit_status
        return TerminalOutputResponse(
            output=term.output(),
            truncated=term.truncated,
            exit_status=TerminalExitStatus(exit_code=status.exit_code, signal=status.signal)
            if status
            else None,
        )

    async def wait_for_terminal_exit(self, session_id: str, terminal_id: str, **_: Any):
        status = await self._g._terminal(session_id, terminal_id).wait()
        return WaitForTerminalExitResponse(exit_code=status.exit_code, signal=status.signal)

    async def kill_terminal(self, session_id: str, terminal_id: str, **_: Any):
        await self._g._terminal(session_id, terminal_id).kill()
        return KillTerminalResponse()

    async def release_terminal(self, session_id: str, terminal_id: str, **_: Any):
        self._g._terminal(session_id, terminal_id)
        await self._g._terminals.release(terminal_id)
        return ReleaseTerminalResponse()

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(f"_{method}")

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None


# --- the gateway ------------------------------------------------------------------------------------------


class AgentGateway:
    """Talks ACP to one agent process for the duration of a fire; see the module docstring."""

    def __init__(
        self,
        spec: AgentSpec,
        *,
        on_event: Callable[[AgentEvent], None],
        cwd: Path,
        start_timeout: float = 60.0,
        cancel_grace: float = 3.0,
    ) -> None:
        self.spec = spec
        self._on_event = on_event
        self._cwd = Path(cwd)
        self._start_timeout = start_timeout
        self._cancel_grace = cancel_grace
        self._client = _Client(self)
        self._agent: _Agent | None = None
        self._last_fault: ErrorInfo | None = None  # why the previous agent process was discarded
        self._phase: _Phase | None = None
        self._terminals = TerminalManager(on_exit=self._on_terminal_exit)
        self._closed = False
        self._event_failures = 0

    # --- public API -----------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The current agent process id (its process group id too), if one is running."""
        return self._agent.pid if self._agent is not None else None

    async def start(self) -> None:
        """Spawn the agent and `initialize` it.

        Raises AlwaysOnError with code agent_not_found, agent_crashed, agent_protocol_error or agent_timeout.
        """
        if self._closed:
            raise AlwaysOnError(ErrorCode.AGENT_CRASHED, "the agent gateway is already closed")
        if self._agent is not None and self._agent.alive:
            return
        await self._discard_agent()
        self._agent = await self._launch()

    async def run_phase(
        self,
        *,
        run_id: str,
        phase: Phase,
        cwd: Path,
        policy: Policy,
        prompt: str,
        mcp_servers: list[McpServerSpec],
        limits: PhaseLimits,
    ) -> PhaseResult:
        """One ACP session: session/new → session/prompt → wait, within limits. Never raises for agent faults.

        Phases run one at a time (the agent's client methods are attributed to the phase in progress).
        """
        if self._phase is not None:
            raise RuntimeError(
                "AgentGateway.run_phase is already running a phase; run phases one after another"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.timeout_seconds
        ph = _Phase(run_id, phase, Path(cwd).resolve(), policy, limits)
        self._phase = ph
        stop_reason: str | None = None
        error: ErrorInfo | None = None
        agent: _Agent | None = None
        try:
            agent = await self._agent_for_phase(ph)
            stop_reason = await self._turn(agent, ph, prompt, mcp_servers, deadline)
            if ph.fault.done():
                error = ph.fault.result()
        except AlwaysOnError as exc:
            error = ErrorInfo(code=exc.code, message=exc.message)
        except _PhaseFailed as failed:
            error = failed.info
            if agent is not None:
                stop_reason = await self._stop_turn(agent, ph, failed)
        except Exception as exc:  # a gateway bug must not take the runtime down with the run
            log.exception("agent gateway failed during the %s phase", phase)
            error = ErrorInfo(code=ErrorCode.AGENT_PROTOCOL_ERROR, message=f"internal gateway error: {exc!r}")
        finally:
            await self._end_session(agent, ph)
            self._phase = None
        result = PhaseResult(
            stop_reason=stop_reason,
            error=error,
            last_text="".join(ph.parts),
            tool_calls=ph.tool_calls,
            denials=ph.denials,
        )
        self._lifecycle(
            ph,
            f"{phase} phase ended" + (f": {error.code}" if error else f" ({stop_reason})"),
            {
                "stop_reason": stop_reason,
                "error": error.model_dump() if error else None,
                "tool_calls": ph.tool_calls,
                "denials": ph.denials,
            },
        )
        return result

    async def close(self) -> None:
        """Idempotent: kill every terminal and the agent's process tree; nothing started here outlives it."""
        if self._closed:
            return
        self._closed = True
        await self._terminals.close_all()
        await self._discard_agent(graceful=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- process lifecycle ----------------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        from always_on.core.agents.policy import agent_environment

        return agent_environment(extra=self.spec.env)

    async def _launch(self) -> _Agent:
        argv = list(self.spec.command)
        name = self.spec.name
        if not argv:
            raise AlwaysOnError(ErrorCode.AGENT_NOT_FOUND, f"agent '{name}' has an empty command line")
        if not self._cwd.is_dir():
            raise AlwaysOnError(
                ErrorCode.NOT_A_DIRECTORY, f"cannot start agent '{name}': {self._cwd} is not a directory"
            )
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(self._cwd),
                env=self._environment(),
                start_new_session=True,
                limit=_STREAM_LIMIT,
            )
        except FileNotFoundError:
            raise AlwaysOnError(
                ErrorCode.AGENT_NOT_FOUND,
                f"agent '{name}': command '{argv[0]}' was not found; is it installed and on PATH?",
            ) from None
        except PermissionError:
            raise AlwaysOnError(
                ErrorCode.AGENT_NOT_FOUND, f"agent '{name}': command '{argv[0]}' is not executable"
            ) from None
        except OSError as exc:
            raise AlwaysOnError(
                ErrorCode.AGENT_NOT_FOUND, f"agent '{name}' could not be started: {exc}"
            ) from None
        agent = _Agent(self, process)
        try:
            response = await self._bounded(
                agent,
                None,
                agent.conn.initialize(
                    protocol_version=PROTOCOL_VERSION,
                    client_capabilities=ClientCapabilities(
                        fs=FileSystemCapabilities(read_text_file=True, write_text_file=True), terminal=True
                    ),
                    client_info=_CLIENT_INFO,
                ),
                asyncio.get_running_loop().time() + self._start_timeout,
                "initialize",
            )
            if response.protocol_version != PROTOCOL_VERSION:
                raise _PhaseFailed(
                    ErrorInfo(
                        code=ErrorCode.AGENT_PROTOCOL_ERROR,
                        message=f"the agent speaks ACP protocol version {response.protocol_version}; "
                        f"always-on speaks version {PROTOCOL_VERSION}",
                    )
                )
        except _PhaseFailed as failed:
            await agent.stop(graceful=False)
            if failed.pending is not None:
                failed.pending.cancel()
                with contextlib.suppress(BaseException):
                    await failed.pending
            info = failed.info
            if info.code == ErrorCode.AGENT_TIMEOUT:
                info = ErrorInfo(
                    code=info.code,
                    message=f"the agent did not answer `initialize` within "
                    f"{self._start_timeout:g} s{agent.tail()}",
                )
            raise AlwaysOnError(info.code, f"agent '{name}': {info.message}") from None
        except BaseException:
            await agent.stop(graceful=False)
            raise
        caps = response.agent_capabilities
        agent.supports_close = bool(
            caps and caps.session_capabilities and caps.session_capabilities.close is not None
        )
        return agent

    async def _agent_for_phase(self, ph: _Phase) -> _Agent:
        """The running agent; one that died or broke in an earlier phase is replaced (a plan may continue)."""
        if self._closed:
            raise AlwaysOnError(ErrorCode.INTERRUPTED, "the agent gateway is closed")
        agent = self._agent
        if agent is not None and agent.alive:
            return agent
        await self._discard_agent()
        if self._last_fault is not None:
            self._lifecycle(ph, "restarting the agent", {"previous_fault": self._last_fault.model_dump()})
        self._agent = await self._launch()
        return self._agent

    async def _discard_agent(self, *, graceful: bool = False) -> None:
        agent, self._agent = self._agent, None
        if agent is not None:
            if agent.fault.done():
                self._last_fault = agent.fault.result()
            await agent.stop(graceful=graceful)
            self._last_fault = self._last_fault or agent.fault.result()

    # --- one turn -------------------------------------------------------------------------------------------

    async def _bounded(
        self, agent: _Agent, ph: _Phase | None, aw: Awaitable[Any], deadline: float, what: str
    ) -> Any:
        """Await one request to the agent, or fail on the agent's fault, the phase's fault or the deadline."""
        task = asyncio.ensure_future(aw)
        waiters: set[asyncio.Future[Any]] = {task, agent.fault}
        if ph is not None:
            waiters.add(ph.fault)
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        if task in done:
            exc = task.exception()
            if exc is None:
                return task.result()
            if isinstance(exc, ConnectionError) or agent.fault.done():
                info = await agent.wait_fault(_FAULT_SETTLE)
                raise _PhaseFailed(
                    info
                    or ErrorInfo(
                        code=ErrorCode.AGENT_CRASHED,
                        message=f"the connection to the agent closed during {what}{agent.tail()}",
                    )
                )
            if isinstance(exc, RequestError):
                detail = f" ({json.dumps(exc.data)[:500]})" if exc.data else ""
                raise _PhaseFailed(
                    ErrorInfo(
                        code=ErrorCode.AGENT_PROTOCOL_ERROR,
                        message=f"the agent answered {what} with an error: {exc}{detail}",
                    )
                )
            if isinstance(exc, ValidationError):
                raise _PhaseFailed(
                    ErrorInfo(
                        code=ErrorCode.AGENT_PROTOCOL_ERROR,
                        message=f"the agent's answer to {what} does not follow ACP: {str(exc)[:500]}",
                    )
                )
            raise exc
        if agent.fault.done():
            raise _PhaseFailed(agent.fault.result(), task)
        if ph is not None and ph.fault.done():
            raise _PhaseFailed(ph.fault.result(), task)
        where = f"the {ph.phase} phase" if ph is not None else what
        limit = ph.limits.timeout_seconds if ph is not None else self._start_timeout
        raise _PhaseFailed(
            ErrorInfo(
                code=ErrorCode.AGENT_TIMEOUT, message=f"the agent did not finish {where} within {limit:g} s"
            ),
            task,
        )

    async def _turn(
        self, agent: _Agent, ph: _Phase, prompt: str, mcp_servers: list[McpServerSpec], deadline: float
    ) -> str | None:
        servers = [
            McpServerStdio(
                name=s.name,
                command=s.command,
                args=list(s.args),
                env=[EnvVariable(name=k, value=v) for k, v in s.env.items()],
            )
            for s in mcp_servers
        ]
        session = await self._bounded(
            agent, ph, agent.conn.new_session(cwd=str(ph.cwd), mcp_servers=servers), deadline, "session/new"
        )
        ph.session_id = session.session_id
        self._lifecycle(
            ph,
            f"{ph.phase} session started",
            {"session_id": ph.session_id, "agent": self.spec.name, "pid": agent.pid},
        )
        response = await self._bounded(
            agent,
            ph,
            agent.conn.prompt(session_id=ph.session_id, prompt=[text_block(prompt)]),
            deadline,
            "session/prompt",
        )
        if response.usage is not None:
            self._emit(
                AgentEvent(
                    run_id=ph.run_id,
                    phase=ph.phase,
                    kind=AgentEventKind.USAGE,
                    text="turn usage",
                    data=response.usage.model_dump(mode="json", by_alias=True, exclude_none=True),
                )
            )
        return response.stop_reason

    async def _stop_turn(self, agent: _Agent, ph: _Phase, failed: _PhaseFailed) -> str | None:
        """After a timeout or limit: session/cancel and a grace period; an agent that ignores it is killed."""
        pending = failed.pending
        stop_reason = None
        if pending is not None and not pending.done() and agent.alive and ph.session_id is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(agent.conn.cancel(session_id=ph.session_id), 1.0)
            await asyncio.wait(
                {pending, agent.fault}, timeout=self._cancel_grace, return_when=asyncio.FIRST_COMPLETED
            )
        if pending is not None and pending.done():
            # exception() also marks a failure as retrieved (no "exception was never retrieved" noise)
            if not pending.cancelled() and pending.exception() is None:
                stop_reason = getattr(pending.result(), "stop_reason", None)
        elif pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
            if agent is self._agent and agent.alive:
                self._lifecycle(ph, "the agent did not stop when asked; killing it", {"pid": agent.pid})
                await self._discard_agent()
        if agent.fault.done() and agent is self._agent:
            await self._discard_agent()  # crashed or talking nonsense: the next phase gets a fresh process
        return stop_reason

    async def _end_session(self, agent: _Agent | None, ph: _Phase) -> None:
        """Close the phase's session whatever happened, and every terminal it opened."""
        if ph.session_id is None:
            return
        await self._terminals.close_owner(ph.session_id)
        if agent is None or not agent.alive:
            return
        with contextlib.suppress(Exception):
            if agent.supports_close:
                await asyncio.wait_for(agent.conn.close_session(session_id=ph.session_id), 2.0)
            else:
                await asyncio.wait_for(agent.conn.cancel(session_id=ph.session_id), 1.0)

    # --- events ---------------------------------------------------------------------------------------------

    def _emit(self, event: AgentEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            self._event_failures += 1
            if self._event_failures in (1, 10, 100) or self._event_failures % 1000 == 0:
                log.exception(
                    "on_event failed for a %s event (%d failures so far)", event.kind, self._event_failures
                )

    def _lifecycle(self, ph: _Phase, text: str, data: dict[str, Any]) -> None:
        self._emit(
            AgentEvent(run_id=ph.run_id, phase=ph.phase, kind=AgentEventKind.LIFECYCLE, text=text, data=data)
        )

    def _on_stderr(self, line: str) -> None:
        ph = self._phase
        if ph is not None and line.strip():
            self._emit(
                AgentEvent(run_id=ph.run_id, phase=ph.phase, kind=AgentEventKind.STDERR, text=line[:2000])
            )

    def _on_update(self, params: Any) -> None:
        """One session/update, from the parsed JSON (hot path: keep it small)."""
        ph = self._phase
        if ph is None:
            return
        try:
            update = params["update"]
            kind = update["sessionUpdate"]
            if ph.session_id is not None and params["sessionId"] != ph.session_id:
                return
        except (TypeError, KeyError):
            return
        if kind == "agent_message_chunk":
            text = _content_text(update.get("content"))
            if not ph.message_open:
                ph.parts = []
                ph.message_open = True
            ph.parts.append(text)
            self._emit(AgentEvent(run_id=ph.run_id, phase=ph.phase, kind=AgentEventKind.MESSAGE, text=text))
            return
        if kind == "agent_thought_chunk":
            self._emit(
                AgentEvent(
                    run_id=ph.run_id,
                    phase=ph.phase,
                    kind=AgentEventKind.THOUGHT,
                    text=_content_text(update.get("content")),
                )
            )
            return
        if kind in _MESSAGE_CLOSERS:
            ph.message_open = False
        if kind == "tool_call":
            title = str(update.get("title") or "")
            self._emit(
                AgentEvent(
                    run_id=ph.run_id, phase=ph.phase, kind=AgentEventKind.TOOL_CALL, text=title, data=update
                )
            )
            self._count_tool_call(ph, f"tool call '{title}'")
        elif kind == "tool_call_update":
            self._emit(
                AgentEvent(
                    run_id=ph.run_id,
                    phase=ph.phase,
                    kind=AgentEventKind.TOOL_CALL_UPDATE,
                    text=str(update.get("title") or update.get("status") or ""),
                    data=update,
                )
            )
        elif kind == "plan":
            entries = update.get("entries") or []
            text = "\n".join(
                f"[{e.get('status', '?')}] {e.get('content', '')}" for e in entries if isinstance(e, dict)
            )
            self._emit(
                AgentEvent(run_id=ph.run_id, phase=ph.phase, kind=AgentEventKind.PLAN, text=text, data=update)
            )
        elif kind == "usage_update":
            self._emit(AgentEvent(run_id=ph.run_id, phase=ph.phase, kind=AgentEventKind.USAGE, data=update))
        else:
            self._emit(
                AgentEvent(
                    run_id=ph.run_id, phase=ph.phase, kind=AgentEventKind.OTHER, text=str(kind), data=update
                )
            )

    def _on_terminal_exit(self, term: Terminal) -> None:
        ph = self._phase
        if ph is None or ph.session_id != term.owner or term.exit_status is None:
            return
        status = term.exit_status
        self._emit(
            AgentEvent(
                run_id=ph.run_id,
                phase=ph.phase,
                kind=AgentEventKind.TERMINAL,
                text=f"{shlex.join(term.argv)} → "
                + (f"exit {status.exit_code}" if status.signal is None else f"killed by {status.signal}"),
                data={
                    "terminal_id": term.id,
                    "pid": term.pid,
                    "exit_code": status.exit_code,
                    "signal": status.signal,
                    "output_tail": term.output()[-2000:],
                },
            )
        )

    # --- client methods -------------------------------------------------------------------------------------

    def _require(self, session_id: str) -> _Phase:
        ph = self._phase
        if ph is None or ph.session_id is None or session_id != ph.session_id:
            raise RequestError.invalid_params({"sessionId": session_id, "reason": "no such active session"})
        return ph

    def _count_tool_call(self, ph: _Phase, what: str) -> bool:
        """Count one tool call; past the limit, fail the phase (it is then cancelled) and return False."""
        ph.tool_calls += 1
        if ph.tool_calls <= ph.limits.max_tool_calls:
            return True
        ph.fail(
            AGENT_TOOL_LIMIT,
            f"the agent exceeded the limit of {ph.limits.max_tool_calls} tool calls in the "
            f"{ph.phase} phase (at {what})",
        )
        return False

    def _client_call(self, ph: _Phase, what: str) -> None:
        if not self._count_tool_call(ph, what):
            raise RequestError(
                POLICY_DENIED_RPC_CODE,
                f"tool call limit of {ph.limits.max_tool_calls} reached; the phase is being stopped",
            )

    def _deny(
        self, ph: _Phase, kind: AgentEventKind, text: str, reason: str, data: dict[str, Any]
    ) -> RequestError:
        ph.denials += 1
        self._emit(
            AgentEvent(
                run_id=ph.run_id,
                phase=ph.phase,
                kind=kind,
                text=text,
                allowed=False,
                reason=reason,
                data=data,
            )
        )
        return RequestError(
            POLICY_DENIED_RPC_CODE, f"denied by the always-on policy: {reason}", {"reason": reason, **data}
        )

    def _path(self, ph: _Phase, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else ph.cwd / p

    def _request_permission(
        self, session_id: str, tool_call: Any, options: list[Any]
    ) -> RequestPermissionResponse:
        ph = self._require(session_id)
        decision = ph.policy.check_permission_request(tool_call.kind, tool_call.title, tool_call.raw_input)
        allowed, reason = decision.allowed, decision.reason
        kinds = {}
        for option in options:
            kinds.setdefault(option.kind, option)
        chosen = None
        if allowed:
            chosen = kinds.get("allow_once")
            if chosen is None:
                allowed, reason = (
                    False,
                    f"{reason}; but the agent offered no allow-once option, so it is refused",
                )
        if not allowed:
            chosen = kinds.get("reject_once") or kinds.get("reject_always")
            ph.denials += 1
        data = {
            "tool_call_id": tool_call.tool_call_id,
            "tool_kind": tool_call.kind,
            "title": tool_call.title,
            "raw_input": tool_call.raw_input,
            "option_id": chosen.option_id if chosen else None,
        }
        self._emit(
            AgentEvent(
                run_id=ph.run_id,
                phase=ph.phase,
                kind=AgentEventKind.PERMISSION,
                text=tool_call.title or tool_call.kind or "permission",
                allowed=allowed,
                reason=reason,
                data=data,
            )
        )
        if chosen is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=chosen.option_id)
        )

    def _file_access(self, session_id: str, path: str, *, write: bool):
        """Count the call, resolve the path against the session's cwd, and refuse it unless the policy allows."""
        ph = self._require(session_id)
        self._client_call(ph, f"{'write' if write else 'read'} {path}")
        target = self._path(ph, path)
        decision = ph.policy.check_write(target) if write else ph.policy.check_read(target)
        if not decision.allowed:
            kind = AgentEventKind.FILE_WRITE if write else AgentEventKind.FILE_READ
            raise self._deny(ph, kind, str(target), decision.reason, {"path": str(target)})
        return ph, target, decision

    def _read_text_file(self, session_id: str, path: str, line: int | None, limit: int | None):
        ph, target, decision = self._file_access(session_id, path, write=False)
        try:
            if target.stat().st_size > _MAX_READ_BYTES:
                raise RequestError.invalid_params({"path": str(target), "reason": "file larger than 10 MB"})
            text = target.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise RequestError.resource_not_found(str(target)) from None
        except OSError as exc:
            raise RequestError.invalid_params({"path": str(target), "reason": str(exc)}) from None
        if line is not None or limit is not None:
            lines = text.splitlines(keepends=True)
            start = max((line or 1) - 1, 0)
            text = "".join(lines[start : start + limit] if limit is not None else lines[start:])
        self._emit(
            AgentEvent(
                run_id=ph.run_id,
                phase=ph.phase,
                kind=AgentEventKind.FILE_READ,
                text=str(target),
                allowed=True,
                reason=decision.reason,
                data={"path": str(target), "chars": len(text)},
            )
        )
        return ReadTextFileResponse(content=text)

    def _write_text_file(self, session_id: str, path: str, content: str):
        ph, target, decision = self._file_access(session_id, path, write=True)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        except OSError as exc:
            raise RequestError.invalid_params({"path": str(target), "reason": str(exc)}) from None
        self._emit(
            AgentEvent(
                run_id=ph.run_id,
                phase=ph.phase,
                kind=AgentEventKind.FILE_WRITE,
                text=str(target),
                allowed=True,
                reason=decision.reason,
                data={"path": str(target), "chars": len(content)},
            )
        )
        return WriteTextFileResponse()

    async def _create_terminal(
        self,
        session_id: str,
        command: str,
        args: list[str] | None,
        env: list[EnvVariable] | None,
        cwd: str | None,
        output_byte_limit: int | None,
    ):
        from always_on.core.agents.policy import agent_environment

        ph = self._require(session_id)
        self._client_call(ph, f"terminal {command}")
        line = shlex.join([command, *args]) if args else command
        workdir = (self._path(ph, cwd) if cwd else ph.cwd).resolve()
        data: dict[str, Any] = {"command": command, "args": list(args or []), "cwd": str(workdir)}
        extra = {v.name: v.value for v in env or []}
        if extra:  # checked as inline assignments (`NAME=value cmd`), by the same rules as any other
            line = " ".join(f"{name}={shlex.quote(value)}" for name, value in extra.items()) + " " + line
            data["env"] = sorted(extra)  # names only: values may be credentials
            decision = ph.policy.check_command(line, None, workdir)
        else:
            decision = ph.policy.check_command(command, args, workdir)
        if not decision.allowed:
            raise self._deny(ph, AgentEventKind.TERMINAL, line, decision.reason, data)
        try:
            environment = agent_environment(extra=extra)
        except AlwaysOnError as exc:
            raise self._deny(ph, AgentEventKind.TERMINAL, line, exc.message, data) from None
        argv = _argv(command, args)
        try:
            term = await self._terminals.create(
                argv,
                owner=ph.session_id or "",
                cwd=workdir,
                env=environment,
                output_byte_limit=output_byte_limit,
            )
        except OSError as exc:
            raise RequestError.invalid_params(
                {"command": command, "reason": f"cannot start: {exc}"}
            ) from None
        data.update(terminal_id=term.id, pid=term.pid, argv=argv)
        self._emit(
            AgentEvent(
                run_id=ph.run_id,
                phase=ph.phase,
                kind=AgentEventKind.TERMINAL,
                text=line,
                allowed=True,
                reason=decision.reason,
                data=data,
            )
        )
        return CreateTerminalResponse(terminal_id=term.id)

    def _terminal(self, session_id: str, terminal_id: str) -> Terminal:
        self._require(session_id)
        term = self._terminals.get(terminal_id, session_id)
        if term is None:
            raise RequestError.invalid_params({"terminalId": terminal_id, "reason": "no such terminal"})
        return term


def _argv(command: str, args: list[str] | None) -> list[str]:
    """Exec argv directly; a shell string (that the policy parsed and allowed) runs under /bin/sh -c."""
    if args:
        return [command, *args]
    try:
        parts = shlex.split(command)
    except ValueError:
        parts = []
    if len(parts) == 1 and parts[0] == command:
        return [command]
    return ["/bin/sh", "-c", command]


def _content_text(content: Any) -> str:
    if isinstance(content, dict):
        if content.get("type") == "text":
            return str(content.get("text", ""))
        return f"[{content.get('type', 'content')}]"
    return ""

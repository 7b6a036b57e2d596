"""The requests the gateway makes of the agent — `initialize`, `session/new`, `session/prompt`, `session/cancel`,
`session/close` — and the one place their failures become an `ErrorInfo`.

Every request is awaited through `request`: it fails (`RequestFailed`) on the agent's fault (a crash, a closed
pipe, garbage on stdout), on the phase's fault (a tool-call limit), on a JSON-RPC error answer, on an answer that
does not follow ACP, or at the deadline. What to do about an error answer (ACP `authenticate` and a retry, say)
and how long the agent may stay silent belong here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from typing import Any

from acp import PROTOCOL_VERSION, RequestError, text_block
from acp.schema import (
    ClientCapabilities,
    EnvVariable,
    FileSystemCapabilities,
    Implementation,
    McpServerStdio,
    PromptResponse,
)
from pydantic import ValidationError

from always_on.core.agents.gateway.events import PhaseState
from always_on.core.agents.gateway.process import FAULT_SETTLE, AgentProcess
from always_on.core.agents.spec import McpServerSpec
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import ErrorInfo

_CLIENT_INFO = Implementation(name="always-on", title="always-on", version="0.1.0")


class RequestFailed(Exception):
    """A request to the agent failed: `info` says why; `pending` is the request if it is still in flight."""

    def __init__(self, info: ErrorInfo, pending: asyncio.Future[Any] | None = None) -> None:
        super().__init__(info.message)
        self.info = info
        self.pending = pending


async def request(
    agent: AgentProcess, ph: PhaseState | None, aw: Awaitable[Any], deadline: float, what: str
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
            info = await agent.wait_fault(FAULT_SETTLE)
            raise RequestFailed(
                info
                or ErrorInfo(
                    code=ErrorCode.AGENT_CRASHED,
                    message=f"the connection to the agent closed during {what}{agent.tail()}",
                )
            )
        if isinstance(exc, RequestError):
            detail = f" ({json.dumps(exc.data)[:500]})" if exc.data else ""
            raise RequestFailed(
                ErrorInfo(
                    code=ErrorCode.AGENT_PROTOCOL_ERROR,
                    message=f"the agent answered {what} with an error: {exc}{detail}",
                )
            )
        if isinstance(exc, ValidationError):
            raise RequestFailed(
                ErrorInfo(
                    code=ErrorCode.AGENT_PROTOCOL_ERROR,
                    message=f"the agent's answer to {what} does not follow ACP: {str(exc)[:500]}",
                )
            )
        raise exc
    if agent.fault.done():
        raise RequestFailed(agent.fault.result(), task)
    if ph is not None and ph.fault.done():
        raise RequestFailed(ph.fault.result(), task)
    where = f"the {ph.phase} phase" if ph is not None else what
    limit = f" within {ph.limits.timeout_seconds:g} s" if ph is not None else " in time"
    raise RequestFailed(
        ErrorInfo(code=ErrorCode.AGENT_TIMEOUT, message=f"the agent did not finish {where}{limit}"), task
    )


async def initialize(agent: AgentProcess, *, name: str, timeout: float) -> None:
    """`initialize` within `timeout`, same protocol version; on failure the agent is stopped and AlwaysOnError
    (agent_crashed, agent_protocol_error or agent_timeout) raised."""
    try:
        response = await request(
            agent,
            None,
            agent.conn.initialize(
                protocol_version=PROTOCOL_VERSION,
                client_capabilities=ClientCapabilities(
                    fs=FileSystemCapabilities(read_text_file=True, write_text_file=True), terminal=True
                ),
                client_info=_CLIENT_INFO,
            ),
            asyncio.get_running_loop().time() + timeout,
            "initialize",
        )
        if response.protocol_version != PROTOCOL_VERSION:
            raise RequestFailed(
                ErrorInfo(
                    code=ErrorCode.AGENT_PROTOCOL_ERROR,
                    message=f"the agent speaks ACP protocol version {response.protocol_version}; "
                    f"always-on speaks version {PROTOCOL_VERSION}",
                )
            )
    except RequestFailed as failed:
        await agent.stop(graceful=False)
        if failed.pending is not None:
            failed.pending.cancel()
            with contextlib.suppress(BaseException):
                await failed.pending
        info = failed.info
        if info.code == ErrorCode.AGENT_TIMEOUT:
            info = ErrorInfo(
                code=info.code,
                message=f"the agent did not answer `initialize` within {timeout:g} s{agent.tail()}",
            )
        raise AlwaysOnError(info.code, f"agent '{name}': {info.message}") from None
    except BaseException:
        await agent.stop(graceful=False)
        raise
    caps = response.agent_capabilities
    agent.supports_close = bool(
        caps and caps.session_capabilities and caps.session_capabilities.close is not None
    )


async def new_session(
    agent: AgentProcess, ph: PhaseState, mcp_servers: list[McpServerSpec], deadline: float
) -> str:
    """`session/new` in the phase's folder with its MCP servers; returns the session id."""
    servers = [
        McpServerStdio(
            name=s.name,
            command=s.command,
            args=list(s.args),
            env=[EnvVariable(name=k, value=v) for k, v in s.env.items()],
        )
        for s in mcp_servers
    ]
    session = await request(
        agent, ph, agent.conn.new_session(cwd=str(ph.cwd), mcp_servers=servers), deadline, "session/new"
    )
    return session.session_id


async def prompt(agent: AgentProcess, ph: PhaseState, text: str, deadline: float) -> PromptResponse:
    """`session/prompt` with one text block; returns when the turn ends."""
    assert ph.session_id is not None
    return await request(
        agent,
        ph,
        agent.conn.prompt(session_id=ph.session_id, prompt=[text_block(text)]),
        deadline,
        "session/prompt",
    )


async def cancel_turn(
    agent: AgentProcess, ph: PhaseState, pending: asyncio.Future[Any] | None, grace: float
) -> tuple[str | None, bool]:
    """After a timeout or a limit: `session/cancel`, then up to `grace` seconds for the turn to end.

    Returns the turn's stop reason (if it ended with one) and whether the turn ignored the cancel (it is then
    abandoned here; the caller kills the agent).
    """
    stop_reason = None
    if pending is not None and not pending.done() and agent.alive and ph.session_id is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(agent.conn.cancel(session_id=ph.session_id), 1.0)
        await asyncio.wait({pending, agent.fault}, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
    if pending is not None and pending.done():
        # exception() also marks a failure as retrieved (no "exception was never retrieved" noise)
        if not pending.cancelled() and pending.exception() is None:
            stop_reason = getattr(pending.result(), "stop_reason", None)
        return stop_reason, False
    if pending is not None:
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
        return stop_reason, True
    return stop_reason, False


async def end_session(agent: AgentProcess, session_id: str) -> None:
    """`session/close` where the agent supports it, `session/cancel` otherwise; best effort, bounded."""
    with contextlib.suppress(Exception):
        if agent.supports_close:
            await asyncio.wait_for(agent.conn.close_session(session_id=session_id), 2.0)
        else:
            await asyncio.wait_for(agent.conn.cancel(session_id=session_id), 1.0)

"""The requests the gateway makes of the agent — `initialize`, `authenticate`, `session/new`, `session/prompt`,
`session/cancel`, `session/close` — and the one place their failures become an `ErrorInfo`.

Every request is awaited through `request`: it fails (`RequestFailed`) on the agent's fault (a crash, a closed
pipe, garbage on stdout), on the phase's fault (a tool-call limit, a stall), on a JSON-RPC error answer (what it
means — authentication, an unreachable model, another error — is `failures.answer_error`), on an answer that does
not follow ACP, or at the deadline. A request given `stall` seconds fails as `agent_stalled` when the agent stays
silent that long (`stall.watch`).

Authentication (DESIGN §4): when session/new or a prompt answers that authentication is required and the agent
listed `authMethods` in initialize, the method whose credential is present (the configured `auth_method`, else
the preset's mapping, else an `env_var` method whose variables are set) is used with ACP `authenticate`, and the
request is retried once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from acp import PROTOCOL_VERSION, RequestError, text_block
from acp.schema import (
    ClientCapabilities,
    EnvVariable,
    FileSystemCapabilities,
    Implementation,
    InitializeResponse,
    McpServerStdio,
    PromptResponse,
)
from pydantic import ValidationError

from always_on.core import __version__
from always_on.core.agents.gateway import failures, stall
from always_on.core.agents.gateway.events import PhaseEvents, PhaseState
from always_on.core.agents.gateway.process import FAULT_SETTLE, AgentProcess
from always_on.core.agents.spec import AgentSpec, McpServerSpec
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import ErrorInfo

_CLIENT_INFO = Implementation(name="always-on", title="always-on", version=__version__)


class RequestFailed(Exception):
    """A request to the agent failed: `info` says why; `pending` is the request if it is still in flight;
    `answer` the agent's error answer, when it gave one."""

    def __init__(
        self, info: ErrorInfo, pending: asyncio.Future[Any] | None = None, answer: RequestError | None = None
    ) -> None:
        super().__init__(info.message)
        self.info = info
        self.pending = pending
        self.answer = answer


async def request(
    agent: AgentProcess,
    ph: PhaseState | None,
    aw: Awaitable[Any],
    deadline: float,
    what: str,
    *,
    timeout_message: str | None = None,
    stall_seconds: float | None = None,
    events: PhaseEvents | None = None,
) -> Any:
    """Await one request to the agent, or fail on the agent's fault, the phase's fault, a stall or the deadline."""
    task = asyncio.ensure_future(aw)
    waiters: set[asyncio.Future[Any]] = {task, agent.fault}
    watcher = None
    if ph is not None:
        waiters.add(ph.fault)
        if stall_seconds and events is not None:
            agent.activity.touch()
            watcher = asyncio.create_task(stall.watch(agent, ph, events, stall_seconds), name="agent-stall")
    timeout = max(0.0, deadline - asyncio.get_running_loop().time())
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
    name = agent.spec.name
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
                    message=f"the connection to agent '{name}' closed during {what}{agent.tail()}",
                )
            )
        if isinstance(exc, RequestError):
            raise RequestFailed(failures.answer_error(agent.spec, exc, what, _offered(agent)), answer=exc)
        if isinstance(exc, ValidationError):
            raise RequestFailed(
                ErrorInfo(
                    code=ErrorCode.AGENT_PROTOCOL_ERROR,
                    message=f"agent '{name}' answered {what} with something that does not follow ACP: "
                    f"{str(exc)[:500]}",
                )
            )
        raise exc
    if agent.fault.done():
        raise RequestFailed(agent.fault.result(), task)
    if ph is not None and ph.fault.done():
        raise RequestFailed(ph.fault.result(), task)
    if timeout_message is None:
        where = f"the {ph.phase} phase" if ph is not None else what
        limit = f" within {ph.limits.timeout_seconds:g} s" if ph is not None else " in time"
        timeout_message = f"agent '{name}' did not finish {where}{limit}"
    raise RequestFailed(ErrorInfo(code=ErrorCode.AGENT_TIMEOUT, message=timeout_message), task)


async def initialize(agent: AgentProcess) -> InitializeResponse:
    """`initialize` within the agent's start timeout, same protocol version; kept on the agent
    (`agent.initialized`).

    On failure the agent is stopped and AlwaysOnError (agent_crashed, agent_protocol_error or agent_timeout)
    raised.
    """
    name = agent.spec.name
    timeout = agent.start_timeout
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
            timeout_message=f"agent '{name}' did not answer `initialize` within {timeout:g} s "
            "(start_timeout_seconds)",
        )
        if response.protocol_version != PROTOCOL_VERSION:
            raise RequestFailed(
                ErrorInfo(
                    code=ErrorCode.AGENT_PROTOCOL_ERROR,
                    message=f"agent '{name}' speaks ACP protocol version {response.protocol_version}; "
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
        message = info.message + (agent.tail() if info.code == ErrorCode.AGENT_TIMEOUT else "")
        raise AlwaysOnError(info.code, message, hint=info.hint) from None
    except BaseException:
        await agent.stop(graceful=False)
        raise
    caps = response.agent_capabilities
    agent.supports_close = bool(
        caps and caps.session_capabilities and caps.session_capabilities.close is not None
    )
    agent.initialized = response
    return response


def _offered(agent: AgentProcess) -> list[Any]:
    """The auth methods the agent listed in initialize."""
    return list(agent.initialized.auth_methods or []) if agent.initialized is not None else []


def choose_auth_method(agent: AgentProcess) -> str | None:
    """The ACP auth method to use with this agent process (see `pick_auth_method`)."""
    return pick_auth_method(agent.spec, _offered(agent))


def pick_auth_method(spec: AgentSpec, offered: list[Any]) -> str | None:
    """The configured `auth_method` if offered, else the first offered method whose credential is present: by the
    preset's mapping, else an `env_var` method whose required variables are all set. None when none fits."""
    ids = [m.id for m in offered]
    if spec.auth_method:
        return spec.auth_method if spec.auth_method in ids else None
    present = spec.present_variables()
    for method_id, names in spec.auth_methods.items():
        if method_id in ids and any(n in present for n in names):
            return method_id
    for method in offered:
        names = [v.name for v in getattr(method, "vars", None) or [] if not v.optional]
        if names and all(n in present for n in names):
            return method.id
    return None


async def authenticated(
    agent: AgentProcess,
    ph: PhaseState,
    call: Callable[[], Awaitable[Any]],
    deadline: float,
    what: str,
    **bounds: Any,
) -> Any:
    """`call()` through `request`; when the agent answers that authentication is required, `authenticate` with
    the method whose credential is present and retry once (see the module docstring)."""
    try:
        return await request(agent, ph, call(), deadline, what, **bounds)
    except RequestFailed as failed:
        if not failures.is_auth_answer(failed.answer) or agent.authenticated_with is not None:
            raise
        method = choose_auth_method(agent)
        if method is None:
            raise
    await authenticate(agent, ph, method, deadline)
    events: PhaseEvents | None = bounds.get("events")
    if events is not None:
        events.lifecycle(ph, f"authenticated with {method}", {"method": method, "retrying": what})
    try:
        return await request(agent, ph, call(), deadline, what, **bounds)
    except RequestFailed as failed:
        if failures.is_auth_answer(failed.answer):
            detail = failures.detail(failed.answer)
            info = failures.auth_required(agent.spec, what, detail, _offered(agent), tried=method)
            raise RequestFailed(info, failed.pending, failed.answer) from None
        raise


async def authenticate(agent: AgentProcess, ph: PhaseState, method: str, deadline: float) -> None:
    """ACP `authenticate` with `method`, once per agent process; its failure is agent_auth_required."""
    agent.authenticated_with = method
    timeout = agent.start_timeout
    try:
        await request(
            agent,
            ph,
            agent.conn.authenticate(method_id=method),
            min(deadline, asyncio.get_running_loop().time() + timeout),
            "authenticate",
            timeout_message=f"agent '{agent.spec.name}' did not answer `authenticate` within {timeout:g} s",
        )
    except RequestFailed as failed:
        if failed.answer is None:
            raise
        info = failures.auth_required(
            agent.spec, f"`authenticate` with {method}", failures.detail(failed.answer), _offered(agent)
        )
        raise RequestFailed(info, failed.pending, failed.answer) from None


async def new_session(
    agent: AgentProcess,
    ph: PhaseState,
    mcp_servers: list[McpServerSpec],
    deadline: float,
    events: PhaseEvents,
) -> str:
    """`session/new` in the phase's folder with its MCP servers, within the start timeout; returns the session id."""
    timeout = agent.start_timeout
    servers = [
        McpServerStdio(
            name=s.name,
            command=s.command,
            args=list(s.args),
            env=[EnvVariable(name=k, value=v) for k, v in s.env.items()],
        )
        for s in mcp_servers
    ]
    bounded = asyncio.get_running_loop().time() + timeout
    session = await authenticated(
        agent,
        ph,
        lambda: agent.conn.new_session(cwd=str(ph.cwd), mcp_servers=servers),
        min(deadline, bounded),
        "session/new",
        events=events,
        timeout_message=None
        if deadline <= bounded
        else f"agent '{agent.spec.name}' did not answer session/new within {timeout:g} s (start_timeout_seconds)",
    )
    return session.session_id


async def prompt(
    agent: AgentProcess, ph: PhaseState, text: str, deadline: float, events: PhaseEvents
) -> PromptResponse:
    """`session/prompt` with one text block; returns when the turn ends. Silence past the stall limit fails it."""
    assert ph.session_id is not None
    session_id = ph.session_id
    return await authenticated(
        agent,
        ph,
        lambda: agent.conn.prompt(session_id=session_id, prompt=[text_block(text)]),
        deadline,
        "session/prompt",
        stall_seconds=agent.spec.stall_seconds or ph.limits.stall_seconds,
        events=events,
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
        ph.cancel_sent = True
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


async def end_session(agent: AgentProcess, ph: PhaseState) -> None:
    """`session/close` where the agent supports it, else `session/cancel` unless the turn was cancelled already
    (an agent without `session/close` gets one cancel per session, never two); best effort, bounded."""
    session_id = ph.session_id
    assert session_id is not None
    with contextlib.suppress(Exception):
        if agent.supports_close:
            await asyncio.wait_for(agent.conn.close_session(session_id=session_id), 2.0)
        elif not ph.cancel_sent:
            ph.cancel_sent = True
            await asyncio.wait_for(agent.conn.cancel(session_id=session_id), 1.0)

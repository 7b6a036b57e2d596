"""`AgentGateway`: one agent process per fire, one ACP session per phase, each phase bounded and never raising for
an agent fault; see the package docstring."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Self

from acp.schema import InitializeResponse
from pydantic import BaseModel

from always_on.core.agents.gateway import requests
from always_on.core.agents.gateway.client import AcpClient
from always_on.core.agents.gateway.events import PhaseEvents, PhaseState
from always_on.core.agents.gateway.process import AgentProcess, start_agent_process
from always_on.core.agents.gateway.requests import RequestFailed
from always_on.core.agents.spec import AgentSpec, McpServerSpec, PhaseLimits
from always_on.core.agents.terminals import TerminalManager
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import AgentEvent, AgentEventKind, ErrorInfo, Phase

if TYPE_CHECKING:
    from always_on.core.agents.policy import Policy

log = logging.getLogger(__name__)


class PhaseResult(BaseModel):
    stop_reason: str | None = None
    error: ErrorInfo | None = None
    last_text: str = ""  # the agent's last assistant message of the phase (to salvage a report)
    tool_calls: int = 0
    denials: int = 0


class AgentGateway:
    """Talks ACP to one agent process for the duration of a fire; see the package docstring."""

    def __init__(
        self,
        spec: AgentSpec,
        *,
        on_event: Callable[[AgentEvent], None],
        cwd: Path,
        start_timeout: float | None = None,
        cancel_grace: float = 3.0,
    ) -> None:
        self.spec = spec
        self._cwd = Path(cwd)
        # initialize, authenticate and session/new, each: the agent's own setting, else the caller's (limits)
        self._start_timeout = spec.start_timeout_seconds or start_timeout or 60.0
        self._cancel_grace = cancel_grace
        self._agent: AgentProcess | None = None
        self._last_fault: ErrorInfo | None = None  # why the previous agent process was discarded
        self._phase: PhaseState | None = None
        self._events = PhaseEvents(on_event, self._current_phase)
        self._terminals = TerminalManager(
            on_exit=self._events.on_terminal_exit, on_output=self._terminal_output
        )
        self._client = AcpClient(current=self._current_phase, events=self._events, terminals=self._terminals)
        self._closed = False

    # --- public API -----------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The current agent process id (its process group id too), if one is running."""
        return self._agent.pid if self._agent is not None else None

    @property
    def initialized(self) -> InitializeResponse | None:
        """What the running agent answered to `initialize` (name, version, capabilities, auth methods)."""
        return self._agent.initialized if self._agent is not None else None

    async def start(self) -> None:
        """Spawn the agent and `initialize` it.

        Raises AlwaysOnError with code agent_not_found, agent_crashed, agent_protocol_error or agent_timeout,
        whose message names the agent (and whose hint, if any, says what to do).
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
        ph = PhaseState(run_id, phase, Path(cwd).resolve(), policy, limits)
        self._phase = ph
        stop_reason: str | None = None
        error: ErrorInfo | None = None
        agent: AgentProcess | None = None
        try:
            agent = await self._agent_for_phase(ph)
            stop_reason = await self._turn(agent, ph, prompt, mcp_servers, deadline)
            if ph.fault.done():
                error = ph.fault.result()
        except AlwaysOnError as exc:
            error = ErrorInfo(code=exc.code, message=exc.message, hint=exc.hint)
        except RequestFailed as failed:
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
        self._events.lifecycle(
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

    # --- the agent process ----------------------------------------------------------------------------------

    def _current_phase(self) -> PhaseState | None:
        return self._phase

    async def _launch(self) -> AgentProcess:
        process = await start_agent_process(self.spec, self._cwd)
        agent = AgentProcess(
            process,
            spec=self.spec,
            client=self._client,
            on_update=self._events.on_update,
            on_stderr=self._events.on_stderr,
        )
        agent.start_timeout = self._start_timeout
        await requests.initialize(agent)
        return agent

    def _terminal_output(self) -> None:
        """A terminal the agent runs wrote something: the agent is not stalled."""
        if self._agent is not None:
            self._agent.activity.touch()

    def _announce(self, agent: AgentProcess, ph: PhaseState) -> None:
        """Keep the agent's initialize response in the run's event log (once per agent process)."""
        if agent.announced or agent.initialized is None:
            return
        agent.announced = True
        response = agent.initialized
        info = response.agent_info
        label = f"{info.name} {info.version}".strip() if info is not None else "(no agentInfo)"
        self._events.lifecycle(
            ph,
            f"agent ready: {label}, ACP v{response.protocol_version}",
            {
                "agent": self.spec.name,
                "pid": agent.pid,
                "agent_info": info.model_dump(mode="json", exclude_none=True) if info is not None else None,
                "initialize": response.model_dump(mode="json", by_alias=True, exclude_none=True),
            },
        )

    async def _agent_for_phase(self, ph: PhaseState) -> AgentProcess:
        """The running agent; one that died or broke in an earlier phase is replaced (a plan may continue)."""
        if self._closed:
            raise AlwaysOnError(ErrorCode.INTERRUPTED, "the agent gateway is closed")
        agent = self._agent
        if agent is not None and agent.alive:
            return agent
        await self._discard_agent()
        if self._last_fault is not None:
            self._events.lifecycle(
                ph, "restarting the agent", {"previous_fault": self._last_fault.model_dump()}
            )
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

    async def _turn(
        self,
        agent: AgentProcess,
        ph: PhaseState,
        prompt: str,
        mcp_servers: list[McpServerSpec],
        deadline: float,
    ) -> str | None:
        self._announce(agent, ph)
        ph.session_id = await requests.new_session(agent, ph, mcp_servers, deadline, self._events)
        self._events.lifecycle(
            ph,
            f"{ph.phase} session started",
            {"session_id": ph.session_id, "agent": self.spec.name, "pid": agent.pid},
        )
        response = await requests.prompt(agent, ph, prompt, deadline, self._events)
        if response.usage is not None:
            usage = response.usage.model_dump(mode="json", by_alias=True, exclude_none=True)
            self._events.emit(ph, AgentEventKind.USAGE, "turn usage", data=usage)
        return response.stop_reason

    async def _stop_turn(self, agent: AgentProcess, ph: PhaseState, failed: RequestFailed) -> str | None:
        """After a timeout or limit: session/cancel and a grace period; an agent that ignores it is killed."""
        stop_reason, ignored = await requests.cancel_turn(agent, ph, failed.pending, self._cancel_grace)
        if ignored and agent is self._agent and agent.alive:
            self._events.lifecycle(ph, "the agent did not stop when asked; killing it", {"pid": agent.pid})
            await self._discard_agent()
        if agent.fault.done() and agent is self._agent:
            await self._discard_agent()  # crashed or talking nonsense: the next phase gets a fresh process
        return stop_reason

    async def _end_session(self, agent: AgentProcess | None, ph: PhaseState) -> None:
        """Close the phase's session whatever happened, and every terminal it opened."""
        if ph.session_id is None:
            return
        await self._terminals.close_owner(ph.session_id)
        if agent is None or not agent.alive:
            return
        await requests.end_session(agent, ph)

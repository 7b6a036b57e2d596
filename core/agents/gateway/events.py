"""The phase in progress and its events: the one place an `AgentEvent` is built, and the mapping of what the agent
streams (`session/update`), writes on stderr and runs in terminals to events of that phase.

`session/update` is the hot path (the UI streams tens of thousands of chunks): it is mapped from the parsed
JSON dict, without a model validation per notification.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from always_on.core.agents.spec import PhaseLimits
from always_on.core.agents.terminals import Terminal
from always_on.core.errors import ErrorCode
from always_on.core.records import AgentEvent, AgentEventKind, ErrorInfo, Phase

if TYPE_CHECKING:
    from always_on.core.agents.policy import Policy

log = logging.getLogger(__name__)

#: Error code of a phase stopped for exceeding `PhaseLimits.max_tool_calls`.
AGENT_TOOL_LIMIT = ErrorCode.AGENT_TOOL_LIMIT

# An assistant message is the run of chunks between these updates (the last one is the phase's `last_text`).
_MESSAGE_CLOSERS = frozenset({"tool_call", "tool_call_update", "plan"})


class PhaseState:
    """Mutable state of the phase in progress: its session, counters, last message and first fault."""

    __slots__ = (
        "cancel_sent",
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
        self.cancel_sent = False  # session/cancel went out for this session (it is sent at most once)
        self.fault: asyncio.Future[ErrorInfo] = asyncio.get_running_loop().create_future()

    def fail(self, code: str, message: str) -> None:
        self.fail_with(ErrorInfo(code=code, message=message))

    def fail_with(self, info: ErrorInfo) -> None:
        """The phase's first fault wins; the request in flight then fails with it."""
        if not self.fault.done():
            self.fault.set_result(info)

    def count_tool_call(self, what: str) -> bool:
        """Count one tool call; past the limit, fail the phase (it is then cancelled) and return False."""
        self.tool_calls += 1
        if self.tool_calls <= self.limits.max_tool_calls:
            return True
        self.fail(
            AGENT_TOOL_LIMIT,
            f"the agent exceeded the limit of {self.limits.max_tool_calls} tool calls in the "
            f"{self.phase} phase (at {what})",
        )
        return False


class PhaseEvents:
    """Builds the events of the phase in progress and hands each to the listener (whose failures are logged)."""

    def __init__(
        self, on_event: Callable[[AgentEvent], None], current: Callable[[], PhaseState | None]
    ) -> None:
        self._on_event = on_event
        self._current = current
        self._failures = 0

    def emit(
        self,
        ph: PhaseState,
        kind: AgentEventKind,
        text: str = "",
        *,
        data: dict[str, Any] | None = None,
        allowed: bool | None = None,
        reason: str | None = None,
    ) -> None:
        """Build one AgentEvent of `ph` (the only place one is built) and deliver it."""
        # Streamed chunks carry none of these: leaving them out keeps the hot path's validation small.
        extra = (
            {}
            if data is None and allowed is None and reason is None
            else {"allowed": allowed, "reason": reason, "data": {} if data is None else data}
        )
        event = AgentEvent(run_id=ph.run_id, phase=ph.phase, kind=kind, text=text, **extra)
        try:
            self._on_event(event)
        except Exception:
            self._failures += 1
            if self._failures in (1, 10, 100) or self._failures % 1000 == 0:
                log.exception("on_event failed for a %s event (%d failures so far)", kind, self._failures)

    def lifecycle(self, ph: PhaseState, text: str, data: dict[str, Any]) -> None:
        self.emit(ph, AgentEventKind.LIFECYCLE, text, data=data)

    def on_stderr(self, line: str) -> None:
        ph = self._current()
        if ph is not None and line.strip():
            self.emit(ph, AgentEventKind.STDERR, line[:2000])

    def on_update(self, params: Any) -> None:
        """One session/update, from the parsed JSON (hot path: keep it small)."""
        ph = self._current()
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
            self.emit(ph, AgentEventKind.MESSAGE, text)
            return
        if kind == "agent_thought_chunk":
            self.emit(ph, AgentEventKind.THOUGHT, _content_text(update.get("content")))
            return
        if kind in _MESSAGE_CLOSERS:
            ph.message_open = False
        if kind == "tool_call":
            title = str(update.get("title") or "")
            self.emit(ph, AgentEventKind.TOOL_CALL, title, data=update)
            ph.count_tool_call(f"tool call '{title}'")
        elif kind == "tool_call_update":
            text = str(update.get("title") or update.get("status") or "")
            self.emit(ph, AgentEventKind.TOOL_CALL_UPDATE, text, data=update)
        elif kind == "plan":
            entries = update.get("entries") or []
            text = "\n".join(
                f"[{e.get('status', '?')}] {e.get('content', '')}" for e in entries if isinstance(e, dict)
            )
            self.emit(ph, AgentEventKind.PLAN, text, data=update)
        elif kind == "usage_update":
            self.emit(ph, AgentEventKind.USAGE, data=update)
        else:
            self.emit(ph, AgentEventKind.OTHER, str(kind), data=update)

    def on_terminal_exit(self, term: Terminal) -> None:
        ph = self._current()
        if ph is None or ph.session_id != term.owner or term.exit_status is None:
            return
        status = term.exit_status
        how = f"exit {status.exit_code}" if status.signal is None else f"killed by {status.signal}"
        self.emit(
            ph,
            AgentEventKind.TERMINAL,
            f"{shlex.join(term.argv)} → {how}",
            data={
                "terminal_id": term.id,
                "pid": term.pid,
                "exit_code": status.exit_code,
                "signal": status.signal,
                "output_tail": term.output()[-2000:],
            },
        )


def _content_text(content: Any) -> str:
    if isinstance(content, dict):
        if content.get("type") == "text":
            return str(content.get("text", ""))
        return f"[{content.get('type', 'content')}]"
    return ""

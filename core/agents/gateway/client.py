"""The ACP `Client` the agent talks to: permission requests, file reads and writes, terminals.

Each handler answers for the phase in progress: it counts the call against the phase's tool-call limit, asks
the phase's policy, reports what happened as an event (allowed or denied, with the policy's reason), and only
then acts. A denial is a JSON-RPC error (`POLICY_DENIED_RPC_CODE`) whose data names the rule.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acp import RequestError
from acp.schema import (
    AllowedOutcome,
    CreateTerminalResponse,
    DeniedOutcome,
    EnvVariable,
    KillTerminalResponse,
    ReadTextFileResponse,
    ReleaseTerminalResponse,
    RequestPermissionResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    WaitForTerminalExitResponse,
    WriteTextFileResponse,
)

from always_on.core.agents.gateway.events import PhaseEvents, PhaseState
from always_on.core.agents.policy import Decision, agent_environment
from always_on.core.agents.terminals import Terminal, TerminalManager
from always_on.core.errors import AlwaysOnError
from always_on.core.records import AgentEventKind

#: JSON-RPC error code of a request the policy refused (ACP reserves -32000..-32099 for implementations).
POLICY_DENIED_RPC_CODE = -32003

_MAX_READ_BYTES = 10 << 20


class AcpClient:
    """Answers the agent's requests for the phase that `current()` returns; see the module docstring."""

    def __init__(
        self,
        *,
        current: Callable[[], PhaseState | None],
        events: PhaseEvents,
        terminals: TerminalManager,
    ) -> None:
        self._current = current
        self._events = events
        self._terminals = terminals

    # --- ACP Client methods ---------------------------------------------------------------------------------

    async def request_permission(
        self, session_id: str, tool_call: Any, options: list[Any], **_: Any
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
        self._events.emit(
            ph,
            AgentEventKind.PERMISSION,
            tool_call.title or tool_call.kind or "permission",
            allowed=allowed,
            reason=reason,
            data=data,
        )
        if chosen is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=chosen.option_id)
        )

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        # Only reached if the transport's inline path is bypassed; keep the behaviour identical.
        self._events.on_update(
            {"sessionId": session_id, "update": update.model_dump(mode="json", by_alias=True)}
        )

    async def read_text_file(
        self, session_id: str, path: str, line: int | None = None, limit: int | None = None, **_: Any
    ) -> ReadTextFileResponse:
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
        self._file_done(ph, AgentEventKind.FILE_READ, target, decision, len(text))
        return ReadTextFileResponse(content=text)

    async def write_text_file(
        self, session_id: str, path: str, content: str, **_: Any
    ) -> WriteTextFileResponse:
        ph, target, decision = self._file_access(session_id, path, write=True)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        except OSError as exc:
            raise RequestError.invalid_params({"path": str(target), "reason": str(exc)}) from None
        self._file_done(ph, AgentEventKind.FILE_WRITE, target, decision, len(content))
        return WriteTextFileResponse()

    async def create_terminal(
        self,
        session_id: str,
        command: str,
        args: list[str] | None = None,
        env: list[EnvVariable] | None = None,
        cwd: str | None = None,
        output_byte_limit: int | None = None,
        **_: Any,
    ) -> CreateTerminalResponse:
        ph = self._require(session_id)
        self._count(ph, f"terminal {command}")
        line = shlex.join([command, *args]) if args else command
        workdir = (_path(ph, cwd) if cwd else ph.cwd).resolve()
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
        self._events.emit(ph, AgentEventKind.TERMINAL, line, allowed=True, reason=decision.reason, data=data)
        return CreateTerminalResponse(terminal_id=term.id)

    async def terminal_output(self, session_id: str, terminal_id: str, **_: Any) -> TerminalOutputResponse:
        term = self._terminal(session_id, terminal_id)
        status = term.exit_status
        return TerminalOutputResponse(
            output=term.output(),
            truncated=term.truncated,
            exit_status=TerminalExitStatus(exit_code=status.exit_code, signal=status.signal)
            if status
            else None,
        )

    async def wait_for_terminal_exit(
        self, session_id: str, terminal_id: str, **_: Any
    ) -> WaitForTerminalExitResponse:
        status = await self._terminal(session_id, terminal_id).wait()
        return WaitForTerminalExitResponse(exit_code=status.exit_code, signal=status.signal)

    async def kill_terminal(self, session_id: str, terminal_id: str, **_: Any) -> KillTerminalResponse:
        await self._terminal(session_id, terminal_id).kill()
        return KillTerminalResponse()

    async def release_terminal(self, session_id: str, terminal_id: str, **_: Any) -> ReleaseTerminalResponse:
        self._terminal(session_id, terminal_id)
        await self._terminals.release(terminal_id)
        return ReleaseTerminalResponse()

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(f"_{method}")

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None

    # --- shared steps -------------------------------------------------------------------------------------

    def _require(self, session_id: str) -> PhaseState:
        ph = self._current()
        if ph is None or ph.session_id is None or session_id != ph.session_id:
            raise RequestError.invalid_params({"sessionId": session_id, "reason": "no such active session"})
        return ph

    def _count(self, ph: PhaseState, what: str) -> None:
        if not ph.count_tool_call(what):
            raise RequestError(
                POLICY_DENIED_RPC_CODE,
                f"tool call limit of {ph.limits.max_tool_calls} reached; the phase is being stopped",
            )

    def _deny(
        self, ph: PhaseState, kind: AgentEventKind, text: str, reason: str, data: dict[str, Any]
    ) -> RequestError:
        ph.denials += 1
        self._events.emit(ph, kind, text, allowed=False, reason=reason, data=data)
        return RequestError(
            POLICY_DENIED_RPC_CODE, f"denied by the always-on policy: {reason}", {"reason": reason, **data}
        )

    def _file_access(self, session_id: str, path: str, *, write: bool) -> tuple[PhaseState, Path, Decision]:
        """Count the call, resolve the path against the session's cwd, and refuse it unless the policy allows."""
        ph = self._require(session_id)
        self._count(ph, f"{'write' if write else 'read'} {path}")
        target = _path(ph, path)
        decision = ph.policy.check_write(target) if write else ph.policy.check_read(target)
        if not decision.allowed:
            kind = AgentEventKind.FILE_WRITE if write else AgentEventKind.FILE_READ
            raise self._deny(ph, kind, str(target), decision.reason, {"path": str(target)})
        return ph, target, decision

    def _file_done(
        self, ph: PhaseState, kind: AgentEventKind, target: Path, decision: Decision, chars: int
    ) -> None:
        data = {"path": str(target), "chars": chars}
        self._events.emit(ph, kind, str(target), allowed=True, reason=decision.reason, data=data)

    def _terminal(self, session_id: str, terminal_id: str) -> Terminal:
        self._require(session_id)
        term = self._terminals.get(terminal_id, session_id)
        if term is None:
            raise RequestError.invalid_params({"terminalId": terminal_id, "reason": "no such terminal"})
        return term


def _path(ph: PhaseState, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else ph.cwd / p


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

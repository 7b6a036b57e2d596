"""Turns the event stream of a run into display lines: message/thought chunks coalesced into whole lines.

Agents stream text in small chunks (often a word each). Writing a line per chunk would flood the log, so text is
accumulated until a newline or a different kind of event arrives; the unfinished line is exposed as ``pending``
for the view to show as it grows. Pure logic (no widgets), so it is cheap and testable.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from always_on.core.records import AgentEvent, AgentEventKind, PhaseEvent, PhaseEventType

MAX_LINE = 4000  # a chunk stream with no newline is cut into lines of this size
MAX_TOOL_TITLES = 2000

STATUS_STYLE = {
    "pending": "yellow",
    "in_progress": "yellow",
    "completed": "green",
    "failed": "bold red",
}

PHASE_LABEL = {
    PhaseEventType.DISCOVERY_STARTED: "discovery started",
    PhaseEventType.PLAN_PRODUCED: "plan produced",
    PhaseEventType.NO_PLAN: "no plan proposed",
    PhaseEventType.WORKSPACE_STARTED: "preparing workspace",
    PhaseEventType.WORKSPACE_READY: "workspace ready",
    PhaseEventType.EXECUTION_STARTED: "execution started",
    PhaseEventType.EXECUTION_COMPLETED: "execution completed",
    PhaseEventType.REPORT_STARTED: "report started",
    PhaseEventType.REPORT_PRODUCED: "report produced",
    PhaseEventType.RUN_COMPLETED: "run completed",
    PhaseEventType.RUN_FAILED: "run failed",
    PhaseEventType.APPLY_STARTED: "apply started",
    PhaseEventType.APPLY_COMPLETED: "apply completed",
    PhaseEventType.APPLY_FAILED: "apply failed",
    PhaseEventType.PROJECT_DISABLED: "project disabled",
}


def _tool_id(data: dict[str, Any]) -> str | None:
    for key in ("tool_call_id", "toolCallId", "id"):
        if data.get(key):
            return str(data[key])
    return None


def _status(status: object) -> Text:
    text = str(status) if status else ""
    return Text(f" [{text}]", style=STATUS_STYLE.get(text, "dim")) if text else Text("")


def phase_line(event: PhaseEvent) -> Text:
    label = PHASE_LABEL.get(event.type, str(event.type))
    bad = event.type in (
        PhaseEventType.RUN_FAILED,
        PhaseEventType.APPLY_FAILED,
        PhaseEventType.PROJECT_DISABLED,
    )
    line = Text("── ", style="magenta")
    line.append(label, style="bold red" if bad else "bold magenta")
    if event.error is not None:
        line.append(f": {event.error.code}: {event.error.message}", style="red")
    elif event.message and event.type in (
        PhaseEventType.DISCOVERY_STARTED,  # what of the checkout the workspace leaves out (untracked files)
        PhaseEventType.PLAN_PRODUCED,
        PhaseEventType.NO_PLAN,
        PhaseEventType.PROJECT_DISABLED,
        PhaseEventType.EXECUTION_COMPLETED,  # what the workspace could not keep (uninitialised submodules)
    ):
        line.append(
            f": {event.message.strip().splitlines()[0] if event.message.strip() else ''}", style="magenta"
        )
    line.append(" ──", style="magenta")
    return line


DENIED_WHAT = {
    AgentEventKind.TERMINAL: "command",
    AgentEventKind.FILE_READ: "read",
    AgentEventKind.FILE_WRITE: "write",
}


def denied_line(event: AgentEvent) -> Text:
    """A request the permission policy refused: what was asked and the policy's reason, in red."""
    data = event.data or {}
    subject = event.text or str(data.get("subject") or data.get("title") or data.get("path") or "request")
    line = Text("✗ DENIED ", style="bold white on red")
    what = DENIED_WHAT.get(event.kind)
    if what:
        line.append(f" {what}", style="red")
    line.append(" " + subject[:MAX_LINE], style="bold red")
    if event.reason:
        line.append(f" — {event.reason}", style="red")
    return line


class StreamFeed:
    def __init__(self) -> None:
        self._lines: list[Text] = []
        self._pending_kind: AgentEventKind | None = None
        self._pending: list[str] = []
        self._pending_len = 0
        self._tool_titles: dict[str, str] = {}
        self._phase: object = None
        self.changed = False  # pending text changed since the last take()

    # --- input -------------------------------------------------------------------------------------------

    def add(self, event: PhaseEvent | AgentEvent) -> None:
        if isinstance(event, PhaseEvent):
            self._commit()
            if event.type in (PhaseEventType.DISCOVERY_STARTED, PhaseEventType.WORKSPACE_STARTED):
                self._tool_titles.clear()
            self._lines.append(phase_line(event))
            return
        if event.phase != self._phase:
            self._commit()
            self._phase = event.phase
        kind = event.kind
        if kind in (AgentEventKind.MESSAGE, AgentEventKind.THOUGHT):
            self._chunk(kind, event.text)
            return
        self._commit()
        line = self._format(event)
        if line is not None:
            self._lines.append(line)

    def note(self, text: str, style: str = "dim") -> None:
        self._commit()
        self._lines.append(Text(text, style=style))

    # --- output ------------------------------------------------------------------------------------------

    def take(self) -> list[Text]:
        """Complete lines produced since the last call."""
        out, self._lines = self._lines, []
        self.changed = False
        return out

    @property
    def pending(self) -> Text | None:
        if not self._pending:
            return None
        return self._styled("".join(self._pending), self._pending_kind)

    def reset(self) -> None:
        self._lines.clear()
        self._pending.clear()
        self._pending_len = 0
        self._pending_kind = None
        self._tool_titles.clear()
        self.changed = True

    # --- internals ---------------------------------------------------------------------------------------

    @staticmethod
    def _styled(text: str, kind: AgentEventKind | None) -> Text:
        if kind == AgentEventKind.THOUGHT:
            return Text(text, style="dim italic")
        return Text(text)

    def _chunk(self, kind: AgentEventKind, text: str) -> None:
        if not text:
            return
        if self._pending_kind != kind:
            self._commit()
            self._pending_kind = kind
        if "\n" not in text and self._pending_len + len(text) <= MAX_LINE:
            self._pending.append(text)
            self._pending_len += len(text)
            self.changed = True
            return
        parts = text.split("\n")
        for part in parts[:-1]:
            self._pending.append(part)
            self._emit_pending(kind)
        rest = parts[-1]
        while len(rest) > MAX_LINE:
            self._pending.append(rest[:MAX_LINE])
            self._emit_pending(kind)
            rest = rest[MAX_LINE:]
        if rest:
            self._pending.append(rest)
            self._pending_len += len(rest)
            if self._pending_len > MAX_LINE:
                self._emit_pending(kind)
        self._pending_kind = kind
        self.changed = True

    def _emit_pending(self, kind: AgentEventKind | None) -> None:
        self._lines.append(self._styled("".join(self._pending), kind))
        self._pending.clear()
        self._pending_len = 0

    def _commit(self) -> None:
        if self._pending:
            self._emit_pending(self._pending_kind)
            self.changed = True
        self._pending_kind = None

    def _format(self, event: AgentEvent) -> Text | None:
        data = event.data or {}
        kind = event.kind
        if event.allowed is False:  # every policy denial (command, read, write, permission) in red, with why
            return denied_line(event)
        if kind == AgentEventKind.TOOL_CALL:
            title = event.text or str(data.get("title") or data.get("kind") or "tool call")
            tool_id = _tool_id(data)
            if tool_id:
                if len(self._tool_titles) >= MAX_TOOL_TITLES:
                    self._tool_titles.clear()
                self._tool_titles[tool_id] = title
            line = Text("⚙ ", style="bold cyan")
            line.append(title[:MAX_LINE], style="cyan")
            line.append_text(_status(data.get("status")))
            return line
        if kind == AgentEventKind.TOOL_CALL_UPDATE:
            tool_id = _tool_id(data)
            text = (
                event.text if event.text != str(data.get("status") or "") else ""
            )  # core may send the status
            title = (
                str(data.get("title") or "")
                or self._tool_titles.get(tool_id or "", "")
                or text
                or (tool_id or "tool call")
            )
            line = Text("  ↳ ", style="dim cyan")
            line.append(title[:MAX_LINE], style="dim")
            line.append_text(_status(data.get("status")))
            return line
        if kind == AgentEventKind.PERMISSION:
            subject = event.text or str(data.get("subject") or data.get("title") or "request")
            line = Text("✓ allowed ", style="green")
            line.append(subject[:MAX_LINE], style="dim")
            if event.reason:
                line.append(f" — {event.reason}", style="dim green")
            return line
        if kind == AgentEventKind.PLAN:
            entries = data.get("entries")
            if isinstance(entries, list) and entries:
                items = [str(e.get("content", e)) if isinstance(e, dict) else str(e) for e in entries]
                return Text("☰ plan: " + " · ".join(items)[:MAX_LINE], style="blue")
            return Text("☰ plan " + event.text[:MAX_LINE], style="blue")
        if kind == AgentEventKind.USAGE:
            return None  # token counters are noise in a live stream
        if kind == AgentEventKind.FILE_READ:
            return Text(f"  read {event.text or data.get('path', '')}"[:MAX_LINE], style="dim")
        if kind == AgentEventKind.FILE_WRITE:
            return Text(f"  write {event.text or data.get('path', '')}"[:MAX_LINE], style="yellow")
        if kind == AgentEventKind.TERMINAL:
            return Text(f"  $ {event.text or data.get('command', '')}"[:MAX_LINE], style="bright_black")
        if kind == AgentEventKind.STDERR:
            return Text(f"  stderr: {event.text}"[:MAX_LINE], style="dim red")
        if not event.text:
            return None
        return Text(f"  {kind}: {event.text}"[:MAX_LINE], style="dim")

"""The project's scheduler state: enabled/paused, next tick or the gate that blocks it, dormancy, last fire."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from always_on.core.records import FireOutcome, ProjectState
from always_on.tui.bridge import GateView
from always_on.tui.clock import Clock

GATE_TEXT = {
    "disabled": "the scheduler is disabled in the configuration",
    "project_disabled": "the project was disabled",
    "project_missing": "the project folder is missing",
    "dormant": "dormant: waiting for the project's files to change",
    "agent_busy": "a fire is already running",
    "cooldown": "cooling down after the last fire",
    "daily_budget": "today's fire budget is used up",
    "lock_busy": "another process holds the fire lock",
    "cycle_full": "the work cycle is full: review and apply or archive it",
}

OUTCOME_STYLE = {FireOutcome.EXECUTED: "green", FireOutcome.NO_PLAN: "yellow", FireOutcome.FAILED: "bold red"}


def status_text(path: str, agent: str, state: ProjectState, gate: GateView, clock: Clock) -> Text:
    out = Text()
    out.append("Project   ", style="bold")
    out.append(path)
    out.append("   agent ", style="dim")
    out.append(agent, style="cyan")
    out.append("\nScheduler ", style="bold")
    if not gate.enabled or gate.disabled_reason:
        out.append("✗ disabled", style="bold red")
        if gate.disabled_reason:
            out.append(f": {gate.disabled_reason}", style="red")
        out.append("  (p re-enables)", style="dim")
    elif gate.paused:
        out.append("⏸ paused", style="bold yellow")
        out.append("  (p resumes)", style="dim")
    else:
        out.append("● enabled", style="bold green")
        if not gate.scheduler_running:
            out.append(" (not running in this app)", style="dim")
        if gate.blocked_by == "interval" and gate.next_tick_at is not None:
            out.append("  next tick ", style="dim")
            out.append(clock.short(gate.next_tick_at))
            out.append(f" ({clock.relative(gate.next_tick_at)})", style="dim")
        elif gate.blocked_by:
            out.append("  blocked: ", style="dim")
            out.append(gate.blocked_by, style="yellow")
            detail = gate.detail or GATE_TEXT.get(gate.blocked_by)
            if detail:
                out.append(f" — {detail}", style="dim")
        elif gate.next_tick_at is not None:
            out.append("  next tick ", style="dim")
            out.append(clock.short(gate.next_tick_at))
            out.append(f" ({clock.relative(gate.next_tick_at)})", style="dim")
    if gate.dormant_since is not None:
        out.append("\nDormant   ", style="bold")
        out.append(f"since {clock.stamp(gate.dormant_since)}", style="yellow")
        out.append(" — the last discovery found nothing; wakes when files change", style="dim")
    out.append("\nLast fire ", style="bold")
    if state.last_outcome is None:
        out.append("never", style="dim")
        out.append("  (press f to fire discovery now)", style="dim")
    else:
        out.append(str(state.last_outcome), style=OUTCOME_STYLE.get(state.last_outcome, ""))
        out.append(f"  {clock.stamp(state.last_fire_finished_at or state.last_fire_started_at)}", style="dim")
        if state.last_error is not None:
            out.append(f"  {state.last_error.code}", style="red")
        out.append(f"  runs today {state.runs_on(clock.local(clock.now()).date())}", style="dim")
    return out


class ProjectStatus(Static):
    DEFAULT_CSS = """
    ProjectStatus { height: auto; padding: 0 1; border: round $primary 50%; border-title-color: $text-muted; }
    """

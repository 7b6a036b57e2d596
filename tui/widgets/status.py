"""The project's scheduler state: enabled/paused, next tick or the gate that blocks it, dormancy, last fire."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from always_on.core.records import Gate, ProjectState
from always_on.tui.bridge import GateView
from always_on.tui.clock import Clock
from always_on.tui.styles import outcome_text

GATE_TEXT = {
    Gate.DISABLED: "the scheduler is disabled in the configuration",
    Gate.PROJECT_DISABLED: "the project was disabled",
    Gate.PROJECT_MISSING: "the project folder is missing",
    Gate.DORMANT: "dormant: waiting for the project's files to change",
    Gate.AGENT_BUSY: "a fire is already running",
    Gate.COOLDOWN: "cooling down after the last fire",
    Gate.DAILY_BUDGET: "today's fire budget is used up",
    Gate.LOCK_BUSY: "another process holds the fire lock",
    Gate.CYCLE_FULL: "the work cycle is full: review and apply or archive it",
}


def status_text(path: str, agent: str, state: ProjectState, gate: GateView, clock: Clock) -> Text:
    out = Text()
    out.append("Project   ", style="bold")
    out.append(path)
    out.append("   agent ", style="dim")
    out.append(agent, style="cyan")
    out.append("\nScheduler ", style="bold")
    if not gate.enabled and not gate.disabled_reason and not state.enabled:  # registered, never `init`-ed
        out.append("○ not enabled", style="bold yellow")
        out.append("  (p enables scheduled fires, as `always-on init` does)", style="dim")
    elif not gate.enabled or gate.disabled_reason:
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
        if gate.blocked_by == Gate.INTERVAL and gate.next_tick_at is not None:
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
        out.append_text(outcome_text(state.last_outcome))
        out.append(f"  {clock.stamp(state.last_fire_finished_at or state.last_fire_started_at)}", style="dim")
        if state.last_error is not None:
            out.append(f"  {state.last_error.code}", style="red")
        out.append(f"  runs today {state.runs_on(clock.local(clock.now()).date())}", style="dim")
    return out


class ProjectStatus(Static):
    DEFAULT_CSS = """
    ProjectStatus { height: auto; padding: 0 1; border: round $primary 50%; border-title-color: $text-muted; }
    """

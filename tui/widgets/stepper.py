"""The phase stepper of the current fire: discovery → workspace → execution → report, with elapsed times."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from always_on.core.records import FireOutcome
from always_on.tui.clock import Clock, duration
from always_on.tui.run_tracker import STEPS, RunTracker, StepState

ICON = {
    StepState.PENDING: ("○", "dim"),
    StepState.ACTIVE: ("◉", "bold yellow"),
    StepState.DONE: ("✔", "bold green"),
    StepState.FAILED: ("✘", "bold red"),
    StepState.SKIPPED: ("–", "dim"),
}


def stepper_text(run: RunTracker, clock: Clock) -> Text:
    out = Text()
    if run.run_id is None:
        out.append("No fire yet in this session.", style="dim")
        out.append("  f fires discovery now; 3 → History, l replays a past run.", style="dim")
        return out
    out.append("Replay " if run.replay else "Run ", style="bold")
    out.append(run.run_id, style="cyan")
    if run.agent:
        out.append("  agent ", style="dim")
        out.append(run.agent, style="cyan")
    now = clock.now()
    if run.running:
        out.append("  running", style="bold yellow")
        if run.started_at:
            out.append(f" {duration(clock.since(run.started_at))}", style="yellow")
    elif run.outcome is not None:
        style = {FireOutcome.EXECUTED: "bold green", FireOutcome.NO_PLAN: "bold yellow"}.get(
            run.outcome, "bold red"
        )
        out.append(f"  {run.outcome}", style=style)
        if run.started_at and run.finished_at:
            out.append(f" in {duration(clock.since(run.started_at, run.finished_at))}", style="dim")
    out.append("\n")
    for index, phase in enumerate(STEPS):
        step = run.steps[phase]
        icon, style = ICON[step.state]
        if index:
            out.append(" ─ ", style="dim")
        out.append(f"{icon} ", style=style)
        out.append(str(phase), style=style if step.state != StepState.DONE else "")
        elapsed = step.elapsed(now)
        if elapsed is not None:
            out.append(f" {duration(elapsed)}", style="dim")
    if run.plan_title:
        out.append("\nPlan ", style="bold")
        out.append(run.plan_title)
    if run.error is not None:
        out.append("\nError ", style="bold red")
        out.append(f"{run.error.code}: {run.error.message}", style="red")
        if run.error.hint:
            out.append("\nNext  ", style="bold yellow")
            out.append(run.error.hint, style="yellow")
    return out


class PhaseStepper(Static):
    DEFAULT_CSS = """
    PhaseStepper { height: auto; padding: 0 1; border: round $primary 50%; }
    """

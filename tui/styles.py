"""How record states look on every screen: plan statuses, run outcomes, dependency analysis results."""

from __future__ import annotations

from rich.text import Text

from always_on.core.records import DependencyStatus, FireOutcome, PlanStatus

PLAN_STATUS_STYLE = {
    PlanStatus.READY: "cyan",
    PlanStatus.EXECUTING: "bold yellow",
    PlanStatus.COMPLETED: "green",
    PlanStatus.COMPLETED_NO_REPORT: "yellow",
    PlanStatus.FAILED: "bold red",
    PlanStatus.APPLIED: "blue",
    PlanStatus.ARCHIVED: "dim",
}

OUTCOME_STYLE = {FireOutcome.EXECUTED: "green", FireOutcome.NO_PLAN: "yellow", FireOutcome.FAILED: "bold red"}

DEPENDENCY_STYLE = {
    DependencyStatus.CLEAN: "green",
    DependencyStatus.DEPENDENT: "yellow",
    DependencyStatus.FAILED: "bold red",
    DependencyStatus.PENDING: "dim",
}


def plan_status_cell(status: PlanStatus) -> Text:
    return Text(str(status), style=PLAN_STATUS_STYLE.get(status, ""))


def outcome_text(outcome: FireOutcome) -> Text:
    return Text(str(outcome), style=OUTCOME_STYLE.get(outcome, ""))

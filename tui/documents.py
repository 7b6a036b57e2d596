"""Markdown documents the TUI shows: a plan with its facts, a run's report or why the run failed."""

from __future__ import annotations

from always_on.core.contracts.plan import render_plan_markdown
from always_on.core.records import PlanRecord, ReportMetadata, RunHistoryEntry
from always_on.tui.clock import Clock, duration


def plan_document(plan: PlanRecord, markdown: str | None, clock: Clock) -> str:
    facts = [
        f"- **Status** {plan.status} · **id** `{plan.id}`",
        f"- **Created** {clock.stamp(plan.created_at)} · **updated** {clock.stamp(plan.updated_at)}",
        (
            f"- **Cycle** {f'`{plan.cycle_id}`' if plan.cycle_id else '–'} · **runs** "
            f"{', '.join(f'`{r}`' for r in plan.run_ids) or '–'}"
        ),
    ]
    if plan.failure is not None:
        facts.append(f"- **Failure** `{plan.failure.code}`: {plan.failure.message}")
    if plan.report_run_id:
        facts.append(f"- **Report** of run `{plan.report_run_id}`: press `o`")
    body = markdown if markdown is not None else render_plan_markdown(plan.content)
    return "\n".join(facts) + "\n\n" + body


def run_document(
    entry: RunHistoryEntry, meta: ReportMetadata | None, report: str | None, clock: Clock
) -> str:
    head = [
        f"# Run {entry.run_id}",
        "",
        (
            f"- **{entry.outcome}** {entry.kind} by agent {entry.agent} · started {clock.stamp(entry.started_at)}, "
            f"took {duration(entry.duration_seconds)}"
        ),
        (
            f"- **Plan** {f'`{entry.plan_id}`' if entry.plan_id else '–'} · **cycle** "
            f"{f'`{entry.cycle_id}`' if entry.cycle_id else '–'}"
        ),
    ]
    parts = ["\n".join(head)]
    if entry.error is not None:
        parts.append(f"## Why it failed\n\n`{entry.error.code}`: {entry.error.message}")
    if meta is not None and meta.notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {n}" for n in meta.notes))
    if report:
        parts.append("---\n\n" + report)
    elif entry.error is None:
        parts.append(
            "_No report was written for this run_"
            + (" (discovery proposed no plan)._" if str(entry.outcome) == "no_plan" else "._")
        )
    return "\n\n".join(parts)

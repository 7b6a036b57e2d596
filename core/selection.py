"""Which plans of a cycle an apply takes, and whether it can: the rule both front ends ask before confirming.

`prepare_apply` answers for a cycle and a selection (by default every applyable plan, in cycle order): the
problems that refuse it, as structured data (`SelectionProblem`: a code, the plan, the plans it still needs,
and the words to show), and the files the apply would change. `always-on apply` and the TUI review screen both
go through `Orchestrator.prepare_apply`, so a refusal reads the same in either; the apply itself checks again
(`workspace.apply`), under the fire lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum

from pydantic import BaseModel, Field

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import (
    APPLYABLE,
    CycleRecord,
    CycleStatus,
    DependencyStatus,
    FileChange,
    PlanRecord,
)


class ProblemCode(StrEnum):
    CYCLE_NOT_ACTIVE = "cycle_not_active"
    NOTHING_TO_APPLY = "nothing_to_apply"  # the default selection is empty
    NOTHING_SELECTED = "nothing_selected"  # a selection was given, and it is empty
    NOT_IN_CYCLE = "not_in_cycle"
    NOT_APPLYABLE = "not_applyable"
    NO_COMMITS = "no_commits"
    DEPENDENCY_ANALYSIS_FAILED = "dependency_analysis_failed"
    NEEDS_UNSELECTED = "needs_unselected"


class SelectionProblem(BaseModel):
    """One reason a selection cannot be applied."""

    code: ProblemCode
    message: str  # in words, naming plans by id
    plan_id: str | None = None
    needs: list[str] = Field(default_factory=list)  # NEEDS_UNSELECTED: the plans it depends on


class ApplyPreparation(BaseModel):
    """What applying a selection would do, or why it is refused."""

    cycle_id: str
    selection: list[str]
    problems: list[SelectionProblem] = Field(default_factory=list)
    files: list[FileChange] = Field(default_factory=list)  # computed only when asked for and nothing refuses

    @property
    def ready(self) -> bool:
        return not self.problems

    def refusal(self) -> AlwaysOnError | None:
        """The error that refuses this apply (cycle_not_active or invalid_selection), or None."""
        if not self.problems:
            return None
        code = (
            ErrorCode.CYCLE_NOT_ACTIVE
            if any(p.code == ProblemCode.CYCLE_NOT_ACTIVE for p in self.problems)
            else ErrorCode.INVALID_SELECTION
        )
        return AlwaysOnError(
            code,
            "; ".join(p.message for p in self.problems),
            problems=[p.model_dump() for p in self.problems],
        )


def default_selection(cycle: CycleRecord) -> list[str]:
    """Every plan of the cycle that can be applied (completed), in cycle order (a cycle's plan entries carry
    their plan's own status, read from the plan record)."""
    return [s.plan_id for s in cycle.plans if s.status in APPLYABLE]


def selection_problems(
    cycle: CycleRecord, plans: Mapping[str, PlanRecord], selection: list[str]
) -> list[SelectionProblem]:
    """Why these plans of the cycle cannot be applied together; [] when they can."""
    if not selection:
        return [SelectionProblem(code=ProblemCode.NOTHING_SELECTED, message="no plan is selected")]
    problems: list[SelectionProblem] = []
    for pid in selection:
        if not cycle.has_plan(pid):
            problems.append(
                SelectionProblem(
                    code=ProblemCode.NOT_IN_CYCLE,
                    plan_id=pid,
                    message=f"plan {pid} is not part of cycle {cycle.id}",
                )
            )
            continue
        state = cycle.plan_state(pid)
        status = plans[pid].status if pid in plans else state.status
        if status not in APPLYABLE:
            problems.append(
                SelectionProblem(
                    code=ProblemCode.NOT_APPLYABLE,
                    plan_id=pid,
                    message=f"plan {pid} is '{status}', only completed plans can be applied",
                )
            )
        if not state.commit_shas:
            problems.append(
                SelectionProblem(
                    code=ProblemCode.NO_COMMITS, plan_id=pid, message=f"plan {pid} has no commits"
                )
            )
        if state.dependency_status == DependencyStatus.FAILED:
            problems.append(
                SelectionProblem(
                    code=ProblemCode.DEPENDENCY_ANALYSIS_FAILED,
                    plan_id=pid,
                    message=f"dependency analysis failed for plan {pid}: {'; '.join(state.dependency_reasons)}",
                )
            )
        missing = [d for d in state.depends_on if d not in selection]
        if missing:
            why = "; ".join(state.dependency_reasons)
            problems.append(
                SelectionProblem(
                    code=ProblemCode.NEEDS_UNSELECTED,
                    plan_id=pid,
                    needs=missing,
                    message=f"plan {pid} depends on unselected plan(s) {', '.join(missing)}"
                    + (f" ({why})" if why else ""),
                )
            )
    return problems


def prepare_apply(
    cycle: CycleRecord,
    plans: Mapping[str, PlanRecord],
    plan_ids: list[str] | None,
    *,
    files: Callable[[list[str]], list[FileChange]] | None = None,
) -> ApplyPreparation:
    """The selection (`plan_ids`, or by default every applyable plan), its problems, and — when `files` is
    given and nothing refuses — the files the apply would change."""
    if cycle.status != CycleStatus.ACTIVE:
        problem = SelectionProblem(
            code=ProblemCode.CYCLE_NOT_ACTIVE,
            message=f"cycle {cycle.id} is '{cycle.status.value}'; nothing to apply",
        )
        return ApplyPreparation(cycle_id=cycle.id, selection=list(plan_ids or []), problems=[problem])
    if plan_ids is None:
        selection = default_selection(cycle)
        problems = (
            selection_problems(cycle, plans, selection)
            if selection
            else [SelectionProblem(code=ProblemCode.NOTHING_TO_APPLY, message="nothing to apply")]
        )
    else:
        selection = list(plan_ids)
        problems = selection_problems(cycle, plans, selection)
    changed = files(selection) if files is not None and not problems else []
    return ApplyPreparation(cycle_id=cycle.id, selection=selection, problems=problems, files=changed)

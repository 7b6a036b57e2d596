"""The apply selection rule (core.selection) and the status sets it rests on, derived from the transitions."""

from __future__ import annotations

from always_on.core.errors import ErrorCode
from always_on.core.records import (
    APPLYABLE,
    ARCHIVABLE,
    OPEN_CYCLE_STATUSES,
    OPEN_PLAN_STATUSES,
    RERUNNABLE,
    CyclePlanState,
    CycleRecord,
    CycleStatus,
    DependencyStatus,
    FileChange,
    PlanContent,
    PlanRecord,
    PlanStatus,
)
from always_on.core.selection import ProblemCode, default_selection, prepare_apply


def test_status_sets_follow_the_transitions():
    assert APPLYABLE == {PlanStatus.COMPLETED, PlanStatus.COMPLETED_NO_REPORT}
    assert RERUNNABLE == {PlanStatus.READY, PlanStatus.FAILED}
    assert ARCHIVABLE == {
        PlanStatus.READY,
        PlanStatus.COMPLETED,
        PlanStatus.COMPLETED_NO_REPORT,
        PlanStatus.FAILED,
    }
    assert OPEN_PLAN_STATUSES == set(PlanStatus) - {PlanStatus.APPLIED, PlanStatus.ARCHIVED}
    assert OPEN_CYCLE_STATUSES == {CycleStatus.ACTIVE, CycleStatus.APPLYING}


def _plan(n: int, status: PlanStatus) -> PlanRecord:
    content = PlanContent(
        title=f"plan {n}",
        summary="s",
        rationale="r",
        dedupe_key=f"k{n}",
        proposed_change="c",
        steps=["a"],
        verification=["b"],
    )
    return PlanRecord(id=f"p{n}", project_id="proj", status=status, content=content)


def _cycle(status: CycleStatus = CycleStatus.ACTIVE) -> CycleRecord:
    return CycleRecord(
        id="c1",
        project_id="proj",
        status=status,
        strategy="worktree",
        workspace_path="/nonexistent",
        base_commit="0" * 40,
        plans=[
            CyclePlanState(
                plan_id="p1",
                status=PlanStatus.COMPLETED,
                commit_shas=["a"],
                dependency_status=DependencyStatus.CLEAN,
            ),
            CyclePlanState(
                plan_id="p2",
                status=PlanStatus.COMPLETED_NO_REPORT,
                commit_shas=["b"],
                dependency_status=DependencyStatus.DEPENDENT,
                depends_on=["p1"],
                dependency_reasons=["x.py: needs p1"],
            ),
            CyclePlanState(plan_id="p3", status=PlanStatus.FAILED),
        ],
    )


PLANS = {
    "p1": _plan(1, PlanStatus.COMPLETED),
    "p2": _plan(2, PlanStatus.COMPLETED_NO_REPORT),
    "p3": _plan(3, PlanStatus.FAILED),
}


def test_default_selection_is_the_applyable_plans_in_cycle_order():
    assert default_selection(_cycle()) == ["p1", "p2"]
    prepared = prepare_apply(
        _cycle(), PLANS, None, files=lambda sel: [FileChange(path=f"{p}.py") for p in sel]
    )
    assert prepared.ready and prepared.selection == ["p1", "p2"]
    assert [f.path for f in prepared.files] == ["p1.py", "p2.py"] and prepared.refusal() is None


def test_problems_are_structured_and_refuse_with_one_error():
    prepared = prepare_apply(
        _cycle(), PLANS, ["p2", "p3", "p9"], files=lambda sel: [FileChange(path="never")]
    )
    assert [(p.code, p.plan_id) for p in prepared.problems] == [
        (ProblemCode.NEEDS_UNSELECTED, "p2"),
        (ProblemCode.NOT_APPLYABLE, "p3"),
        (ProblemCode.NO_COMMITS, "p3"),
        (ProblemCode.NOT_IN_CYCLE, "p9"),
    ]
    assert prepared.problems[0].needs == ["p1"] and prepared.files == []
    error = prepared.refusal()
    assert error is not None and error.code == ErrorCode.INVALID_SELECTION
    assert error.message.startswith(
        "plan p2 depends on unselected plan(s) p1 (x.py: needs p1); plan p3 is 'failed'"
    )


def test_empty_selections_and_closed_cycles():
    only_failed = _cycle().model_copy(update={"plans": [_cycle().plans[2]]})
    nothing = prepare_apply(only_failed, {"p3": PLANS["p3"]}, None)
    assert [p.code for p in nothing.problems] == [ProblemCode.NOTHING_TO_APPLY]
    assert [p.message for p in prepare_apply(_cycle(), PLANS, []).problems] == ["no plan is selected"]
    closed = prepare_apply(_cycle(CycleStatus.APPLIED), PLANS, None)
    error = closed.refusal()
    assert error is not None and error.code == ErrorCode.CYCLE_NOT_ACTIVE
    assert error.message == "cycle c1 is 'applied'; nothing to apply"

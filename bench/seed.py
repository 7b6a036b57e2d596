"""A big, realistic store: 10,000 plans, 1,000 runs (history, phase events, cycles), written through always_on.core.storage.

Why through always_on.core.storage: the CLI and the TUI must read what the product itself writes. Plans, cycles and
runs are written in one transaction (``save_plans``/``save_cycles``/``append_history_many``: the same rows
``save_plan`` writes, without 10,000 separate commits); phase events are appended line by line with the store's
own ``append_event``. Plan markdown files and reports are not written: neither the plan listing nor the screens
measured here read them.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

PLANS, RUNS = 10_000, 1_000
_TOPICS = (
    "unused imports",
    "return annotations",
    "flaky test",
    "dead code",
    "ruff format",
    "pathlib",
    "typos",
    "docstrings",
    "error messages",
    "logging",
    "f-strings",
    "type hints",
    "duplicate code",
    "timeouts",
)
_AREAS = (
    "src/app.py",
    "src/util.py",
    "the parser",
    "the config loader",
    "the CLI",
    "the HTTP client",
    "the cache",
    "tests/test_io.py",
    "the scheduler",
    "the exporter",
)


def seed_backlog(project: Path, plans: int = PLANS, runs: int = RUNS) -> dict[str, int]:
    """Seed the store (ALWAYS_ON_HOME must point at a temp folder) for ``project``; returns counts."""
    from always_on.core.records import (
        CyclePlanState,
        CycleRecord,
        CycleStatus,
        DependencyStatus,
        ErrorInfo,
        FireOutcome,
        Phase,
        PhaseEvent,
        PhaseEventType,
        PlanContent,
        PlanRecord,
        PlanStatus,
        ProjectState,
        RunHistoryEntry,
    )
    from always_on.core.storage import Store

    rng = random.Random(42)
    store = Store().project(project)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    cycles: dict[str, CycleRecord] = {}
    cycle_ids = [f"cycle-{i:05d}" for i in range(runs)]
    plan_map: dict[str, PlanRecord] = {}
    statuses = (
        [PlanStatus.APPLIED] * 40
        + [PlanStatus.ARCHIVED] * 20
        + [PlanStatus.COMPLETED] * 15
        + [PlanStatus.FAILED] * 10
        + [PlanStatus.READY] * 10
        + [PlanStatus.COMPLETED_NO_REPORT] * 5
    )
    for i in range(plans):
        topic, area = rng.choice(_TOPICS), rng.choice(_AREAS)
        created = start + timedelta(minutes=50 * i)
        status = rng.choice(statuses)
        cycle = None if status == PlanStatus.READY else cycle_ids[i * runs // plans]
        plan = PlanRecord(
            id=f"plan-{i:05d}-{rng.getrandbits(24):06x}",
            project_id=store.project_id,
            status=status,
            content=PlanContent(
                title=f"Fix {topic} in {area} ({i})",
                summary=f"Address the {topic} findings in {area}.",
                rationale=f"The linter reports {topic} in {area}; fixing them keeps the code easy to review.",
                dedupe_key=f"{topic.replace(' ', '-')}:{area.replace(' ', '-')}:{i}",
                context_signals=[f"ruff check {area}", "chat_2"],
                proposed_change=f"Fix the {topic} in {area}.",
                steps=["Run the linter", "Apply the fix", "Run the tests"],
                verification=["`ruff check .`", "`python -m pytest -q`"],
            ),
            created_at=created,
            updated_at=created + timedelta(minutes=20),
            discovery_run_id=f"run-{i * runs // plans:05d}",
            run_ids=[f"run-{i * runs // plans:05d}"],
            cycle_id=cycle,
            failure=ErrorInfo(code="execution_failed", message="tests failed after the change")
            if status == PlanStatus.FAILED
            else None,
        )
        plan_map[plan.id] = plan
        if cycle is not None:
            record = cycles.setdefault(
                cycle,
                CycleRecord(
                    id=cycle,
                    project_id=store.project_id,
                    status=CycleStatus.APPLIED,
                    strategy="worktree",
                    workspace_path=f"/tmp/always-on-bench-gone/{cycle}",
                    branch=f"always-on/{cycle}",
                    base_commit="0" * 40,
                    created_at=created,
                    updated_at=created,
                ),
            )
            record.plans.append(
                CyclePlanState(
                    plan_id=plan.id,
                    status=status,
                    commit_shas=["1" * 40],
                    dependency_status=DependencyStatus.CLEAN,
                    attempts=1,
                )
            )
    active = cycles[cycle_ids[-1]]  # the newest cycle is still open: its plans wait for review
    active.status = CycleStatus.ACTIVE
    for state in active.plans:
        state.status = plan_map[state.plan_id].status = PlanStatus.COMPLETED
    ids = list(plan_map)
    entries = []
    for r in range(runs):
        run_id = f"run-{r:05d}"
        began = start + timedelta(minutes=500 * r)
        outcome = rng.choice([FireOutcome.EXECUTED] * 7 + [FireOutcome.NO_PLAN, FireOutcome.FAILED])
        plan_id = ids[r * plans // runs]
        entries.append(
            RunHistoryEntry(
                run_id=run_id,
                project_id=store.project_id,
                agent="tidy",
                started_at=began,
                finished_at=began + timedelta(seconds=rng.randint(20, 600)),
                outcome=outcome,
                plan_id=plan_id,
                cycle_id=cycle_ids[r],
                report_available=outcome == FireOutcome.EXECUTED,
                error=ErrorInfo(code="execution_failed", message="tests failed")
                if outcome == FireOutcome.FAILED
                else None,
            )
        )
        for n, (type_, phase) in enumerate(
            (
                (PhaseEventType.DISCOVERY_STARTED, Phase.DISCOVERY),
                (PhaseEventType.PLAN_PRODUCED, Phase.DISCOVERY),
                (PhaseEventType.WORKSPACE_STARTED, Phase.WORKSPACE),
                (PhaseEventType.WORKSPACE_READY, Phase.WORKSPACE),
                (PhaseEventType.EXECUTION_STARTED, Phase.EXECUTION),
                (PhaseEventType.EXECUTION_COMPLETED, Phase.EXECUTION),
                (PhaseEventType.REPORT_STARTED, Phase.REPORT),
                (PhaseEventType.RUN_COMPLETED, None),
            )
        ):
            store.append_event(
                PhaseEvent(
                    ts=began + timedelta(seconds=5 * n),
                    project_id=store.project_id,
                    run_id=run_id,
                    type=type_,
                    phase=phase,
                    plan_id=plan_id,
                )
            )
    with store.transaction():
        store.save_plans(list(plan_map.values()))
        store.save_cycles(list(cycles.values()))
        store.append_history_many(entries)
    # Enabled and not paused; the scheduler is held by the "cycle full" gate (the active cycle's open plans wait
    # for review), so evaluating the gates reads the plan index, as it does for any busy project.
    store.write_state(
        ProjectState(
            project_id=store.project_id,
            path=str(store.project_path),
            enabled=True,
            paused=False,
            registered_at=start,
            last_run_id=f"run-{runs - 1:05d}",
            last_outcome=FireOutcome.EXECUTED,
            active_cycle_id=active.id,
            last_fire_started_at=start + timedelta(minutes=500 * (runs - 1)),
            last_fire_finished_at=start + timedelta(minutes=500 * (runs - 1) + 5),
        )
    )
    return {"plans": len(plan_map), "cycles": len(cycles), "runs": runs, "events": runs * 8}


def backlog_project(ctx) -> Path:
    """The seeded project (a tiny real git repository) shared by the backlog and startup benchmarks."""

    def make(path: Path) -> Path:
        from bench.data import git

        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        (path / "app.py").write_text("print('hello')\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial")
        seed_backlog(path)
        return path

    return ctx.shared("backlog-store", make)

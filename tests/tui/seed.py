"""Seed a real project store (written through ProjectStore) for TUI tests and screenshots.

Times and ids are fixed so that snapshots are identical run after run; the project is a real git repository and
the active cycle's workspace a real worktree whose commits carry fixed dates (so their SHAs are stable too).
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from always_on.core.contracts.plan import render_plan_markdown
from always_on.core.contracts.report import fallback_report, parse_report, render_report
from always_on.core.records import (
    AgentEvent,
    AgentEventKind,
    CyclePlanState,
    CycleRecord,
    CycleStatus,
    DependencyStatus,
    ErrorInfo,
    FileChange,
    FireOutcome,
    Phase,
    PhaseEvent,
    PhaseEventType,
    PlanContent,
    PlanRecord,
    PlanStatus,
    ProjectState,
    ReportMetadata,
    RunHistoryEntry,
    RunKind,
)
from always_on.core.storage import ProjectStore, Store
from always_on.tui.app import AlwaysOnApp
from always_on.tui.bridge import Bridge, display_path
from always_on.tui.clock import Clock

NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """A time relative to NOW (negative = in the past)."""
    return NOW + timedelta(minutes=minutes)


def pid(n: int) -> str:
    return f"plan-20250501-0{n}0000-a{n}b{n}c{n}"


def rid(n: int) -> str:
    return f"run-20250501-0{n}0000-r{n}r{n}r{n}"


CYCLE_OLD = "cycle-20250430-090000-c0c0c0"
CYCLE = "cycle-20250501-090000-c1c1c1"

BASE_FILES = {
    "src/app.py": "import os\nimport sys\nimport json\n\n\ndef main():\n    print(json.dumps({'ok': True}))\n",
    "src/util.py": "from os import path, sep\n\n\ndef join(a, b):\n    return path.join(a, b)\n",
    "src/cli.py": "def run( args ):\n    return  len(args)\n",
    "README.md": "# sample\n",
}


def _git(cwd: Path, *args: str, when: datetime | None = None) -> str:
    env = dict(os.environ)
    stamp = (when or NOW).strftime("%Y-%m-%dT%H:%M:%S+0000")
    env.update(
        GIT_AUTHOR_NAME="Seed",
        GIT_AUTHOR_EMAIL="seed@example.com",
        GIT_COMMITTER_NAME="Seed",
        GIT_COMMITTER_EMAIL="seed@example.com",
        GIT_AUTHOR_DATE=stamp,
        GIT_COMMITTER_DATE=stamp,
    )
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def make_project(path: Path) -> Path:
    """A real git repository with a fixed first commit."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    _write(path, BASE_FILES)
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "initial", when=at(-600))
    return path


def _content(title: str, key: str, summary: str) -> PlanContent:
    return PlanContent(
        title=title,
        summary=summary,
        rationale=f"{summary} Keeping the code clean makes later changes safer.",
        dedupe_key=key,
        context_signals=["ruff check reports it", "chat_1 mentioned lint noise"],
        proposed_change=f"{summary} Only the named file changes.",
        steps=["Run the linter on the file", "Apply the automatic fix", "Run the linter again"],
        verification=["ruff check src", "python -m pytest -q"],
    )


def _plan(
    store: ProjectStore,
    n: int,
    status: PlanStatus,
    title: str,
    key: str,
    *,
    cycle: str | None = None,
    minutes: float,
    failure: ErrorInfo | None = None,
    report_run: str | None = None,
) -> PlanRecord:
    plan = PlanRecord(
        id=pid(n),
        project_id=store.project_id,
        status=status,
        content=_content(title, key, f"{title}."),
        created_at=at(minutes),
        updated_at=at(minutes + 5),
        discovery_run_id=rid(n),
        run_ids=[rid(n)],
        cycle_id=cycle,
        failure=failure,
        report_run_id=report_run,
    )
    store.save_plan(plan, render_plan_markdown(plan.content))
    return plan


def seed_state(store: ProjectStore, **fields) -> None:
    fields.setdefault("enabled", True)  # the seeded project was `init`-ed
    state = ProjectState(
        project_id=store.project_id, path=str(store.project_path), registered_at=at(-1440), **fields
    )
    store.write_state(state)


def _commit_plan(ws: Path, files: dict[str, str], message: str, when: datetime) -> tuple[str, str, list[str]]:
    before = _git(ws, "rev-parse", "HEAD")
    _write(ws, files)
    _git(ws, "add", "-A")
    _git(ws, "commit", "-q", "-m", message, when=when)
    after = _git(ws, "rev-parse", "HEAD")
    return before, after, [after]


def _report(
    store: ProjectStore,
    run_id: str,
    plan: PlanRecord,
    ws: str,
    files: list[FileChange],
    start: float,
    end: float,
    *,
    fallback_reason: str | None = None,
) -> None:
    meta = ReportMetadata(
        run_id=run_id,
        project_id=store.project_id,
        plan_id=plan.id,
        cycle_id=plan.cycle_id,
        started_at=at(start),
        finished_at=at(end),
        workspace=ws,
        agent="tidy",
        files_changed=files,
    )
    if fallback_reason:
        text = fallback_report(
            meta,
            title=plan.title,
            reason=fallback_reason,
            last_agent_text="ruff reported 2 remaining errors; tests failed: test_parse_empty",
        )
    else:
        parsed = parse_report(
            "## Steps Performed\n1. Ran `ruff check --select F401 src/app.py`\n2. Applied the fix\n\n"
            "## Command Output\n```\nFound 2 errors (2 fixed, 0 remaining).\n```\n\n"
            "## Verification Results\n- `ruff check src` passes\n- `python -m pytest -q`: 12 passed\n\n"
            "## Follow-ups\n- Enable F401 in CI\n"
        )
        text = render_report(meta, parsed, title=plan.title)
    store.write_report(meta, text)


def phase_events(
    store: ProjectStore,
    run_id: str,
    start: float,
    *,
    plan: str | None,
    title: str | None = None,
    fail: tuple[Phase, str, str] | None = None,
    no_plan: bool = False,
    rerun: bool = False,
) -> list[PhaseEvent]:
    """The phase events of one run, a minute apart-ish, ending as the arguments say."""
    out: list[PhaseEvent] = []
    t = start

    def ev(type_: PhaseEventType, phase: Phase | None = None, **kw) -> None:
        nonlocal t
        out.append(
            PhaseEvent(
                ts=at(t),
                project_id=store.project_id,
                run_id=run_id,
                type=type_,
                phase=phase,
                plan_id=plan,
                **kw,
            )
        )
        t += 0.4

    if not rerun:
        ev(PhaseEventType.DISCOVERY_STARTED, Phase.DISCOVERY)
        if no_plan:
            ev(PhaseEventType.NO_PLAN, Phase.DISCOVERY, message="Nothing worth changing was found.")
            return out
        ev(PhaseEventType.PLAN_PRODUCED, Phase.DISCOVERY, message=title)
    for start_type, end_type, phase in (
        (PhaseEventType.WORKSPACE_STARTED, PhaseEventType.WORKSPACE_READY, Phase.WORKSPACE),
        (PhaseEventType.EXECUTION_STARTED, PhaseEventType.EXECUTION_COMPLETED, Phase.EXECUTION),
        (PhaseEventType.REPORT_STARTED, PhaseEventType.REPORT_PRODUCED, Phase.REPORT),
    ):
        ev(start_type, phase)
        if fail and fail[0] == phase:
            error = ErrorInfo(code=fail[1], message=fail[2])
            ev(PhaseEventType.RUN_FAILED, phase, error=error, message=fail[2])
            return out
        ev(end_type, phase)
    ev(PhaseEventType.RUN_COMPLETED)
    return out


def agent_events(run_id: str, start: float, *, denied: bool = True) -> list[AgentEvent]:
    """A plausible agent stream: chunked message, a thought, tool calls, permission decisions."""
    out: list[AgentEvent] = []
    t = start

    def ev(kind: AgentEventKind, text: str = "", phase: Phase = Phase.EXECUTION, **kw) -> None:
        nonlocal t
        out.append(AgentEvent(ts=at(t), run_id=run_id, phase=phase, kind=kind, text=text, **kw))
        t += 0.01

    info = {"name": "always-on-tidy", "title": "tidy", "version": "0.1.0"}
    ev(
        AgentEventKind.LIFECYCLE,
        "agent ready: always-on-tidy 0.1.0, ACP v1",
        Phase.DISCOVERY,
        data={"agent": "tidy", "agent_info": info, "initialize": {"protocolVersion": 1, "agentInfo": info}},
    )
    for chunk in ["I will ", "look at ", "the ruff ", "findings ", "first.\n"]:
        ev(AgentEventKind.MESSAGE, chunk, Phase.DISCOVERY)
    ev(
        AgentEventKind.THOUGHT,
        "F401 in src/app.py has an automatic fix; that is a safe plan.",
        Phase.DISCOVERY,
    )
    ev(
        AgentEventKind.TOOL_CALL,
        "ruff check src",
        Phase.DISCOVERY,
        data={"tool_call_id": "t1", "status": "pending"},
    )
    ev(AgentEventKind.PERMISSION, "ruff check src", Phase.DISCOVERY, allowed=True, reason="read-only command")
    ev(
        AgentEventKind.TOOL_CALL_UPDATE,
        "",
        Phase.DISCOVERY,
        data={"tool_call_id": "t1", "status": "completed"},
    )
    ev(
        AgentEventKind.TOOL_CALL,
        "ruff check --fix src/app.py",
        data={"tool_call_id": "t2", "status": "pending"},
    )
    ev(AgentEventKind.PERMISSION, "ruff check --fix src/app.py", allowed=True, reason="inside the workspace")
    ev(AgentEventKind.TOOL_CALL_UPDATE, "", data={"tool_call_id": "t2", "status": "completed"})
    if denied:
        ev(AgentEventKind.TOOL_CALL, "git push origin main", data={"tool_call_id": "t3", "status": "pending"})
        ev(
            AgentEventKind.PERMISSION,
            "git push origin main",
            allowed=False,
            reason="git push is never allowed: changes reach the user only through apply",
        )
        ev(AgentEventKind.TOOL_CALL_UPDATE, "", data={"tool_call_id": "t3", "status": "failed"})
    for chunk in ["Removed ", "the two ", "unused imports; ", "ruff is clean now.\n"]:
        ev(AgentEventKind.MESSAGE, chunk)
    return out


def seed_full(project: Path, store: Store | None = None) -> ProjectStore:
    """A project with plans in every status, an applied and an active cycle, five runs, reports and logs."""
    store = store or Store()
    ps = store.project(project)
    ws = project.parent / "workspace"
    _git(project, "worktree", "add", "-q", "-b", f"always-on/{CYCLE}", str(ws))
    base = _git(ws, "rev-parse", "HEAD")

    b1, a1, c1 = _commit_plan(
        ws,
        {"src/app.py": BASE_FILES["src/app.py"].replace("import os\nimport sys\n", "")},
        "always-on: remove unused imports",
        at(-115),
    )
    b2, a2, c2 = _commit_plan(
        ws,
        {
            "src/app.py": "import json\n\n\ndef main() -> None:\n    print(json.dumps({'ok': True}))\n",
            "src/util.py": "from os import path\n\n\ndef join(a: str, b: str) -> str:\n    return path.join(a, b)\n",
        },
        "always-on: add return annotations",
        at(-85),
    )
    b3, a3, c3 = _commit_plan(
        ws,
        {"src/cli.py": "def run(args):\n    return len(args)\n"},
        "always-on: ruff format src/cli.py",
        at(-55),
    )
    ws_label = display_path(ws)

    p7 = _plan(
        ps,
        7,
        PlanStatus.APPLIED,
        "Rename misleading variable in the parser",
        "refactor:parser-names",
        cycle=CYCLE_OLD,
        minutes=-1500,
        report_run=rid(7),
    )
    _plan(
        ps,
        8,
        PlanStatus.ARCHIVED,
        "Drop dead code in the legacy module",
        "dead-code:legacy",
        cycle=CYCLE_OLD,
        minutes=-1450,
    )
    p1 = _plan(
        ps,
        1,
        PlanStatus.COMPLETED,
        "Remove unused imports in src/app.py",
        "ruff:F401:src/app.py",
        cycle=CYCLE,
        minutes=-120,
        report_run=rid(1),
    )
    p2 = _plan(
        ps,
        2,
        PlanStatus.COMPLETED,
        "Add return type annotations to src/app.py and src/util.py",
        "ruff:ANN201:src",
        cycle=CYCLE,
        minutes=-90,
        report_run=rid(2),
    )
    p3 = _plan(
        ps,
        3,
        PlanStatus.COMPLETED_NO_REPORT,
        "Format src/cli.py with ruff format",
        "ruff:format:src/cli.py",
        cycle=CYCLE,
        minutes=-60,
        report_run=rid(3),
    )
    p4 = _plan(
        ps,
        4,
        PlanStatus.FAILED,
        "Fix the failing test test_parse_empty",
        "pytest:test_parse_empty",
        cycle=CYCLE,
        minutes=-30,
        failure=ErrorInfo(code="execution_failed", message="the agent finished without changing any file"),
    )
    _plan(ps, 5, PlanStatus.READY, "Add type hints to the config loader", "mypy:config-loader", minutes=-20)
    _plan(
        ps,
        6,
        PlanStatus.EXECUTING,
        "Replace os.path with pathlib in io.py",
        "refactor:pathlib-io",
        cycle=CYCLE,
        minutes=-10,
    )

    ps.save_cycle(
        CycleRecord(
            id=CYCLE_OLD,
            project_id=ps.project_id,
            status=CycleStatus.APPLIED,
            strategy="worktree",
            workspace_path=str(project.parent / "gone"),
            branch=f"always-on/{CYCLE_OLD}",
            base_commit=base,
            created_at=at(-1500),
            updated_at=at(-1400),
            plans=[
                CyclePlanState(plan_id=pid(7), status=PlanStatus.APPLIED),
                CyclePlanState(plan_id=pid(8), status=PlanStatus.ARCHIVED),
            ],
        )
    )
    ps.save_cycle(
        CycleRecord(
            id=CYCLE,
            project_id=ps.project_id,
            strategy="worktree",
            workspace_path=str(ws),
            branch=f"always-on/{CYCLE}",
            base_commit=base,
            created_at=at(-120),
            updated_at=at(-10),
            plans=[
                CyclePlanState(
                    plan_id=pid(1),
                    status=PlanStatus.COMPLETED,
                    commit_shas=c1,
                    before_head=b1,
                    after_head=a1,
                    dependency_status=DependencyStatus.CLEAN,
                    attempts=1,
                ),
                CyclePlanState(
                    plan_id=pid(2),
                    status=PlanStatus.COMPLETED,
                    commit_shas=c2,
                    before_head=b2,
                    after_head=a2,
                    dependency_status=DependencyStatus.DEPENDENT,
                    depends_on=[pid(1)],
                    dependency_reasons=[f"src/app.py: does not apply on the base without {pid(1)}"],
                    attempts=1,
                ),
                CyclePlanState(
                    plan_id=pid(3),
                    status=PlanStatus.COMPLETED_NO_REPORT,
                    commit_shas=c3,
                    before_head=b3,
                    after_head=a3,
                    dependency_status=DependencyStatus.CLEAN,
                    attempts=1,
                ),
                CyclePlanState(plan_id=pid(4), status=PlanStatus.FAILED, attempts=1),
                CyclePlanState(plan_id=pid(6), status=PlanStatus.EXECUTING, attempts=1),
            ],
        )
    )

    f1 = [FileChange(path="src/app.py", added=0, removed=2)]
    f2 = [
        FileChange(path="src/app.py", added=1, removed=1),
        FileChange(path="src/util.py", added=2, removed=2),
    ]
    _report(ps, rid(7), p7, ws_label, [FileChange(path="src/parser.py", added=6, removed=6)], -1500, -1490)
    _report(ps, rid(1), p1, ws_label, f1, -120, -115)
    _report(ps, rid(2), p2, ws_label, f2, -90, -85)
    _report(
        ps,
        rid(3),
        p3,
        ws_label,
        [FileChange(path="src/cli.py", added=2, removed=2)],
        -60,
        -55,
        fallback_reason="the agent submitted no report",
    )
    _report(
        ps,
        rid(4),
        p4,
        ws_label,
        [],
        -30,
        -28,
        fallback_reason="execution_failed: the agent finished without changing any file",
    )

    runs = [
        (7, RunKind.FIRE, -1500, -1490, FireOutcome.EXECUTED, pid(7), CYCLE_OLD, None),
        (1, RunKind.FIRE, -120, -115, FireOutcome.EXECUTED, pid(1), CYCLE, None),
        (2, RunKind.FIRE, -90, -85, FireOutcome.EXECUTED, pid(2), CYCLE, None),
        (3, RunKind.FIRE, -60, -55, FireOutcome.EXECUTED, pid(3), CYCLE, None),
        (9, RunKind.FIRE, -45, -44, FireOutcome.NO_PLAN, None, None, None),
        (
            4,
            RunKind.RERUN,
            -30,
            -28,
            FireOutcome.FAILED,
            pid(4),
            CYCLE,
            ErrorInfo(code="execution_failed", message="the agent finished without changing any file"),
        ),
    ]
    for n, kind, start, end, outcome, plan_id, cycle_id, error in runs:
        ps.append_history(
            RunHistoryEntry(
                run_id=rid(n),
                project_id=ps.project_id,
                kind=kind,
                agent="tidy",
                started_at=at(start),
                finished_at=at(end),
                outcome=outcome,
                plan_id=plan_id,
                cycle_id=cycle_id,
                error=error,
                report_available=outcome != FireOutcome.NO_PLAN,
                denials=1 if n in (1, 4) else 0,  # their agent logs below hold one denial each
            )
        )
    for event in phase_events(ps, rid(1), -120, plan=pid(1), title=p1.title):
        ps.append_event(event)
    for event in agent_events(rid(1), -119.5):
        ps.append_agent_event(event)
    for event in phase_events(ps, rid(9), -45, plan=None, no_plan=True):
        ps.append_event(event)
    for event in phase_events(
        ps,
        rid(4),
        -30,
        plan=pid(4),
        rerun=True,
        fail=(Phase.EXECUTION, "execution_failed", "the agent finished without changing any file"),
    ):
        ps.append_event(event)
    for event in agent_events(rid(4), -29.1, denied=True):
        ps.append_agent_event(event)

    seed_state(
        ps,
        last_fire_started_at=at(-30),
        last_fire_finished_at=at(-28),
        last_outcome=FireOutcome.FAILED,
        last_error=ErrorInfo(code="execution_failed", message="the agent finished without changing any file"),
        last_run_id=rid(4),
        runs_today=6,
        runs_today_date=NOW.date(),
        consecutive_failures=1,
        last_change_at=at(-40),
        active_cycle_id=CYCLE,
        next_tick_at=at(10),
    )
    return ps


# --- app helpers shared by the TUI tests (a module with its own name: conftest modules collide) ---

SIZE = (100, 32)


def frozen_clock() -> Clock:
    return Clock(lambda: NOW, UTC)


def make_app(project: Path, *, watch: bool = False, recover: bool = False, **kwargs) -> AlwaysOnApp:
    """The app on the seeded store. No recovery on start by default: the seed shows a plan executing in
    another process, which has no process behind it here (recovery would rightly mark it interrupted)."""
    return AlwaysOnApp(Bridge(project), clock=frozen_clock(), watch=watch, recover=recover, **kwargs)

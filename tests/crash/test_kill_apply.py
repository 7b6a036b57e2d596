"""``kill -9`` of a real ``always-on apply`` at many instants — before the journal, inside the file swap, while
recording, at random moments, even while a crash is being recovered — and then the next command of any kind:
the checkout is byte for byte as before or entirely as applied, never a mix; no cycle stays stuck; nothing is
left beside the project; a clean re-apply then works."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from crashkit import Template, cli, git_state, killed, make_cycle, make_project
from helpers import git
from helpers import tree_hashes as tree

from always_on.core.config import load_config
from always_on.core.orchestrator import Orchestrator
from always_on.core.records import CycleStatus, PlanStatus
from always_on.core.storage import Store


@dataclass
class Case:
    project: Path
    cycle: str
    before: dict
    after: dict
    git: tuple
    template: Template
    beside: list
    counts: dict = field(default_factory=lambda: {"kills": 0, "back": 0, "forward": 0, "reapplied": 0})


@pytest.fixture
def case(tmp_path, always_on_home) -> Case:
    project = make_project(tmp_path / "work" / "project")
    cycle = make_cycle(project)
    before, state = tree(project), git_state(project)
    beside = sorted(p.name for p in project.parent.iterdir())
    template = Template(always_on_home, project, tmp_path / "keep")
    reference = cli("apply", "--project", str(project), "--yes")
    assert reference.returncode == 0, reference.stderr
    after = tree(project)
    assert after != before and git_state(project) == state
    template.restore()
    return Case(project, cycle, before, after, state, template, beside)


def _orchestrator(project: Path) -> Orchestrator:
    return Orchestrator(project, config=load_config())


def _check(case: Case, how: str) -> str:
    """After a kill and the next command: as before or as applied, never a mix; records agree; nothing stuck."""
    now = tree(case.project)
    if now == case.before:
        outcome = "back"
    elif now == case.after:
        outcome = "forward"
    else:
        mixed = sorted(k for k in set(now) | set(case.before) if now.get(k) != case.before.get(k))
        raise AssertionError(f"partial checkout after {how}: {mixed[:10]}")
    assert git_state(case.project) == case.git  # nothing committed or staged
    assert sorted(p.name for p in case.project.parent.iterdir()) == case.beside  # nothing beside the project
    store = Store().project(case.project)
    assert store.open_applies() == [] and store.open_runs() == []
    apply_dir = store.dir / "apply"
    assert not apply_dir.exists() or not any(apply_dir.iterdir())
    assert store.fire_lock().busy() is None and not store.fire_lock().path.exists()
    cycle = store.get_cycle(case.cycle)
    plans = {s.status for s in cycle.plans}
    if outcome == "back":
        assert cycle.status == CycleStatus.ACTIVE and plans == {PlanStatus.COMPLETED}, (cycle.status, plans)
    else:
        assert cycle.status == CycleStatus.APPLIED and plans == {PlanStatus.APPLIED}, (cycle.status, plans)
        # a kill while the finished cycle's workspace was being removed leaves it to the next fire's pruning
        _orchestrator(case.project)._prune_leftovers()
        assert not Path(cycle.workspace_path).exists()
        assert git(case.project, "branch", "--list", "always-on/*") == ""
        assert len(git(case.project, "worktree", "list", "--porcelain").split("\n\n")) == 1
    case.counts[outcome] += 1
    return outcome


def _reapply(case: Case) -> None:
    report = _orchestrator(case.project).apply()
    assert report.cycle_status == CycleStatus.APPLIED
    assert tree(case.project) == case.after
    case.counts["reapplied"] += 1


def _kill_then_recover(case: Case, fault: str, recover: str = "inprocess") -> str:
    case.template.restore()
    proc = cli("apply", "--project", str(case.project), "--yes", fault=fault)
    assert killed(proc) or proc.returncode == 0, (fault, proc.returncode, proc.stderr)
    case.counts["kills"] += killed(proc)
    if recover == "inprocess":
        _orchestrator(case.project).recover()
    elif recover == "apply":  # the next command is the same apply: it settles, then applies
        again = cli("apply", "--project", str(case.project), "--yes")
        assert again.returncode in (0, 2), again.stderr  # 2: the cycle was completed by the recovery
        assert tree(case.project) == case.after
    else:
        done = cli(*recover.split(), "--project", str(case.project))
        assert done.returncode == 0, done.stderr
        if killed(proc) and "swap" in fault:
            assert "recovered:" in done.stderr  # the user is told what was done
    outcome = _check(case, f"{fault} then {recover}")
    if outcome == "back" and case.counts["back"] % 3 == 1:  # the cycle is applicable again (every 3rd: time)
        _reapply(case)
    return outcome


def test_kill_at_every_step_of_the_file_swap(case: Case):
    step, outcomes = 1, []
    recoveries = ["inprocess", "inprocess", "status", "inprocess", "plans --json", "inprocess", "apply"]
    while True:
        outcomes.append(
            _kill_then_recover(case, f"kill@apply.swap#{step}", recoveries[step % len(recoveries)])
        )
        if case.counts["kills"] < step:  # the apply finished before reaching this step: every step was hit
            break
        step += 1
    print(f"\nswap steps: {case.counts}")
    assert case.counts["kills"] >= 25  # the change touches ~30 paths: each step of the swap was a kill
    assert case.counts["back"] >= 20 and case.counts["reapplied"] >= 7
    assert outcomes[-1] == "forward"  # the run that was not killed: applied


def test_kill_before_during_and_after_the_swap_and_while_recovering(case: Case):
    for point, recover in (
        ("apply.staged", "status"),
        ("apply.journaled", "inprocess"),
        ("apply.swapped", "inprocess"),  # every file in place: completed forward
        ("apply.recorded", "daemon --once"),
    ):
        outcome = _kill_then_recover(case, f"kill@{point}", recover)
        assert outcome == ("forward" if point in ("apply.swapped", "apply.recorded") else "back"), point
    for step in (1, 4, 9):  # kill the recovery itself, part-way through putting the checkout back
        case.template.restore()
        first = cli("apply", "--project", str(case.project), "--yes", fault="kill@apply.swap#20")
        second = cli("status", "--project", str(case.project), fault=f"kill@recover.restore#{step}")
        assert killed(first) and killed(second)
        case.counts["kills"] += 2
        _orchestrator(case.project).recover()
        assert _check(case, f"a kill while recovering (step {step})") == "back"
        _reapply(case)
    print(f"\nboundaries and recovery: {case.counts}")
    assert case.counts["kills"] == 10


def test_kill_at_random_instants(case: Case):
    rng = random.Random(13)
    for i in range(10):  # the process kills itself some milliseconds after its journal is recorded
        _kill_then_recover(
            case, f"kill@apply.journaled+{rng.randint(0, 25)}", "inprocess" if i % 3 else "status"
        )
    for _ in range(4):  # frozen at a random swap step, then SIGKILL from outside
        case.template.restore()
        fifo = case.project.parent.parent / "fault.fifo"
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo)
        env = dict(
            os.environ,
            ALWAYS_ON_FAULT=f"stop@apply.swap#{rng.randint(1, 30)}",
            ALWAYS_ON_FAULT_NOTIFY=str(fifo),
        )
        proc = subprocess.Popen(
            [
                sys.executable,
                "-P",
                "-m",
                "always_on.core.cli",
                "apply",
                "--project",
                str(case.project),
                "--yes",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        with open(fifo, encoding="utf-8") as fh:  # the process writes "POINT PID" just before it stops
            point, pid = fh.readline().split()
        assert int(pid) == proc.pid and point == "apply.swap"
        os.killpg(proc.pid, signal.SIGKILL)  # the process and whatever it started
        assert proc.wait() == -signal.SIGKILL
        fifo.unlink()
        case.counts["kills"] += 1
        _orchestrator(case.project).recover()
        if _check(case, "an outside SIGKILL") == "back":
            _reapply(case)
    print(f"\nrandom instants: {case.counts}")
    assert case.counts["kills"] >= 12


async def test_the_tui_settles_an_interrupted_apply_and_says_so(case: Case):
    from always_on.tui.app import AlwaysOnApp
    from always_on.tui.bridge import Bridge

    case.template.restore()
    assert killed(cli("apply", "--project", str(case.project), "--yes", fault="kill@apply.swap#6"))
    assert tree(case.project) not in (case.before, case.after)  # a partial checkout, until the next command
    app = AlwaysOnApp(Bridge(case.project), watch=False)
    async with app.run_test(size=(100, 32)) as pilot:
        for _ in range(200):
            if any(n.title == "Recovered after a crash" for n in app._notifications):
                break
            await pilot.pause(0.05)
        messages = [n.message for n in app._notifications if n.title == "Recovered after a crash"]
    assert any("rolled back to exactly what it was before" in m for m in messages)
    assert _check(case, "the TUI") == "back"


def test_files_edited_after_a_crash_are_kept_in_found_and_the_checkout_rolled_back(case: Case):
    """Killed once every file was in place, then the user edits an applied file and an added one before the next
    command: the swap is no longer complete, so it is rolled back, and both edits are kept in the apply's found/."""
    case.template.restore()
    assert killed(cli("apply", "--project", str(case.project), "--yes", fault="kill@apply.swapped"))
    (case.project / "src/app.py").write_text("the user's edit of an applied file\n")
    (case.project / "new/side.txt").write_text("the user's edit of an added file\n")
    [(apply_id, *_)] = Store().project(case.project).open_applies()
    done = cli("status", "--project", str(case.project))
    assert done.returncode == 0, done.stderr
    assert "rolled back" in done.stderr and "2 file(s) had changed" in done.stderr, done.stderr
    assert tree(case.project) == case.before and git_state(case.project) == case.git
    store = Store().project(case.project)
    found = store.apply_dir(apply_id) / "found"
    assert str(found) in done.stderr
    assert sorted(p.read_text() for p in found.iterdir()) == [
        "the user's edit of an added file\n",
        "the user's edit of an applied file\n",
    ]
    assert store.open_applies() == [] and store.get_cycle(case.cycle).status == CycleStatus.ACTIVE
    assert sorted(p.name for p in case.project.parent.iterdir()) == case.beside  # nothing beside the project


def test_a_finished_apply_keeps_nothing_of_its_own(case: Case):
    """Right after an apply that was not interrupted (before any other command could clean up): no staging folder,
    no journal, nothing beside the project."""
    case.template.restore()
    done = cli("apply", "--project", str(case.project), "--yes")
    assert done.returncode == 0, done.stderr
    assert tree(case.project) == case.after
    store = Store().project(case.project)
    assert store.open_applies() == [] and not any((store.dir / "apply").iterdir())
    assert sorted(p.name for p in case.project.parent.iterdir()) == case.beside

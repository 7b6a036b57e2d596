"""End to end through the real core (orchestrator, workspace, built-in agent): fire → review → apply, conflicts.

These drive the lead's core/orchestrator.py, core/workspace and the `tidy` agent; the TUI only adds keys.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import tree_hashes
from seed import SIZE, pid

from always_on.core.records import FireOutcome, PlanStatus
from always_on.core.storage import Store
from always_on.tui.app import AlwaysOnApp, main
from always_on.tui.bridge import Bridge, create_demo
from always_on.tui.screens.dialogs import ConfirmDialog, MessageDialog
from always_on.tui.screens.review import ReviewScreen


async def wait_for(pilot, condition, timeout: float = 120.0, step: float = 0.05) -> None:
    for _ in range(int(timeout / step)):
        if condition():
            return
        await pilot.pause(step)
    assert condition(), "condition not reached in time"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


async def test_fire_review_and_apply_the_demo_project(tmp_path):
    project = create_demo(tmp_path / "demo")
    head = git(project, "rev-parse", "HEAD")
    app = AlwaysOnApp(Bridge(project), watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        await wait_for(pilot, lambda: app.firing)
        await wait_for(pilot, lambda: not app.firing and not app._inbox)
        assert app.current_run.outcome == FireOutcome.EXECUTED, app.current_run.error
        assert any(n.title == "Fire finished" and "press 4" in n.message for n in app._notifications)
        lines = "\n".join(s.text for s in app.screen.stream.log_widget.lines)
        assert "run completed" in lines
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, ReviewScreen) and screen.cycle is not None
        await wait_for(pilot, lambda: bool(screen.files) and bool(screen.query_one("#diff").text))
        touched = sorted(f.path for f in screen.files)
        plan_id = screen.selection[0]
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert sorted(item.split()[0] for item in app.screen.items) == touched
        await pilot.press("y")
        store = Store().project(project)
        await wait_for(pilot, lambda: store.get_plan(plan_id).status == PlanStatus.APPLIED)
    assert git(project, "rev-parse", "HEAD") == head  # applied as uncommitted changes, no commit
    assert sorted(git(project, "diff", "--name-only").splitlines()) == touched


async def test_apply_the_seeded_cycle_puts_the_change_in_the_checkout(seeded):
    head = git(seeded, "rev-parse", "HEAD")
    app = AlwaysOnApp(Bridge(seeded), watch=False)
    store = Store().project(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: len(app.screen.files) == 3)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: any(n.title == "Applied" for n in app._notifications))  # apply returned
        assert {store.get_plan(p).status for p in (pid(1), pid(2), pid(3))} == {PlanStatus.APPLIED}
    assert git(seeded, "rev-parse", "HEAD") == head
    assert (seeded / "src/util.py").read_text().startswith("from os import path\n")
    assert "def main() -> None:" in (seeded / "src/app.py").read_text()


async def test_a_conflicting_apply_lists_the_files_and_changes_nothing(seeded):
    app_py = seeded / "src/app.py"
    app_py.write_text(app_py.read_text().replace("import os\n", "import os  # the user's own edit\n"))
    before = tree_hashes(seeded)
    app = AlwaysOnApp(Bridge(seeded), watch=False)
    store = Store().project(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: len(app.screen.files) == 3)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog))
        dialog = app.screen
        assert "nothing was changed" in dialog.title_text
        assert "src/app.py" in dialog.items
    assert tree_hashes(seeded) == before
    assert store.get_plan(pid(1)).status == PlanStatus.COMPLETED
    assert store.get_cycle(store.read_state().active_cycle_id).status == "active"


def test_demo_flag_creates_a_project_and_opens_it(tmp_path, monkeypatch, always_on_home):
    opened: list[AlwaysOnApp] = []
    monkeypatch.setattr(AlwaysOnApp, "run", lambda self, *a, **k: opened.append(self))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert main(["--demo", "--no-scheduler"]) == 0
    app = opened[0]
    project = app.bridge.project
    assert project.is_dir() and (project / ".git").exists() and project.is_relative_to(tmp_path)
    assert not app.run_scheduler
    assert str(always_on_home) in str(app.bridge.store.root)  # an existing ALWAYS_ON_HOME is kept

"""Dependency analysis: clean plans, dependent plans with reasons, failures, and the scratch always removed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from wshelp import APP, replace_line, run_plan

from always_on.core.records import DependencyStatus
from always_on.core.workspace import PlanCommits, WorkspaceInfo, analyze_dependencies, dependencies


@pytest.fixture
def scratch_root(tmp_path: Path, monkeypatch) -> Path:
    """Route the analysis' temporary folders here so tests can see that none is left behind."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _chain(ws: WorkspaceInfo):
    """p1 edits line 5; p2 edits line 6 (next to p1's); p3 edits p2's line again; p4 is elsewhere."""
    app = replace_line(APP, 5, "p1 was here")
    p1 = run_plan(ws, "p1", {"src/app.py": app})
    app = replace_line(app, 6, "p2 was here")
    p2 = run_plan(ws, "p2", {"src/app.py": app})
    app = replace_line(app, 6, "p3 changed p2's line")
    p3 = run_plan(ws, "p3", {"src/app.py": app})
    p4 = run_plan(ws, "p4", {"README.md": "# independent\n", "src/app.py": replace_line(app, 38, "far away")})
    return [
        PlanCommits(plan_id=pid, commit_shas=r.commit_shas)
        for pid, r in zip(["p1", "p2", "p3", "p4"], [p1, p2, p3, p4], strict=True)
    ]


def test_clean_dependent_and_transitive_plans(ws: WorkspaceInfo, scratch_root: Path) -> None:
    results = analyze_dependencies(ws, _chain(ws))
    assert results["p1"].status == DependencyStatus.CLEAN and results["p1"].depends_on == []
    assert results["p2"].status == DependencyStatus.DEPENDENT and results["p2"].depends_on == ["p1"]
    assert results["p2"].reasons == ["touches src/app.py changed by plan p1"]
    assert results["p3"].status == DependencyStatus.DEPENDENT and results["p3"].depends_on == ["p1", "p2"]
    assert "touches src/app.py changed by plan p2" in results["p3"].reasons
    assert "needs plan p1 because plan p2 depends on it" in results["p3"].reasons
    assert results["p4"].status == DependencyStatus.CLEAN  # same file, far from the other edits
    assert list(scratch_root.iterdir()) == []


def test_plan_without_commits_is_clean(ws: WorkspaceInfo, scratch_root: Path) -> None:
    results = analyze_dependencies(ws, [PlanCommits(plan_id="empty", commit_shas=[])])
    assert results["empty"].status == DependencyStatus.CLEAN and "no commits" in results["empty"].reasons[0]


def test_git_failure_marks_the_plan_failed_and_removes_the_scratch(
    ws: WorkspaceInfo, scratch_root: Path
) -> None:
    good = run_plan(ws, "p1", {"README.md": "# x\n"})
    plans = [
        PlanCommits(plan_id="bad", commit_shas=["0" * 40]),
        PlanCommits(plan_id="p1", commit_shas=good.commit_shas),
    ]
    results = analyze_dependencies(ws, plans)
    assert results["bad"].status == DependencyStatus.FAILED
    assert "dependency analysis of plan bad failed" in results["bad"].reasons[0]
    assert "0000000000" in results["bad"].reasons[0]
    assert results["p1"].status == DependencyStatus.CLEAN  # one failure does not spoil the others
    assert list(scratch_root.iterdir()) == []


def test_vanished_workspace_fails_every_plan(ws: WorkspaceInfo, scratch_root: Path) -> None:
    import shutil

    plans = _chain(ws)
    shutil.rmtree(ws.path)
    results = analyze_dependencies(ws, plans)
    assert {r.status for r in results.values()} == {DependencyStatus.FAILED}
    assert list(scratch_root.iterdir()) == []


def test_scratch_is_removed_when_the_analysis_crashes(
    ws: WorkspaceInfo, scratch_root: Path, monkeypatch
) -> None:
    plans = _chain(ws)
    seen: list[Path] = []

    def boom(repo, patch, env, *, check_only):
        seen.append(Path(env["GIT_INDEX_FILE"]).parent)
        raise RuntimeError("crash in the middle of the analysis")

    monkeypatch.setattr(dependencies, "_apply_cached", boom)
    with pytest.raises(RuntimeError):
        analyze_dependencies(ws, plans)
    assert seen and seen[0].parent == scratch_root and not seen[0].exists()
    assert list(scratch_root.iterdir()) == []

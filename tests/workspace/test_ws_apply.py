"""Apply: the selected plans reach the user's working tree as uncommitted changes, all or nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import git, tree_hashes
from wshelp import (
    APP,
    BINARY,
    apply_info,
    make_index_stale,
    replace_line,
    run_plan,
    worktree_paths,
    write,
)

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import DependencyStatus, PlanStatus
from always_on.core.workspace import (
    WorkspaceInfo,
    analyze_dependencies,
    apply_plans,
    journal,
    prepare_workspace,
)
from always_on.core.workspace.dependencies import PlanCommits


def _two_dependent_plans(ws: WorkspaceInfo):
    """A edits app.py line 5 and adds a module; B edits line 6 (so it needs A) and util.py."""
    app_a = replace_line(APP, 5, "A was here")
    a = run_plan(ws, "A", {"src/app.py": app_a, "src/a_mod.py": "A = 1\n"})
    b = run_plan(
        ws,
        "B",
        {"src/app.py": replace_line(app_a, 6, "B was here"), "src/util.py": "def util():\n    return 2\n"},
    )
    deps = analyze_dependencies(
        ws,
        [
            PlanCommits(plan_id="A", commit_shas=a.commit_shas),
            PlanCommits(plan_id="B", commit_shas=b.commit_shas),
        ],
    )
    assert deps["B"].depends_on == ["A"]
    return [apply_info("A", a), apply_info("B", b, depends_on=["A"])]


def _refused(project: Path, ws: WorkspaceInfo, selected, plans, code: str) -> AlwaysOnError:
    if (project / ".git").exists():
        make_index_stale(project)
    before = tree_hashes(project)
    with pytest.raises(AlwaysOnError) as err:
        apply_plans(project, ws, selected, plans)
    assert err.value.code == code, err.value.message
    assert tree_hashes(project) == before
    return err.value


def test_apply_all_leaves_unstaged_changes_only(project: Path, ws: WorkspaceInfo) -> None:
    plans = _two_dependent_plans(ws)
    make_index_stale(project)
    index = (project / ".git/index").read_bytes()
    head = git(project, "rev-parse", "HEAD")
    result = apply_plans(project, ws, ["B", "A"], plans)
    assert result.applied == ["A", "B"]
    assert [f.path for f in result.files] == ["src/a_mod.py", "src/app.py", "src/util.py"]
    app = (project / "src/app.py").read_text()
    assert "A was here\nB was here\n" in app and app.count("\n") == 40
    assert (project / "src/a_mod.py").read_text() == "A = 1\n"
    assert (project / ".git/index").read_bytes() == index  # nothing staged
    assert git(project, "rev-parse", "HEAD") == head and git(project, "branch", "--show-current") == "main"
    status = sorted(line.strip() for line in git(project, "status", "--porcelain").splitlines())
    assert status == ["?? src/a_mod.py", "M src/app.py", "M src/util.py"]
    assert worktree_paths(project) == [str(project), ws.path]


def test_dependent_plan_alone_is_refused_but_its_dependency_applies(project: Path, ws: WorkspaceInfo) -> None:
    plans = _two_dependent_plans(ws)
    err = _refused(project, ws, ["B"], plans, ErrorCode.INVALID_SELECTION)
    assert "plan B depends on plan A, which is not selected" in err.message
    apply_plans(project, ws, ["A"], plans)
    app = (project / "src/app.py").read_text()
    assert "A was here" in app and "B was here" not in app
    # later, with A applied, B can follow on its own
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "user committed A")
    plans[0] = plans[0].model_copy(update={"status": PlanStatus.APPLIED})
    result = apply_plans(project, ws, ["B"], plans)
    assert result.applied == ["B"] and [f.path for f in result.files] == ["src/app.py", "src/util.py"]
    assert "A was here\nB was here\n" in (project / "src/app.py").read_text()


@pytest.mark.parametrize(
    ("selected", "tweak", "code", "words"),
    [
        (["nope"], None, ErrorCode.INVALID_SELECTION, "unknown plan(s) in this cycle: nope"),
        (["A"], {"commit_shas": []}, ErrorCode.INVALID_SELECTION, "plan A has no commits"),
        (["A"], {"status": PlanStatus.FAILED}, ErrorCode.INVALID_SELECTION, "plan A is 'failed'"),
        (["A"], {"status": PlanStatus.APPLIED}, ErrorCode.INVALID_SELECTION, "plan A is already applied"),
        (
            ["A"],
            {"dependency_status": DependencyStatus.FAILED},
            ErrorCode.DEPENDENCY_ANALYSIS_FAILED,
            "dependency analysis of plan A failed",
        ),
        (
            ["A"],
            {"dependency_status": DependencyStatus.PENDING},
            ErrorCode.DEPENDENCY_ANALYSIS_FAILED,
            "has not run",
        ),
        ([], None, ErrorCode.NOTHING_TO_APPLY, "no plans were selected"),
    ],
)
def test_selection_refusals(project: Path, ws: WorkspaceInfo, selected, tweak, code, words) -> None:
    plans = _two_dependent_plans(ws)
    if tweak:
        plans[0] = plans[0].model_copy(update=tweak)
    err = _refused(project, ws, selected, plans, code)
    assert words in err.message


def test_completed_no_report_plans_apply(project: Path, ws: WorkspaceInfo) -> None:
    plans = _two_dependent_plans(ws)
    plans[0] = plans[0].model_copy(update={"status": PlanStatus.COMPLETED_NO_REPORT})
    assert apply_plans(project, ws, ["A"], plans).applied == ["A"]


def test_dirty_touched_file_refuses_and_changes_nothing(project: Path, ws: WorkspaceInfo) -> None:
    plans = _two_dependent_plans(ws)
    write(project, "src/util.py", "user's unsaved work\n")
    err = _refused(project, ws, ["A", "B"], plans, ErrorCode.CHECKOUT_DIRTY)
    assert err.details["files"] == ["src/util.py"] and "src/util.py" in err.message


def test_staged_user_change_in_a_touched_file_also_refuses(project: Path, ws: WorkspaceInfo) -> None:
    plans = _two_dependent_plans(ws)
    write(project, "src/util.py", "staged\n")
    git(project, "add", "src/util.py")
    write(project, "src/util.py", "def util():\n    return 1\n")  # worktree back to HEAD, index differs
    err = _refused(project, ws, ["A", "B"], plans, ErrorCode.CHECKOUT_DIRTY)
    assert err.details["files"] == ["src/util.py"]


def test_untracked_or_ignored_file_in_the_way_refuses(project: Path, ws: WorkspaceInfo) -> None:
    root = Path(ws.path)
    write(root, "app.log", "force-added by the agent\n")
    git(root, "add", "-f", "app.log")
    result = run_plan(ws, "L", {"notes.txt": "written by the plan\n"})
    assert git(root, "show", "--name-only", "--format=", "HEAD").split() == ["app.log", "notes.txt"]
    write(project, "app.log", "the user's ignored log\n")
    err = _refused(project, ws, ["L"], [apply_info("L", result)], ErrorCode.CHECKOUT_DIRTY)
    assert err.details["files"] == ["app.log"] and "not tracked" in err.message
    (project / "app.log").unlink()
    write(project, "notes.txt", "the user's untracked notes\n")
    err = _refused(project, ws, ["L"], [apply_info("L", result)], ErrorCode.CHECKOUT_DIRTY)
    assert err.details["files"] == ["notes.txt"]


def test_dirty_untouched_file_is_preserved_byte_for_byte(project: Path, ws: WorkspaceInfo) -> None:
    plans = _two_dependent_plans(ws)
    write(project, "docs/guide.md", b"user edit \r\n with CRLF \x00 and a NUL")
    write(project, "scratch.txt", "untracked user file\n")
    git(project, "add", "scratch.txt")  # even a staged user file survives, still staged
    index = (project / ".git/index").read_bytes()
    apply_plans(project, ws, ["A", "B"], plans)
    assert (project / "docs/guide.md").read_bytes() == b"user edit \r\n with CRLF \x00 and a NUL"
    assert (project / "scratch.txt").read_text() == "untracked user file\n"
    assert (project / ".git/index").read_bytes() == index
    assert "B was here" in (project / "src/app.py").read_text()


def test_conflict_leaves_every_file_and_the_index_unchanged(project: Path, ws: WorkspaceInfo) -> None:
    plans = _two_dependent_plans(ws)
    write(project, "src/app.py", replace_line(APP, 5, "the user's own line 5"))
    write(project, "src/util.py", "def util():\n    return 'user'\n")
    git(project, "commit", "-q", "-am", "user work after the cycle started")
    write(project, "docs/guide.md", "dirty but untouched\n")
    err = _refused(project, ws, ["A", "B"], plans, ErrorCode.APPLY_CONFLICT)
    assert err.details["files"] == ["src/app.py", "src/util.py"]
    assert "src/app.py" in err.message and "nothing was changed" in err.message
    assert git(project, "ls-files", "-u") == ""


def test_three_way_merge_with_user_commits_elsewhere_in_the_file(project: Path, ws: WorkspaceInfo) -> None:
    plans = _two_dependent_plans(ws)
    write(project, "src/app.py", replace_line(APP, 30, "user line 30"))
    git(project, "commit", "-q", "-am", "user work")
    apply_plans(project, ws, ["A", "B"], plans)
    app = (project / "src/app.py").read_text()
    assert "A was here\nB was here\n" in app and "user line 30\n" in app


def test_renames_binaries_deletions_and_modes_apply(project: Path, ws: WorkspaceInfo) -> None:
    root = Path(ws.path)
    (root / "src/helpers").mkdir()
    git(root, "mv", "src/util.py", "src/helpers/util.py")
    (root / "scripts/run.sh").chmod(0o644)
    (root / "src/link").symlink_to("app.py")
    result = run_plan(
        ws,
        "R",
        {
            "docs/guide.md": None,
            "assets/logo.bin": BINARY[::-1],
            "assets/blob.bin": bytes(range(255, -1, -1)) * 3,
            "src/helpers/util.py": "def util():\n    return 1\n# moved\n",
        },
    )
    changed = apply_plans(project, ws, ["R"], [apply_info("R", result)])
    kinds = {f.path: f.change for f in changed.files}
    assert kinds["src/helpers/util.py"] == "renamed" and kinds["docs/guide.md"] == "deleted"
    assert kinds["scripts/run.sh"] == "mode"
    assert not (project / "src/util.py").exists()
    assert (project / "src/helpers/util.py").read_text().endswith("# moved\n")
    assert not (project / "docs").exists()  # emptied by the deletion, like git does
    assert (project / "assets/logo.bin").read_bytes() == BINARY[::-1]
    assert (project / "assets/blob.bin").read_bytes() == bytes(range(255, -1, -1)) * 3
    assert not (project / "scripts/run.sh").stat().st_mode & 0o111
    assert (project / "src/link").is_symlink() and (project / "src/link").readlink() == Path("app.py")
    assert git(project, "diff", "--stat", "HEAD")  # the result is visible as uncommitted changes


def test_failure_while_writing_rolls_everything_back(
    project: Path, ws: WorkspaceInfo, monkeypatch, tmp_path: Path
) -> None:
    plans = _two_dependent_plans(ws)
    real_put = journal._put
    calls = []

    def flaky(source, target, temp, *, move):
        calls.append(target)
        if len(calls) == 2:  # after a file was replaced, others deleted
            raise OSError("disk full")
        return real_put(source, target, temp, move=move)

    monkeypatch.setattr(journal, "_put", flaky)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    err = _refused(project, ws, ["A", "B"], plans, ErrorCode.APPLY_FAILED)
    assert "rolled back" in err.message and len(calls) >= 2
    assert not list(project.parent.glob(".project.always-on-apply-*"))  # nothing beside the project
    assert not list((tmp_path / "tmp").iterdir())  # the originals' folder is gone once settled


def test_vanished_worktree_folder_still_applies_from_the_branch(project: Path, ws: WorkspaceInfo) -> None:
    plans = _two_dependent_plans(ws)
    shutil.rmtree(ws.path)
    apply_plans(project, ws, ["A", "B"], plans)
    assert "B was here" in (project / "src/app.py").read_text()


def _plain_project(tmp_path: Path) -> Path:
    project = tmp_path / "plain"
    write(project, "main.py", "print('v1')\n")
    write(project, "lib/util.py", "X = 1\n")
    write(project, "lib/old.py", "OLD = 1\n")
    write(project, "data/pic.bin", BINARY)
    write(project, "node_modules/dep/index.js", "ignored\n")
    return project


def test_snapshot_round_trip_on_a_plain_folder(tmp_path: Path, base_dir: Path) -> None:
    project = _plain_project(tmp_path)
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    assert ws.strategy == "snapshot"
    git(Path(ws.path), "mv", "lib/util.py", "lib/utils.py")
    result = run_plan(
        ws,
        "S",
        {
            "main.py": "print('v2')\n",
            "lib/old.py": None,
            "data/pic.bin": BINARY[::-1],
            "new/feature.py": "FEATURE = True\n",
        },
    )
    deps = analyze_dependencies(ws, [PlanCommits(plan_id="S", commit_shas=result.commit_shas)])
    assert deps["S"].status == DependencyStatus.CLEAN
    write(project, "unrelated.txt", "the user kept working\n")
    applied = apply_plans(project, ws, ["S"], [apply_info("S", result)])
    assert {f.path: f.change for f in applied.files}["lib/utils.py"] == "renamed"
    assert (project / "main.py").read_text() == "print('v2')\n"
    assert not (project / "lib/old.py").exists() and not (project / "lib/util.py").exists()
    assert (project / "lib/utils.py").read_text() == "X = 1\n"
    assert (project / "data/pic.bin").read_bytes() == BINARY[::-1]
    assert (project / "new/feature.py").read_text() == "FEATURE = True\n"
    assert (project / "unrelated.txt").exists() and (project / "node_modules/dep/index.js").exists()
    assert not (project / ".git").exists()


def test_snapshot_conflict_when_the_user_changed_the_file(tmp_path: Path, base_dir: Path) -> None:
    project = _plain_project(tmp_path)
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    result = run_plan(ws, "S", {"main.py": "print('v2')\n", "lib/util.py": "X = 2\n", "added.py": "A = 1\n"})
    write(project, "main.py", "print('user')\n")
    write(project, "added.py", "the user's own file\n")
    before = tree_hashes(project)
    with pytest.raises(AlwaysOnError) as err:
        apply_plans(project, ws, ["S"], [apply_info("S", result)])
    assert err.value.code == ErrorCode.APPLY_CONFLICT and err.value.details["files"] == [
        "added.py",
        "main.py",
    ]
    assert tree_hashes(project) == before


def test_snapshot_apply_after_the_snapshot_is_gone_is_refused(tmp_path: Path, base_dir: Path) -> None:
    project = _plain_project(tmp_path)
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    result = run_plan(ws, "S", {"main.py": "print('v2')\n"})
    shutil.rmtree(ws.path)
    err = _refused(project, ws, ["S"], [apply_info("S", result)], ErrorCode.APPLY_FAILED)
    assert "is gone" in err.message


# --- the rest of a cycle after a partial apply ----------------------------------------------------------


def _two_clean_plans(ws: WorkspaceInfo):
    """P1 and P2 both touch app.py (lines 5 and 30), P2 also deletes a file: each applies on the base alone."""
    p1 = run_plan(ws, "P1", {"src/app.py": replace_line(APP, 5, "P1 line 5")})
    p2 = run_plan(
        ws,
        "P2",
        {
            "src/app.py": replace_line(replace_line(APP, 5, "P1 line 5"), 30, "P2 line 30"),
            "docs/guide.md": None,
        },
    )
    deps = analyze_dependencies(
        ws,
        [
            PlanCommits(plan_id="P1", commit_shas=p1.commit_shas),
            PlanCommits(plan_id="P2", commit_shas=p2.commit_shas),
        ],
    )
    assert deps["P1"].status == deps["P2"].status == DependencyStatus.CLEAN
    return apply_info("P1", p1), apply_info("P2", p2)


def _applied(plan):
    return plan.model_copy(update={"status": PlanStatus.APPLIED})


def test_the_rest_applies_after_a_partial_apply(project: Path, ws: WorkspaceInfo) -> None:
    p1, p2 = _two_clean_plans(ws)
    make_index_stale(project)
    index = (project / ".git/index").read_bytes()
    apply_plans(project, ws, ["P2"], [p1, p2])
    app = (project / "src/app.py").read_text()
    assert "P2 line 30" in app and "P1 line 5" not in app
    result = apply_plans(project, ws, ["P1"], [p1, _applied(p2)])
    assert result.applied == ["P1"] and [f.path for f in result.files] == ["src/app.py"]
    final = (project / "src/app.py").read_text()  # base + P1 + P2 = the cycle branch's content
    assert final == (Path(ws.path) / "src/app.py").read_text() and "P1 line 5" in final
    assert not (project / "docs/guide.md").exists()
    assert (project / ".git/index").read_bytes() == index  # still nothing staged


def test_a_dependent_plan_follows_its_uncommitted_dependency(project: Path, ws: WorkspaceInfo) -> None:
    """A adds a module (untracked once applied) that B edits: B alone, after A, builds on A's uncommitted files."""
    a = run_plan(ws, "A", {"src/app.py": replace_line(APP, 5, "A"), "src/a_mod.py": "A = 1\n"})
    b = run_plan(
        ws, "B", {"src/app.py": replace_line(replace_line(APP, 5, "A"), 6, "B"), "src/a_mod.py": "B = 2\n"}
    )
    plans = [apply_info("A", a), apply_info("B", b, depends_on=["A"])]
    apply_plans(project, ws, ["A"], plans)
    assert git(project, "status", "--porcelain", "--", "src/a_mod.py") == "?? src/a_mod.py"
    apply_plans(project, ws, ["B"], [_applied(plans[0]), plans[1]])
    assert (project / "src/a_mod.py").read_text() == "B = 2\n"
    assert (project / "src/app.py").read_text() == (Path(ws.path) / "src/app.py").read_text()


def test_applied_content_that_the_user_staged_is_not_a_user_edit(project: Path, ws: WorkspaceInfo) -> None:
    p1, p2 = _two_clean_plans(ws)
    apply_plans(project, ws, ["P2"], [p1, p2])
    git(project, "add", "src/app.py")
    apply_plans(project, ws, ["P1"], [p1, _applied(p2)])
    assert (project / "src/app.py").read_text() == (Path(ws.path) / "src/app.py").read_text()
    staged = git(project, "show", ":src/app.py")  # the user's index keeps what they staged
    assert "P2 line 30" in staged and "P1 line 5" not in staged


def test_a_user_edit_on_top_of_an_applied_plan_still_refuses(project: Path, ws: WorkspaceInfo) -> None:
    p1, p2 = _two_clean_plans(ws)
    apply_plans(project, ws, ["P2"], [p1, p2])
    write(project, "src/app.py", replace_line((project / "src/app.py").read_text(), 35, "the user's line 35"))
    err = _refused(project, ws, ["P1"], [p1, _applied(p2)], ErrorCode.CHECKOUT_DIRTY)
    assert err.details["files"] == ["src/app.py"]
    assert "the user's line 35" in (project / "src/app.py").read_text()


def test_a_user_staged_edit_under_applied_content_still_refuses(project: Path, ws: WorkspaceInfo) -> None:
    p1, p2 = _two_clean_plans(ws)
    apply_plans(project, ws, ["P2"], [p1, p2])
    with_p2 = (project / "src/app.py").read_text()
    write(project, "src/app.py", "the user's staged app\n")
    git(project, "add", "src/app.py")
    write(project, "src/app.py", with_p2)  # disk matches HEAD + P2, the index holds the user's work
    err = _refused(project, ws, ["P1"], [p1, _applied(p2)], ErrorCode.CHECKOUT_DIRTY)
    assert err.details["files"] == ["src/app.py"]


def test_a_conflict_after_a_partial_apply_changes_nothing(project: Path, ws: WorkspaceInfo) -> None:
    p1, p2 = _two_clean_plans(ws)
    apply_plans(project, ws, ["P2"], [p1, p2])
    with_p2 = (project / "src/app.py").read_text()
    write(project, "src/app.py", replace_line(APP, 5, "the user's line 5"))
    git(project, "commit", "-q", "-m", "user line 5", "--", "src/app.py")
    write(project, "src/app.py", replace_line(with_p2, 5, "the user's line 5"))  # HEAD + P2, uncommitted
    err = _refused(project, ws, ["P1"], [p1, _applied(p2)], ErrorCode.APPLY_CONFLICT)
    assert err.details["files"] == ["src/app.py"]


def test_snapshot_the_rest_applies_after_a_partial_apply(tmp_path: Path, base_dir: Path) -> None:
    project = _plain_project(tmp_path)
    write(project, "lib/util.py", "".join(f"X{i} = {i}\n" for i in range(20)))
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    util = (project / "lib/util.py").read_text()
    one = replace_line(util, 2, "ONE = 1")
    p1 = apply_info("P1", run_plan(ws, "P1", {"lib/util.py": one}))
    p2 = apply_info("P2", run_plan(ws, "P2", {"lib/util.py": replace_line(one, 18, "TWO = 2")}))
    apply_plans(project, ws, ["P2"], [p1, p2])
    assert "TWO = 2" in (project / "lib/util.py").read_text()
    apply_plans(project, ws, ["P1"], [p1, _applied(p2)])
    assert (project / "lib/util.py").read_text() == (Path(ws.path) / "lib/util.py").read_text()

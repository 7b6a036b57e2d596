"""The apply's refusals and its rollback, each one shown to matter (issue #17; scripts/check_guards.py removes them
one at a time): nothing is written or deleted through a symbolic link or over what stands in the way in the user's
checkout, and a failed apply leaves the checkout exactly as it was, folders included. ``tree_hashes`` compares
files, folders (empty ones too) and links, so a folder left behind is a difference."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import git, tree_hashes
from wshelp import APP, apply_info, make_index_stale, replace_line, run_plan, write

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.workspace import WorkspaceInfo, apply_plans, journal, prepare_workspace
from always_on.core.workspace.apply import stage_apply


def _refused(project: Path, ws: WorkspaceInfo, plan, code: str, *also: Path) -> AlwaysOnError:
    """Apply ``plan``: it must be refused with ``code``, and the checkout (and ``also``) stay exactly as they were."""
    if (project / ".git").exists():
        make_index_stale(project)
    before = [tree_hashes(p) for p in (project, *also)]
    with pytest.raises(AlwaysOnError) as err:
        apply_plans(project, ws, [plan.plan_id], [plan])
    assert err.value.code == code, err.value.message
    assert [tree_hashes(p) for p in (project, *also)] == before
    return err.value


def test_a_write_through_a_symlinked_folder_is_refused(
    project: Path, ws: WorkspaceInfo, tmp_path: Path
) -> None:
    plan = apply_info("V", run_plan(ws, "V", {"vendor/new.py": "NEW = 1\n"}))
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "vendor").symlink_to(outside, target_is_directory=True)  # the user's own link, untracked
    err = _refused(project, ws, plan, ErrorCode.APPLY_CONFLICT, outside)
    assert err.details["files"] == ["vendor/new.py"] and "symbolic link" in err.message
    assert not (outside / "new.py").exists()


def test_a_delete_through_a_symlinked_folder_is_refused(tmp_path: Path, base_dir: Path) -> None:
    """A plain folder (snapshot workspace) whose `lib` became a link to a copy elsewhere: the plan's deletion would
    land outside the project."""
    project = tmp_path / "plain"
    write(project, "main.py", "print('v1')\n")
    write(project, "lib/old.py", "OLD = 1\n")
    write(project, "lib/util.py", "X = 1\n")
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    assert ws.strategy == "snapshot"
    plan = apply_info("D", run_plan(ws, "D", {"lib/old.py": None}))
    elsewhere = tmp_path / "elsewhere"
    (project / "lib").rename(elsewhere)
    (project / "lib").symlink_to(elsewhere, target_is_directory=True)
    err = _refused(project, ws, plan, ErrorCode.APPLY_CONFLICT, elsewhere)
    assert err.details["files"] == ["lib/old.py"] and "symbolic link" in err.message
    assert (elsewhere / "old.py").read_text() == "OLD = 1\n"


@pytest.mark.parametrize("strategy", ["worktree", "snapshot"])
def test_a_file_where_the_change_needs_a_folder_is_refused(
    tmp_path: Path, base_dir: Path, project: Path, strategy: str
) -> None:
    if strategy == "snapshot":
        project = tmp_path / "plain"
        write(project, "main.py", "print('v1')\n")
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir, strategy=strategy)
    plan = apply_info("T", run_plan(ws, "T", {"tools/gen.py": "GEN = 1\n", "main.py": "print('v2')\n"}))
    write(project, "tools", "the user's own file named tools\n")  # untracked: not part of the change
    err = _refused(project, ws, plan, ErrorCode.APPLY_CONFLICT)
    assert err.details["files"] == ["tools/gen.py"] and "in the way" in err.message


def test_the_journal_refuses_to_treat_a_folder_as_a_file(project: Path, tmp_path: Path) -> None:
    """`stage` never keeps or removes a folder of the checkout as if it were one of the change's files."""
    before = tree_hashes(project)
    with pytest.raises(AlwaysOnError) as err:
        journal.stage(
            project,
            tmp_path / "stage",
            apply_id="apply-1",
            cycle_id="c1",
            plan_ids=["P"],
            writes=[],
            deletes=["assets"],  # a folder of the checkout that no deletion empties
            checkout=lambda target: None,
        )
    assert err.value.code == ErrorCode.APPLY_CONFLICT and err.value.details["files"] == ["assets"]
    assert "is a folder in your checkout" in err.value.message
    assert tree_hashes(project) == before


def _folders_plan(ws: WorkspaceInfo):
    """A change that deletes the only file of docs/ (the folder goes too), adds files in new folders and edits one."""
    return apply_info(
        "F",
        run_plan(
            ws,
            "F",
            {
                "docs/guide.md": None,
                "new/deeper/mod.py": "MOD = 1\n",
                "other/x.py": "X = 1\n",
                "src/app.py": replace_line(APP, 3, "edited"),
            },
        ),
    )


def test_a_failed_apply_removes_the_folders_it_created_and_restores_the_ones_it_removed(
    project: Path, ws: WorkspaceInfo, monkeypatch, tmp_path: Path
) -> None:
    plan = _folders_plan(ws)
    real_put = journal._put
    calls = []

    def fails_second(source, target, temp, *, move):
        calls.append(target)
        if len(calls) == 2:  # the deletion is done, the folders made, the first new file in place
            raise OSError("disk full")
        return real_put(source, target, temp, move=move)

    monkeypatch.setattr(journal, "_put", fails_second)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    err = _refused(project, ws, plan, ErrorCode.APPLY_FAILED)
    assert "rolled back" in err.message and calls[0] == project / "new/deeper/mod.py"
    assert not (project / "new").exists() and (project / "docs/guide.md").is_file()
    assert not list((tmp_path / "tmp").iterdir())  # the originals' folder is gone once settled


def test_the_same_change_applies_once_nothing_is_in_the_way(project: Path, ws: WorkspaceInfo) -> None:
    """The control of the tests above: this change itself applies (so each refusal comes from what was in the way)."""
    plan = _folders_plan(ws)
    apply_plans(project, ws, ["F"], [plan])
    assert (project / "new/deeper/mod.py").read_text() == "MOD = 1\n" and not (project / "docs").exists()
    assert git(project, "status", "--porcelain", "--", "src/app.py").strip() == "M src/app.py"


def test_rollback_keeps_what_changed_after_the_swap_in_found(
    project: Path, ws: WorkspaceInfo, tmp_path: Path
) -> None:
    """A file in neither its old nor its new state (edited after a crash) is kept in found/ before the rollback
    puts the original back: the checkout is as before and nothing anyone wrote is lost."""
    plan = _folders_plan(ws)
    before = tree_hashes(project)
    staged = stage_apply(project, ws, ["F"], [plan], folder=tmp_path / "stage", apply_id="apply-1")
    done = staged.journal
    journal.swap(done)
    assert journal.complete(done)
    write(project, "src/app.py", "the user's edit of the applied file\n")
    write(project, "new/deeper/mod.py", "the user's edit of an added file\n")
    assert not journal.complete(done)  # recovery would roll this back, not forward
    found = journal.rollback(done)
    assert sorted(found) == ["new/deeper/mod.py", "src/app.py"]
    assert tree_hashes(project) == before
    kept = {
        (tmp_path / "stage" / "found" / name).read_text() for name in os.listdir(tmp_path / "stage" / "found")
    }
    assert kept == {"the user's edit of the applied file\n", "the user's edit of an added file\n"}


def test_a_plan_that_does_not_apply_on_the_selection_is_a_conflict(project: Path, ws: WorkspaceInfo) -> None:
    """B was written on top of A; with a (stale) analysis that calls B independent, B alone cannot be combined:
    refused as a conflict naming the file, before anything is merged onto the checkout."""
    a = run_plan(ws, "A", {"src/app.py": replace_line(APP, 5, "A was here")})
    b = run_plan(ws, "B", {"src/app.py": replace_line(APP, 5, "B replaced A")})
    plans = [apply_info("A", a), apply_info("B", b)]  # both "clean": the analysis missed the overlap
    before = tree_hashes(project)
    with pytest.raises(AlwaysOnError) as err:
        apply_plans(project, ws, ["B"], plans)
    assert err.value.code == ErrorCode.APPLY_CONFLICT, err.value.message
    assert err.value.details["files"] == ["src/app.py"] and "plan B conflicts" in err.value.message
    assert tree_hashes(project) == before

"""Workspace providers: worktree and snapshot creation, reuse, recreation, and the checkout left untouched."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import git, make_repo, tree_hashes
from wshelp import FILES, make_index_stale, run_plan, worktree_paths, write

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.paths import project_id_for
from always_on.core.workspace import WorkspaceInfo, prepare_workspace


def test_worktree_branches_from_head_in_the_base_folder(project: Path, base_dir: Path) -> None:
    make_index_stale(project)
    before = tree_hashes(project)
    head = git(project, "rev-parse", "HEAD")
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    assert ws.strategy == "worktree" and not ws.reused
    assert Path(ws.path) == (base_dir / project_id_for(project) / "c1").resolve()
    assert ws.branch == "always-on/c1" and ws.base_commit == head
    assert git(Path(ws.path), "rev-parse", "HEAD") == head
    assert git(Path(ws.path), "symbolic-ref", "HEAD") == "refs/heads/always-on/c1"
    assert (Path(ws.path) / "src/app.py").read_text() == FILES["src/app.py"]
    assert os.access(Path(ws.path) / "scripts/run.sh", os.X_OK)
    assert ws.path in worktree_paths(project)
    assert tree_hashes(project) == before
    assert ws.notes == []


def test_dirty_and_untracked_checkout_is_noted_and_never_touched(project: Path, base_dir: Path) -> None:
    write(project, "src/app.py", "user edit\n")
    write(project, "notes.txt", "untracked\n")
    git(project, "add", "README.md")  # an index entry identical to HEAD; the index file must stay as it is
    (project / "README.md").write_text("# staged later\n")
    os.utime(
        project / "docs/guide.md", (1_000_000_000, 1_000_000_000)
    )  # a plain `git status` would rewrite the index
    before = tree_hashes(project)
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    assert tree_hashes(project) == before
    assert any("uncommitted changes (2 files)" in note and "starts from HEAD" in note for note in ws.notes)
    assert any("1 untracked" in note for note in ws.notes)
    assert (Path(ws.path) / "src/app.py").read_text() == FILES["src/app.py"]
    assert not (Path(ws.path) / "notes.txt").exists()
    assert git(project, "status", "--porcelain") == " M README.md\n M src/app.py\n?? notes.txt".strip()


def test_detached_head_uses_the_head_commit(project: Path, base_dir: Path) -> None:
    first = git(project, "rev-list", "--max-parents=0", "HEAD")
    git(project, "checkout", "-q", "--detach", first)
    before = tree_hashes(project)
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    assert ws.strategy == "worktree" and ws.base_commit == first
    assert any("detached HEAD" in note for note in ws.notes)
    assert not (Path(ws.path) / "assets").exists()  # added by the second commit, not at the detached HEAD
    assert tree_hashes(project) == before


def test_repository_without_commits_gets_a_snapshot(tmp_path: Path, base_dir: Path) -> None:
    project = tmp_path / "fresh"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    write(project, "main.py", "print('hi')\n")
    before = tree_hashes(project)
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    assert ws.strategy == "snapshot" and ws.branch is None
    assert any("no commits yet" in note for note in ws.notes)
    assert (Path(ws.path) / "main.py").read_text() == "print('hi')\n"
    assert tree_hashes(project) == before
    assert not git(project, "rev-list", "--all")  # still no commits in the user's repository
    with pytest.raises(AlwaysOnError) as err:
        prepare_workspace(project, cycle_id="c2", base_dir=base_dir, strategy="worktree")
    assert err.value.code == ErrorCode.WORKSPACE_PREPARE_FAILED and "no commits" in err.value.message


def test_project_inside_a_repository_gets_a_snapshot(project: Path, base_dir: Path) -> None:
    ws = prepare_workspace(project / "src", cycle_id="c1", base_dir=base_dir)
    assert ws.strategy == "snapshot"
    assert any("not its top folder" in note for note in ws.notes)
    assert sorted(p.name for p in Path(ws.path).iterdir()) == [".git", "app.py", "util.py"]


def test_missing_path_and_file_path_are_refused(tmp_path: Path, base_dir: Path) -> None:
    with pytest.raises(AlwaysOnError) as err:
        prepare_workspace(tmp_path / "nope", cycle_id="c1", base_dir=base_dir)
    assert err.value.code == ErrorCode.PROJECT_NOT_FOUND
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(AlwaysOnError) as err:
        prepare_workspace(tmp_path / "file.txt", cycle_id="c1", base_dir=base_dir)
    assert err.value.code == ErrorCode.NOT_A_DIRECTORY and "file.txt" in err.value.message


def test_worktree_strategy_on_a_plain_folder_is_refused(tmp_path: Path, base_dir: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(AlwaysOnError) as err:
        prepare_workspace(plain, cycle_id="c1", base_dir=base_dir, strategy="worktree")
    assert (
        err.value.code == ErrorCode.WORKSPACE_PREPARE_FAILED and "not a git repository" in err.value.message
    )


def test_workspace_under_the_project_root_is_refused(project: Path) -> None:
    before = tree_hashes(project)
    for base in (project / ".always-on", project):
        with pytest.raises(AlwaysOnError) as err:
            prepare_workspace(project, cycle_id="c1", base_dir=base)
        assert err.value.code == ErrorCode.WORKSPACE_UNSAFE
    assert tree_hashes(project) == before
    assert worktree_paths(project) == [str(project)]


def test_existing_workspace_pointing_into_the_project_is_refused(project: Path, ws: WorkspaceInfo) -> None:
    evil = ws.model_copy(update={"path": str(project)})
    with pytest.raises(AlwaysOnError) as err:
        prepare_workspace(project, cycle_id="c1", base_dir=project.parent, existing=evil)
    assert err.value.code == ErrorCode.WORKSPACE_UNSAFE


def test_valid_existing_workspace_is_reused(project: Path, base_dir: Path, ws: WorkspaceInfo) -> None:
    run_plan(ws, "p1", {"README.md": "# changed\n"})
    again = prepare_workspace(project, cycle_id="c1", base_dir=base_dir, existing=ws)
    assert again.reused and again.path == ws.path and again.branch == ws.branch
    assert (Path(again.path) / "README.md").read_text() == "# changed\n"


def test_vanished_workspace_is_recreated_from_the_same_base(
    project: Path, base_dir: Path, ws: WorkspaceInfo
) -> None:
    git(project, "commit", "-q", "--allow-empty", "-m", "user moved on")
    shutil.rmtree(ws.path)
    again = prepare_workspace(project, cycle_id="c1", base_dir=base_dir, existing=ws)
    assert not again.reused and again.path == ws.path and again.branch == "always-on/c1"
    assert again.base_commit == ws.base_commit != git(project, "rev-parse", "HEAD")
    assert git(Path(again.path), "rev-parse", "HEAD") == ws.base_commit
    assert any("is missing" in note for note in again.notes)
    assert worktree_paths(project) == [str(project), again.path]  # the stale registration was pruned


def test_vanished_workspace_never_loses_branch_commits(
    project: Path, base_dir: Path, ws: WorkspaceInfo
) -> None:
    done = run_plan(ws, "p1", {"README.md": "# work\n"})
    shutil.rmtree(ws.path)
    again = prepare_workspace(project, cycle_id="c1", base_dir=base_dir, existing=ws)
    assert again.branch == "always-on/c1-2" and again.path.endswith("c1-2")
    assert git(project, "rev-parse", "always-on/c1") == done.after_head  # the old branch keeps its commit
    assert git(Path(again.path), "rev-parse", "HEAD") == ws.base_commit
    assert any("holds 1 commits" in note for note in again.notes)


def test_snapshot_honours_gitignore_and_ignore_globs(tmp_path: Path, base_dir: Path) -> None:
    project = tmp_path / "plain"
    for rel, text in {
        "main.py": "print(1)\n",
        ".gitignore": "*.log\nsecret/\n!keep.log\n",
        "app.log": "noise\n",
        "keep.log": "kept by negation\n",
        "secret/key.txt": "k\n",
        "pkg/.gitignore": "local.txt\n",
        "pkg/local.txt": "ignored by the nested .gitignore\n",
        "pkg/mod.py": "x = 1\n",
        "node_modules/lib/index.js": "x\n",
        "pkg/__pycache__/mod.cpython-311.pyc": "bytecode\n",
        "tmp/scratch.dat": "custom glob\n",
        "[weird] name.txt": "glob characters in a name\n",
    }.items():
        write(project, rel, text)
    (project / "run.sh").write_text("#!/bin/sh\n")
    (project / "run.sh").chmod(0o755)
    (project / "link.py").symlink_to("main.py")
    ignore = ["node_modules", "__pycache__", "tmp/"]
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir, snapshot_ignore=ignore)
    root = Path(ws.path)
    tracked = sorted(git(root, "ls-files").splitlines())
    assert tracked == [
        ".gitignore",
        "[weird] name.txt",
        "keep.log",
        "link.py",
        "main.py",
        "pkg/.gitignore",
        "pkg/mod.py",
        "run.sh",
    ]
    assert os.access(root / "run.sh", os.X_OK)
    assert (root / "link.py").is_symlink() and os.readlink(root / "link.py") == "main.py"
    assert git(root, "log", "-1", "--format=%an <%ae>") == "always-on <always-on@localhost>"
    assert ws.base_commit == git(root, "rev-parse", "HEAD")
    assert git(root, "status", "--porcelain") == ""
    # the globs go on applying to later commits in the snapshot
    write(root, "tmp/new.dat", "x")
    write(root, "pkg/__pycache__/other.pyc", "x")
    assert git(root, "status", "--porcelain") == ""
    assert not (project / ".git").exists()


def test_snapshot_over_the_cap_is_refused_before_copying(tmp_path: Path, base_dir: Path) -> None:
    project = tmp_path / "big"
    write(project, "a.bin", b"x" * 3000)
    write(project, "b.bin", b"y" * 3000)
    write(project, "ignored.log", b"z" * 100_000)
    write(project, ".gitignore", "*.log\n")
    with pytest.raises(AlwaysOnError) as err:
        prepare_workspace(project, cycle_id="c1", base_dir=base_dir, snapshot_max_bytes=5000)
    assert err.value.code == ErrorCode.SNAPSHOT_TOO_LARGE
    assert "6,006 bytes" in err.value.message and "cap of 5,000 bytes" in err.value.message
    assert err.value.details == {"size": 6006, "cap": 5000}
    assert list((base_dir / project_id_for(project)).iterdir()) == []
    ws = prepare_workspace(
        project, cycle_id="c1", base_dir=base_dir, snapshot_max_bytes=7000
    )  # ignored file not counted
    assert ws.strategy == "snapshot"


def test_snapshot_skips_nested_repositories(tmp_path: Path, base_dir: Path) -> None:
    project = tmp_path / "plain"
    write(project, "main.py", "print(1)\n")
    make_repo(project / "vendor" / "lib", {"lib.py": "x = 1\n"})
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    assert not (Path(ws.path) / "vendor").exists()
    assert any("nested git repositories: vendor/lib/" in note for note in ws.notes)


def test_snapshot_strategy_on_a_git_project_copies_the_checkout_as_is(project: Path, base_dir: Path) -> None:
    write(project, "src/app.py", "dirty\n")
    write(project, "debug.log", "ignored\n")
    before = tree_hashes(project)
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir, strategy="snapshot")
    assert ws.strategy == "snapshot"
    assert (Path(ws.path) / "src/app.py").read_text() == "dirty\n"
    assert not (Path(ws.path) / "debug.log").exists()
    assert tree_hashes(project) == before
    assert worktree_paths(project) == [str(project)]


def test_unsafe_cycle_id_is_refused(project: Path, base_dir: Path) -> None:
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(AlwaysOnError) as err:
            prepare_workspace(project, cycle_id=bad, base_dir=base_dir)
        assert err.value.code == ErrorCode.WORKSPACE_PREPARE_FAILED


def test_user_hooks_never_run_during_prepare(project: Path, base_dir: Path) -> None:
    hook = project / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\necho ran > '{project}/HOOK_RAN'\n")
    hook.chmod(0o755)
    ws = prepare_workspace(project, cycle_id="c1", base_dir=base_dir)
    assert Path(ws.path, "README.md").exists()
    assert not (project / "HOOK_RAN").exists()

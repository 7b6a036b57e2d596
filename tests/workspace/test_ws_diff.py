"""File lists and diff text from workspace commits: renames, deletions, binary files, mode changes."""

from __future__ import annotations

from pathlib import Path

from helpers import git
from wshelp import APP, BINARY, replace_line, run_plan

from always_on.core.workspace import WorkspaceInfo, diff_files, diff_text, plan_range


def _plan_with_every_kind_of_change(ws: WorkspaceInfo):
    root = Path(ws.path)
    git(root, "mv", "src/app.py", "src/application.py")
    (root / "scripts/run.sh").chmod(0o644)
    return run_plan(
        ws,
        "p1",
        {
            "src/application.py": replace_line(APP, 3, "line three"),
            "docs/guide.md": None,
            "assets/logo.bin": BINARY[::-1],
            "assets/new.bin": b"\x00\x01\x02",
            "src/util.py": "def util():\n    return 1\n\n\ndef more():\n    return 2\n",
            "notes/new file.md": "a\nb\n",
        },
    )


def test_diff_files_reports_every_kind_of_change(ws: WorkspaceInfo) -> None:
    result = _plan_with_every_kind_of_change(ws)
    changes = {c.path: c for c in diff_files(ws, ws.base_commit, result.after_head)}
    assert sorted(changes) == [
        "assets/logo.bin",
        "assets/new.bin",
        "docs/guide.md",
        "notes/new file.md",
        "scripts/run.sh",
        "src/application.py",
        "src/util.py",
    ]
    renamed = changes["src/application.py"]
    assert (renamed.change, renamed.old_path, renamed.added, renamed.removed) == (
        "renamed",
        "src/app.py",
        1,
        1,
    )
    assert (changes["docs/guide.md"].change, changes["docs/guide.md"].removed) == ("deleted", 1)
    assert changes["assets/logo.bin"].binary and changes["assets/logo.bin"].added == 0
    assert changes["assets/new.bin"].change == "added" and changes["assets/new.bin"].binary
    assert changes["scripts/run.sh"].change == "mode" and changes["scripts/run.sh"].added == 0
    assert (changes["src/util.py"].change, changes["src/util.py"].added, changes["src/util.py"].removed) == (
        "modified",
        4,
        0,
    )
    assert (changes["notes/new file.md"].change, changes["notes/new file.md"].added) == ("added", 2)


def test_per_plan_range_only_covers_that_plan(ws: WorkspaceInfo) -> None:
    first = run_plan(ws, "p1", {"README.md": "# one\n"})
    second = run_plan(ws, "p2", {"src/util.py": "x = 1\n", "extra.txt": "e\n"})
    base, head = plan_range(second.commit_shas)
    assert [c.path for c in diff_files(ws.path, base, head)] == ["extra.txt", "src/util.py"]
    assert [c.path for c in diff_files(ws, ws.base_commit, second.after_head)] == [
        "README.md",
        "extra.txt",
        "src/util.py",
    ]
    assert plan_range(first.commit_shas)[1] == first.after_head


def test_diff_text_whole_and_single_file(ws: WorkspaceInfo, project: Path) -> None:
    git(project, "config", "diff.noprefix", "true")  # the user's settings must not change what we show
    git(project, "config", "color.diff", "always")
    result = _plan_with_every_kind_of_change(ws)
    whole = diff_text(ws, ws.base_commit, result.after_head)
    assert "diff --git a/src/app.py b/src/application.py" in whole and "\x1b[" not in whole
    assert "Binary files a/assets/logo.bin and b/assets/logo.bin differ" in whole
    one = diff_text(ws, ws.base_commit, result.after_head, file="src/application.py")
    assert one.startswith("diff --git a/src/app.py b/src/application.py")
    assert "rename from src/app.py" in one and "+line three" in one and "docs/guide.md" not in one

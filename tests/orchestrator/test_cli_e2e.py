"""A new user's path with the CLI alone: demo → review → apply, and the same on a real-world Python package."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import smmap
from helpers import git, make_repo


def cli(*args, cwd=None, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ruff_codes(path: Path, select: str | None = None) -> list[str]:
    args = [
        sys.executable,
        "-m",
        "ruff",
        "check",
        "--no-cache",
        "--output-format",
        "json",
        "--exit-zero",
        ".",
    ]
    if select:
        args += ["--select", select]
    out = subprocess.run(args, cwd=path, capture_output=True, text=True, check=True).stdout
    return [d["code"] for d in json.loads(out)]


def test_demo_then_apply_removes_the_findings(tmp_path):
    project = tmp_path / "demo"
    demo = cli("demo", str(project))
    assert demo.returncode == 0, demo.stderr
    assert "Outcome: executed" in demo.stdout and "always-on apply" in demo.stdout
    assert "F401" in ruff_codes(project)  # nothing reached the checkout yet
    head = git(project, "rev-parse", "HEAD")

    diff = cli("diff", "--stat", cwd=project)
    assert diff.returncode == 0 and "inventory/store.py" in diff.stdout
    plans = json.loads(cli("plans", "--json", cwd=project).stdout)
    assert [p["status"] for p in plans] == ["completed"] and plans[0]["dedupe_key"] == "ruff:F401"

    applied = cli("apply", "--yes", cwd=project)
    assert applied.returncode == 0, applied.stderr
    assert "F401" not in ruff_codes(project)
    assert git(project, "rev-parse", "HEAD") == head  # uncommitted changes only
    assert set(git(project, "status", "--porcelain").split()) >= {"M", "inventory/store.py"}
    assert "always-on" not in git(project, "worktree", "list")
    assert json.loads(cli("plans", "--json", cwd=project).stdout)[0]["status"] == "applied"


def test_real_world_package_fire_and_apply(tmp_path):
    """A copy of a real, published Python package (smmap, installed with GitPython) with real lint findings.

    tidy fixes only rules the project selects, so the copy gets the ruff configuration a maintainer would add
    (pyflakes, pycodestyle errors and import sorting); without one only ruff's old defaults apply, where smmap has
    nothing safely fixable.
    """
    project = tmp_path / "smmap-copy"
    shutil.copytree(
        Path(smmap.__file__).parent, project / "smmap", ignore=shutil.ignore_patterns("__pycache__")
    )
    config = '[tool.ruff.lint]\nselect = ["E4", "E7", "E9", "F", "I"]\n'
    make_repo(project, {"README.md": "smmap copy\n", "pyproject.toml": config})
    before = ruff_codes(project)
    run = cli("run", "--json", "--project", str(project))
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "executed" and result["error"] is None
    plan = json.loads(cli("plans", "--json", "--project", str(project)).stdout)[0]
    rule = plan["dedupe_key"].split(":", 1)[1]
    assert rule in before
    assert ruff_codes(project) == before  # the checkout is untouched until apply
    applied = cli("apply", "--yes", "--project", str(project))
    assert applied.returncode == 0, applied.stderr
    assert rule not in ruff_codes(project, select=rule)
    compiled = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(project / "smmap")], capture_output=True
    )
    assert compiled.returncode == 0


def test_run_json_on_a_non_git_folder_and_conflicting_apply(tmp_path):
    project = tmp_path / "plain"
    project.mkdir()
    (project / "m.py").write_text("import os\nimport sys\n\nprint(sys.argv)\n")
    run = cli("run", "--json", "--project", str(project))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1])["outcome"] == "executed"
    (project / "m.py").write_text("import os\nimport sys\n\nprint('user edit', sys.argv)\n")
    before = (project / "m.py").read_bytes()
    applied = cli("apply", "--yes", "--project", str(project))
    assert applied.returncode != 0
    assert "m.py" in applied.stderr and len(applied.stderr.strip().splitlines()) == 1
    assert (project / "m.py").read_bytes() == before


def test_apply_in_a_folder_without_git_does_not_point_at_git_diff(tmp_path):
    """Issue 15: after a snapshot apply the CLI said "review with `git diff`" in a folder with no git."""
    project = tmp_path / "plain"
    project.mkdir()
    (project / "mod.py").write_text("import os\n\nX = 1\n")
    run = cli("run", "--project", str(project))
    assert run.returncode == 0 and "Outcome: executed" in run.stdout, run.stdout + run.stderr
    applied = cli("apply", "--yes", cwd=project)
    assert applied.returncode == 0, applied.stderr
    assert "git diff" not in applied.stdout.replace("no `git diff` to review", "")
    assert "has no git history" in applied.stdout and "  mod.py (modified, +0 -1)" in applied.stdout
    assert (project / "mod.py").read_text() == "\nX = 1\n"

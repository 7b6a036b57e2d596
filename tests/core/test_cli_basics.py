"""CLI behaviour that needs no agent: help, version, listings, one-line errors (run as real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys

from always_on.core import __version__


def cli(*args, cwd=None, check=False):
    proc = subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_version_and_help():
    assert cli("--version", check=True).stdout.strip() == f"always-on {__version__}"
    out = cli("--help", check=True).stdout
    for command in (
        "init",
        "run",
        "rerun",
        "plans",
        "cycles",
        "history",
        "show",
        "diff",
        "apply",
        "archive",
        "status",
        "daemon",
        "agents",
        "agent",
        "demo",
    ):
        assert command in out


def test_empty_listings_are_json_arrays(tmp_path):
    for command in ("plans", "cycles", "history"):
        proc = cli(command, "--project", str(tmp_path), "--json", check=True)
        assert json.loads(proc.stdout) == []


def test_errors_are_one_line_without_traceback(tmp_path):
    proc = cli("show", "plan-nope", "--project", str(tmp_path))
    assert proc.returncode != 0
    assert (
        proc.stderr.strip() == "always-on: error: plan_not_found: no plan with id 'plan-nope' in this project"
    )
    missing = cli("plans", "--project", str(tmp_path / "missing"))
    assert missing.returncode != 0 and "project_not_found" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    apply = cli("apply", "--project", str(tmp_path), "--yes")
    assert apply.returncode != 0 and "cycle_not_found" in apply.stderr


def test_demo_refuses_existing_path(tmp_path):
    proc = cli("demo", str(tmp_path))
    assert proc.returncode != 0
    assert "demo_path_exists" in proc.stderr and str(tmp_path) in proc.stderr


def test_init_registers_and_status_lists(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    cli("init", "--project", str(project), check=True)
    status = json.loads(cli("status", "--json", check=True).stdout)
    assert [s["path"] for s in status] == [str(project)]
    assert status[0]["blocked_by"] is None


def test_agents_lists_builtins_and_presets():
    listing = {a["name"]: a for a in json.loads(cli("agents", "--json", check=True).stdout)}
    assert listing["tidy"]["installed"] and listing["tidy"]["source"] == "builtin"
    assert listing["gemini"]["command"] == ["gemini", "--experimental-acp"]
    assert set(listing) >= {"tidy", "openai", "claude", "codex", "gemini", "goose", "opencode"}

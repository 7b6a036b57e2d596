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


def test_status_of_a_missing_project_is_project_not_found(tmp_path):
    """Issue 15: `status --project /missing` said "No registered projects"."""
    proc = cli("status", "--project", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "No registered projects" not in proc.stdout
    assert (
        proc.stderr.strip() == f"always-on: error: project_not_found: {tmp_path / 'missing'} does not exist"
    )
    unregistered = cli("status", "--project", str(tmp_path), check=True)
    assert "is not registered" in unregistered.stdout


def test_status_names_a_corrupt_or_foreign_store(tmp_path, always_on_home):
    """Issue 15: a store that cannot be read made `status` say "No registered projects"; it is a row of its own,
    with store_corrupt and the file named, and the exit status says something is wrong."""
    import sqlite3

    from always_on.core.storage import Store

    good, garbage, foreign = (tmp_path / name for name in ("good", "garbage", "foreign"))
    for project in (good, garbage, foreign):
        project.mkdir()
        cli("init", "--project", str(project), check=True)
    stores = {p.name: Store().project(p).db_path for p in (garbage, foreign)}
    for path in stores.values():
        for extra in path.parent.glob("store.db*"):
            extra.unlink()
    stores["garbage"].write_bytes(b"this is not a database" * 100)
    with sqlite3.connect(stores["foreign"]) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")

    legacy = (
        stores["garbage"].parent.parent / "legacy-0123456789"
    )  # a store of JSON files, from before SQLite
    legacy.mkdir()
    (legacy / "state.json").write_text("{not json")
    stores["legacy"] = legacy / "state.json"

    proc = cli("status")
    assert proc.returncode == 1 and "No registered projects" not in proc.stdout
    assert str(good) in proc.stdout
    for path in stores.values():
        assert f"store_corrupt: {path} cannot be used" in proc.stderr
        assert str(path) in proc.stdout and "store_corrupt" in proc.stdout
    rows = json.loads(cli("status", "--json").stdout)
    assert [r["path"] for r in rows if r["blocked_by"] is None] == [str(good)]
    broken = [r for r in rows if r["blocked_by"] == "store_corrupt"]
    assert sorted(r["error"]["message"].split(" cannot be used")[0] for r in broken) == sorted(
        str(p) for p in stores.values()
    )
    one = cli("status", "--project", str(foreign))
    assert one.returncode == 1 and f"store_corrupt: {stores['foreign']} cannot be used" in one.stderr


def test_agent_command_lines_that_start_nothing_are_refused(tmp_path, always_on_home):
    """Issue 15: bad quoting was `internal_error: ValueError: No closing quotation`; an empty --agent-cmd silently
    ran tidy. Both are invalid_agent_command, before any run is recorded (the project is not even registered)."""
    from always_on.core.storage import Store

    project = tmp_path / "p"
    project.mkdir()
    for line, words in (
        ('my-agent --name "two words', "cannot be read: No closing quotation"),
        ("", "the agent command line is empty"),
        ("   ", "the agent command line is empty"),
    ):
        proc = cli("run", "--project", str(project), "--agent-cmd", line, "--json")
        assert proc.returncode == 2, proc.stderr
        assert "always-on: error: invalid_agent_command: " in proc.stderr and words in proc.stderr
        assert "always-on: hint: " in proc.stderr and "internal_error" not in proc.stderr
        printed = json.loads(proc.stdout.strip().splitlines()[-1])
        assert printed["run_id"] is None and printed["error"]["code"] == "invalid_agent_command"
        daemon = cli("daemon", "--once", "--agent-cmd", line)
        assert daemon.returncode == 2 and "invalid_agent_command" in daemon.stderr
    assert not Store().project(project).exists()

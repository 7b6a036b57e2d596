"""`always-on doctor` as a user runs it: real agent processes (the built-in tidy, the scripted ACP agent), real
handshakes, names of credential variables and never their values."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

SCRIPTED_AGENT = Path(__file__).resolve().parents[1] / "agents" / "scripted_agent.py"
SECRET = "sekret-value-4242"


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def configure(home: Path, tmp: Path, script: dict) -> None:
    path = tmp / "script.json"
    path.write_text(json.dumps(script))
    command = (
        f"{shlex.quote(sys.executable)} {shlex.quote(str(SCRIPTED_AGENT))} --script {shlex.quote(str(path))}"
    )
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[agents.fake]\ncommand = {json.dumps(command)}\npass_env = ["FAKE_API_KEY"]\n'
        '[agents.ghost]\ncommand = "no-such-agent-xyz --acp"\n'
    )


def checks(report: dict, agent: str) -> dict[str, dict]:
    (entry,) = [a for a in report["agents"] if a["name"] == agent]
    return {c["name"]: c for c in entry["checks"]}


def test_the_default_agent_passes_every_check():
    run = doctor("--agent", "tidy", "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    tidy = checks(report, "tidy")
    assert [tidy[k]["ok"] for k in ("installed", "initialize", "credentials", "mcp")] == [True] * 4
    assert "always-on-tidy" in tidy["initialize"]["detail"]
    assert {c["name"] for c in report["checks"]} >= {"git", "ruff", "node"}
    (entry,) = report["agents"]
    assert entry["initialize"]["agentInfo"]["name"] == "always-on-tidy"


def test_missing_credential_names_the_variable_never_a_value(always_on_home, tmp_path):
    methods = [
        {"type": "env_var", "id": "fake-key", "name": "Use FAKE_API_KEY", "vars": [{"name": "FAKE_API_KEY"}]}
    ]
    configure(always_on_home, tmp_path, {"auth_methods": methods})
    without = doctor("--agent", "fake")
    assert without.returncode == 1
    assert "✘ credentials  none of FAKE_API_KEY is set" in without.stdout
    assert "→ export FAKE_API_KEY in the environment always-on runs in" in without.stdout
    assert "auth methods: fake-key" in without.stdout

    with_key = doctor("--agent", "fake", env={"FAKE_API_KEY": SECRET})
    assert with_key.returncode == 0, with_key.stdout
    assert (
        "✔ credentials  FAKE_API_KEY set" in with_key.stdout
        and "would authenticate with fake-key" in with_key.stdout
    )
    assert SECRET not in with_key.stdout + with_key.stderr
    report = doctor("--json", env={"FAKE_API_KEY": SECRET})
    assert (
        SECRET not in report.stdout and checks(json.loads(report.stdout), "fake")["credentials"]["ok"] is True
    )


def test_an_agent_that_is_not_installed_or_does_not_answer(always_on_home, tmp_path):
    configure(always_on_home, tmp_path, {"on_initialize": "exit"})
    ghost = doctor("--agent", "ghost")
    assert ghost.returncode == 1
    assert "✘ installed    `no-such-agent-xyz` was not found on PATH" in ghost.stdout
    broken = json.loads(doctor("--agent", "fake", "--json").stdout)
    initialize = checks(broken, "fake")["initialize"]
    assert initialize["ok"] is False and "agent 'fake' exited with code 3" in initialize["detail"]


def test_an_unknown_agent_is_an_error():
    run = doctor("--agent", "nope")
    assert run.returncode == 2 and "agent_not_found: unknown agent 'nope'" in run.stderr

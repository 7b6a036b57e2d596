"""tidy proposes only what the project's own ruff tooling would produce (issue 15 item 7).

Fixture projects mirror what was seen on real repositories: `ruff-format` in pre-commit pinned at an older ruff
(v0.15, v0.5), ruff without a formatter, and a pin that matches the ruff always-on ships — only the last gets a
formatting plan. Lint plans follow the project's rule selection: ruff 0.16 expanded its defaults, so a project
that sets no `select` and pins an older ruff keeps the old defaults; a project without ruff configuration gets
the old defaults, isolated from the user's own ruff configuration. Real ruff, real agent process, real pipes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from builtin_harness import BIN, RecordingClient, context_prompt, mcp_server, prompt, spawn
from helpers import make_repo

RUFF = str(Path(BIN) / "ruff")
BUNDLED = subprocess.run([RUFF, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
UGLY = "x  =  {'a':1}\n"  # clean for lint, not formatted
PYPROJECT = '[project]\nname = "demo"\nversion = "0"\n\n[tool.ruff]\nline-length = 100\n'


def pre_commit(rev: str, *hooks: str) -> str:
    listed = "".join(f"      - id: {hook}\n" for hook in hooks)
    return f"repos:\n  - repo: https://github.com/astral-sh/ruff-pre-commit\n    rev: {rev}\n    hooks:\n{listed}"


async def discover(tmp_path: Path, repo: Path) -> tuple[RecordingClient, dict | None]:
    client = RecordingClient()
    outbox = tmp_path / "outbox"
    async with spawn("tidy", client) as (conn, _):
        session = await conn.new_session(cwd=str(repo), mcp_servers=[mcp_server("discovery", outbox)])
        resp = await prompt(conn, session.session_id, context_prompt("discovery"))
    assert resp.stop_reason == "end_turn"
    plan = outbox / "plan.json"
    return client, json.loads(plan.read_text()) if plan.exists() else None


def ran_format(client: RecordingClient) -> bool:
    return any(len(argv) > 1 and "format" in argv[1:3] for argv in client.commands)


@pytest.mark.parametrize("rev", ["v0.15.0", "v0.5.0"])
async def test_ruff_format_pinned_at_another_minor_version_is_not_proposed(tmp_path: Path, rev: str) -> None:
    files = {
        "pyproject.toml": PYPROJECT,
        ".pre-commit-config.yaml": pre_commit(rev, "ruff", "ruff-format"),
        "ugly.py": UGLY,
    }
    client, plan = await discover(tmp_path, make_repo(tmp_path / "p", files))
    assert plan is None and not ran_format(client)
    said = client.messages()
    assert (
        f"the project pins ruff {rev[1:]} (`rev: {rev}` of the ruff-pre-commit hooks in .pre-commit-config.yaml)"
        in said
    )
    assert f"tidy runs ruff {BUNDLED}" in said
    assert "Formatting is not proposed" in said and "restyle code the project's own ruff leaves alone" in said
    last = said.rstrip().splitlines()[-1]  # what `always-on run` prints for a no_plan fire
    assert last.startswith(
        "No fixable findings; nothing to propose. Formatting is not proposed: the project pins"
    )


async def test_ruff_without_its_formatter_gets_no_formatting_plan(tmp_path: Path) -> None:
    files = {
        "pyproject.toml": PYPROJECT,
        ".pre-commit-config.yaml": pre_commit(f"v{BUNDLED}", "ruff"),  # the pin matches; no opt-in
        "ugly.py": UGLY,
    }
    client, plan = await discover(tmp_path, make_repo(tmp_path / "p", files))
    assert plan is None and not ran_format(client)
    assert "the project does not use ruff's formatter" in client.messages()


async def test_formatting_is_proposed_when_opted_in_and_pinned_at_the_bundled_minor(tmp_path: Path) -> None:
    files = {
        "pyproject.toml": PYPROJECT,
        ".pre-commit-config.yaml": pre_commit(f"v{BUNDLED}", "ruff", "ruff-format"),
        "ugly.py": UGLY,
        "ok.py": "y = 2\n",
    }
    repo = make_repo(tmp_path / "p", files)
    client, plan = await discover(tmp_path, repo)
    assert plan is not None and plan["dedupe_key"] == "ruff:format"
    assert plan["verification"] == ["ruff format --check --no-cache ."]
    assert plan["context_signals"][0].startswith("ugly.py:")
    assert "the `ruff-format` pre-commit hook in .pre-commit-config.yaml" in plan["rationale"]
    assert f"the same minor version as tidy's ruff {BUNDLED}" in plan["rationale"]
    async with spawn("tidy", client) as (conn, _):
        execution = await conn.new_session(cwd=str(repo), mcp_servers=[])
        await prompt(conn, execution.session_id, context_prompt("execution", plan=plan))
    assert (repo / "ugly.py").read_text() == 'x = {"a": 1}\n'
    assert "Verification passed" in client.messages(execution.session_id)


async def test_formatter_opt_in_through_ci_and_a_requirement_pin(tmp_path: Path) -> None:
    workflow = (
        "jobs:\n  lint:\n    steps:\n      - run: pip install ruff\n      - run: ruff format --check .\n"
    )
    files = {
        "pyproject.toml": PYPROJECT,
        "requirements-dev.txt": f"pytest\nruff=={BUNDLED}\n",
        ".github/workflows/ci.yml": workflow,
        "ugly.py": UGLY,
    }
    _, plan = await discover(tmp_path, make_repo(tmp_path / "p", files))
    assert plan is not None and plan["dedupe_key"] == "ruff:format"
    assert "a CI step running `ruff format` in .github/workflows/ci.yml" in plan["rationale"]
    assert f"`ruff=={BUNDLED}` in requirements-dev.txt" in plan["rationale"]


# --- lint: the project's rule selection ---------------------------------------------------------------------

UNSORTED = "import sys\nimport json\n\nprint(json, sys)\n"  # I001: in ruff 0.16's defaults, not in 0.15's
UNUSED = "import os\n"  # F401: in both


def unsorted_project(tmp_path: Path, rev: str) -> Path:
    files = {
        "pyproject.toml": PYPROJECT,  # configures ruff, sets no `select`
        ".pre-commit-config.yaml": pre_commit(rev, "ruff"),
        "a.py": UNSORTED,
        "b.py": UNSORTED,
        "c.py": UNSORTED,
        "d.py": UNUSED,
    }
    return make_repo(tmp_path / "p", files)


async def test_no_select_and_an_old_ruff_means_the_old_default_rules(tmp_path: Path) -> None:
    client, plan = await discover(tmp_path, unsorted_project(tmp_path, "v0.5.0"))
    # tidy's ruff would report I001 three times by default; the project's ruff 0.5 never does
    assert plan is not None and plan["dedupe_key"] == "ruff:F401"
    assert "I001" not in client.messages()
    assert any("--select E4,E7,E9,F" in line for line in client.command_lines())
    assert "the default rules of the project's ruff 0.5: E4, E7, E9, F" in plan["rationale"]


async def test_no_select_and_a_current_ruff_means_the_current_defaults(tmp_path: Path) -> None:
    _, plan = await discover(tmp_path, unsorted_project(tmp_path, f"v{BUNDLED}"))
    assert plan is not None and plan["dedupe_key"] == "ruff:I001"


async def test_a_project_without_ruff_gets_old_defaults_isolated_from_the_user_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_config = tmp_path / "xdg" / "ruff"
    user_config.mkdir(parents=True)
    (user_config / "ruff.toml").write_text(
        '[lint]\nselect = ["I"]\n'
    )  # the user's own taste, not the project's
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    repo = make_repo(tmp_path / "p", {"a.py": UNSORTED, "b.py": UNSORTED, "d.py": UNUSED})
    client, plan = await discover(tmp_path, repo)
    assert plan is not None and plan["dedupe_key"] == "ruff:F401"
    assert plan["verification"] == ["ruff --isolated check --no-cache --select F401 ."]
    assert "the project does not configure ruff" in client.messages()
    async with spawn("tidy", client) as (conn, _):
        execution = await conn.new_session(cwd=str(repo), mcp_servers=[])
        await prompt(conn, execution.session_id, context_prompt("execution", plan=plan))
    assert (repo / "d.py").read_text() == "" and (repo / "a.py").read_text() == UNSORTED
    assert "ruff --isolated check --fix --no-cache --select F401 ." in client.command_lines()
    assert "Verification passed" in client.messages(execution.session_id)


async def test_a_configuration_the_bundled_ruff_cannot_read_is_no_plan_with_the_reason(
    tmp_path: Path,
) -> None:
    files = {
        "pyproject.toml": PYPROJECT + '\n[tool.ruff.lint]\nselect = ["E999", "F"]\n',  # E999 was removed
        "d.py": UNUSED,
    }
    client, plan = await discover(tmp_path, make_repo(tmp_path / "p", files))
    assert plan is None
    said = client.messages()
    assert (
        "cannot use the project's ruff configuration (pyproject.toml [tool.ruff])" in said and "E999" in said
    )

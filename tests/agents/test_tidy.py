"""The built-in tidy agent, run as a real subprocess over ACP pipes with the product's MCP server and real ruff."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from acp import RequestError
from builtin_harness import BIN, RecordingClient, context_prompt, mcp_server, prompt, spawn
from helpers import make_repo, tree_hashes

from always_on.core.agents.builtin.common import bundled_program, find_program, with_bundled_tools
from always_on.core.agents.builtin.finders import (
    candidates,
    lint_groups,
    parse_findings,
    parse_format_check,
    parse_statistics,
    plan_input,
)
from always_on.core.agents.builtin.tidy import adjust_plan
from always_on.core.contracts.plan import validate_plan, verification_commands
from always_on.core.contracts.report import SECTIONS, parse_report
from always_on.core.records import PlanContent

HERE = Path(__file__).resolve().parent
RUFF = str(Path(BIN) / "ruff")
PYPROJECT = '[project]\nname = "demo"\nversion = "0"\n\n[tool.ruff.lint]\nselect = ["E", "F"]\n'
FILES = {
    "pyproject.toml": PYPROJECT,
    # two F401 (safe fix) and one E711 (unsafe fix: never proposed)
    "pkg/a.py": "import os\nimport sys\n\n\ndef f(x):\n    if x == None:\n        return 1\n    return 2\n",
    # one more F401 and one F541 (f-string without placeholders, safe fix)
    "pkg/b.py": 'import json\n\nprint(f"hello")\n',
}


def ruff(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RUFF, *args], check=False, cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project", FILES)


async def discover(tmp_path: Path, project: Path, client: RecordingClient, **ctx) -> tuple[Path, str]:
    outbox = tmp_path / "outbox-discovery"
    async with spawn("tidy", client) as (conn, _):
        session = await conn.new_session(cwd=str(project), mcp_servers=[mcp_server("discovery", outbox)])
        resp = await prompt(
            conn, session.session_id, context_prompt("discovery", project_root=str(project), **ctx)
        )
    return outbox, resp.stop_reason


async def test_initialize_is_answered_for_the_sdk_client() -> None:
    client = RecordingClient()
    async with spawn("tidy", client) as (conn, _):
        init = await conn.initialize(protocol_version=1)
        second = await conn.new_session(cwd=str(HERE), mcp_servers=[])
        third = await conn.new_session(cwd=str(HERE), mcp_servers=[])
    assert init.protocol_version == 1
    assert init.agent_info is not None and init.agent_info.name == "always-on-tidy"
    assert second.session_id != third.session_id


async def test_discovery_proposes_the_largest_safe_group(tmp_path: Path, project: Path) -> None:
    before = tree_hashes(project)
    client = RecordingClient()
    outbox, stop = await discover(tmp_path, project, client)

    assert stop == "end_turn"
    plan = PlanContent.model_validate_json((outbox / "plan.json").read_text())
    assert plan.dedupe_key == "ruff:F401"
    assert plan.title.startswith("Fix 3 × F401 unused-import")
    assert plan.verification == ["ruff check --no-cache --select F401 ."]
    assert any(s.startswith("pkg/a.py:1:8 F401") for s in plan.context_signals)
    assert "pkg/b.py" in plan.rationale and "unused-import" in plan.rationale
    # the verification is runnable and meaningful: it fails now, because the findings are still there
    (command,) = verification_commands(plan)
    assert ruff(project, *command.split()[1:]).returncode == 1
    # read-only phase: ruff ran through the client's terminal, never with --fix, and nothing changed
    lines = client.command_lines()
    assert "ruff check --statistics --output-format json --no-cache --exit-zero ." in lines
    assert "ruff check --output-format json-lines --no-cache --exit-zero --select F401 ." in lines
    assert not any("--fix" in argv for argv in client.commands)
    assert tree_hashes(project) == before
    assert "Proposed plan `ruff:F401`" in client.messages()
    statuses = [u.status for u in client.tool_updates() if u.session_update == "tool_call_update"]
    assert statuses and set(statuses) == {"completed"}


async def test_discovery_skips_rules_already_in_the_backlog(tmp_path: Path, project: Path) -> None:
    existing = [{"id": "plan-1", "title": "old", "status": "applied", "dedupe_key": "ruff:F401"}]
    outbox, _ = await discover(tmp_path, project, RecordingClient(), existing_plans=existing)
    plan = json.loads((outbox / "plan.json").read_text())
    assert plan["dedupe_key"] == "ruff:F541"
    assert plan["verification"] == ["ruff check --no-cache --select F541 ."]


async def test_discovery_leaves_untracked_files_out(tmp_path: Path, project: Path) -> None:
    """Issue 15: tidy planned a fix in an untracked file, which a workspace (the last commit) does not hold."""
    (project / "untracked_mod.py").write_text("import os\n")
    (project / "pkg" / "new.py").write_text("import re\nimport json\n")
    client = RecordingClient()
    outbox, _ = await discover(tmp_path, project, client)
    plan = PlanContent.model_validate_json((outbox / "plan.json").read_text())
    assert plan.dedupe_key == "ruff:F401" and plan.title.startswith("Fix 3 × F401")  # the 3 of tracked files
    text = " ".join([plan.proposed_change, *plan.steps, *plan.verification, *plan.context_signals])
    assert "untracked_mod.py" not in text and "pkg/new.py" not in text
    assert plan.verification == ["ruff check --no-cache --select F401 pkg/a.py pkg/b.py"]  # not `.`
    assert "2 untracked file(s) are left out" in plan.rationale
    assert "Left out: 2 untracked files" in client.messages()


async def test_findings_only_in_untracked_files_mean_no_plan(tmp_path: Path) -> None:
    """The issue's repro: one commit, `import os` in an untracked module: nothing to propose."""
    clean = make_repo(tmp_path / "clean", {"pyproject.toml": PYPROJECT, "m.py": "X = 1\n"})
    (clean / "untracked_mod.py").write_text("import os\n")
    client = RecordingClient()
    outbox, stop = await discover(tmp_path, clean, client)
    assert stop == "end_turn" and not (outbox / "plan.json").exists()
    assert "F401: its findings are all in untracked files; skipping it." in client.messages()


async def test_nothing_fixable_means_no_plan(tmp_path: Path) -> None:
    clean = make_repo(
        tmp_path / "clean", {"pyproject.toml": PYPROJECT, "m.py": "def f(x):\n    return x == None\n"}
    )
    client = RecordingClient()
    outbox, stop = await discover(tmp_path, clean, client)
    assert stop == "end_turn"
    assert not (outbox / "plan.json").exists()  # E711 exists, but its fix is unsafe
    assert "No fixable findings; nothing to propose" in client.messages()


async def test_a_rejected_plan_is_adjusted_and_retried_once(tmp_path: Path, project: Path) -> None:
    outbox = tmp_path / "outbox"
    client = RecordingClient()
    async with spawn("tidy", client) as (conn, _):
        server = mcp_server("discovery", outbox, script=HERE / "rejecting_mcp_server.py")
        session = await conn.new_session(cwd=str(project), mcp_servers=[server])
        await prompt(conn, session.session_id, context_prompt("discovery"))
    calls = [json.loads(line) for line in (outbox / "calls.jsonl").read_text().splitlines()]
    assert len(calls) == 2
    assert len(calls[0]["summary"]) > 60 and len(calls[1]["summary"]) <= 60
    assert json.loads((outbox / "plan.json").read_text())["summary"] == calls[1]["summary"]
    assert "rejected the plan" in client.messages()


async def test_execution_then_report_fix_the_findings_in_the_workspace(tmp_path: Path, project: Path) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(project, workspace)
    project_before = tree_hashes(project)
    client = RecordingClient()
    async with spawn("tidy", client) as (conn, _):
        discovery = await conn.new_session(
            cwd=str(project), mcp_servers=[mcp_server("discovery", tmp_path / "d")]
        )
        await prompt(conn, discovery.session_id, context_prompt("discovery"))
        plan = json.loads((tmp_path / "d" / "plan.json").read_text())

        execution = await conn.new_session(cwd=str(workspace), mcp_servers=[])
        ctx = {"plan": plan, "plan_id": "plan-1", "workspace": str(workspace), "project_root": str(project)}
        resp = await prompt(conn, execution.session_id, context_prompt("execution", **ctx))
        assert resp.stop_reason == "end_turn"

        changed = [
            {"path": "pkg/a.py", "change": "modified", "added": 0, "removed": 2},
            {"path": "pkg/b.py", "change": "modified", "added": 0, "removed": 2},
        ]
        report = await conn.new_session(
            cwd=str(workspace), mcp_servers=[mcp_server("report", tmp_path / "r")]
        )
        resp = await prompt(conn, report.session_id, context_prompt("report", files_changed=changed, **ctx))
        assert resp.stop_reason == "end_turn"

    # the fix happened in the workspace, only there, and only for F401
    assert (workspace / "pkg/a.py").read_text().startswith("\n\ndef f(x):\n    if x == None:")
    assert not (workspace / "pkg/b.py").read_text().startswith("import json")
    assert ruff(workspace, "check", "--no-cache", "--select", "F401", ".").returncode == 0
    assert ruff(workspace, "check", "--no-cache", "--select", "F541", ".").returncode == 1
    assert tree_hashes(project) == project_before
    execution_text = client.messages(execution.session_id)
    assert "Verification passed" in execution_text and "pkg/a.py, pkg/b.py" in execution_text
    assert "ruff check --fix --no-cache --select F401 ." in client.command_lines()

    markdown = (tmp_path / "r" / "report.md").read_text()
    parsed = parse_report(markdown)
    assert all(parsed.sections.get(name, "").strip() for name in SECTIONS)
    assert "All checks passed!" in parsed.sections["Command Output"]  # ruff's real output
    assert "passed" in parsed.sections["Verification Results"]
    assert "`pkg/a.py` (modified, +0 -2)" in parsed.sections["Files Changed"]
    assert "ruff:F541" in parsed.sections["Follow-ups"]


async def test_failed_verification_is_said_clearly(tmp_path: Path, project: Path) -> None:
    plan = plan_input(
        lint_groups(
            parse_findings(
                ruff(project, "check", "--output-format", "json", "--no-cache", "--exit-zero", ".").stdout,
                str(project),
            )
        )[0]
    )
    plan["verification"] = ["ruff check --no-cache --select F401,E711 ."]  # E711 is not fixed by this plan
    client = RecordingClient()
    async with spawn("tidy", client) as (conn, _):
        session = await conn.new_session(cwd=str(project), mcp_servers=[])
        resp = await prompt(conn, session.session_id, context_prompt("execution", plan=plan))
    assert resp.stop_reason == "end_turn"
    last = client.messages().split("Verification failed", 1)
    assert len(last) == 2 and "E711" in last[1]
    assert "import os" not in (project / "pkg/a.py").read_text()  # the fix itself did run


async def test_refused_commands_are_reported_and_the_agent_keeps_serving(
    tmp_path: Path, project: Path
) -> None:
    client = RecordingClient(deny_command=lambda argv: "terminals are off in this test")
    async with spawn("tidy", client) as (conn, proc):
        session = await conn.new_session(
            cwd=str(project), mcp_servers=[mcp_server("discovery", tmp_path / "o")]
        )
        with pytest.raises(RequestError) as failure:
            await prompt(conn, session.session_id, context_prompt("discovery"))
        assert "terminals are off in this test" in str(failure.value)
        assert "could not scan" in client.messages()
        # same process, next session: the apply phase is answered politely
        other = await conn.new_session(cwd=str(project), mcp_servers=[])
        resp = await prompt(conn, other.session_id, context_prompt("apply", conflicts=["pkg/a.py"]))
        assert resp.stop_reason == "end_turn"
        assert "cannot resolve merge conflicts (pkg/a.py)" in client.messages(other.session_id)
        assert proc.returncode is None
    assert not (tmp_path / "o" / "plan.json").exists()


async def test_cancel_stops_a_running_command(tmp_path: Path, project: Path) -> None:
    client = RecordingClient(hold_command=lambda argv: "--statistics" in argv)
    async with spawn("tidy", client) as (conn, proc):
        server = mcp_server("discovery", tmp_path / "o")
        session = await conn.new_session(cwd=str(project), mcp_servers=[server])
        running = asyncio.ensure_future(prompt(conn, session.session_id, context_prompt("discovery")))
        await asyncio.wait_for(client.held.wait(), timeout=30)
        await conn.cancel(session_id=session.session_id)
        resp = await running
        assert resp.stop_reason == "cancelled"
        assert any(
            "--statistics" in argv for argv in client.released
        )  # the held terminal was released (killed)
        # the same session takes the next prompt normally
        client.hold_command = lambda argv: False
        again = await prompt(conn, session.session_id, context_prompt("discovery"))
        assert again.stop_reason == "end_turn" and proc.returncode is None
    assert (tmp_path / "o" / "plan.json").exists()


def test_adjust_plan_applies_the_limit_named_in_the_error() -> None:
    plan = plan_input(
        lint_groups(
            parse_findings(
                json.dumps(
                    [
                        {
                            "code": "F401",
                            "name": "unused-import",
                            "message": "`os` imported but unused",
                            "filename": "/p/x.py",
                            "location": {"row": 1, "column": 8},
                            "fix": {"applicability": "safe"},
                        }
                    ]
                ),
                "/p",
            )
        )[0]
    )
    validate_plan(plan)
    plan["extra"] = "dropped"
    fixed = adjust_plan(
        plan, "- `summary` is 90 characters; shorten it to at most 40\n- `title` keep it to 20"
    )
    assert len(fixed["summary"]) <= 40 and len(fixed["title"]) <= 20 and "extra" not in fixed
    assert fixed["verification"] == ["`ruff check --no-cache --select F401 .`"]
    validate_plan(fixed)


def test_statistics_order_the_candidates_and_skip_the_backlog(project: Path) -> None:
    out = ruff(project, "check", "--statistics", "--output-format", "json", "--no-cache", "--exit-zero", ".")
    stats = parse_statistics("warning: something first\n" + out.stdout)
    assert [s.code for s in candidates(stats, set())] == ["F401", "F541"]  # E711 has no safe fix
    assert [s.code for s in candidates(stats, {"ruff:F401"})] == ["F541"]


def test_findings_cut_at_the_front_still_parse_and_name_their_files(project: Path) -> None:
    out = ruff(
        project,
        "check",
        "--output-format",
        "json-lines",
        "--no-cache",
        "--exit-zero",
        "--select",
        "F401",
        ".",
    )
    whole = parse_findings(out.stdout, str(project))
    assert [f.path for f in whole] == ["pkg/a.py", "pkg/a.py", "pkg/b.py"]
    assert lint_groups(whole)[0].targets == ["."]
    cut = out.stdout[len(out.stdout.splitlines()[0]) // 2 :]  # the client kept only the tail of the output
    (group,) = lint_groups(parse_findings(cut, str(project)), complete=False)
    assert group.targets == ["pkg/b.py"] and len(group.findings) == 1  # a.py may have lost findings: left out
    assert group.verify_command() == "ruff check --no-cache --select F401 pkg/b.py"


def test_format_check_output_is_parsed(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "fmt", {"pyproject.toml": "[tool.ruff]\n", "ugly.py": "x  =  1\n", "ok.py": "y = 2\n"}
    )
    out = ruff(repo, "format", "--check", "--output-format", "concise", "--no-cache", ".")
    assert out.returncode == 1
    assert [f.path for f in parse_format_check(out.stdout, str(repo))] == ["ugly.py"]


def test_ruff_is_found_next_to_the_interpreter_when_not_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_program("ruff") == "ruff"  # on PATH: the bare name, as the user would type it
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_program("ruff") == RUFF
    assert find_program("no-such-tool-xyz") == "no-such-tool-xyz"


def test_always_ons_own_ruff_is_used_where_path_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        bundled_program("ruff") == RUFF
    )  # ruff's own find_ruff_bin: the copy this interpreter's pip installed
    assert with_bundled_tools(["ruff", "check", "."]) == [
        "ruff",
        "check",
        ".",
    ]  # on PATH: as the user typed it
    monkeypatch.setenv("PATH", "/nonexistent")
    assert with_bundled_tools(["ruff", "check", "."]) == [RUFF, "check", "."]
    line = "ruff check . && echo ruff; (ruff format --check .) | tail -1; x=$(ruff --version); ruffian"
    assert with_bundled_tools(["sh", "-c", line]) == [
        "sh",
        "-c",
        f"{RUFF} check . && echo ruff; ({RUFF} format --check .) | tail -1; x=$({RUFF} --version); ruffian",
    ]
    assert with_bundled_tools(["pytest", "-q"]) == ["pytest", "-q"]  # only what always-on itself ships

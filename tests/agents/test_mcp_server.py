"""The always-on MCP tool server, driven by a real MCP client over stdio (a real subprocess, real pipes)."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from always_on.core.agents.mcp_server import (
    CHAT_TOOL,
    PLAN_TOOL,
    REPORT_TOOL,
    mcp_server_spec,
    phase_tools,
)
from always_on.core.contracts.plan import SUMMARY_MAX
from always_on.core.records import Phase, PlanContent


@asynccontextmanager
async def tool_client(phase: Phase, outbox: Path, digest: Path | None = None, cwd: Path | None = None):
    spec = mcp_server_spec(phase=phase, run_id="run-1", outbox=outbox, digest=digest)
    params = StdioServerParameters(command=spec.command, args=spec.args, env=spec.env, cwd=cwd)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


def test_phase_tools_and_spec(tmp_path):
    assert phase_tools(Phase.DISCOVERY) == [PLAN_TOOL, CHAT_TOOL]
    assert phase_tools("report") == [REPORT_TOOL]
    assert phase_tools(Phase.EXECUTION) == []
    spec = mcp_server_spec(phase=Phase.REPORT, run_id="r", outbox=tmp_path, digest=None)
    assert spec.args[:3] == ["-P", "-m", "always_on.core.agents.mcp_server"]
    assert "--digest" not in spec.args
    assert spec.env == {}


async def test_discovery_tools_listed_with_strict_schema(tmp_path):
    async with tool_client(Phase.DISCOVERY, tmp_path / "out") as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == {PLAN_TOOL, CHAT_TOOL}
    schema = tools[PLAN_TOOL].input_schema
    assert set(schema["required"]) >= {"title", "summary", "steps", "verification", "dedupe_key"}
    assert schema["properties"]["steps"]["type"] == "array"


async def test_report_phase_lists_only_report_tool(tmp_path, valid_plan):
    async with tool_client(Phase.REPORT, tmp_path / "out") as session:
        names = [t.name for t in (await session.list_tools()).tools]
        missing = await session.call_tool(PLAN_TOOL, valid_plan)
    assert names == [REPORT_TOOL]
    assert missing.is_error
    assert not (tmp_path / "out" / "plan.json").exists()


async def test_invalid_then_valid_plan_then_quota(tmp_path, valid_plan):
    outbox = tmp_path / "out"
    bad = {
        "title": "x",
        "summary": "s" * (SUMMARY_MAX + 5),
        "steps": ["2. later", "1. first"],
        "verification": ["looks good"],
        "dedupe_key": "ok-key",
    }
    # The server's cwd holds a `core/` package: -P must keep it from shadowing the real one.
    decoy = tmp_path / "cwd" / "core"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise SystemExit('decoy core imported')\n")
    async with tool_client(Phase.DISCOVERY, outbox, cwd=decoy.parent) as session:
        first = await session.call_tool(PLAN_TOOL, bad)
        assert first.is_error
        problems = text_of(first)
        for fragment in (
            "plan_invalid",
            "`summary`",
            "`rationale` is missing",
            "`proposed_change` is missing",
            "`steps` are not in order",
            "`verification` needs at least one",
        ):
            assert fragment in problems
        assert not (outbox / "plan.json").exists()

        ok = await session.call_tool(PLAN_TOOL, valid_plan)
        assert not ok.is_error, text_of(ok)
        saved = PlanContent.model_validate_json((outbox / "plan.json").read_text())
        assert saved.steps == ["Run ruff with --fix for F401", "Re-run the tests"]
        assert saved.dedupe_key == "ruff:F401"

        again = await session.call_tool(PLAN_TOOL, {**valid_plan, "title": "Another plan"})
        assert again.is_error and "plan_quota_exhausted" in text_of(again)
    assert PlanContent.model_validate_json((outbox / "plan.json").read_text()).title == valid_plan["title"]


async def test_quota_survives_a_server_restart(tmp_path, valid_plan):
    outbox = tmp_path / "out"
    # Arrays sent as JSON text are accepted too.
    stringified = {**valid_plan, "steps": json.dumps(valid_plan["steps"])}
    async with tool_client(Phase.DISCOVERY, outbox) as session:
        assert not (await session.call_tool(PLAN_TOOL, stringified)).is_error
    assert PlanContent.model_validate_json((outbox / "plan.json").read_text()).steps == [
        "Run ruff with --fix for F401",
        "Re-run the tests",
    ]
    async with tool_client(Phase.DISCOVERY, outbox) as session:
        again = await session.call_tool(PLAN_TOOL, valid_plan)
    assert again.is_error and "plan_quota_exhausted" in text_of(again)


async def test_report_written_latest_wins_and_sections_returned(tmp_path):
    outbox = tmp_path / "out"
    async with tool_client(Phase.REPORT, outbox) as session:
        first = await session.call_tool(REPORT_TOOL, {"content": "I did some things."})
        assert not first.is_error
        assert "no recognisable sections" in text_of(first)
        report = "## Plan Reference\nplan-1\n\n## Steps Performed\n1. fixed\n\n"
        report += "## Verification Results\nall green\n"
        second = await session.call_tool(REPORT_TOOL, {"content": report})
        empty = await session.call_tool(REPORT_TOOL, {"content": "  "})
    assert not second.is_error
    assert "Plan Reference, Steps Performed, Verification Results" in text_of(second)
    assert "section 'Files Changed' was missing" in text_of(second)
    assert empty.is_error
    assert (outbox / "report.md").read_text() == report


async def test_chat_history_by_alias_and_unknown_alias(tmp_path):
    digest = tmp_path / "digest.json"
    digest.write_text(
        json.dumps(
            {
                "sessions": [
                    {
                        "alias": "chat_1",
                        "source": "claude",
                        "prompts": ["fix the flaky test"],
                        "transcript": "User: full text",
                    },
                    {"alias": "chat_2", "source": "aider", "prompts": ["add type hints", "and docs"]},
                ]
            }
        )
    )
    async with tool_client(Phase.DISCOVERY, tmp_path / "out", digest=digest) as session:
        one = await session.call_tool(CHAT_TOOL, {"alias": "chat_1"})
        two = await session.call_tool(CHAT_TOOL, {"alias": " chat_2 "})
        unknown = await session.call_tool(CHAT_TOOL, {"alias": "chat_9"})
    assert not one.is_error and text_of(one) == "User: full text"
    assert "User: add type hints" in text_of(two) and "User: and docs" in text_of(two)
    assert unknown.is_error
    assert "chat_9" in text_of(unknown) and "chat_1, chat_2" in text_of(unknown)


async def test_chat_history_without_digest(tmp_path):
    async with tool_client(Phase.DISCOVERY, tmp_path / "out") as session:
        result = await session.call_tool(CHAT_TOOL, {"alias": "chat_1"})
    assert result.is_error and "digest is empty" in text_of(result)


async def test_server_info_names_the_always_on_version(tmp_path):
    """MCP clients show serverInfo; an empty version (the SDK's default) says nothing about what is running."""
    from always_on.core import __version__

    spec = mcp_server_spec(phase=Phase.REPORT, run_id="run-1", outbox=tmp_path / "out")
    params = StdioServerParameters(command=spec.command, args=spec.args, env=spec.env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        info = (await session.initialize()).server_info
    assert info.name == "always-on" and info.version == __version__ != ""

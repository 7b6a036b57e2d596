"""The always-on MCP tool server (DESIGN §4): the only channel through which an agent hands results back.

One server process per phase, started by the agent from the spec the gateway passes in `session/new`:

    python -P -m always_on.core.agents.mcp_server --phase discovery|report --run-id R --outbox DIR [--digest FILE]
        [--store PROJECT_STORE_DIR]

Results are written *before* the tool returns, so they survive an agent or a runtime that dies right after the
call. An accepted plan is recorded in the project's store at once (``--store``: a ``ready`` plan whose
``discovery_run_id`` is this run, with its markdown; the next fire executes it if this run dies) and also left in
the outbox as `plan.json` (at most one per fire); a report is `report.md` in the outbox (latest wins).
Validation problems come back as tool errors (isError) listing every problem, so the agent can correct itself.

The digest file is JSON: ``{"sessions": [{"alias": "chat_1", "source": "claude", "prompts": [...],
"transcript": "..."}]}``; when "transcript" is absent the prompts are joined instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from always_on.core.agents.spec import McpServerSpec
from always_on.core.errors import ErrorCode
from always_on.core.records import Phase

SERVER_NAME = "always-on"
PLAN_TOOL = "always_on_discovery_plan"
REPORT_TOOL = "always_on_report"
CHAT_TOOL = "always_on_read_chat_history"
PLAN_FILE = "plan.json"
REPORT_FILE = "report.md"

_PHASE_TOOLS: dict[str, list[str]] = {
    Phase.DISCOVERY.value: [PLAN_TOOL, CHAT_TOOL],
    Phase.REPORT.value: [REPORT_TOOL],
}


def phase_tools(phase: Phase | str) -> list[str]:
    """Names of the always-on tools the agent gets in this phase (empty for phases without a server)."""
    return list(_PHASE_TOOLS.get(str(phase), []))


# --- tool input schemas (what the agent sees) --------------------------------------------------------------


class PlanInput(BaseModel):
    """Input of `always_on_discovery_plan`: one verifiable improvement."""

    title: str = Field(description="Short imperative title, at most 120 characters.")
    summary: str = Field(description="One or two sentences, at most 200 characters.")
    rationale: str = Field(description="Why this is worth doing now; cite the evidence you found.")
    dedupe_key: str = Field(
        description="Stable key identifying the problem, e.g. `ruff:F401` or `tests:flaky-io`; plans with "
        "the same key are duplicates."
    )
    context_signals: list[str] = Field(
        default_factory=list, description="What led you here: files, linter output, chat sessions (`chat_3`)."
    )
    proposed_change: str = Field(description="What will change, concretely (files, functions, behaviour).")
    steps: list[str] = Field(description="Ordered steps to carry the change out, first step first.")
    verification: list[str] = Field(
        description="How to check the result; at least one entry must be a command to run, in backticks, "
        "e.g. `python -m pytest -q` or `ruff check .`."
    )


class ReportInput(BaseModel):
    """Input of `always_on_report`."""

    content: str = Field(
        description="The report in markdown with sections: Plan Reference, Steps Performed, Files Changed, "
        "Command Output, Verification Results, Follow-ups, Notes."
    )


class ChatHistoryInput(BaseModel):
    """Input of `always_on_read_chat_history`."""

    alias: str = Field(description="The session alias from the chat digest, e.g. `chat_3`.")


# --- the spec the gateway hands to the agent ---------------------------------------------------------------


def mcp_server_spec(
    *,
    phase: Phase | str,
    run_id: str,
    outbox: Path,
    digest: Path | None = None,
    store: Path | None = None,
    checkout: Path | None = None,
    workspace: Path | None = None,
) -> McpServerSpec:
    """The stdio MCP server of one phase. `-P`: nothing in the agent's cwd is put on sys.path (always_on is
    imported from the installed package, editable or not)."""
    args = [
        "-P",
        "-m",
        "always_on.core.agents.mcp_server",
        "--phase",
        str(phase),
        "--run-id",
        run_id,
        "--outbox",
        str(Path(outbox).resolve()),
    ]
    if digest is not None:
        args += ["--digest", str(Path(digest).resolve())]
    if store is not None:
        args += ["--store", str(Path(store).resolve())]
    if checkout is not None and workspace is not None:
        args += ["--checkout", str(Path(checkout).resolve()), "--workspace", str(Path(workspace).resolve())]
    from always_on.core.faults import fault_env

    return McpServerSpec(name=SERVER_NAME, command=sys.executable, args=args, env=fault_env())


# --- the tools ----------------------------------------------------------------------------------------------


_LIST_FIELDS = ("context_signals", "steps", "verification")


def _json_list(value: Any) -> Any:
    """Some models send arrays as JSON text (`"[\"a\", \"b\"]"`); accept that form too."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if isinstance(parsed, list):
            return parsed
    return value


class ToolServer:
    """The tool implementations, independent of MCP plumbing so that they are easy to reason about."""

    def __init__(
        self,
        *,
        phase: str,
        run_id: str,
        outbox: Path,
        digest: Path | None,
        store: Path | None = None,
        checkout: Path | None = None,
        workspace: Path | None = None,
    ) -> None:
        self.phase = phase
        self.run_id = run_id
        self.outbox = outbox
        self.digest = digest
        self.store = store
        self.checkout = checkout  # with `workspace`: a plan naming a file only the checkout has is refused
        self.workspace = workspace

    def submit_plan(self, arguments: dict[str, Any]) -> tuple[bool, str]:
        from always_on.core.contracts.plan import PlanValidationError, validate_plan
        from always_on.core.storage import atomic_write_text

        target = self.outbox / PLAN_FILE
        if target.exists():
            return False, (
                f"{ErrorCode.PLAN_QUOTA_EXHAUSTED}: a plan was already accepted in this run; only one plan "
                "per run is allowed. Stop here."
            )
        arguments = {
            key: _json_list(value) if key in _LIST_FIELDS else value for key, value in arguments.items()
        }
        try:
            content = validate_plan(arguments)
        except PlanValidationError as exc:
            lines = "\n".join(f"- {p}" for p in exc.problems)
            return (
                False,
                f"{ErrorCode.PLAN_INVALID}: the plan was not accepted. Fix every problem and call again:\n"
                + lines,
            )
        unavailable = self._not_in_workspace(content)
        if unavailable:
            return False, unavailable
        if self.store is not None and not self._record_plan(content):
            return False, (
                f"{ErrorCode.PLAN_QUOTA_EXHAUSTED}: a plan was already accepted in this run; only one plan "
                "per run is allowed. Stop here."
            )
        atomic_write_text(target, content.model_dump_json(indent=2))
        return True, (
            f"Plan accepted: {content.title} (dedupe key `{content.dedupe_key}`). This was the one plan of "
            "this run; do not propose another. The runtime will execute it later in an isolated workspace."
        )

    def _not_in_workspace(self, content) -> str | None:
        """Why a plan naming files that are in the user's checkout but not in the workspace cannot be carried out
        (issue 15), or None. Nothing is recorded for a refused plan: its dedupe key stays free."""
        if self.checkout is None or self.workspace is None:
            return None
        from always_on.core.workspace.visibility import missing_from_workspace

        texts = [content.title, content.summary, content.proposed_change]
        texts += [*content.context_signals, *content.steps, *content.verification]
        missing = missing_from_workspace(texts, self.checkout, self.workspace)
        if not missing:
            return None
        shown = ", ".join(f"`{p}`" for p in missing[:10]) + (" …" if len(missing) > 10 else "")
        return (
            f"{ErrorCode.PLAN_INVALID}: the plan was not accepted: it names {shown}, which "
            f"{'is' if len(missing) == 1 else 'are'} in the user's checkout but not in the workspace (untracked "
            "or not committed there). Execution works in the workspace, on the project's last commit, so this "
            f"plan cannot be carried out. Propose a change to files of the workspace ({self.workspace}), or "
            "nothing."
        )

    def _record_plan(self, content) -> bool:
        """Record the accepted plan in the project's store now (False: this run has one already).

        A store this process may not write (a confinement that allows only the outbox) is reported on stderr and
        the plan goes to the outbox only: the runtime records it when discovery ends, as it always could."""
        from always_on.core.contracts.plan import render_plan_markdown
        from always_on.core.errors import AlwaysOnError
        from always_on.core.faults import checkpoint
        from always_on.core.records import PlanRecord, new_id
        from always_on.core.storage import ProjectStore

        assert self.store is not None
        try:
            store = ProjectStore.at(self.store)
            with store.transaction():
                if store.plan_for_run(self.run_id) is not None:
                    return False
                plan = PlanRecord(
                    id=new_id("plan"),
                    project_id=store.project_id,
                    content=content,
                    discovery_run_id=self.run_id,
                )
                store.save_plan(plan, render_plan_markdown(content))
        except (AlwaysOnError, OSError) as exc:
            print(
                f"always-on tool server: the plan could not be recorded in {self.store}: {exc}",
                file=sys.stderr,
            )
            return True
        checkpoint("mcp.plan_accepted")
        return True

    def submit_report(self, content: str) -> tuple[bool, str]:
        from always_on.core.contracts.report import SECTIONS, parse_report
        from always_on.core.storage import atomic_write_text

        if not isinstance(content, str) or not content.strip():
            return False, "`content` is empty; send the report as markdown."
        atomic_write_text(self.outbox / REPORT_FILE, content)
        parsed = parse_report(content)
        found = [name for name in SECTIONS if name in parsed.sections]
        lines = [
            f"Report saved ({len(content)} characters). Sections recognised: {', '.join(found) or 'none'}."
        ]
        if parsed.fallbacks:
            lines.append("Fallbacks applied (send the report again to improve it; the latest one wins):")
            lines += [f"- {f}" for f in parsed.fallbacks]
        return True, "\n".join(lines)

    def _sessions(self) -> list[dict[str, Any]]:
        path = self.digest or (self.outbox / "digest.json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        sessions = data.get("sessions") if isinstance(data, dict) else None
        return [s for s in sessions or [] if isinstance(s, dict) and isinstance(s.get("alias"), str)]

    def read_chat(self, alias: str) -> tuple[bool, str]:
        sessions = self._sessions()
        wanted = (alias or "").strip()
        for session in sessions:
            if session["alias"] == wanted:
                transcript = session.get("transcript")
                if isinstance(transcript, str) and transcript.strip():
                    return True, transcript
                prompts = [p for p in session.get("prompts") or [] if isinstance(p, str)]
                header = f"# {wanted}: {session.get('source', 'unknown')} session (user prompts only)"
                return True, header + "\n\n" + "\n\n".join(f"User: {p}" for p in prompts)
        known = ", ".join(s["alias"] for s in sessions) or "none (the digest is empty)"
        return False, f"unknown chat alias '{wanted}'; known aliases: {known}"


def build_server(tools: ToolServer):
    """An MCPServer exposing exactly the tools of the phase."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.tools import Tool
    from mcp_types import CallToolResult, TextContent

    def result(ok_text: tuple[bool, str]) -> Any:
        ok, text = ok_text
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=not ok)

    # Arguments are accepted loosely (Any) so that validate_plan, not the argument parser, reports every
    # problem at once in agent-facing words; the published schema is the strict PlanInput.
    async def always_on_discovery_plan(
        title: Any = None,
        summary: Any = None,
        rationale: Any = None,
        dedupe_key: Any = None,
        context_signals: Any = None,
        proposed_change: Any = None,
        steps: Any = None,
        verification: Any = None,
    ) -> Any:
        raw = {
            "title": title,
            "summary": summary,
            "rationale": rationale,
            "dedupe_key": dedupe_key,
            "context_signals": context_signals,
            "proposed_change": proposed_change,
            "steps": steps,
            "verification": verification,
        }
        return result(tools.submit_plan({k: v for k, v in raw.items() if v is not None}))

    async def always_on_report(content: Any = None) -> Any:
        return result(tools.submit_report(content))

    async def always_on_read_chat_history(alias: Any = None) -> Any:
        return result(tools.read_chat(str(alias or "")))

    defs = {
        PLAN_TOOL: (
            always_on_discovery_plan,
            PlanInput,
            (
                "Propose the one improvement of this run (at most one accepted per run). Invalid input is "
                "rejected with the list of problems; fix them and call again."
            ),
        ),
        REPORT_TOOL: (
            always_on_report,
            ReportInput,
            "Submit the report of the work done, in markdown with the canonical sections.",
        ),
        CHAT_TOOL: (
            always_on_read_chat_history,
            ChatHistoryInput,
            "Read the transcript of one recent coding-agent chat of the user by its digest alias.",
        ),
    }
    built = []
    for name in phase_tools(tools.phase):
        fn, schema, description = defs[name]
        tool = Tool.from_function(fn, name=name, description=description, structured_output=False)
        tool.parameters = schema.model_json_schema()
        built.append(tool)
    from always_on.core import __version__

    return MCPServer(SERVER_NAME, version=__version__, tools=built, log_level="WARNING")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m always_on.core.agents.mcp_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--phase", required=True, choices=sorted(_PHASE_TOOLS))
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--outbox", required=True, type=Path)
    parser.add_argument("--digest", type=Path, default=None)
    parser.add_argument(
        "--store", type=Path, default=None, help="the project's store folder (records the plan)"
    )
    parser.add_argument("--checkout", type=Path, default=None, help="the user's checkout (with --workspace)")
    parser.add_argument("--workspace", type=Path, default=None, help="the workspace the plan will run in")
    args = parser.parse_args(argv)
    args.outbox.mkdir(parents=True, exist_ok=True)
    tools = ToolServer(
        phase=args.phase,
        run_id=args.run_id,
        outbox=args.outbox,
        digest=args.digest,
        store=args.store,
        checkout=args.checkout,
        workspace=args.workspace,
    )
    build_server(tools).run("stdio")
    return 0


if __name__ == "__main__":
    sys.exit(main())

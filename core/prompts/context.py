"""What a phase prompt is built from, and its machine-readable twin: the ```always-on-context``` block.

The prose of a prompt is for models; the JSON block at its end carries the same facts for agents that do not
read prose (the deterministic built-in agent parses it), so both are derived from one ``PromptContext``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from always_on.core.contracts.plan import parse_plan_markdown
from always_on.core.digest import Digest
from always_on.core.errors import AlwaysOnError
from always_on.core.records import FileChange, Phase, PlanContent, PlanRecord

LANGUAGES = ("en", "zh-CN")
CONTEXT_FENCE = "always-on-context"

TOOL_DISCOVERY_PLAN = "always_on_discovery_plan"
TOOL_READ_CHAT_HISTORY = "always_on_read_chat_history"
TOOL_REPORT = "always_on_report"

PHASE_TOOLS: dict[Phase, list[str]] = {
    Phase.DISCOVERY: [TOOL_DISCOVERY_PLAN, TOOL_READ_CHAT_HISTORY],
    Phase.EXECUTION: [],
    Phase.REPORT: [TOOL_REPORT],
    Phase.APPLY: [],
}


def normalize_language(value: str) -> str:
    """Accept the spellings people type (``zh``, ``zh_cn``, ``EN-us``) for the two supported languages."""
    key = str(value).strip().replace("_", "-").lower()
    if key == "en" or key.startswith("en-"):
        return "en"
    if key in ("zh", "zh-cn", "zh-hans", "zh-hans-cn"):
        return "zh-CN"
    raise ValueError(f"unsupported language {value!r}; use one of {', '.join(LANGUAGES)}")


class PromptContext(BaseModel):
    language: str = "en"
    phase: Phase
    run_id: str
    project_root: str
    workspace: str | None = None
    plans: list[PlanRecord] = Field(default_factory=list)  # the project's backlog (discovery)
    digest: Digest | None = None
    plan: PlanRecord | None = None  # the plan being executed / reported / applied
    plan_markdown: str | None = None
    tools: list[str] = Field(default_factory=list)  # empty: the phase's standard tools (PHASE_TOOLS)
    timeout_seconds: float
    max_tool_calls: int
    files_changed: list[FileChange] = Field(default_factory=list)  # report: the runtime's real list
    conflicts: list[str] = Field(default_factory=list)  # apply: the conflicting files

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> str:
        return normalize_language(value)

    @field_validator("project_root", "workspace", mode="before")
    @classmethod
    def _path_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    @property
    def phase_tools(self) -> list[str]:
        return list(self.tools) if self.tools else list(PHASE_TOOLS.get(self.phase, []))

    def plan_content(self) -> PlanContent | None:
        """The structured plan: from the record, else recovered from the markdown when it is canonical."""
        if self.plan is not None:
            return self.plan.content
        if self.plan_markdown:
            try:
                return parse_plan_markdown(self.plan_markdown)
            except (AlwaysOnError, ValueError):
                return None
        return None


def context_data(ctx: PromptContext) -> dict[str, Any]:
    content = ctx.plan_content()
    return {
        "phase": str(ctx.phase),
        "run_id": ctx.run_id,
        "language": ctx.language,
        "project_root": ctx.project_root,
        "workspace": ctx.workspace,
        "tools": ctx.phase_tools,
        "limits": {"timeout_seconds": ctx.timeout_seconds, "max_tool_calls": ctx.max_tool_calls},
        "existing_plans": [
            {"id": p.id, "title": p.title, "status": str(p.status), "dedupe_key": p.dedupe_key}
            for p in ctx.plans
        ],
        "plan": content.model_dump(mode="json") if content else None,
        "plan_id": ctx.plan.id if ctx.plan else None,
        "files_changed": [f.model_dump(mode="json") for f in ctx.files_changed],
        "conflicts": list(ctx.conflicts),
        "digest": [
            {"alias": s.alias, "source": s.source, "prompts": list(s.prompts)}
            for s in (ctx.digest.sessions if ctx.digest else [])
        ],
    }


def render_context_block(data: dict[str, Any]) -> str:
    # Backticks are escaped so that no text inside the JSON (a chat prompt, a plan step) can close the fence.
    body = json.dumps(data, ensure_ascii=False, indent=2).replace("`", "\\u0060")
    return f"```{CONTEXT_FENCE}\n{body}\n```"


def parse_context_block(prompt_text: str) -> dict[str, Any] | None:
    """The JSON of the last ```always-on-context``` block in a prompt, or None when there is none or it is broken."""
    if not isinstance(prompt_text, str):
        return None
    opener = f"```{CONTEXT_FENCE}"
    start = prompt_text.rfind(opener)
    while start > 0 and prompt_text[start - 1] != "\n":
        start = prompt_text.rfind(opener, 0, start)  # only a fence at the start of a line counts
    if start == -1:
        return None
    pos = start + len(opener)
    line_end = prompt_text.find("\n", pos)
    if line_end == -1 or prompt_text[pos:line_end].strip():
        return None
    decoder = json.JSONDecoder()
    body_start = line_end + 1
    while body_start < len(prompt_text) and prompt_text[body_start].isspace():
        body_start += 1
    try:
        data, _ = decoder.raw_decode(prompt_text, body_start)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None

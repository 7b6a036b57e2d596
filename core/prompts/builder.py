"""Phase prompts (DESIGN §2, §4): discovery, execution, report and apply, in English and Simplified Chinese.

The wording lives in ``<language>.toml`` next to this module (same keys in every language, checked by the tests);
this module decides structure and order, so both languages always carry the same facts and end with the same
machine-readable context block.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from datetime import UTC
from functools import cache
from importlib import resources
from typing import Any

from always_on.core.contracts.plan import render_plan_markdown, verification_commands
from always_on.core.contracts.report import SECTIONS, files_changed_markdown
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.prompts.context import PromptContext, context_data, render_context_block
from always_on.core.records import Phase, PlanRecord, PlanStatus

PLANS_SHOWN_PER_GROUP = 30

PLAN_GROUPS: list[tuple[str, frozenset[PlanStatus]]] = [
    (
        "group_pending",
        frozenset(
            {PlanStatus.READY, PlanStatus.EXECUTING, PlanStatus.COMPLETED, PlanStatus.COMPLETED_NO_REPORT}
        ),
    ),
    ("group_applied", frozenset({PlanStatus.APPLIED})),
    ("group_rejected", frozenset({PlanStatus.ARCHIVED, PlanStatus.FAILED})),
]


@cache
def templates(language: str) -> dict[str, Any]:
    """The wording of one language, loaded from the package (works from a wheel as well as a checkout)."""
    text = resources.files("always_on.core.prompts").joinpath(f"{language}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


class _Text:
    """Template lookup for one language: ``t("discovery.job", tools=...)``."""

    def __init__(self, language: str) -> None:
        self.data = templates(language)

    def __call__(self, key: str, **values: Any) -> str:
        node: Any = self.data
        for part in key.split("."):
            node = node[part]
        return node.format(**values) if values else node


def build_prompt(ctx: PromptContext) -> str:
    builders: dict[Phase, Callable[[PromptContext, _Text], list[str]]] = {
        Phase.DISCOVERY: _discovery,
        Phase.EXECUTION: _execution,
        Phase.REPORT: _report,
        Phase.APPLY: _apply,
    }
    builder = builders.get(ctx.phase)
    if builder is None:
        raise AlwaysOnError(ErrorCode.USAGE, f"the {ctx.phase} phase has no agent prompt")
    t = _Text(ctx.language)
    parts = builder(ctx, t)
    parts += _tools(ctx, t)
    parts += [f"## {t('common.context_heading')}", "", t("common.context_intro"), ""]
    parts.append(render_context_block(context_data(ctx)))
    return "\n".join(parts).rstrip() + "\n"


# --- shared pieces ----------------------------------------------------------------------------------------


def _header(ctx: PromptContext, t: _Text, phase: str, *, workspace: bool = True) -> list[str]:
    lines = [f"# {t(phase + '.title')}", "", t("common.role"), t("common.language_rule"), ""]
    lines += [f"## {t('common.project_heading')}", ""]
    lines.append("- " + t("common.project_root", project_root=ctx.project_root))
    if workspace:
        lines.append(
            "- "
            + (
                t("common.workspace", workspace=ctx.workspace)
                if ctx.workspace
                else t("common.workspace_none")
            )
        )
    lines += ["- " + t("common.run_id", run_id=ctx.run_id), ""]
    lines += [f"## {t('common.job_heading')}", "", t(phase + ".job"), ""]
    return lines


def _tools(ctx: PromptContext, t: _Text) -> list[str]:
    tools = ctx.phase_tools
    lines = [f"## {t('common.tools_heading')}", ""]
    lines.append(
        "- "
        + (
            t("common.tools_line", tools=", ".join(f"`{n}`" for n in tools))
            if tools
            else t("common.tools_none")
        )
    )
    timeout = f"{ctx.timeout_seconds:g}"
    lines.append("- " + t("common.limits_line", timeout=timeout, max_tool_calls=ctx.max_tool_calls))
    lines += ["- " + t("common.policy_line"), ""]
    return lines


def _plan_markdown(ctx: PromptContext) -> str:
    if ctx.plan_markdown and ctx.plan_markdown.strip():
        return ctx.plan_markdown.strip()
    if ctx.plan is not None:
        return render_plan_markdown(ctx.plan.content).strip()
    raise AlwaysOnError(
        ErrorCode.USAGE, f"the {ctx.phase} prompt needs the plan (a plan record or its markdown)"
    )


def _fenced(text: str, info: str = "markdown") -> list[str]:
    """A fence longer than any backtick run inside, so the plan's own code blocks cannot end it early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, text, fence]


def _plan_section(ctx: PromptContext, t: _Text) -> list[str]:
    return [f"## {t('common.plan_heading')}", "", *_fenced(_plan_markdown(ctx)), ""]


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- discovery --------------------------------------------------------------------------------------------


def _discovery(ctx: PromptContext, t: _Text) -> list[str]:
    lines = _header(ctx, t, "discovery")
    if ctx.workspace:
        lines += [t("discovery.workspace_line", workspace=ctx.workspace, project_root=ctx.project_root), ""]
    lines += [t("discovery.readonly"), ""]
    lines += [f"## {t('discovery.fields_heading')}", "", t("discovery.fields"), ""]
    lines += _backlog(ctx.plans, t)
    lines += _digest(ctx, t)
    lines += [t("discovery.finish"), ""]
    return lines


def _backlog(plans: list[PlanRecord], t: _Text) -> list[str]:
    lines = [f"## {t('discovery.backlog_heading')}", ""]
    if not plans:
        return lines + [t("discovery.backlog_empty"), ""]
    lines += [t("discovery.backlog_intro"), ""]
    for key, statuses in PLAN_GROUPS:
        group = sorted((p for p in plans if p.status in statuses), key=lambda p: p.updated_at, reverse=True)
        lines += [f"### {t('discovery.' + key)}", ""]
        if not group:
            lines += [t("discovery.group_empty"), ""]
            continue
        for plan in group[:PLANS_SHOWN_PER_GROUP]:
            lines.append(
                t(
                    "discovery.plan_line",
                    status=str(plan.status),
                    title=_one_line(plan.title),
                    dedupe_key=plan.dedupe_key,
                    id=plan.id,
                )
            )
        rest = group[PLANS_SHOWN_PER_GROUP:]
        if rest:
            keys = ", ".join(f"`{k}`" for k in dict.fromkeys(p.dedupe_key for p in rest))
            lines.append(t("discovery.plans_more", count=len(rest), keys=keys))
        lines.append("")
    return lines


def _digest(ctx: PromptContext, t: _Text) -> list[str]:
    lines = [f"## {t('discovery.digest_heading')}", ""]
    sessions = ctx.digest.sessions if ctx.digest else []
    if not sessions:
        return lines + [t("discovery.digest_empty"), ""]
    lines += [t("discovery.digest_intro"), ""]
    for session in sessions:
        when = session.updated_at or session.started_at
        stamp = f", {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if when else ""
        lines += [f"### {session.alias} ({session.source}{stamp})", ""]
        lines += [f"- {_one_line(p)}" for p in session.prompts]
        lines.append("")
    return lines


# --- execution --------------------------------------------------------------------------------------------


def _execution(ctx: PromptContext, t: _Text) -> list[str]:
    if not ctx.workspace:
        raise AlwaysOnError(ErrorCode.USAGE, "the execution prompt needs the workspace path")
    lines = _header(ctx, t, "execution")
    lines += [f"## {t('execution.workspace_heading')}", ""]
    lines += [t("execution.workspace_line", workspace=ctx.workspace, project_root=ctx.project_root), ""]
    lines += _plan_section(ctx, t)
    content = ctx.plan_content()
    commands = verification_commands(content) if content else []
    lines += [f"## {t('execution.verification_heading')}", ""]
    lines += [f"- `{c}`" for c in commands] if commands else [t("execution.verification_none")]
    lines += ["", f"## {t('common.rules_heading')}", "", t("execution.rules"), ""]
    lines += [t("execution.finish"), ""]
    return lines


# --- report -----------------------------------------------------------------------------------------------


def _report(ctx: PromptContext, t: _Text) -> list[str]:
    lines = _header(ctx, t, "report")
    if ctx.workspace:
        lines += [t("report.workspace_line", workspace=ctx.workspace), ""]
    lines += _plan_section(ctx, t)
    lines += [f"## {t('report.files_heading')}", "", t("report.files_intro"), ""]
    lines += [files_changed_markdown(ctx.files_changed) if ctx.files_changed else t("report.files_none"), ""]
    lines += [f"## {t('report.sections_heading')}", "", t("report.sections_intro"), ""]
    descriptions = t("report.sections")
    lines += [f"{i}. `## {name}`: {descriptions[name]}" for i, name in enumerate(SECTIONS, 1)]
    lines += ["", f"## {t('common.rules_heading')}", "", t("report.rules"), ""]
    lines += [t("report.finish"), ""]
    return lines


# --- apply ------------------------------------------------------------------------------------------------


def _apply(ctx: PromptContext, t: _Text) -> list[str]:
    lines = _header(ctx, t, "apply", workspace=False)
    lines += [f"## {t('apply.conflicts_heading')}", ""]
    lines += [f"- `{path}`" for path in ctx.conflicts] if ctx.conflicts else [t("apply.conflicts_none")]
    lines.append("")
    lines += _plan_section(ctx, t)
    lines += [f"## {t('common.rules_heading')}", "", t("apply.rules", project_root=ctx.project_root), ""]
    lines += [t("apply.finish"), ""]
    return lines

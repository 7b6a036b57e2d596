"""The report contract (DESIGN §2, §4): forgiving parse into canonical sections, rendering, fallback reports.

Agents write reports in many shapes. We map headings to the canonical sections by keywords, keep text that fits no
section under Notes, fill missing sections, and record every such fallback so the user can see what was guessed.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from always_on.core.records import FileChange, ReportMetadata

SECTIONS = [
    "Plan Reference",
    "Steps Performed",
    "Files Changed",
    "Command Output",
    "Verification Results",
    "Follow-ups",
    "Notes",
]

_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    ("Plan Reference", ("plan reference", "plan", "reference", "goal", "objective", "task")),
    (
        "Steps Performed",
        (
            "steps performed",
            "steps",
            "what was done",
            "what i did",
            "changes made",
            "work done",
            "actions",
            "summary",
            "done",
        ),
    ),
    ("Files Changed", ("files changed", "files", "changed files", "modified")),
    ("Command Output", ("command output", "output", "commands", "logs", "log")),
    ("Verification Results", ("verification", "tests", "test results", "checks", "validation", "results")),
    (
        "Follow-ups",
        ("follow-ups", "follow ups", "followups", "follow-up", "next steps", "todo", "future", "remaining"),
    ),
    ("Notes", ("notes", "note", "remarks", "caveats", "comments", "risks")),
]

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


class ParsedReport(BaseModel):
    sections: dict[str, str] = Field(default_factory=dict)
    fallbacks: list[str] = Field(default_factory=list)


def _canonical(heading: str) -> str | None:
    h = re.sub(r"[^a-z0-9 -]+", "", heading.lower()).strip()
    for name, _words in _KEYWORDS:
        if h == name.lower():
            return name
    for name, words in _KEYWORDS:
        if any(h == w or h.startswith(w + " ") or h.endswith(" " + w) for w in words):
            return name
    return None


def parse_report(markdown: str) -> ParsedReport:
    """Map arbitrary report markdown to the canonical sections; never fails, notes each fallback."""
    result = ParsedReport()
    text = (markdown or "").replace("\r\n", "\n").strip()
    if not text:
        result.fallbacks.append("the report was empty")
    current: str | None = None
    buckets: dict[str, list[str]] = {name: [] for name in SECTIONS}
    preamble: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match and len(match.group(1)) >= 2 or (match and current is not None):
            name = _canonical(match.group(2))
            if name is None:
                target = current or "Notes"
                result.fallbacks.append(f"heading '{match.group(2)}' matched no section; kept under {target}")
                (buckets[target] if current else preamble).append(line)
                continue
            if name != match.group(2).strip():
                result.fallbacks.append(f"heading '{match.group(2)}' read as '{name}'")
            current = name
            continue
        if match and current is None:  # a top-level title before any section
            continue
        (buckets[current] if current else preamble).append(line)
    pre = "\n".join(preamble).strip()
    if pre:
        if not any("\n".join(v).strip() for v in buckets.values()):
            buckets["Steps Performed"].append(pre)
            result.fallbacks.append("no recognisable sections; the whole text was kept as Steps Performed")
        else:
            buckets["Notes"].insert(0, pre)
            result.fallbacks.append("text before the first section was kept under Notes")
    for name in SECTIONS:
        body = "\n".join(buckets[name]).strip()
        if body:
            result.sections[name] = body
        elif text:
            result.fallbacks.append(f"section '{name}' was missing")
    return result


def files_changed_markdown(files: list[FileChange]) -> str:
    if not files:
        return "No files changed."
    rows = []
    for f in files:
        name = f"{f.old_path} → {f.path}" if f.old_path and f.old_path != f.path else f.path
        counts = "binary" if f.binary else f"+{f.added} −{f.removed}"
        rows.append(f"- `{name}` ({f.change}, {counts})")
    return "\n".join(rows)


def plan_reference(
    title: str, plan_id: str, dedupe_key: str | None = None, summary: str | None = None
) -> str:
    """The Plan Reference the runtime knows: the plan's title, id, dedupe key and summary."""
    line = f"**{title}** (plan `{plan_id}`" + (f", dedupe key `{dedupe_key}`" if dedupe_key else "") + ")"
    return line + (f"\n\n{summary.strip()}" if summary and summary.strip() else "")


def render_report(
    meta: ReportMetadata, parsed: ParsedReport, *, title: str, reference: str | None = None
) -> str:
    """Canonical report markdown: runtime-known facts (metadata, real file list) override the agent's claims, and
    fill what the agent left out (`reference`: the Plan Reference, default: the title and plan id)."""
    reference = reference or plan_reference(title, meta.plan_id)
    lines = [f"# Report: {title}", ""]
    lines += [
        f"- Run: `{meta.run_id}`",
        f"- Plan: `{meta.plan_id}`",
        f"- Cycle: `{meta.cycle_id or '-'}`",
        f"- Agent: {meta.agent or '-'}",
        f"- Started: {meta.started_at:%Y-%m-%d %H:%M:%S} UTC",
        f"- Finished: {meta.finished_at:%Y-%m-%d %H:%M:%S} UTC",
        f"- Workspace: `{meta.workspace or '-'}`",
        "",
    ]
    if meta.fallback:
        lines += ["> This is a fallback report written by the runtime: the agent did not submit one.", ""]
    for name in SECTIONS:
        lines += [f"## {name}", ""]
        if name == "Files Changed":
            lines.append(files_changed_markdown(meta.files_changed))
            claimed = parsed.sections.get(name)
            if claimed:
                lines += ["", "Agent's description:", "", claimed]
        elif name == "Notes":
            body = parsed.sections.get(name, "")
            notes = list(meta.notes) + [
                f"Report fallback: {f}"
                + ("; filled from the plan record" if f == "section 'Plan Reference' was missing" else "")
                for f in parsed.fallbacks
            ]
            if body:
                lines.append(body)
            if notes:
                if body:
                    lines.append("")
                lines += [f"- {n}" for n in notes]
            if not body and not notes:
                lines.append("_None._")
        elif name == "Plan Reference":
            lines.append(parsed.sections.get(name) or reference)
        else:
            lines.append(parsed.sections.get(name) or "_Not provided._")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def fallback_report(
    meta: ReportMetadata,
    *,
    title: str,
    reason: str,
    last_agent_text: str = "",
    command_output: str = "",
    reference: str | None = None,
) -> str:
    """A report for a plan whose agent failed or never reported: the facts the runtime has, and why."""
    parsed = ParsedReport()
    parsed.sections["Plan Reference"] = reference or plan_reference(title, meta.plan_id)
    parsed.sections["Steps Performed"] = (
        f"The agent's last message:\n\n{last_agent_text.strip()}"
        if last_agent_text.strip()
        else "_Unknown: the agent did not describe its work._"
    )
    if command_output:
        parsed.sections["Command Output"] = command_output
    parsed.sections["Verification Results"] = "_Not reported._"
    meta.fallback = True
    if reason not in meta.notes:
        meta.notes.append(reason)
    return render_report(meta, parsed, title=title, reference=reference)

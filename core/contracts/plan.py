"""The plan contract (DESIGN §4): validate an agent's structured plan, render canonical markdown, parse it back.

Validation messages are written for the agent: each names the field, what is wrong and what to send instead.
"""

from __future__ import annotations

import re
from typing import Any

from always_on.core.contracts.command_line import entry_commands
from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import PlanContent

SUMMARY_MAX = 200
TITLE_MAX = 120
DEDUPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{1,99}$")
STEP_NUMBER_RE = re.compile(r"^\s*(\d+)[.)]\s+")


class PlanValidationError(AlwaysOnError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(ErrorCode.PLAN_INVALID, "the plan was not accepted: " + "; ".join(problems))
        self.problems = problems


def _text(data: dict[str, Any], key: str, problems: list[str]) -> str:
    value = data.get(key)
    if value is None:
        problems.append(f"`{key}` is missing; send it as a non-empty string")
        return ""
    if not isinstance(value, str):
        problems.append(f"`{key}` must be a string, got {type(value).__name__}")
        return ""
    if not value.strip():
        problems.append(f"`{key}` is empty; describe it in at least a few words")
    return value.strip()


def _list(data: dict[str, Any], key: str, problems: list[str], *, required: bool) -> list[str]:
    value = data.get(key)
    if value is None:
        if required:
            problems.append(f"`{key}` is missing; send a JSON array of strings")
        return []
    if isinstance(value, str):
        value = [line for line in value.splitlines() if line.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"`{key}` must be an array of strings")
        return []
    items = [v.strip() for v in value if v.strip()]
    if required and not items:
        problems.append(f"`{key}` is empty; give at least one entry")
    return items


def _ordered_steps(steps: list[str], problems: list[str]) -> list[str]:
    """Steps may come numbered ("1. ...") — then the numbers must run 1..n in order; numbering is stripped."""
    numbers = [STEP_NUMBER_RE.match(s) for s in steps]
    if any(numbers):
        if not all(numbers):
            problems.append("`steps` mixes numbered and unnumbered entries; number all of them 1..n or none")
            return steps
        seen = [int(m.group(1)) for m in numbers if m]
        if seen != list(range(1, len(steps) + 1)):
            problems.append(
                f"`steps` are not in order (numbers {seen}); send them in execution order numbered 1..{len(steps)}"
            )
            return steps
        return [STEP_NUMBER_RE.sub("", s, count=1).strip() for s in steps]
    return steps


def validate_plan(data: dict[str, Any]) -> PlanContent:
    """Validate the raw tool input of `always_on_discovery_plan`; raise PlanValidationError listing every problem."""
    if not isinstance(data, dict):
        raise PlanValidationError(["the plan must be a JSON object with the documented fields"])
    problems: list[str] = []
    title = _text(data, "title", problems)
    if len(title) > TITLE_MAX:
        problems.append(f"`title` is {len(title)} characters; keep it to {TITLE_MAX}")
    summary = _text(data, "summary", problems)
    if len(summary) > SUMMARY_MAX:
        problems.append(f"`summary` is {len(summary)} characters; shorten it to at most {SUMMARY_MAX}")
    rationale = _text(data, "rationale", problems)
    dedupe_key = _text(data, "dedupe_key", problems)
    if dedupe_key and not DEDUPE_RE.match(dedupe_key):
        problems.append(
            "`dedupe_key` must be 2-100 characters of letters, digits and _ . : / - (e.g. `ruff:F401` or `tests:flaky-io`)"
        )
    proposed_change = _text(data, "proposed_change", problems)
    context_signals = _list(data, "context_signals", problems, required=False)
    steps = _ordered_steps(_list(data, "steps", problems, required=True), problems)
    verification = _list(data, "verification", problems, required=True)
    if verification:
        problem = _verification_problem(verification)
        if problem:
            problems.append(problem)
    unknown = sorted(set(data) - set(PlanContent.model_fields))
    if unknown:
        problems.append(f"unknown fields {unknown}; allowed: {sorted(PlanContent.model_fields)}")
    if problems:
        raise PlanValidationError(problems)
    return PlanContent(
        title=title,
        summary=summary,
        rationale=rationale,
        dedupe_key=dedupe_key,
        context_signals=context_signals,
        proposed_change=proposed_change,
        steps=steps,
        verification=verification,
    )


def _verification_problem(entries: list[str]) -> str | None:
    """None when at least one entry is a command line to run; else what to send, and why each entry is not one."""
    reasons: list[str] = []
    for number, entry in enumerate(entries, 1):
        commands, why = entry_commands(entry)
        if commands:
            return None
        shown = entry if len(entry) <= 60 else entry[:57] + "..."
        reasons.append(f"entry {number} {shown!r}: {why}")
    return (
        "`verification` needs at least one automatically checkable entry: a shell command line to run "
        "(e.g. `ruff check .`, `python -m pytest -q` or `test -f out.txt`), on its own or in backticks; "
        "prose around a command is fine when the command is in backticks. None of the entries is one: "
        + "; ".join(reasons[:5])
        + (f"; and {len(reasons) - 5} more" if len(reasons) > 5 else "")
    )


def verification_commands(content: PlanContent) -> list[str]:
    """The runnable commands of a plan's verification entries (the entry itself, or its backticked commands)."""
    return [command for entry in content.verification for command in entry_commands(entry)[0]]


# --- markdown ---------------------------------------------------------------------------------------------

_SECTIONS = [
    ("Summary", "summary"),
    ("Rationale", "rationale"),
    ("Context Signals", "context_signals"),
    ("Proposed Change", "proposed_change"),
    ("Steps", "steps"),
    ("Verification", "verification"),
]


def render_plan_markdown(content: PlanContent) -> str:
    lines = [f"# {content.title}", "", f"Dedupe key: `{content.dedupe_key}`", ""]
    for heading, field in _SECTIONS:
        lines.append(f"## {heading}")
        lines.append("")
        value = getattr(content, field)
        if field == "steps":
            lines.extend(f"{i}. {_one_line(s)}" for i, s in enumerate(value, 1))
        elif isinstance(value, list):
            lines.extend(f"- {_one_line(v)}" for v in value)
        else:
            lines.append(value)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _one_line(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\n   ")


def parse_plan_markdown(markdown: str) -> PlanContent:
    """Inverse of render_plan_markdown (lossless for rendered plans)."""
    lines = markdown.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise AlwaysOnError(ErrorCode.PLAN_INVALID, "plan markdown must start with '# <title>'")
    title = lines[0][2:].strip()
    dedupe = ""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines[1:]:
        if current is None and line.startswith("Dedupe key: "):
            dedupe = line[len("Dedupe key: ") :].strip().strip("`")
            continue
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = []
            continue
        if current is not None:
            sections[current].append(line)
    data: dict[str, Any] = {"title": title, "dedupe_key": dedupe}
    for heading, field in _SECTIONS:
        body = sections.get(heading, [])
        if field in ("steps", "context_signals", "verification"):
            data[field] = _parse_items(body, numbered=field == "steps")
        else:
            data[field] = "\n".join(body).strip("\n")
    return PlanContent(**data)


def _parse_items(body: list[str], *, numbered: bool) -> list[str]:
    items: list[str] = []
    marker = re.compile(r"^(\d+)\. " if numbered else r"^- ")
    for line in body:
        if marker.match(line):
            items.append(marker.sub("", line, count=1))
        elif line.startswith("   ") and items:
            items[-1] += "\n" + line[3:]
    return items

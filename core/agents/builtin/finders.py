"""Finders for the tidy agent: ruff's JSON findings → groups with a safe automatic fix → one plan (DESIGN §4).

Pure functions over ruff's JSON output, so which plan tidy proposes is deterministic and testable without a
client. Discovery first reads per-rule statistics (small for any project size), then scans only the chosen rule. A group is one rule code; only findings whose fix ruff marks *safe* count, and a file joins a
group only when every finding of that code in it is safely fixable — so the plan's own verification can pass.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

MAX_SIGNALS = 20
MAX_TARGET_FILES = 30
FORMAT_CODE = "format"


class Finding(BaseModel):
    code: str
    name: str
    message: str
    path: str  # relative to the scanned root, POSIX separators
    row: int = 0
    column: int = 0
    safe_fix: bool = False

    @property
    def where(self) -> str:
        return f"{self.path}:{self.row}:{self.column}"


class FindingGroup(BaseModel):
    """Findings of one rule that tidy can fix in one plan, and the commands that fix and verify them."""

    kind: Literal["lint", "format"]
    code: str
    name: str
    findings: list[Finding]
    targets: list[str]  # ["."] when the group covers the whole project, else the files
    skipped_files: list[str] = []  # files with this code left out (unsafe/no fix, or over the cap)
    untracked_files: list[str] = []  # files with this code git does not track: not in a workspace, left out
    isolated: bool = (
        False  # the project has no ruff configuration: ruff's defaults, not the user's own config
    )
    why: str = ""  # which of the project's settings make this a change it asks for (said in the rationale)

    @property
    def key(self) -> str:
        return f"ruff:{self.code}"

    @property
    def files(self) -> list[str]:
        return sorted({f.path for f in self.findings})

    def _targets(self) -> str:
        return " ".join(shlex.quote(t) for t in self.targets)

    def _ruff(self) -> str:
        return "ruff --isolated" if self.isolated else "ruff"

    def fix_command(self) -> str:
        if self.kind == "format":
            return f"{self._ruff()} format --no-cache {self._targets()}"
        return f"{self._ruff()} check --fix --no-cache --select {self.code} {self._targets()}"

    def verify_command(self) -> str:
        if self.kind == "format":
            return f"{self._ruff()} format --check --no-cache {self._targets()}"
        return f"{self._ruff()} check --no-cache --select {self.code} {self._targets()}"


class RuleStat(BaseModel):
    """One line of `ruff check --statistics`: a rule, how often it fires, how many findings have a safe fix."""

    code: str
    name: str
    count: int = 0
    fixable_count: int = 0

    @property
    def key(self) -> str:
        return f"ruff:{self.code}"


def _ruff(isolated: bool) -> list[str]:
    """`ruff`, or `ruff --isolated` for a project without ruff configuration (the user's own config is not the
    project's tooling)."""
    return ["ruff", "--isolated"] if isolated else ["ruff"]


def stats_command(isolated: bool = False, check_options: list[str] | None = None) -> list[str]:
    """Per-rule counts: small output however large the project, so tidy scans in detail only the rule it picks.

    `check_options` spell out the project's rule selection where ruff's own defaults are not the project's.
    """
    argv = [*_ruff(isolated), "check", *(check_options or [])]
    return [*argv, "--statistics", "--output-format", "json", "--no-cache", "--exit-zero", "."]


def lint_scan_command(select: str | None = None, isolated: bool = False) -> list[str]:
    """Findings one per line (JSON lines), so output cut at the client's byte limit still parses."""
    argv = [*_ruff(isolated), "check", "--output-format", "json-lines", "--no-cache", "--exit-zero"]
    return [*argv, "--select", select, "."] if select else [*argv, "."]


def format_scan_command(isolated: bool = False) -> list[str]:
    return [*_ruff(isolated), "format", "--check", "--output-format", "concise", "--no-cache", "."]


def _json_array(output: str) -> list[Any]:
    """The JSON array in ruff's output (stderr warnings may be mixed in by the terminal)."""
    text = output.strip()
    try:
        data = json.loads(text)
        if isinstance(data, list):
            return data
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    offset = 0
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("["):
            try:
                data, _ = decoder.raw_decode(text, offset + line.index("["))
            except json.JSONDecodeError:
                data = None
            if isinstance(data, list):
                return data
        offset += len(line)
    raise ValueError(f"ruff printed no JSON; its output began: {text[:300]!r}")


def _json_items(output: str) -> list[Any]:
    """Objects of ruff's JSON-lines output (or of a JSON array); unparsable lines (a cut first line) are skipped."""
    items: list[Any] = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    if items:
        return items
    if output.lstrip().startswith("[") or "\n[" in output:
        return _json_array(output)
    if all(not line.strip() or line.lstrip().startswith("warning:") for line in output.splitlines()):
        return []  # no findings (ruff prints nothing, or "warning: No Python files found")
    raise ValueError(f"ruff printed no JSON findings; its output began: {output.strip()[:300]!r}")


def parse_statistics(output: str) -> list[RuleStat]:
    """`ruff check --statistics --output-format json` → rule stats (rules without a code, like syntax errors, dropped).

    ruff prints nothing at all when there is no finding.
    """
    if all(not line.strip() or line.lstrip().startswith("warning:") for line in output.splitlines()):
        return []
    return [
        RuleStat(
            code=str(item["code"]),
            name=str(item.get("name") or item["code"]),
            count=int(item.get("count") or 0),
            fixable_count=int(item.get("fixable_count") or 0),
        )
        for item in _json_array(output)
        if isinstance(item, dict) and item.get("code")
    ]


def candidates(stats: list[RuleStat], existing_keys: set[str]) -> list[RuleStat]:
    """Rules with safely fixable findings not in the backlog: most fixable findings first, then by code."""
    fresh = [s for s in stats if s.fixable_count > 0 and s.key not in existing_keys]
    return sorted(fresh, key=lambda s: (-s.fixable_count, s.code))


def _relative(filename: str, root: str) -> str:
    """ruff prints absolute paths in JSON and paths relative to its cwd (the root) in concise output."""
    path = Path(filename)
    if not path.is_absolute():
        return Path(os.path.normpath(path)).as_posix()
    for base in (Path(root), Path(root).resolve()):
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            continue
    try:
        return Path(os.path.relpath(path.resolve(), Path(root).resolve())).as_posix()
    except ValueError:
        return path.as_posix()


def parse_findings(output: str, root: str) -> list[Finding]:
    """ruff's JSON or JSON-lines findings → Findings with paths relative to root; ValueError if there is no JSON."""
    findings: list[Finding] = []
    for item in _json_items(output):
        if not isinstance(item, dict) or not item.get("code") or not item.get("filename"):
            continue  # syntax errors carry no code and no fix
        fix = item.get("fix") or None
        location = item.get("location") or {}
        findings.append(
            Finding(
                code=str(item["code"]),
                name=str(item.get("name") or item["code"]),
                message=str(item.get("message") or ""),
                path=_relative(str(item["filename"]), root),
                row=int(location.get("row") or 0),
                column=int(location.get("column") or 0),
                safe_fix=bool(fix) and fix.get("applicability") == "safe",
            )
        )
    return findings


_CONCISE = re.compile(r"^(?P<path>.+?):(?P<row>\d+):(?P<col>\d+): (?P<code>[\w-]+):? (?P<message>.*)$")


def parse_format_check(output: str, root: str) -> list[Finding]:
    """`ruff format --check --output-format concise` → one `unformatted` finding per file."""
    findings: list[Finding] = []
    for line in output.splitlines():
        match = _CONCISE.match(line.strip())
        if match and match["code"] == "unformatted":
            findings.append(
                Finding(
                    code="unformatted",
                    name="unformatted",
                    message=match["message"],
                    path=_relative(match["path"], root),
                    row=int(match["row"]),
                    column=int(match["col"]),
                    safe_fix=True,
                )
            )
    return findings


def lint_groups(
    findings: list[Finding],
    *,
    complete: bool = True,
    isolated: bool = False,
    why: str = "",
    untracked: set[str] | frozenset[str] = frozenset(),
) -> list[FindingGroup]:
    """Safely fixable groups, largest first, then by code — the order tidy proposes them in.

    `complete=False` means the output was cut at the front (the client's byte limit): the first file seen may have
    lost findings, so it is dropped, and groups name their files instead of claiming the whole project.
    `untracked` files are left out (they are not in the last commit a workspace holds, so a plan about them could
    not be carried out there); a group that leaves one out names its files instead of claiming the whole project.
    """
    if not complete and findings:
        findings = [f for f in findings if f.path != findings[0].path]
    by_code: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.code != "unformatted":
            by_code.setdefault(finding.code, []).append(finding)
    groups: list[FindingGroup] = []
    for code, items in by_code.items():
        left_out = sorted({f.path for f in items if f.path in untracked})
        items = [f for f in items if f.path not in untracked]
        all_files = sorted({f.path for f in items})
        fixable_files = [p for p in all_files if all(f.safe_fix for f in items if f.path == p)]
        if not fixable_files:
            continue
        chosen = fixable_files[:MAX_TARGET_FILES]
        whole = complete and chosen == all_files and not left_out
        groups.append(
            FindingGroup(
                kind="lint",
                code=code,
                name=items[0].name,
                findings=sorted(
                    (f for f in items if f.path in chosen), key=lambda f: (f.path, f.row, f.column)
                ),
                targets=["."] if whole else chosen,
                skipped_files=[p for p in all_files if p not in chosen],
                untracked_files=left_out,
                isolated=isolated,
                why=why,
            )
        )
    groups.sort(key=lambda g: (-len(g.findings), g.code))
    return groups


def format_group(
    findings: list[Finding],
    *,
    isolated: bool = False,
    why: str = "",
    untracked: set[str] | frozenset[str] = frozenset(),
) -> FindingGroup | None:
    """Files `ruff format --check` would reformat, as one group (or None when everything is formatted); untracked
    files are left out as in `lint_groups`."""
    items = sorted((f for f in findings if f.code == "unformatted"), key=lambda f: f.path)
    left_out = sorted({f.path for f in items if f.path in untracked})
    items = [f for f in items if f.path not in untracked]
    if not items:
        return None
    files = sorted({f.path for f in items})
    return FindingGroup(
        kind="format",
        code=FORMAT_CODE,
        name="ruff format",
        findings=items,
        targets=files[:MAX_TARGET_FILES] if left_out else ["."],
        skipped_files=files[MAX_TARGET_FILES:] if left_out else [],
        untracked_files=left_out,
        isolated=isolated,
        why=why,
    )


def choose_group(groups: list[FindingGroup], existing_keys: set[str]) -> FindingGroup | None:
    """The first group (in proposal order) whose dedupe key is not in the backlog yet."""
    return next((g for g in groups if g.key not in existing_keys), None)


def _list_files(files: list[str], cap: int = 8) -> str:
    shown = ", ".join(f"`{f}`" for f in files[:cap])
    return shown + (f" and {len(files) - cap} more" if len(files) > cap else "")


def _signals(group: FindingGroup) -> list[str]:
    signals = [f"{f.where} {f.code} {f.message}".strip() for f in group.findings[:MAX_SIGNALS]]
    if len(group.findings) > MAX_SIGNALS:
        signals.append(f"… and {len(group.findings) - MAX_SIGNALS} more {group.code} findings")
    return signals


def plan_input(group: FindingGroup) -> dict[str, Any]:
    """The `always_on_discovery_plan` arguments for one group (valid under always_on.core.contracts.plan.validate_plan)."""
    n, files = len(group.findings), group.files
    where = "the whole project" if group.targets == ["."] else _list_files(group.targets)
    fix, verify = group.fix_command(), group.verify_command()
    untracked = ""
    if group.untracked_files:
        untracked = (
            f" {len(group.untracked_files)} untracked file(s) are left out: git does not track them, so they are "
            f"not in the last commit the change is made on ({_list_files(group.untracked_files)})."
        )
    skipped = untracked
    if group.skipped_files:
        skipped += (
            f" {len(group.skipped_files)} other file(s) with {group.code} are left out because not all of their "
            f"findings have a safe fix (or the plan is capped at {MAX_TARGET_FILES} files): "
            f"{_list_files(group.skipped_files)}."
        )
    if group.kind == "format":
        title = f"Format {n} file{'s' * (n != 1)} with ruff format"
        summary = f"{n} file(s) differ from ruff's formatting; run `ruff format` so the project is consistently formatted."
        rationale = (
            f"`ruff format --check` reports {n} file(s) that would be reformatted: {_list_files(files)}. "
            "Formatting changes layout only, never behaviour, and keeps future diffs small."
            + untracked
            + (f" {group.why}" if group.why else "")
        )
        change = f"Run `{fix}` on {where}. Only whitespace/layout changes; no code is rewritten."
        steps = [
            f"Run `{fix}` in the workspace",
            f"Run `{verify}` to confirm no file would be reformatted",
            "Record which files changed and the ruff output for the report",
        ]
        return {
            "title": title,
            "summary": summary[:200],
            "rationale": rationale,
            "dedupe_key": group.key,
            "context_signals": _signals(group),
            "proposed_change": change,
            "steps": steps,
            "verification": [verify],
        }
    title = f"Fix {n} × {group.code} {group.name} with ruff's safe autofix"
    summary = (
        f"Remove {n} {group.code} ({group.name}) finding{'s' * (n != 1)} in {len(files)} "
        f"file{'s' * (len(files) != 1)} using ruff's safe automatic fix."
    )
    example = group.findings[0]
    rationale = (
        f"ruff reports {n} `{group.code}` ({group.name}) finding(s) in {_list_files(files)} — e.g. "
        f"{example.where}: {example.message}. Every one of them has a fix ruff marks *safe* (it does not change "
        f"behaviour), so the cleanup is mechanical, small and verifiable by re-running ruff.{skipped}"
        + (f" {group.why}" if group.why else "")
    )
    change = (
        f"Apply ruff's safe autofix for rule {group.code} ({group.name}) to {where}. Only {group.code} findings "
        f"are touched: no other rules, no unsafe fixes."
    )
    steps = [
        f"Run `{fix}` in the workspace",
        f"Run `{verify}` to confirm no {group.code} findings remain",
        "Record which files changed and the ruff output for the report",
    ]
    return {
        "title": title[:120],
        "summary": summary[:200],
        "rationale": rationale,
        "dedupe_key": group.key,
        "context_signals": _signals(group),
        "proposed_change": change,
        "steps": steps,
        "verification": [verify],
    }

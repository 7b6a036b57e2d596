"""The built-in `tidy` agent: deterministic, no model, no network — the default that works on a fresh machine.

Per phase (read from the prompt's ```always-on-context``` block; without one it acts as discovery in its cwd):
- discovery: read the project's ruff setup (configuration, pre-commit, CI, pins — see `ruff_setup`), then scan
  with `ruff check` over the project's own rule selection (and `ruff format --check` only when the project opts
  into the formatter with a pin at the bundled ruff's minor version) through the client's terminal, group findings
  with a *safe* automatic fix by rule, skip groups already in the backlog, and propose the largest remaining one
  through `always_on_discovery_plan` (one retry after reading a rejection). It says which rules it used and why
  formatting was or was not considered. Nothing left → no plan, and it says so; so does a project configuration
  the bundled ruff cannot read (that is not tidy failing).
- execution: run the plan's ruff fix command(s), then every verification command; a failed verification ends the
  turn with a message starting "Verification failed". A plan tidy cannot execute (not a `ruff:` plan, the fix
  could not run) is an ACP error, so the runtime records a failure.
- report: re-run the verification commands and submit the canonical report through `always_on_report`.
- apply: tidy cannot resolve conflicts; it says so and ends the turn.
Every command goes through the client's terminal (so the policy applies); refusals are reported, not fatal.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from acp import RequestError
from pydantic import ValidationError

from always_on.core.agents.builtin.common import (
    BuiltinAgent,
    CommandResult,
    McpTools,
    ToolOutcome,
    Turn,
    bundled_program,
    clip,
    command_argv,
    parse_context,
)
from always_on.core.agents.builtin.finders import (
    Finding,
    FindingGroup,
    RuleStat,
    candidates,
    format_group,
    format_scan_command,
    lint_groups,
    lint_scan_command,
    parse_findings,
    parse_format_check,
    parse_statistics,
    plan_input,
    stats_command,
)
from always_on.core.agents.builtin.ruff_setup import (
    RuffSetup,
    extended_file,
    format_decision,
    lint_selection,
    minor_of,
    read_setup,
    version_of,
    wanted_files,
)
from always_on.core.contracts.plan import (
    DEDUPE_RE,
    SUMMARY_MAX,
    TITLE_MAX,
    render_plan_markdown,
    validate_plan,
)
from always_on.core.contracts.plan import verification_commands as plan_verification_commands
from always_on.core.records import PlanContent

PLAN_TOOL = "always_on_discovery_plan"
REPORT_TOOL = "always_on_report"
MAX_CANDIDATES = 5  # rules scanned in detail per discovery before giving up


def _ruff_argv(argv: list[str]) -> list[str]:
    """Run always-on's own ruff (the version tidy compares with the project's pin), wherever pip installed it."""
    return [bundled_program("ruff"), *argv[1:]] if argv and argv[0] == "ruff" else argv


def _backticked(texts: list[str]) -> list[str]:
    return [t.strip() for text in texts for t in re.findall(r"`([^`]+)`", text)]


def _is_ruff_fix(line: str) -> bool:
    """A ruff command of the plan's steps that tidy will run: a safe `check --fix` or a `format`, nothing else."""
    argv = command_argv(line)
    if len(argv) < 2 or argv[0] != "ruff" or "--unsafe-fixes" in argv:
        return False
    sub = next((a for a in argv[1:] if not a.startswith("-")), "")  # after global options like --isolated
    if sub == "check":
        return "--fix" in argv
    return sub == "format" and "--check" not in argv and "--diff" not in argv


def _isolated(commands: list[str]) -> bool:
    """Plans for a project without ruff configuration run `ruff --isolated`; so do tidy's own scans for them."""
    return any("--isolated" in command_argv(c) for c in commands)


def _plan(ctx: dict[str, Any]) -> PlanContent | None:
    raw = ctx.get("plan")
    if not isinstance(raw, dict):
        return None
    try:
        return PlanContent.model_validate(raw)
    except ValidationError:
        return None


def adjust_plan(plan: dict[str, Any], error: str) -> dict[str, Any]:
    """Correct a plan after the tool rejected it: apply any limit the error names, then the contract's limits."""
    fixed = {k: v for k, v in plan.items() if k in PlanContent.model_fields}
    for field_name, limit in re.findall(r"`(\w+)`[^\n]*?(?:at most|max(?:imum)?|to)\s+(\d+)", error):
        value = fixed.get(field_name)
        if isinstance(value, str) and len(value) > int(limit):
            fixed[field_name] = value[: max(int(limit) - 1, 1)].rstrip() + "…"
        elif isinstance(value, list) and len(value) > int(limit):
            fixed[field_name] = value[: int(limit)]
    if len(fixed.get("summary", "")) > SUMMARY_MAX:
        fixed["summary"] = fixed["summary"][: SUMMARY_MAX - 1].rstrip() + "…"
    if len(fixed.get("title", "")) > TITLE_MAX:
        fixed["title"] = fixed["title"][: TITLE_MAX - 1].rstrip() + "…"
    key = str(fixed.get("dedupe_key", ""))
    if not DEDUPE_RE.match(key):
        fixed["dedupe_key"] = (re.sub(r"[^A-Za-z0-9_.:/-]+", "-", key).strip("-") or "ruff:fix")[:100]
    fixed["verification"] = [v if "`" in v else f"`{v}`" for v in fixed.get("verification", [])]
    return fixed


def _files_changed(ctx: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for item in ctx.get("files_changed") or []:
        if isinstance(item, str):
            lines.append(f"- `{item}`")
        elif isinstance(item, dict) and item.get("path"):
            change = item.get("change") or "modified"
            counts = "binary" if item.get("binary") else f"+{item.get('added', 0)} -{item.get('removed', 0)}"
            lines.append(f"- `{item['path']}` ({change}, {counts})")
    return lines


class TidyAgent(BuiltinAgent):
    name = "tidy"
    title = "tidy — deterministic ruff fixes (no model)"

    async def turn(self, turn: Turn, text: str) -> str:
        ctx = parse_context(text) or {}
        phase = str(ctx.get("phase") or "discovery")
        if phase == "discovery":
            async with McpTools(turn.session.mcp_servers) as tools:
                return await self.discover(turn, ctx, tools)
        if phase == "execution":
            return await self.execute(turn, ctx)
        if phase == "report":
            async with McpTools(turn.session.mcp_servers) as tools:
                return await self.report(turn, ctx, tools)
        if phase == "apply":
            conflicts = [str(c) for c in ctx.get("conflicts") or []]
            where = f" ({', '.join(conflicts)})" if conflicts else ""
            await turn.say(
                f"tidy cannot resolve merge conflicts{where}: it only applies ruff's automatic fixes. Resolve "
                "the conflicting files by hand, or archive the cycle and let tidy redo the fix on the current code."
            )
            return "end_turn"
        await turn.say(f"tidy does not know the phase '{phase}'; nothing done.")
        return "end_turn"

    # --- commands ---------------------------------------------------------------------------------------------

    async def _ruff(
        self, turn: Turn, argv: list[str], title: str, ok_codes: tuple[int, ...] = (0,)
    ) -> CommandResult:
        return await turn.run(_ruff_argv(argv), display=shlex.join(argv), title=title, ok_codes=ok_codes)

    async def _command(self, turn: Turn, line: str, title: str) -> CommandResult:
        argv = command_argv(line)
        return await turn.run(_ruff_argv(argv), display=line, title=title)

    async def _read_setup(self, turn: Turn) -> RuffSetup:
        """The project's ruff tooling, read through the client: one tool call in the stream naming the files."""
        call_id = await turn.tool_start("Read the project's ruff setup", "read")
        listing: dict[str, list[str]] = {}
        for folder in (".", "requirements", ".github/workflows"):
            if folder != "." and "." in listing and folder.split("/", 1)[0] not in listing["."]:
                continue
            result = await turn.run_quiet(["ls", "-1A", folder])
            if result.ok:
                listing[folder] = [line.strip() for line in result.output.splitlines() if line.strip()]
        files: dict[str, str] = {}
        for name in wanted_files(listing):
            found = await turn.read_text(name)
            if found.ok:
                files[name] = found.text
        setup = read_setup(files)
        base = extended_file(setup)
        if base and base not in files:  # `extend = "configs/ruff.toml"`: the base holds part of the selection
            found = await turn.read_text(base)
            if found.ok:
                files[base] = found.text
                setup = read_setup(files)
        await turn.tool_end(call_id, True, f"Read: {', '.join(files) or 'no ruff-related file'}.")
        return setup

    async def _findings(
        self, turn: Turn, code: str, title: str, isolated: bool = False
    ) -> tuple[list[Finding] | None, CommandResult]:
        """Findings of one rule (`format` → files `ruff format` would change); None when ruff could not tell."""
        if code == "format":
            result = await self._ruff(turn, format_scan_command(isolated), title, (0, 1))
            parse = parse_format_check
        else:
            result = await self._ruff(turn, lint_scan_command(code, isolated), title, (0,))
            parse = parse_findings
        if result.error is not None or result.exit_code not in ((0, 1) if code == "format" else (0,)):
            return None, result
        try:
            return parse(result.output, turn.session.cwd), result
        except ValueError as exc:
            result.error = str(exc)
            return None, result

    async def _untracked(self, turn: Turn) -> frozenset[str]:
        """Files git does not track in the session's folder (none outside a git repository): they are not in the
        last commit, which is what a workspace holds, so tidy leaves them out (issue 15)."""
        result = await turn.run_quiet(["git", "ls-files", "--others", "--exclude-standard", "-z"])
        if not result.ok:
            return frozenset()
        return frozenset(p for p in result.output.replace("\n", "\0").split("\0") if p.strip())

    async def _statistics(
        self, turn: Turn, title: str, isolated: bool = False, check_options: list[str] | None = None
    ) -> tuple[list[RuleStat] | None, CommandResult]:
        result = await self._ruff(turn, stats_command(isolated, check_options), title)
        if result.error is not None or result.exit_code != 0:
            return None, result
        try:
            return parse_statistics(result.output), result
        except ValueError as exc:
            result.error = str(exc)
            return None, result

    # --- discovery -------------------------------------------------------------------------------------------

    async def discover(self, turn: Turn, ctx: dict[str, Any], tools: McpTools) -> str:
        if not turn.can_run:
            await turn.say("tidy needs the client's terminal capability to run ruff; nothing to propose.")
            return "end_turn"
        existing = {str(p.get("dedupe_key")) for p in ctx.get("existing_plans") or [] if isinstance(p, dict)}
        setup = await self._read_setup(turn)
        version = await self._ruff(turn, ["ruff", "--version"], "Which ruff tidy runs")
        bundled = version_of(version.output) if version.ok else None
        selection = lint_selection(setup)
        isolated = selection.isolated
        await turn.say(
            f"tidy runs ruff {bundled or '(version unknown)'}; lint fixes only for {selection.description}."
        )
        for note in setup.notes:
            await turn.say(f"Note: {note}.")
        other_pins = [p for p in setup.pins if bundled and p.minor != minor_of(bundled)]
        if other_pins and setup.select is not None:  # (without `select`, the selection already says it)
            await turn.say(
                f"Note: the project pins ruff {other_pins[0].version} ({other_pins[0].where}); a rule tidy "
                "proposes is one the project selects, but tidy's ruff may know rules (and fixes) its ruff does not."
            )
        allow_format, format_reason = format_decision(setup, bundled)
        if "ruff:format" not in existing:
            await turn.say(format_reason)
        untracked = await self._untracked(turn)
        if untracked:
            await turn.say(
                f"Left out: {len(untracked)} untracked file{'s' * (len(untracked) != 1)} (git does not track "
                "them, so they are not in the last commit a plan is carried out on); tidy proposes nothing in them."
            )
        await turn.say("Scanning the project with ruff for findings that have a safe automatic fix…")
        stats, scan = await self._statistics(
            turn, "Count ruff findings per rule", isolated, selection.check_options
        )
        if stats is None:
            message = scan.error or f"{scan.status()}: {clip(scan.output, 800)}"
            if scan.error is None and scan.exit_code == 2 and setup.configured:
                # The project's configuration is for another ruff (a removed rule, an unknown setting): that is
                # not tidy failing, and no plan tidy could make would be one the project's own ruff produces.
                await turn.say(
                    f"Nothing to propose: ruff {bundled or ''} cannot use the project's ruff configuration "
                    f"({setup.config_file}): {clip(scan.output.strip(), 800)}"
                )
                return "end_turn"
            await turn.say(f"ruff check could not scan the project ({message}).")
            raise RequestError(-32603, f"tidy: ruff check could not scan the project: {message}")
        fixable = sorted((s for s in stats if s.fixable_count), key=lambda s: (-s.fixable_count, s.code))
        if fixable:
            listing = ", ".join(f"{s.code} {s.name} ({s.fixable_count})" for s in fixable[:10])
            await turn.say(f"Findings with a safe automatic fix: {listing}.")
        why = f"The rule is one of {selection.description}."
        for stat in candidates(stats, existing)[:MAX_CANDIDATES]:
            findings, result = await self._findings(turn, stat.code, f"List {stat.code} findings", isolated)
            if findings is None:
                await turn.say(
                    f"Could not list the {stat.code} findings ({result.error or result.status()})."
                )
                continue
            groups = lint_groups(
                findings, complete=not result.truncated, isolated=isolated, why=why, untracked=untracked
            )
            group = next((g for g in groups if g.code == stat.code), None)
            if group is not None:
                return await self._propose(turn, tools, group)
            if findings and all(f.path in untracked for f in findings if f.code == stat.code):
                await turn.say(f"{stat.code}: its findings are all in untracked files; skipping it.")
                continue
            await turn.say(f"{stat.code}: no file where every finding has a safe fix; skipping it.")
        if "ruff:format" not in existing and allow_format:
            findings, _ = await self._findings(turn, "format", "Check formatting with ruff format", isolated)
            group = format_group(findings or [], isolated=isolated, why=format_reason, untracked=untracked)
            if group is not None:
                return await self._propose(turn, tools, group)
        taken = sorted(k for k in existing if k.startswith("ruff:") and any(s.key == k for s in fixable))
        note = f" (already in the backlog: {', '.join(taken)})" if taken else ""
        # The last message is what a one-line summary shows (`always-on run`): it carries the formatting reason.
        skipped = f" {format_reason}" if not allow_format and "ruff:format" not in existing else ""
        await turn.say(f"No fixable findings; nothing to propose{note}.{skipped}")
        return "end_turn"

    async def _propose(self, turn: Turn, tools: McpTools, group: FindingGroup) -> str:
        plan = plan_input(group)
        if not tools.has(PLAN_TOOL):
            problems = "; ".join(tools.problems) or "this client passed no always-on MCP server"
            await turn.say(
                f"No `{PLAN_TOOL}` tool in this session ({problems}). The plan tidy would propose:\n\n"
                + render_plan_markdown(validate_plan(plan))
            )
            return "end_turn"
        outcome = await self._call_tool(turn, tools, PLAN_TOOL, plan, f"Propose plan: {plan['title']}")
        if not outcome.ok:
            await turn.say(
                f"The plan tool rejected the plan: {outcome.text}\nAdjusting it and trying once more."
            )
            plan = adjust_plan(plan, outcome.text)
            outcome = await self._call_tool(
                turn, tools, PLAN_TOOL, plan, f"Propose plan (retry): {plan['title']}"
            )
            if not outcome.ok:
                await turn.say(f"The plan tool rejected the plan again: {outcome.text}")
                raise RequestError(-32603, f"tidy: the plan tool rejected the plan twice: {outcome.text}")
        await turn.say(f"Proposed plan `{plan['dedupe_key']}`: {plan['title']}.")
        return "end_turn"

    async def _call_tool(
        self, turn: Turn, tools: McpTools, name: str, args: dict[str, Any], title: str
    ) -> ToolOutcome:
        call_id = await turn.tool_start(title, "other", raw_input={"tool": name, "arguments": args})
        outcome = await tools.call(name, args)
        await turn.tool_end(call_id, outcome.ok, outcome.text or ("accepted" if outcome.ok else "rejected"))
        return outcome

    # --- execution -------------------------------------------------------------------------------------------

    async def execute(self, turn: Turn, ctx: dict[str, Any]) -> str:
        plan = _plan(ctx)
        if plan is None:
            await turn.say("No plan in the prompt's always-on-context block; nothing to execute.")
            raise RequestError(-32602, "tidy: the execution prompt carries no plan")
        key = plan.dedupe_key
        if not key.startswith("ruff:") or len(key) <= len("ruff:"):
            await turn.say(f"tidy can only execute its own ruff plans (`ruff:<rule>`); this plan is `{key}`.")
            raise RequestError(-32603, f"tidy cannot execute plan '{key}': not a ruff plan")
        code = key.split(":", 1)[1]
        fixes = [c for c in _backticked(plan.steps) if _is_ruff_fix(c)]
        if not fixes:
            fixes = [
                "ruff format --no-cache ."
                if code == "format"
                else f"ruff check --fix --no-cache --select {code} ."
            ]
        await turn.say(f"Executing `{key}`: {plan.title}")
        isolated = _isolated(fixes)
        before, _ = await self._findings(turn, code, f"Count {code} findings before the fix", isolated)
        for line in fixes:
            result = await self._command(turn, line, f"Fix: {line}")
            if result.error is not None or result.exit_code not in (0, 1):
                await turn.say(
                    f"Execution failed: `{line}` did not complete ({result.status()}).\n\n{result.markdown()}"
                )
                raise RequestError(
                    -32603, f"tidy: the fix command failed: {line}: {result.error or result.status()}"
                )
            await turn.say(
                f"`{line}` finished ({result.status()}):\n{clip(result.output.strip(), 1500) or '(no output)'}"
            )
        after, _ = await self._findings(turn, code, f"Count {code} findings after the fix", isolated)
        if before is not None and after is not None:
            counts_before = _per_file(before)
            counts_after = _per_file(after)
            touched = sorted(p for p, n in counts_before.items() if counts_after.get(p, 0) < n)
            await turn.say(
                f"{code}: {len(before)} finding(s) before, {len(after)} after. "
                f"Files changed: {', '.join(touched) if touched else 'none'}."
            )
        results = [await self._command(turn, c, f"Verify: {c}") for c in plan_verification_commands(plan)]
        failed = [r for r in results if not r.ok]
        if failed:
            details = "\n\n".join(r.markdown(1500) for r in failed)
            await turn.say(
                f"Verification failed: {len(failed)} of {len(results)} command(s) did not pass.\n\n{details}"
            )
            return "end_turn"
        passed = ", ".join(f"`{r.command}`" for r in results) or "no runnable verification commands"
        await turn.say(f"Verification passed: {passed}. The runtime commits the change.")
        return "end_turn"

    # --- report ----------------------------------------------------------------------------------------------

    async def report(self, turn: Turn, ctx: dict[str, Any], tools: McpTools) -> str:
        plan = _plan(ctx)
        if plan is None:
            await turn.say("No plan in the prompt's always-on-context block; cannot write a report.")
            raise RequestError(-32602, "tidy: the report prompt carries no plan")
        await turn.say("Re-running the plan's verification commands for the report…")
        commands = plan_verification_commands(plan)
        results = [await self._command(turn, c, f"Verify: {c}") for c in commands]
        follow_ups: list[str] = []
        stats, _ = await self._statistics(turn, "Look for remaining fixable findings", _isolated(commands))
        for stat in candidates(stats or [], {plan.dedupe_key}):
            follow_ups.append(
                f"- `{stat.key}`: {stat.fixable_count} {stat.name} finding(s) ruff can fix safely (a later plan)"
            )
        markdown = self._report_markdown(ctx, plan, results, follow_ups)
        if not tools.has(REPORT_TOOL):
            await turn.say(markdown)
            return "end_turn"
        outcome = await self._call_tool(turn, tools, REPORT_TOOL, {"content": markdown}, "Submit the report")
        if not outcome.ok:
            await turn.say(f"The report tool rejected the report: {outcome.text}\nTrying once more.")
            outcome = await self._call_tool(
                turn, tools, REPORT_TOOL, {"content": markdown.strip() + "\n"}, "Submit the report (retry)"
            )
            if not outcome.ok:
                await turn.say(markdown)
                raise RequestError(-32603, f"tidy: the report tool rejected the report twice: {outcome.text}")
        verdict = "passed" if all(r.ok for r in results) else "FAILED"
        await turn.say(f"Report submitted; verification {verdict}.")
        return "end_turn"

    @staticmethod
    def _report_markdown(
        ctx: dict[str, Any], plan: PlanContent, results: list[CommandResult], follow_ups: list[str]
    ) -> str:
        ok = all(r.ok for r in results)
        ref = [f"**{plan.title}** (`{plan.dedupe_key}`)"]
        if ctx.get("plan_id"):
            ref.append(f"Plan id: `{ctx['plan_id']}`; run id: `{ctx.get('run_id', '?')}`.")
        ref.append(plan.summary)
        steps = [f"{i}. {_past(s)}" for i, s in enumerate(plan.steps, 1)]
        steps.append(
            f"{len(steps) + 1}. Report phase: re-ran {len(results)} verification command(s) in the workspace."
        )
        files = _files_changed(ctx) or ["- No files changed."]
        outputs = [r.markdown() for r in results] or ["No commands were run."]
        verification = [f"- `{r.command}`: {'passed' if r.ok else 'FAILED'} ({r.status()})" for r in results]
        verification.append(f"\nOverall: {'passed' if ok else 'FAILED'}.")
        note = (
            "Written by the built-in tidy agent (deterministic, no model): the change is ruff's own safe "
            "automatic fix for this rule; behaviour is unchanged by construction."
        )
        notes = [note]
        if not ok:
            notes.append("Verification did not pass; review the command output before applying.")
        sections = [
            ("Plan Reference", "\n\n".join(ref)),
            ("Steps Performed", "\n".join(steps)),
            ("Files Changed", "\n".join(files)),
            ("Command Output", "\n\n".join(outputs)),
            ("Verification Results", "\n".join(verification)),
            ("Follow-ups", "\n".join(follow_ups) or "- None: no other safely fixable ruff findings."),
            ("Notes", "\n".join(notes)),
        ]
        body = "\n\n".join(f"## {name}\n\n{text}" for name, text in sections)
        return f"# Report: {plan.title}\n\n{body}\n"


def _past(step: str) -> str:
    """Plan steps are imperatives ("Run `x`"); the report states what was done ("Ran `x`")."""
    for verb, done in (("Run ", "Ran "), ("Record ", "Recorded "), ("Apply ", "Applied ")):
        if step.startswith(verb):
            return done + step[len(verb) :]
    return step


def _per_file(findings: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.path] = counts.get(f.path, 0) + 1
    return counts

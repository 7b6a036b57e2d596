"""The kernel of the permission policy: `Policy`, its public checks, and the walk from a parsed shell script down
to each simple command, dispatched by its canonical name to the handler of its command family."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from always_on.core.agents.policy import files, git, make, node, python, shell_builtins, text_tools, wrappers
from always_on.core.agents.policy.call import Call, Handler, Outcome, call_label
from always_on.core.agents.policy.confinement import Confinement, Cwds, resolve_path
from always_on.core.agents.policy.decision import Decision, Denied, deny
from always_on.core.agents.policy.programs import canonical_name, unknown_reason
from always_on.core.agents.policy.tool_calls import find_paths, is_always_on_tool
from always_on.core.agents.policy.variables import check_env_var, check_secret_expansion, check_shell_var
from always_on.core.agents.shell_parse import (
    AndOr,
    Group,
    Pipeline,
    Redirect,
    Script,
    ShellParseError,
    Simple,
    Word,
    expand_braces,
    parse,
)

MAX_COMMAND_CHARS = 20_000
MAX_NESTING = 6


def _handler_table() -> dict[str, Handler]:
    """Canonical command name → its family's handler; a name belongs to exactly one family."""
    table: dict[str, Handler] = {}
    for family in (shell_builtins, text_tools, files, wrappers, git, python, make, node):
        shared = table.keys() & family.HANDLERS.keys()
        if shared:
            raise RuntimeError(f"{family.__name__} claims commands another family handles: {sorted(shared)}")
        table.update(family.HANDLERS)
    return table


HANDLERS: dict[str, Handler] = _handler_table()


class Policy:
    """Decides every agent action against one workspace (DESIGN §5); see the package docstring."""

    def __init__(
        self, workspace: Path, *, writable: bool = True, extra_read_roots: Sequence[Path] = ()
    ) -> None:
        self.paths = Confinement(workspace, writable=writable, extra_read_roots=extra_read_roots)

    @property
    def workspace(self) -> Path:
        return self.paths.workspace

    @property
    def writable(self) -> bool:
        return self.paths.writable

    # ---- public API --------------------------------------------------------------------------------------

    def check_read(self, path: str | Path) -> Decision:
        """May the agent read `path` (relative paths are relative to the workspace)?"""
        if str(path) == "":
            return Decision.deny("empty path")
        problem = self.paths.read_problem(self.paths.absolute(path, self.workspace), str(path))
        return (
            Decision.deny(problem)
            if problem
            else Decision.allow(f"reading `{path}` inside the allowed folders")
        )

    def check_write(self, path: str | Path) -> Decision:
        """May the agent write `path`? Only inside the workspace, never inside `.git`, never in a read-only phase."""
        if str(path) == "":
            return Decision.deny("empty path")
        problem = self.paths.write_problem(self.paths.absolute(path, self.workspace), str(path))
        return Decision.deny(problem) if problem else Decision.allow(f"writing `{path}` inside the workspace")

    def check_command(
        self, command: str, args: Sequence[str] | None = None, cwd: Path | None = None
    ) -> Decision:
        """May the agent run this command? With `args` it is an argv; without, a shell command line to parse."""
        start = self.paths.absolute(cwd, self.workspace) if cwd is not None else self.workspace
        problem = self.paths.cwd_problem(start, str(cwd) if cwd is not None else ".")
        if problem:
            return Decision.deny(f"working directory: {problem}")
        cwds = frozenset({resolve_path(start)})
        notes: list[str] = []
        try:
            if args:
                if not command or re.search(r"[\s;&|<>()$`'\"\\*?]", command):
                    deny(f"program name `{command}` given with separate arguments looks like shell syntax")
                self.check_argv(
                    [Word.literal(command), *(Word.literal(str(a)) for a in args)], cwds, 0, notes
                )
            else:
                if not command.strip():
                    deny("empty command")
                if len(command) > MAX_COMMAND_CHARS:
                    deny("command is too long to check")
                try:
                    script = parse(command)
                except ShellParseError as exc:
                    deny(f"cannot be understood with confidence: {exc}")
                self.check_script(script, cwds, 0, notes)
        except Denied as denied:
            return Decision.deny(denied.reason)
        except RecursionError:
            return Decision.deny("the command is nested too deeply to check")
        if not notes:
            return Decision.allow("nothing to run")
        return Decision.allow(f"{'; '.join(dict.fromkeys(notes))} (allow-listed, paths inside the workspace)")

    def check_permission_request(self, tool_kind: str | None, title: str | None, raw_input: Any) -> Decision:
        """Answer ACP `session/request_permission` by the same rules as the direct methods."""
        kind = (tool_kind or "other").lower()
        raw = raw_input if isinstance(raw_input, Mapping) else {}
        own_tool = is_always_on_tool(title) or is_always_on_tool(raw.get("tool") or raw.get("name"))
        if kind == "other" and own_tool and "command" not in raw:
            return Decision.allow(f"always-on's own tool `{title}`")
        if kind == "execute" or (kind == "other" and "command" in raw):
            return self._permission_command(raw)
        if kind == "think":
            return Decision.allow("thinking has no side effects")
        if kind == "fetch":
            return Decision.deny(f"`{title or 'fetch'}` reaches the network, which agents may not use")
        if kind == "switch_mode":
            return Decision.deny("agents may not switch their own permission mode")
        paths = find_paths(raw)
        if kind in ("edit", "delete", "move"):
            if not paths:
                return Decision.deny(f"`{title or kind}` names no path that could be checked")
            return self._all(paths, self.check_write)
        if kind == "read":
            if not paths:
                return Decision.deny(f"`{title or kind}` names no path that could be checked")
            return self._all(paths, self.check_read)
        if kind == "search":
            return self._all(paths, self.check_read) if paths else Decision.allow("searching the workspace")
        return Decision.deny(f"unknown tool `{title or kind}` (kind `{kind}`) cannot be checked")

    # ---- permission-request helpers ----------------------------------------------------------------------

    def _permission_command(self, raw: Mapping[str, Any]) -> Decision:
        command = raw.get("command") or raw.get("cmd")
        cwd = raw.get("cwd") or raw.get("workdir")
        cwd_path = Path(cwd) if isinstance(cwd, str) and cwd else None
        args = raw.get("args")
        if isinstance(command, list) and command and all(isinstance(c, str) for c in command):
            if len(command) == 1:
                return self.check_command(command[0], None, cwd_path)
            return self.check_command(command[0], command[1:], cwd_path)
        if isinstance(command, str) and command:
            if isinstance(args, list) and args:
                return self.check_command(command, [str(a) for a in args], cwd_path)
            return self.check_command(command, None, cwd_path)
        return Decision.deny("the request names no command that could be checked")

    @staticmethod
    def _all(paths: Sequence[str], check: Callable[[str], Decision]) -> Decision:
        decisions = [check(p) for p in paths]
        for decision in decisions:
            if not decision.allowed:
                return decision
        return decisions[-1]

    # ---- the shell: a parsed script down to each command, and each command to its family's handler -------

    def check_script(self, script: Script, cwds: Cwds, depth: int, notes: list[str]) -> Outcome:
        """Check every command of a script run in any of `cwds`; raises Denied. Notes collect what ran."""
        if depth > MAX_NESTING:
            deny("commands are nested too deeply to check")
        current = cwds
        outcome: Outcome = (cwds, cwds)
        for andor, background in script.items:
            # guard: policy-every-command-of-a-list
            outcome = self._andor(andor, current, depth, notes)
            if background:
                outcome = (current, current)
            current = outcome[0] | outcome[1]
        return outcome

    def _andor(self, andor: AndOr, cwds: Cwds, depth: int, notes: list[str]) -> Outcome:
        ok, failed = self._pipeline(andor.first, cwds, depth, notes)
        # guard: policy-every-command-of-a-chain
        for op, pipeline in andor.rest:
            if op == "&&":
                ok2, failed2 = self._pipeline(pipeline, ok, depth, notes)
                ok, failed = ok2, failed | failed2
            else:
                ok2, failed2 = self._pipeline(pipeline, failed, depth, notes)
                ok, failed = ok | ok2, failed2
        return ok, failed

    def _pipeline(self, pipeline: Pipeline, cwds: Cwds, depth: int, notes: list[str]) -> Outcome:
        if len(pipeline.commands) == 1:
            ok, failed = self._command(pipeline.commands[0], cwds, depth, notes)
        else:
            # guard: policy-every-command-of-a-pipeline
            for command in pipeline.commands:  # each side of a pipe runs in a subshell: no `cd` effect
                self._command(command, cwds, depth, notes)
            ok = failed = cwds
        return (failed, ok) if pipeline.negated else (ok, failed)

    def _command(self, command: Simple | Group, cwds: Cwds, depth: int, notes: list[str]) -> Outcome:
        for redirect in command.redirects:
            self._substitutions(redirect.target, cwds, depth, notes)
            self._redirect(redirect, cwds)
        if isinstance(command, Group):
            # guard: policy-groups-checked
            outcome = self.check_script(command.body, cwds, depth, notes)
            return (cwds, cwds) if command.subshell else outcome
        for _, value in command.assignments:
            self._substitutions(value, cwds, depth, notes)
        for word in command.words:
            self._substitutions(word, cwds, depth, notes)
        for word in [
            *command.words,
            *(v for _, v in command.assignments),
            *(r.target for r in command.redirects),
        ]:
            check_secret_expansion(word)
        words = [expanded for word in command.words for expanded in expand_braces(word)]
        if not words:
            for name, _ in command.assignments:
                check_shell_var(name)
            return cwds, cwds
        for name, value in command.assignments:
            check_env_var(name, value)
        return self.check_argv(words, cwds, depth, notes)

    def _substitutions(self, word: Word, cwds: Cwds, depth: int, notes: list[str]) -> None:
        for script in word.scripts:  # `$(...)` and backticks run too, in the same folder
            # guard: policy-substitutions-checked
            self.check_script(script, cwds, depth + 1, notes)

    def _redirect(self, redirect: Redirect, cwds: Cwds) -> None:
        op, target = redirect.op, redirect.target
        targets = expand_braces(target)  # bash brace-expands redirection targets too
        if len(targets) != 1:
            deny(f"redirection target `{target.value}` expands to several words")
        target = targets[0]
        call = Call(self, "redirection", [Word.literal(op), target], cwds, 0, [])
        if op == "<<<":
            return
        if op in (">&", "<&") and target.static and re.fullmatch(r"\d+-?|-", target.value):
            return
        if op == "<&":
            deny(f"redirection `<&{target.value}` is not understood")
        if op == "<":
            call.read(target)
        elif op == "<>":
            call.read(target)
            call.write(target)
        else:
            call.write(target)

    def check_argv(self, words: list[Word], cwds: Cwds, depth: int, notes: list[str]) -> Outcome:
        """Check one simple command (its words brace-expanded): resolve its name, hand it to its family."""
        if depth > MAX_NESTING:
            deny("commands are nested too deeply to check")
        head = words[0]
        if not head.static:
            deny(f"the command name `{head.value}` is only known at run time")
        if head.has_glob and head.value != "[":  # a lone `[` is not a glob: there is no closing `]`
            deny(f"the command name `{head.value}` is a glob")
        name = head.value
        if not name:
            deny("empty command name")
        if "/" in name or name.startswith("~"):
            name = self.paths.program(name, cwds)
        canonical = canonical_name(name)
        if canonical not in ("echo", "true", "false", ":"):
            for word in words[1:]:
                if any(p.dynamic and not p.quoted for p in word.parts):
                    deny(f"unquoted `{word.value}` can split into several arguments at run time; quote it")
        call = Call(self, canonical, words, cwds, depth, notes)
        handler = HANDLERS.get(canonical)
        if handler is None:
            deny(unknown_reason(canonical, call.shown))
        outcome = handler(call)
        notes.append(call_label(call))
        return outcome or (cwds, cwds)

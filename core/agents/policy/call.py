"""One command being checked (`Call`): what every command family's handler gets and uses to refuse.

A handler reads the call's words, checks each path it names with `read`/`write`/`dirs` (confined by the
policy's roots), checks wrapped commands with `run` and shell strings with `shell`, and calls `deny` for
anything it cannot vouch for. It returns where the shell may stand afterwards (`cd`), or None.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from always_on.core.agents.policy.confinement import Cwds, resolve_path
from always_on.core.agents.policy.decision import deny
from always_on.core.agents.policy.words import Opt, looks_like_path, parse_options, plain, show_words
from always_on.core.agents.shell_parse import ShellParseError, Word, parse

if TYPE_CHECKING:
    from always_on.core.agents.policy.kernel import Policy

Outcome = tuple[Cwds, Cwds]  # where the shell may stand after the command succeeded / failed


@dataclass
class Call:
    """One command being checked: its canonical name, arguments and the directories it may run in."""

    policy: Policy
    name: str
    words: list[Word]  # argv, name included
    cwds: Cwds
    depth: int
    notes: list[str]
    label: str | None = None  # what the allowed-decision names, e.g. "git status"

    @property
    def args(self) -> list[Word]:
        return self.words[1:]

    @property
    def shown(self) -> str:
        return show_words(self.words)

    def deny(self, reason: str) -> NoReturn:
        deny(reason)

    def text(self, word: Word, what: str = "argument") -> str:
        """A word whose exact text matters (a subcommand, a pattern...): must be static and glob-free."""
        if not word.static:
            deny(f"`{self.name}` {what} `{word.value}` is only known at run time")
        if word.has_glob:
            deny(
                f"`{self.name}` {what} `{word.value}` is an unquoted glob (it expands to file names); quote it"
            )
        return word.value

    def need_writable(self, why: str) -> None:
        if not self.policy.writable:
            deny(f"this phase is read-only: `{self.shown}` {why}")

    def read(self, word: Word, cwds: Cwds | None = None) -> None:
        if plain(word) == "-":
            return
        for cwd in cwds or self.cwds:
            for shown, path in self.policy.paths.word_paths(word, cwd):
                problem = self.policy.paths.read_problem(path, shown)
                if problem:
                    deny(f"`{self.shown}`: {problem}")

    def write(self, word: Word, *, delete: bool = False, cwds: Cwds | None = None) -> None:
        if plain(word) == "-":
            return
        for cwd in cwds or self.cwds:
            for index, (shown, path) in enumerate(self.policy.paths.word_paths(word, cwd)):
                is_glob_base = word.has_glob and index == 0
                problem = self.policy.paths.write_problem(path, shown, delete=delete and not is_glob_base)
                if problem:
                    deny(f"`{self.shown}`: {problem}")

    def dirs(self, word: Word) -> Cwds:
        """Where `cd DIR` / `git -C DIR` / `make -C DIR` lands; it must be a folder commands may run in."""
        if word.has_glob:
            deny(f"`{self.shown}`: directory `{word.value}` is an unquoted glob")
        out = set()
        for cwd in self.cwds:
            for shown, path in self.policy.paths.word_paths(word, cwd):
                problem = self.policy.paths.cwd_problem(path, shown)
                if problem:
                    deny(f"`{self.shown}`: {problem}")
                # bash's `cd` is logical (`cd link; cd ..` returns here) while files resolve physically: keep both
                out.add(Path(os.path.normpath(path)))
                out.add(resolve_path(path))
        return frozenset(out)

    def read_values(self, opts: Sequence[Opt], names: Iterable[str] = ()) -> None:
        """Option values that are paths (named ones always; others when they look like paths) must be readable."""
        names = set(names)
        for opt in opts:
            if opt.value is None:
                continue
            if opt.name in names:
                self.read(opt.value)
            elif not opt.value.static:
                deny(f"`{self.shown}`: option value `{opt.word.value}` is only known at run time")
            elif looks_like_path(opt.value.value):
                self.read(opt.value)

    def run(self, words: Sequence[Word], cwds: Cwds | None = None) -> Outcome:
        """Check a wrapped command (`env X cmd`, `timeout 5 cmd`, `xargs cmd`)."""
        return self.policy.check_argv(list(words), cwds or self.cwds, self.depth + 1, self.notes)

    def shell(self, word: Word) -> None:
        """Check a script given as a string (`sh -c '...'`)."""
        if not word.static:
            deny(f"`{self.shown}`: the script is only known at run time")
        try:
            script = parse(word.value, depth=self.depth + 1)
        except ShellParseError as exc:
            deny(f"cannot be understood with confidence ({exc}) in `{self.shown}`")
        self.policy.check_script(script, self.cwds, self.depth + 1, self.notes)


Handler = Callable[[Call], "Outcome | None"]


def call_label(call: Call) -> str:
    if call.label:
        return f"`{call.label}`"
    words = [call.name]
    for w in call.args[:2]:
        if w.static and re.fullmatch(r"[A-Za-z][\w.-]*", w.value):
            words.append(w.value)
        else:
            break
    if call.name == "python" and len(call.args) >= 2 and call.args[0].value == "-m":
        return f"`python -m {call.args[1].value}`"
    if call.name in ("git", "python", "npm", "pip", "ruff"):
        return f"`{' '.join(words[:2])}`"
    return f"`{call.name}`"


def check_generic_args(call: Call, args: Sequence[Word], writes: Iterable[str] = ()) -> None:
    """Arguments of a program whose options we do not know: path-like ones must stay inside the workspace."""
    opts, positionals = parse_options(args)
    writes = set(writes)
    for opt in opts:
        if opt.value is None:
            continue
        if opt.name in writes:
            call.write(opt.value)
        elif not opt.value.static:
            call.deny(f"`{call.shown}`: option value `{opt.word.value}` is only known at run time")
        elif looks_like_path(opt.value.value):
            call.read(opt.value)
            if call.policy.writable:
                call.write(opt.value)
    for word in positionals:
        if not word.static:
            call.deny(f"`{call.shown}`: argument `{word.value}` is only known at run time")
        if word.has_glob or looks_like_path(word.value):
            call.read(word)

"""Is a plan's verification entry a command line the runtime can run? Read with the permission policy's parser.

An entry is checkable when it is a shell command line on its own (`test -f out.txt`, `$ make check`) or holds
one in backticks (`` `python -m pytest -q` passes ``). "A command line" means: the policy's parser
(`always_on.core.agents.shell_parse`) reads it — so the policy will be able to judge it too — and every program it
starts is a shell builtin, a path (`./run-checks`), or a program found on PATH or next to always-on's interpreter.
That last rule is what tells prose from commands: "All tests pass" parses as a command named `All`, but there is
no such program. A line that ends like a sentence ("pytest passes.") is prose too.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from always_on.core.agents.shell_parse import Group, Script, ShellParseError, Simple, Word, parse

# Builtins of sh/bash that a check may start with; they are not files on PATH.
SHELL_BUILTINS = frozenset(
    {
        ".", ":", "[", "alias", "break", "cd", "command", "continue", "echo", "eval", "exec", "exit", "export",
        "false", "getopts", "hash", "kill", "local", "printf", "pwd", "read", "readonly", "return", "set",
        "shift", "source", "test", "times", "trap", "true", "type", "ulimit", "umask", "unset", "wait",
    }
)  # fmt: skip
_TICKED = re.compile(r"`([^`]+)`")
_FENCED = re.compile(r"```[\w+-]*[ \t]*\r?\n(.*?)\r?\n?[ \t]*```", re.DOTALL)
_PROMPT = re.compile(r"^\s*\$\s+")
# A last word that ends a sentence: letters (or a closing bracket/quote) then . ! ? or : — `.`, `..`, `x.py` do not.
_SENTENCE_END = re.compile(r"[A-Za-z)\]\"'][.!?:]$")


def _program_dirs() -> list[str]:
    entries = [p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p]
    return [*entries, str(Path(sys.executable).parent)]


def _exact_case(found: str, name: str) -> bool:
    """On a case-insensitive file system `Make` finds `make`; only the exact spelling counts."""
    try:
        return name in os.listdir(os.path.dirname(found) or ".")
    except OSError:
        return False


def program_problem(name: str) -> str | None:
    """Why `name` is not a program a shell would start, or None when it is one."""
    if name in SHELL_BUILTINS or "/" in name:
        return None
    found = shutil.which(name, path=os.pathsep.join(_program_dirs()))
    if found and (name.islower() or _exact_case(found, name)):
        return None
    return f"`{name}` is neither a shell builtin nor a program on PATH"


def _simple_commands(script: Script) -> list[Simple]:
    out: list[Simple] = []
    for andor, _background in script.items:
        for pipeline in [andor.first, *(p for _, p in andor.rest)]:
            for command in pipeline.commands:
                if isinstance(command, Group):
                    out.extend(_simple_commands(command.body))
                else:
                    out.append(command)
    return out


def _background(script: Script) -> bool:
    return any(background for _, background in script.items) or any(
        _background(c.body)
        for andor, _ in script.items
        for p in [andor.first, *(p for _, p in andor.rest)]
        for c in p.commands
        if isinstance(c, Group)
    )


def _program(word: Word) -> str | None:
    return word.value if word.static else None


def command_problem(line: str) -> str | None:
    """Why `line` is not a command line to run, or None when it is one (see the module docstring)."""
    text = _PROMPT.sub("", line, count=1).strip()
    if not text:
        return "it is empty"
    try:
        script = parse(text)
    except ShellParseError as exc:
        return f"the policy's shell parser cannot read it ({exc})"
    commands = [c for c in _simple_commands(script) if c.words]
    if not commands:
        return "it runs no program"
    if _background(script):
        return "it runs in the background (`&`), so nothing waits for its result"
    for command in commands:
        name = _program(command.words[0])
        if name is None:
            return f"the program `{command.words[0]}` is only known when it runs"
        problem = program_problem(name)
        if problem:
            return problem
    last = commands[-1].words[-1]
    if len(commands[-1].words) > 1 and last.unquoted_exact and _SENTENCE_END.search(last.unquoted_exact):
        return f"it ends like a sentence (`{last.unquoted_exact}`)"
    return None


def _pieces(entry: str) -> list[str]:
    fenced = _FENCED.findall(entry)
    if fenced:
        return [block.strip() for block in fenced]
    return [t.strip() for t in _TICKED.findall(entry)]


def entry_commands(entry: str) -> tuple[list[str], str | None]:
    """The command lines of one verification entry, and why there is none when the list is empty.

    The entry as a whole when it is a command line; otherwise its backticked (or fenced) command lines.
    """
    whole = command_problem(entry)
    if whole is None:
        return [_PROMPT.sub("", entry, count=1).strip()], None
    pieces = _pieces(entry)
    if not pieces:
        return [], whole
    found: list[str] = []
    problems: list[str] = []
    for piece in pieces:
        problem = command_problem(piece)
        if problem is None:
            found.append(_PROMPT.sub("", piece, count=1).strip())
        else:
            problems.append(f"`{piece}`: {problem}")
    return found, None if found else "; ".join(problems)

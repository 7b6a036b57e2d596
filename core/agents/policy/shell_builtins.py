"""Shell builtins and commands that name no files: `echo`, `printf`, `test`, `pwd`, `cd`, `set`, `export`..."""

from __future__ import annotations

import re

from always_on.core.agents.policy.call import Call, Handler, Outcome
from always_on.core.agents.policy.environment import SECRET_ENV_RE
from always_on.core.agents.policy.variables import NAME_RE, check_env_var, check_shell_var
from always_on.core.agents.policy.words import is_option, parse_options, plain
from always_on.core.agents.shell_parse import split_assignment

_DYNAMIC_OK = {"echo", "exit", "sleep", "seq", "basename", "dirname", "true", "false", ":", "expr"}
_TEST_UNARY = {"-n", "-z", "-e", "-f", "-d", "-s", "-r", "-w", "-x", "-L", "-h", "-p", "-S", "-b", "-c", "!"}
_TEST_BINARY = {"=", "==", "!=", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-nt", "-ot", "-ef", "<", ">"}


def _no_paths(call: Call) -> None:
    """Commands whose arguments are not files (echo, printf, true...)."""
    args = call.args
    if call.name == "printf":
        # the format (or `-v name`) must be fixed: `printf "$a" "$b"` could become `printf -v 'a[$(cmd)]'`
        if args and plain(args[0]) == "-v":
            name = (
                call.text(args[1], "variable name")
                if len(args) > 1
                else call.deny("`printf -v` without a name")
            )
            if not NAME_RE.fullmatch(name):
                call.deny(f"`printf -v {name}` assigns to something other than a plain variable")
            check_shell_var(name)
            args = args[2:]
        elif args and plain(args[0]) == "--":
            args = args[1:]
        if args:
            call.text(args[0], "format")
    elif call.name == "test":
        if args and plain(args[-1]) == "]" and call.words[0].value == "[":
            args = args[:-1]
        for w in args:
            if w.value in ("-v", "-R"):
                call.deny("`test -v` evaluates array subscripts, which can run commands")
        for k, w in enumerate(args):
            if w.static or len(args) == 1:
                continue
            prev = plain(args[k - 1]) if k else None
            nxt = plain(args[k + 1]) if k + 1 < len(args) else None
            if len(args) > 3 or not (prev in _TEST_UNARY | _TEST_BINARY or nxt in _TEST_BINARY):
                call.deny(f"`{call.shown}`: `{w.value}` could become a test operator at run time")
    elif call.name not in _DYNAMIC_OK:
        for w in args:
            if not w.static:
                call.deny(f"`{call.shown}`: `{w.value}` is only known at run time")
    if call.name == "printenv":
        if not call.args:
            call.deny("`printenv` prints the whole environment, which can hold configured API keys")
        for w in call.args:
            if SECRET_ENV_RE.search(w.value):
                call.deny(f"`printenv {w.value}` prints a secret-shaped variable")
    if call.name in ("hostname", "wait") and call.args:
        call.deny(f"`{call.shown}` with arguments is not supported")
    if call.name == "date" and any(w.value.startswith(("-s", "--set", "-f", "--file")) for w in call.args):
        call.deny("`date --set/--file` is not supported")


_NO_PATHS = [
    "echo", "printf", "true", "false", ":", "pwd", "sleep", "seq", "date", "uname", "whoami", "id",
    "hostname", "basename", "dirname", "expr", "test", "which", "type", "nproc", "printenv", "realpath",
    "readlink", "umask", "wait", "exit", "tty", "locale", "getconf", "yes", "arch", "logname", "groups",
]  # fmt: skip


def _cd(call: Call) -> Outcome:
    _, positionals = parse_options(call.args)
    if not positionals:
        call.deny("`cd` without a folder goes to the home folder, outside the workspace")
    if plain(positionals[0]) == "-":
        call.deny("`cd -` goes to a folder only known at run time")
    return call.dirs(positionals[0]), call.cwds


def _set(call: Call) -> None:
    allowed = {"pipefail", "errexit", "nounset", "xtrace", "verbose", "noclobber", "noglob"}
    args = call.args
    if not args:
        call.deny("`set` without options prints every variable, which can hold configured API keys")
    i = 0
    while i < len(args):
        text = call.text(args[i], "option")
        if text in ("-o", "+o"):
            i += 1
            if i >= len(args) or plain(args[i]) not in allowed:
                call.deny(f"`{call.shown}`: only `set -o` {', '.join(sorted(allowed))} are allowed")
        elif not re.fullmatch(r"[-+][euxvCf]+", text):
            call.deny(f"`{call.shown}`: only `set -e/-u/-x/-v/-C/-f` and `-o pipefail` are allowed")
        i += 1


def _export(call: Call) -> None:
    exported = call.name == "export"
    if not [w for w in call.args if not is_option(w)]:
        call.deny(f"`{call.shown}` prints variables, which can hold configured API keys")
    for word in call.args:
        if is_option(word):
            flags = call.text(word, "option")
            if any(c in flags for c in "aAfFnI") or ("i" in flags and call.name != "export"):
                call.deny(
                    f"`{call.name} {flags}` (arrays, functions, name references, integers) is not supported"
                )
            if "x" in flags:
                exported = True
            continue
        assignment = split_assignment(word)
        name = assignment[0] if assignment else call.text(word, "name")
        if not NAME_RE.fullmatch(name):
            call.deny(f"`{call.name} {word.value}` does not name a plain variable")
        if exported and assignment:
            check_env_var(name, assignment[1])
        else:
            check_shell_var(name)


def _unset(call: Call) -> None:
    for word in call.args:
        text = call.text(word, "name")
        if not (NAME_RE.fullmatch(text) or text in ("-v", "-f")):
            call.deny(f"`unset {text}` does not name a plain variable")


HANDLERS: dict[str, Handler] = {
    **{name: _no_paths for name in _NO_PATHS},
    "cd": _cd, "set": _set, "export": _export, "declare": _export, "typeset": _export, "local": _export,
    "readonly": _export, "unset": _unset,
}  # fmt: skip

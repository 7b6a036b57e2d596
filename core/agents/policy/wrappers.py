"""Wrappers that run another command: `sh -c`/`bash -c`, `env`, `nice`/`nohup`/`timeout`/`time`/`exec`..., `xargs`.

The wrapped command is checked as a command of its own (one level deeper), a `sh -c` string is parsed and checked
as a script; a script from a file or from stdin cannot be checked and is refused.
"""

from __future__ import annotations

from always_on.core.agents.policy.call import Call, Handler, Outcome
from always_on.core.agents.policy.variables import check_env_var
from always_on.core.agents.policy.words import (
    DYNAMIC,
    has_option,
    is_option,
    leading_text,
    option_values,
    parse_options,
    slice_word,
)
from always_on.core.agents.shell_parse import Word, split_assignment


def _sh(call: Call) -> Outcome:
    args = call.args
    i = 0
    has_c = False
    while i < len(args):
        w = args[i]
        text = call.text(w, "option") if leading_text(w).startswith(("-", "+")) else None
        if text is None or text in ("-", "--"):
            if text:
                i += 1
            break
        if text.startswith("--"):
            if text not in ("--login", "--norc", "--noprofile", "--posix", "--restricted", "--noediting",
                            "--verbose"):  # fmt: skip
                call.deny(f"`{call.words[0].value} {text}` is not allowed")
        elif text in ("-o", "+o"):
            i += 1
        else:
            if "o" in text[1:]:
                i += 1  # `-euo pipefail`: the option name follows
            for c in text[1:]:
                if c == "c":
                    has_c = True
                elif c in "isO":
                    call.deny(
                        f"`{call.words[0].value} -{c}` (interactive, stdin or shell options) is not allowed"
                    )
                elif c not in "abefhkmnoptuvxBCEHPTlr":
                    call.deny(f"`{call.words[0].value} -{c}` is not understood")
        i += 1
    rest = args[i:]
    if not has_c:
        # guard: sh-script-file-refused
        if rest:
            call.deny(f"`{call.shown}` runs a script file whose content cannot be checked")
        call.deny(f"`{call.shown}` reads its script from stdin, which cannot be checked")
    if not rest:
        call.deny(f"`{call.shown}` without a script")
    # guard: sh-c-script-checked
    call.shell(rest[0])
    return call.cwds, call.cwds


def _env(call: Call) -> Outcome | None:
    args = call.args
    i = 0
    cwds = call.cwds
    while i < len(args):
        w = args[i]
        if not is_option(w):
            break
        text = call.text(w, "option")
        if text == "--":
            i += 1
            break
        if text in ("-u", "--unset"):
            i += 2
            continue
        if text in ("-C", "--chdir") or text.startswith(("--chdir=", "-C")):
            if text in ("-C", "--chdir"):
                i += 1
                target = args[i] if i < len(args) else call.deny("`env -C` without a folder")
            else:
                target = slice_word(w, len("--chdir=") if text.startswith("--chdir=") else 2)
            cwds = call.dirs(target)
        elif text in ("-S", "--split-string") or text.startswith(("-S", "--split-string")):
            # guard: env-S-refused
            call.deny("`env -S` splits a string into a command line that cannot be checked")
        elif not (text in ("-i", "--ignore-environment", "-0", "--null", "-v", "--debug")
                  or text.startswith(("--unset=", "-u", "--default-signal", "--ignore-signal", "--block-signal",
                                      "--list-signal-handling"))):  # fmt: skip
            call.deny(f"`env {text}` is not understood")
        i += 1
    while i < len(args):
        assignment = split_assignment(args[i]) if leading_text(args[i]) else None
        if not assignment:
            break
        check_env_var(*assignment)
        i += 1
    if i >= len(args):
        call.deny("`env` without a command prints the whole environment, which can hold configured API keys")
    # guard: env-command-checked
    return call.run(args[i:], cwds)


def _simple_wrapper(call: Call) -> Outcome | None:
    """`nice`, `nohup`, `timeout`, `time`, `stdbuf`, `command`, `builtin`, `exec`: check the wrapped command."""
    args = call.args
    shorts = {"nice": "n", "timeout": "sk", "time": "fo", "stdbuf": "ioe", "exec": "a", "command": "",
              "nohup": "", "builtin": ""}[call.name]  # fmt: skip
    longs = ("--adjustment", "--signal", "--kill-after", "--format", "--output", "--input")
    opts, rest = parse_options(args, shorts, longs, stop_at_positional=True)
    for out in option_values(opts, "-o", "--output") if call.name == "time" else []:
        call.write(out)
    if call.name == "command" and has_option(opts, "-v", "-V"):
        return None  # a lookup, runs nothing
    if call.name == "timeout":
        if not rest:
            call.deny("`timeout` without a duration")
        call.text(rest[0], "duration")
        rest = rest[1:]
    if not rest:
        if call.name in ("exec", "nice", "time"):
            return None
        call.deny(f"`{call.shown}` without a command")
    # guard: wrapper-command-checked
    return call.run(rest)


def _xargs(call: Call) -> Outcome:
    opts, rest = parse_options(
        call.args, "ILnPsdEa",
        ("--max-args", "--max-lines", "--max-procs", "--max-chars", "--delimiter", "--arg-file",
         "--process-slot-var"),
        stop_at_positional=True,
    )  # fmt: skip
    for f in option_values(opts, "-a", "--arg-file"):
        call.read(f)
    replace = [call.text(v, "replace string") for v in option_values(opts, "-I")]
    if has_option(opts, "-i", "--replace"):
        replace.append("{}")
    command = rest or [Word.literal("echo")]
    if replace:
        words = [DYNAMIC if any(r in w.value for r in replace) else w for w in command]
    else:
        words = [*command, DYNAMIC]
    # guard: xargs-command-checked
    return call.run(words)


HANDLERS: dict[str, Handler] = {
    "sh": _sh, "env": _env, "nice": _simple_wrapper, "nohup": _simple_wrapper, "timeout": _simple_wrapper,
    "time": _simple_wrapper, "stdbuf": _simple_wrapper, "command": _simple_wrapper, "builtin": _simple_wrapper,
    "exec": _simple_wrapper, "xargs": _xargs,
}  # fmt: skip

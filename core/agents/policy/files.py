"""Commands that create, change or remove files: `find`, `tee`, `mkdir`/`touch`, `rm`, `cp`/`mv`, `ln`, `chmod`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from always_on.core.agents.policy.call import Call, Handler
from always_on.core.agents.policy.words import (
    DYNAMIC,
    has_option,
    is_option,
    option_values,
    parse_options,
    plain,
    slice_word,
)
from always_on.core.agents.shell_parse import Word


def _find(call: Call) -> None:
    args = call.args
    i = 0
    while i < len(args) and plain(args[i]) in ("-H", "-L", "-P", "-O0", "-O1", "-O2", "-O3", "-D"):
        i += 2 if plain(args[i]) == "-D" else 1
    roots: list[Word] = []
    while i < len(args) and not (args[i].static and args[i].value.startswith(("-", "(", ")", "!", ","))):
        roots.append(args[i])
        i += 1
    roots = roots or [Word.literal(".")]
    deletes = False
    while i < len(args):
        w = args[i]
        text = call.text(w, "expression")  # a run-time word could become `-delete` or `-fprint FILE`
        if text in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            command: list[Word] = []
            while j < len(args) and plain(args[j]) not in (";", "+"):
                command.append(DYNAMIC if "{}" in args[j].value else args[j])
                j += 1
            if not command:
                call.deny(f"`find {text}` without a command")
            call.run(command)
            i = j + 1
            continue
        if text == "-delete":
            deletes = True
        elif text in ("-fprint", "-fprint0", "-fls", "-fprintf") and i + 1 < len(args):
            call.write(args[i + 1])
            i += 3 if text == "-fprintf" else 2
            continue
        elif text in ("-files0-from",) and i + 1 < len(args):
            call.read(args[i + 1])
        i += 1
    for root in roots:
        if deletes:
            call.write(root)
        else:
            call.read(root)
    if deletes:
        call.need_writable("deletes files")


def _tee(call: Call) -> None:
    _, positionals = parse_options(call.args, "", ("--output-error",))
    for word in positionals:
        call.write(word)


def _mkdir_touch(call: Call) -> None:
    short = {"mkdir": "m", "touch": "rdt", "truncate": "sr", "rmdir": ""}[call.name]
    opts, positionals = parse_options(call.args, short, ("--mode", "--reference", "--date", "--size"))
    for ref in option_values(opts, "-r", "--reference"):
        call.read(ref)
    if not positionals:
        call.deny(f"`{call.shown}` names no file")
    for word in positionals:
        call.write(word, delete=call.name == "rmdir")


def _rm(call: Call) -> None:
    opts, positionals = parse_options(call.args)
    if has_option(opts, "--no-preserve-root"):
        call.deny("`rm --no-preserve-root` is never allowed")
    if not positionals:
        call.deny(f"`{call.shown}` names no file")
    for word in positionals:
        call.write(word, delete=True)


def _cp_mv(call: Call) -> None:
    opts, positionals = parse_options(call.args, "tS", ("--target-directory", "--suffix"))
    targets = option_values(opts, "-t", "--target-directory")
    if targets:
        sources, dest = positionals, targets[-1]
    else:
        if len(positionals) < 2:
            call.deny(f"`{call.shown}` needs a source and a destination")
        sources, dest = positionals[:-1], positionals[-1]
    for word in sources:
        if call.name == "mv":
            call.write(word, delete=True)
        else:
            call.read(word)
    call.write(dest)


def _ln(call: Call) -> None:
    opts, positionals = parse_options(call.args, "tS", ("--target-directory", "--suffix"))
    targets = option_values(opts, "-t", "--target-directory")
    if targets:
        link_dirs, sources = [targets[-1]], positionals
        for d in link_dirs:
            call.write(d)
    elif len(positionals) >= 2:
        sources, link = positionals[:-1], positionals[-1]
        call.write(link)
        link_dirs = [link]
    elif len(positionals) == 1:
        sources, link_dirs = positionals, [Word.literal(".")]
    else:
        call.deny("`ln` without a target")
    for source in sources:
        text = call.text(source, "target")
        for cwd in call.cwds:
            for link_word in link_dirs:
                link_path = Path(os.path.join(cwd, os.path.expanduser(link_word.value)))
                base = link_path if link_path.is_dir() else link_path.parent
                for anchor in {cwd, base}:
                    target = Path(os.path.join(anchor, os.path.expanduser(text)))
                    problem = call.policy.paths.read_problem(target, text) or call.policy.paths.write_problem(
                        target, text
                    )
                    if problem:
                        call.deny(f"`{call.shown}`: link target {problem}")


def _chmod(call: Call) -> None:
    mode_seen = False
    files: list[Word] = []
    for word in call.args:
        text = call.text(word, "argument") if is_option(word) else None
        if text is not None and re.fullmatch(r"-[rwxXst]+|--(recursive|verbose|changes|silent|quiet|preserve-root)|"
                                             r"-[Rvcf]+", text):  # fmt: skip
            mode_seen = mode_seen or bool(re.fullmatch(r"-[rwxXst]+", text))
        elif text is not None and text.startswith("--reference="):
            call.read(slice_word(word, len("--reference=")))
            mode_seen = True
        elif text is not None:
            call.deny(f"`chmod {text}` is not understood")
        elif not mode_seen:
            call.text(word, "mode")
            mode_seen = True
        else:
            files.append(word)
    if not files:
        call.deny(f"`{call.shown}` names no file")
    for word in files:
        call.write(word)


HANDLERS: dict[str, Handler] = {
    "find": _find, "tee": _tee, "mkdir": _mkdir_touch, "touch": _mkdir_touch, "truncate": _mkdir_touch,
    "rmdir": _mkdir_touch, "rm": _rm, "cp": _cp_mv, "mv": _cp_mv, "ln": _ln, "chmod": _chmod,
}  # fmt: skip

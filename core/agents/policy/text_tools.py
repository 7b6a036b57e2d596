"""Text tools: readers (`cat`, `head`, `wc`, `diff`, `sort`...), `grep`/`rg`, `sed`, `awk`, `jq`, `tr`.

They read the files they name; the few options that write (`sort -o`, `tree -o`) or run programs (`rg --pre`,
`sed`'s `e`/`w`, awk's `system()`) are checked or refused.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from always_on.core.agents.policy.call import Call, Handler
from always_on.core.agents.policy.words import (
    has_option,
    is_option,
    option_values,
    parse_options,
    plain,
    slice_word,
)
from always_on.core.agents.shell_parse import Word


# name: (short options taking a value, long options taking a separate value, options naming files read,
#        options naming files written, options denied)
class _Spec(NamedTuple):
    """A file-reading command's options, space-separated: which take a value, name files read or written."""

    short: str = ""  # short options taking a value, e.g. "nc" for `head -n 5`
    long: str = ""  # long options taking a separate value
    reads: str = ""
    writes: str = ""
    denied: str = ""


_READERS: dict[str, _Spec] = {
    "cat": _Spec(), "rev": _Spec(), "join": _Spec("12jteoav"), "nl": _Spec("bdfhilnsvw"),
    "head": _Spec("nc", "--lines --bytes"),
    "tail": _Spec("ncs", "--lines --bytes --sleep-interval --pid --max-unchanged-stats"),
    "wc": _Spec(reads="--files0-from"), "tac": _Spec("s", "--separator"), "od": _Spec("AjNSstw"),
    "hexdump": _Spec("efns", reads="-f"), "strings": _Spec("nte"),
    "file": _Spec("mFeP", reads="-m --magic-file", denied="-C --compile"),
    "stat": _Spec("c", "--format --printf"),
    "du": _Spec("dBtX", "--max-depth --block-size --threshold", reads="-X --exclude-from"),
    "ls": _Spec("ITw", "--ignore --hide --width --tabsize --sort --format --time-style --time --block-size "
                       "--color --indicator-style --quoting-style"),
    "tree": _Spec("LPIHo", "--filelimit --charset --sort", reads="--fromfile", writes="-o"),
    "md5sum": _Spec(denied="-c --check"), "shasum": _Spec("a", "--algorithm", denied="-c --check"),
    "base64": _Spec("w", "--wrap"),
    "cut": _Spec("bcdf", "--bytes --characters --delimiter --fields --output-delimiter"),
    "fold": _Spec("w", "--width"), "fmt": _Spec("wpg", "--width --prefix --goal"),
    "column": _Spec("cstoNRHlEdW", "--separator --output-separator --table-columns"),
    "paste": _Spec("d", "--delimiters"), "comm": _Spec(long="--output-delimiter"),
    "diff": _Spec("CUFIxXLS", "--label --ignore-matching-lines --show-function-line --exclude --starting-file "
                              "--horizon-lines --context --unified",
                  reads="-X --exclude-from --from-file --to-file"),
    "cmp": _Spec("in", "--ignore-initial --bytes"), "expand": _Spec("t", "--tabs"), "unexpand": _Spec("t", "--tabs"),
    "sort": _Spec("ktoSTy", "--key --field-separator --output --buffer-size --temporary-directory --parallel "
                            "--batch-size",
                  reads="--files0-from --random-source", writes="-o --output -T --temporary-directory",
                  denied="--compress-program"),
    "uniq": _Spec("fsw", "--skip-fields --skip-chars --check-chars"),
    "xxd": _Spec("cglsonC"),
}  # fmt: skip


def _reader(call: Call) -> None:
    spec = _READERS[call.name]
    reads, writes, denied = spec.reads.split(), spec.writes.split(), spec.denied.split()
    opts, positionals = parse_options(call.args, spec.short, spec.long.split())
    for opt in opts:
        if opt.name in denied or any(opt.name.startswith(d + "=") for d in denied):
            call.deny(f"`{call.name} {opt.name}` is not allowed (it runs programs or reads unlisted files)")
        if opt.name in writes and opt.value is not None:
            call.write(opt.value)
    call.read_values([o for o in opts if o.name in reads], reads)  # other values are counts, fields, formats
    if call.name in ("uniq", "xxd") and len(positionals) >= 2:
        call.write(positionals[1])
        positionals = positionals[:1] + positionals[2:]
    for word in positionals:
        call.read(word)


def _tr(call: Call) -> None:
    """`tr` reads stdin only; its arguments are character sets."""
    for word in call.args:
        if word.has_glob:
            call.text(word, "set")


_GREP_VALUES = ("--regexp", "--file", "--max-count", "--after-context", "--before-context", "--context",
                "--include", "--exclude", "--exclude-dir", "--exclude-from", "--label", "--binary-files",
                "--devices", "--directories", "--group-separator")  # fmt: skip
_RG_VALUES = ("--regexp", "--file", "--glob", "--iglob", "--type", "--type-not", "--type-add", "--type-clear",
              "--max-count", "--max-depth", "--max-filesize", "--replace", "--sort", "--sortr", "--colors",
              "--context-separator", "--field-match-separator", "--field-context-separator", "--path-separator",
              "--encoding", "--engine", "--threads", "--ignore-file", "--dfa-size-limit", "--regex-size-limit",
              "--max-columns", "--pre-glob", "--after-context", "--before-context", "--context",
              "--hyperlink-format", "--color")  # fmt: skip


def _grep(call: Call) -> None:
    is_rg = call.name == "rg"
    if is_rg:
        opts, positionals = parse_options(call.args, "efgtTmABCjMrEd", _RG_VALUES)
    else:
        opts, positionals = parse_options(call.args, "efmABCdD", _GREP_VALUES)
    for opt in opts:
        if opt.name in ("--pre", "--hostname-bin", "--search-zip", "-z") and is_rg:
            call.deny(f"`rg {opt.name}` runs other programs on the files")
    call.read_values(
        [o for o in opts if o.name not in ("-e", "--regexp", "-g", "--glob", "--iglob", "--include", "--exclude",
                                           "--exclude-dir", "-r", "--replace", "--type-add")],
        ("-f", "--file", "--exclude-from", "--ignore-file"),
    )  # fmt: skip
    has_pattern = has_option(opts, "-e", "--regexp", "-f", "--file") or (
        is_rg and has_option(opts, "--files", "--type-list")
    )
    if not has_pattern and positionals:
        if not positionals[0].static:
            call.deny(f"`{call.shown}`: a pattern only known at run time must follow `-e`")
        if positionals[0].has_glob:
            call.text(positionals[0], "pattern")
        positionals = positionals[1:]
    for word in positionals:
        call.read(word)


_SED_FLAG_CHARS = set("gpPiImMe0123456789w")


def sed_script_problem(script: str) -> str | None:
    """Why a sed script could run commands or touch files (`e`, `w`, `r`, `s///e`, `s///w`), or None."""
    s, i, n = script, 0, len(script)

    def regex_end(j: int, delim: str) -> int:
        while j < n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "[":
                k = j + 1
                if k < n and s[k] == "^":
                    k += 1
                if k < n and s[k] == "]":
                    k += 1
                while k < n and s[k] != "]":
                    if s[k] == "[" and k + 1 < n and s[k + 1] in ":=.":
                        close = s.find(s[k + 1] + "]", k + 2)
                        if close < 0:
                            raise ValueError
                        k = close + 2
                    else:
                        k += 1
                j = k + 1
                continue
            if c == delim:
                return j
            if c == "\n":
                raise ValueError
            j += 1
        raise ValueError

    def plain_end(j: int, delim: str) -> int:
        while j < n:
            if s[j] == "\\":
                j += 2
                continue
            if s[j] == delim:
                return j
            j += 1
        raise ValueError

    try:
        while i < n:
            while i < n and s[i] in " \t\n;":
                i += 1
            if i >= n:
                break
            if s[i] == "#":
                while i < n and s[i] != "\n":
                    i += 1
                continue
            for _ in range(2):  # address[,address]
                if i < n and s[i].isdigit():
                    while i < n and (s[i].isdigit() or s[i] == "~"):
                        i += 1
                elif i < n and s[i] == "$":
                    i += 1
                elif i < n and s[i] in "/\\":
                    delim = "/"
                    if s[i] == "\\":
                        i += 1
                        delim = s[i]
                    i = regex_end(i + 1, delim) + 1
                    while i < n and s[i] in "IM":
                        i += 1
                elif i < n and s[i] in "+~" and _ > 0:
                    i += 1
                    while i < n and s[i].isdigit():
                        i += 1
                if i < n and s[i] == "," and _ == 0:
                    i += 1
                    continue
                break
            while i < n and s[i] in " \t!":
                i += 1
            if i >= n:
                return "the script ends after an address"
            cmd = s[i]
            i += 1
            if cmd in "{}=dDgGhHlnNpPxzF":
                while i < n and s[i].isdigit():
                    i += 1
            elif cmd in "qQlL":
                while i < n and (s[i].isdigit() or s[i] in " \t"):
                    i += 1
            elif cmd in ":btTv":
                while i < n and s[i] not in ";\n":
                    i += 1
            elif cmd in "aic":
                while i < n and s[i] != "\n":
                    i += 2 if s[i] == "\\" else 1
            elif cmd in "sy":
                delim = s[i]
                if delim in "\n\\":
                    return "unusual `s` delimiter"
                end1 = regex_end(i + 1, delim) if cmd == "s" else plain_end(i + 1, delim)
                end2 = plain_end(end1 + 1, delim)
                i = end2 + 1
                if cmd == "s":
                    while i < n and s[i] in _SED_FLAG_CHARS:
                        if s[i] == "e":
                            return "the `e` flag of `s` runs the result as a command"
                        if s[i] == "w":
                            return "the `w` flag of `s` writes a file"
                        i += 1
            elif cmd in "eErRwW":
                return f"the `{cmd}` command {'runs commands' if cmd in 'eE' else 'reads or writes files'}"
            else:
                return f"unknown sed command `{cmd}`"
            while i < n and s[i] in " \t":
                i += 1
            if i < n and s[i] not in ";\n}#":
                return f"unexpected `{s[i]}` in the sed script"
    except (ValueError, IndexError):
        return "the sed script cannot be parsed"
    return None


def _sed(call: Call) -> None:
    scripts: list[Word] = []
    in_place = False
    files: list[Word] = []
    args = call.args
    i = 0
    only_files = False
    while i < len(args):
        w = args[i]
        if only_files or not is_option(w):
            files.append(w)
            i += 1
            continue
        text = call.text(w, "option")
        if text in ("--version", "--help"):
            return
        if text == "--":
            only_files = True
        elif text.startswith("--"):
            name, eq, value = text.partition("=")
            if name == "--expression":
                if eq:
                    scripts.append(Word.literal(value))
                else:
                    i += 1
                    scripts.append(
                        args[i] if i < len(args) else call.deny("`sed --expression` without a script")
                    )
            elif name == "--in-place":
                in_place = True
            elif name in ("--file",):
                call.deny("`sed --file` runs a script file whose content cannot be checked")
            elif name == "--line-length" and not eq:
                i += 1
            elif name not in ("--quiet", "--silent", "--regexp-extended", "--separate", "--null-data",
                              "--unbuffered", "--posix", "--debug", "--sandbox", "--follow-symlinks",
                              "--line-length", "--zero-terminated", "--binary"):  # fmt: skip
                call.deny(f"`sed {name}` is not understood")
        else:
            j = 1
            while j < len(text):
                c = text[j]
                if c == "i":
                    in_place = True
                    break
                if c == "e":
                    if j + 1 < len(text):
                        scripts.append(slice_word(w, j + 1))
                    else:
                        i += 1
                        scripts.append(args[i] if i < len(args) else call.deny("`sed -e` without a script"))
                    break
                if c == "f":
                    call.deny("`sed -f` runs a script file whose content cannot be checked")
                if c == "l":
                    if j + 1 == len(text):
                        i += 1
                    break
                if c not in "nrEsuz":
                    call.deny(f"`sed -{c}` is not understood")
                j += 1
        i += 1
    if not scripts:
        if not files:
            call.deny("`sed` without a script")
        scripts, files = [files[0]], files[1:]
    for script in scripts:
        problem = sed_script_problem(call.text(script, "script"))
        if problem:
            call.deny(f"`{call.shown}`: {problem}")
    for word in files:
        if in_place:
            call.write(word)
        else:
            call.read(word)
    if in_place and not files:
        call.deny("`sed -i` without files")


_AWK_DANGER = re.compile(r"\bsystem\s*\(|\bgetline\b|(?<!\|)\|(?!\|)|\bprintf?\b[^;{}\n]*>|@")


def _awk(call: Call) -> None:
    opts, positionals = parse_options(
        call.args, "Fvfeil", ("--field-separator", "--assign", "--file", "--source")
    )
    if has_option(opts, "-f", "--file", "-i", "--include", "-l", "--load", "-E", "--exec"):
        call.deny("awk program files and extensions cannot be checked")
    programs = option_values(opts, "-e", "--source")
    if not programs:
        if not positionals:
            call.deny("`awk` without a program")
        programs, positionals = [positionals[0]], positionals[1:]
    for program in programs:
        if _AWK_DANGER.search(call.text(program, "program")):
            call.deny(f"`{call.shown}`: the awk program may run commands or write files "
                      "(system, getline, |, print >); use grep, sed -n or cut")  # fmt: skip
    for word in positionals:
        if word.static and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", word.value):
            continue  # an awk variable assignment, not a file
        call.read(word)


def _jq(call: Call) -> None:
    args = call.args
    i = 0
    filter_seen = False
    rest_are_args = False
    while i < len(args):
        w = args[i]
        text = plain(w)
        if rest_are_args:
            i += 1
            continue
        if text in ("--arg", "--argjson"):
            i += 3
            continue
        if text in ("--slurpfile", "--rawfile"):
            if i + 2 < len(args):
                call.read(args[i + 2])
            i += 3
            continue
        if text in ("-f", "--from-file", "-L"):
            if i + 1 < len(args):
                call.read(args[i + 1])
            filter_seen = filter_seen or text != "-L"
            i += 2
            continue
        if text == "--indent":
            i += 2
            continue
        if text in ("--args", "--jsonargs"):
            rest_are_args = filter_seen
            i += 1
            continue
        if is_option(w):
            call.text(w, "option")
        elif not filter_seen:
            call.text(w, "filter")
            filter_seen = True
        else:
            call.read(w)
        i += 1


HANDLERS: dict[str, Handler] = {
    **{name: _reader for name in _READERS},
    "tr": _tr, "grep": _grep, "rg": _grep, "sed": _sed, "awk": _awk, "jq": _jq,
}  # fmt: skip

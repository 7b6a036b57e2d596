"""Python and its tools: `python` (scripts and `-m` modules), `pytest`, `ruff`, `pip`, `mypy`/`flake8`/`pylint`,
`black`/`isort`, `coverage`.

Running project code (a script, a module, tests) is allowed in writable phases only; in read-only phases pytest
runs only when it cannot write its cache (`-p no:cacheprovider` or `--collect-only`). Inline code (`-c`),
installers and network modules are refused.
"""

from __future__ import annotations

import re
from pathlib import Path

from always_on.core.agents.policy.call import Call, Handler, Outcome, check_generic_args
from always_on.core.agents.policy.programs import PUBLISH_RE
from always_on.core.agents.policy.words import (
    has_option,
    is_option,
    looks_like_path,
    option_values,
    parse_options,
    plain,
    slice_word,
)
from always_on.core.agents.shell_parse import Word

_DENIED_MODULES = {
    "http.server": "serves files over the network", "smtpd": "opens a network server",
    "xmlrpc.server": "opens a network server", "webbrowser": "opens a browser",
    "ensurepip": "installs packages", "venv": "creates a virtual environment (not part of a plan)",
    "virtualenv": "creates a virtual environment (not part of a plan)", "twine": "uploads packages",
    "build": "downloads build dependencies", "pipx": "installs packages", "uv": "installs packages",
    "poetry": "installs packages", "pdm": "installs packages", "hatch": "installs packages",
    "tox": "creates environments and installs packages", "nox": "creates environments and installs packages",
    "pre_commit": "installs hooks from the network", "pydoc": "can serve documentation over the network",
    "timeit": "runs code given on the command line", "code": "reads a program from stdin",
    "asyncio": "reads a program from stdin", "pdb": "is interactive", "ftplib": "reaches the network",
    "telnetlib": "reaches the network", "smtplib": "reaches the network", "urllib.request": "reaches the network",
    "http.client": "reaches the network", "idlelib": "is interactive",
}  # fmt: skip


def _python(call: Call) -> Outcome | None:
    args = call.args
    i = 0
    while i < len(args):
        w = args[i]
        text = call.text(w, "option") if is_option(w) else None
        if text is None:
            break
        if text in ("--version", "-V", "-VV", "--help", "-h", "--help-env", "--help-xoptions", "--help-all"):
            return None
        if text == "--":
            i += 1
            break
        if text.startswith("--"):
            call.deny(f"`python {text}` is not understood")
        for k, c in enumerate(text[1:], start=1):
            if c == "c":
                call.deny(
                    "`python -c` runs inline code that cannot be checked; write a script in the workspace"
                )
            if c == "i":
                call.deny("`python -i` is interactive")
            if c == "m":
                module_word = (
                    slice_word(w, k + 1)
                    if k + 1 < len(text)
                    else (args[i + 1] if i + 1 < len(args) else None)
                )
                if module_word is None:
                    call.deny("`python -m` without a module")
                offset = i + 1 if k + 1 < len(text) else i + 2
                return _python_module(call, call.text(module_word, "module"), list(args[offset:]))
            if c in "WX":
                if k + 1 == len(text):
                    i += 1
                break
            if c not in "bBdEhIOPqsSuvx":
                call.deny(f"`python -{c}` is not understood")
        i += 1
    if i >= len(args) or plain(args[i]) == "-":
        call.deny("`python` without a script reads its program from stdin, which cannot be checked")
    call.need_writable("runs project code, which may write files")
    call.read(args[i])
    if Path(args[i].value).name == "setup.py" and any(PUBLISH_RE.search(w.value) for w in args[i + 1 :]):
        call.deny("`setup.py install/upload` changes the shared environment or publishes")
    check_generic_args(call, args[i + 1 :])
    return None


def _python_module(call: Call, module: str, rest: list[Word]) -> Outcome | None:
    if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*", module):
        call.deny(f"`python -m {module}` is not a module name")
    top = module.split(".")[0]
    if module in _DENIED_MODULES or top in _DENIED_MODULES:
        call.deny(f"`python -m {module}` {_DENIED_MODULES.get(module) or _DENIED_MODULES[top]}")
    inner = Call(call.policy, module, [Word.literal(f"python -m {module}"), *rest], call.cwds, call.depth,
                  call.notes)  # fmt: skip
    handler = {"pytest": _pytest, "ruff": _ruff, "pip": _pip, "mypy": _lint_tool, "black": _formatter,
               "isort": _formatter, "flake8": _lint_tool, "pylint": _lint_tool, "coverage": _coverage,
               "unittest": _unittest, "json.tool": _json_tool}.get(module)  # fmt: skip
    if handler is not None:
        handler(inner)
        return None
    if module in ("py_compile", "compileall"):
        call.need_writable("writes bytecode files")
        for word in [w for w in rest if not is_option(w)]:
            call.read(word)
        return None
    call.need_writable(f"runs the module `{module}` (project code, which may write files)")
    check_generic_args(call, rest)
    return None


_PYTEST_VALUES = (
    "-k", "-m", "-p", "-c", "-o", "-W", "-n", "--rootdir", "--basetemp", "--junitxml", "--junit-xml", "--confcutdir",
    "--cov", "--cov-report", "--cov-config", "--html", "--maxfail", "--tb", "--durations", "--deselect", "--ignore",
    "--ignore-glob", "--log-file", "--override-ini", "--import-mode", "--capture", "--timeout", "--dist",
    "--numprocesses", "--log-level", "--log-cli-level", "--config-file", "--json-report-file", "--report-log",
    "--cov-fail-under", "--durations-min", "--color", "--code-highlight", "--pyargs", "--lfnf", "--last-failed-no-failures",
)  # fmt: skip
_PYTEST_WRITES = ("--basetemp", "--junitxml", "--junit-xml", "--log-file", "--html", "--json-report-file",
                  "--report-log", "--result-log", "--resultlog", "--debug")  # fmt: skip
_PYTEST_READS = ("-c", "--config-file", "--rootdir", "--confcutdir", "--ignore", "--deselect", "--cov-config",
                 "--ignore-glob")  # fmt: skip


def _pytest(call: Call) -> None:
    long_values = [v for v in _PYTEST_VALUES if v.startswith("--")]
    opts, positionals = parse_options(call.args, "kmpcoWnr", long_values)
    for opt in opts:
        if opt.value is None and opt.name not in _PYTEST_WRITES:
            continue
        if opt.name in _PYTEST_WRITES:
            if opt.name == "--debug" and opt.value is None:
                call.write(Word.literal("pytestdebug.log"))
            elif opt.value is not None:
                call.write(opt.value)
        elif opt.name in ("--cov-report",) and opt.value is not None:
            kind, _, target = call.text(opt.value, "report").partition(":")
            if target:
                call.write(Word.literal(target))
            elif not call.policy.writable and kind not in ("term", "term-missing", ""):
                call.deny(f"this phase is read-only: `--cov-report={kind}` writes a report")
        elif opt.name in ("-o", "--override-ini") and opt.value is not None:
            key, _, value = call.text(opt.value, "ini option").partition("=")
            if key.strip() in ("cache_dir", "log_file"):
                call.write(Word.literal(value))
        elif opt.name in _PYTEST_READS and opt.value is not None:
            call.read(_node_path(opt.value))
        elif opt.value is not None and not opt.value.static:
            call.deny(f"`{call.shown}`: option value `{opt.word.value}` is only known at run time")
    for word in positionals:
        call.read(_node_path(word))
    if not call.policy.writable:
        plugins = [call.text(v, "plugin") for v in option_values(opts, "-p")]
        if has_option(opts, "--cov", "--cache-clear", "--stepwise", "--sw", "--pdb", "--trace"):
            call.deny(
                "this phase is read-only: `--cov/--cache-clear/--stepwise/--pdb` write files or wait for input"
            )
        if not (has_option(opts, "--collect-only", "--co") or "no:cacheprovider" in plugins):
            call.deny("this phase is read-only: run pytest with `-p no:cacheprovider` (or `--collect-only`) so it "
                      "does not write `.pytest_cache`")  # fmt: skip


def _node_path(word: Word) -> Word:
    """`tests/test_x.py::test_a[1]` → `tests/test_x.py` (the part that is a path)."""
    if word.static and "::" in word.value:
        return Word.literal(word.value.split("::", 1)[0])
    return word


def _unittest(call: Call) -> None:
    opts, positionals = parse_options(
        call.args, "kspt", ("--start-directory", "--pattern", "--top-level-directory")
    )
    for value in option_values(opts, "-s", "--start-directory", "-t", "--top-level-directory"):
        call.read(value)
    for word in positionals:
        if looks_like_path(word.value) or (word.static and word.value.endswith(".py")):
            call.read(word)
        else:
            call.text(word, "test name")


def _json_tool(call: Call) -> None:
    _, positionals = parse_options(call.args, "", ("--indent",))
    if positionals:
        call.read(positionals[0])
    if len(positionals) > 1:
        call.write(positionals[1])


def _ruff(call: Call) -> Outcome | None:
    args = call.args
    i = 0
    while i < len(args) and is_option(args[i]):
        text = call.text(args[i], "option")
        if text in ("--version", "-V", "-h", "--help"):
            return None
        if text not in ("--isolated", "-q", "--quiet", "-v", "--verbose", "-s", "--silent", "--no-cache"):
            if text.startswith("--config"):
                if "=" not in text:
                    i += 1
                    value = args[i] if i < len(args) else call.deny("`ruff --config` without a value")
                else:
                    value = slice_word(args[i], len("--config="))
                if "=" not in call.text(value, "config"):
                    call.read(value)
            else:
                call.deny(f"`ruff {text}` is not understood")
        i += 1
    if i >= len(args):
        call.deny("`ruff` without a subcommand")
    sub = call.text(args[i], "subcommand")
    rest = args[i + 1 :]
    if sub in ("version", "help", "rule", "linter", "config"):
        return None
    if sub in ("server", "check") and any(w.value == "--watch" for w in rest):
        call.deny("`ruff --watch` never finishes")
    if sub == "server":
        call.deny("`ruff server` is a long-running language server")
    if sub == "clean":
        call.need_writable("deletes caches")
        return None
    if sub not in ("check", "format", "analyze"):
        call.deny(f"`ruff {sub}` is not understood")
    long_values = ("--select", "--ignore", "--extend-select", "--extend-ignore", "--fixable", "--unfixable",
                   "--per-file-ignores", "--extend-per-file-ignores", "--exclude", "--extend-exclude",
                   "--line-length", "--target-version", "--output-format", "--output-file", "--config",
                   "--cache-dir", "--stdin-filename", "--dummy-variable-rgx", "--extension", "--extend-fixable",
                   "--range", "--python", "--direction", "--detect-string-imports")  # fmt: skip
    opts, positionals = parse_options(rest, "o", long_values)
    dry = has_option(opts, "--diff", "--check")
    writes_files = (sub == "check" and has_option(opts, "--fix", "--fix-only", "--add-noqa") and not dry) or (
        sub == "format" and not dry
    )
    for opt in opts:
        if opt.value is None:
            continue
        if opt.name in ("-o", "--output-file", "--cache-dir"):
            call.write(opt.value)
        elif opt.name == "--config":
            value = call.text(opt.value, "config")
            if "=" not in value:
                call.read(opt.value)
        elif not opt.value.static:
            call.deny(f"`{call.shown}`: option value `{opt.word.value}` is only known at run time")
    if writes_files:
        call.need_writable("rewrites files (use `--diff` to only show the changes)")
    for word in positionals or [Word.literal(".")]:
        if writes_files:
            call.write(word)
        else:
            call.read(word)
    return None


def _pip(call: Call) -> None:
    args = call.args
    positionals = [w for w in args if not is_option(w)]
    flags = [w.value for w in args if is_option(w)]
    if not positionals:
        if any(f in ("--version", "-V", "--help", "-h") for f in flags):
            return
        call.deny("`pip` without a command")
    sub = call.text(positionals[0], "command")
    if sub in ("install", "download", "wheel", "uninstall", "index", "search"):
        call.deny(f"`pip {sub}` installs, downloads or removes packages (network, shared environment)")
    if sub not in ("list", "show", "freeze", "check", "inspect", "help"):
        call.deny(f"`pip {sub}` is not on the allow-list (list/show/freeze/check are)")
    if any(
        f.split("=")[0] in ("--index-url", "-i", "--extra-index-url", "--path", "--target") for f in flags
    ):
        call.deny("`pip` index or path options are not allowed")


def _lint_tool(call: Call) -> None:
    name = call.name
    opts, positionals = parse_options(call.args)
    if name == "mypy":
        if has_option(opts, "--install-types"):
            call.deny("`mypy --install-types` installs packages (network)")
        cache = [o for o in opts if o.name == "--cache-dir"]
        if not (cache and cache[0].value is not None and cache[0].value.value == "/dev/null"):
            call.need_writable("writes `.mypy_cache` (use `--cache-dir=/dev/null`)")
    for opt in opts:
        if opt.value is None:
            continue
        if opt.name.endswith(("-report", "-xml", "-output", "-file")) or opt.name in (
            "--output",
            "--junit-xml",
        ):
            call.write(opt.value)
        elif not opt.value.static:
            call.deny(f"`{call.shown}`: option value `{opt.word.value}` is only known at run time")
        elif looks_like_path(opt.value.value):
            call.read(opt.value)
    for word in positionals:
        call.read(word)


def _formatter(call: Call) -> None:
    opts, positionals = parse_options(call.args, "lp", ("--line-length", "--profile", "--target-version", "--config",
                                                   "--settings-path", "--include", "--exclude"))  # fmt: skip
    dry = has_option(opts, "--check", "--diff", "--check-only", "-c")
    call.read_values(opts, ("--config", "--settings-path", "--settings-file"))
    for word in positionals:
        if dry:
            call.read(word)
        else:
            call.write(word)
    if not dry:
        call.need_writable("rewrites files (use `--check`/`--diff`)")


def _coverage(call: Call) -> None:
    rest = call.args
    sub = call.text(rest[0], "command") if rest else ""
    if sub == "run":
        call.need_writable("runs project code")
        args = rest[1:]
        i = 0
        while i < len(args) and is_option(args[i]) and args[i].value not in ("-m", "--module"):
            text = call.text(args[i], "option")
            if text in (
                "--rcfile",
                "--source",
                "--include",
                "--omit",
                "--data-file",
                "--context",
                "--concurrency",
            ):
                i += 1
            elif text.startswith(("--rcfile=", "--data-file=")):
                call.read(slice_word(args[i], len(text.split("=")[0]) + 1))
            i += 1
        words = [Word.literal("python"), *args[i:]]  # `-m module args...` or `script args...`
        _python(Call(call.policy, "python", words, call.cwds, call.depth, call.notes))
        return
    if sub in ("report", "debug", "help", "--version", "--help"):
        return
    if sub in ("html", "xml", "json", "lcov", "erase", "combine", "annotate"):
        call.need_writable(f"(`coverage {sub}`) writes files")
        return
    call.deny(f"`coverage {sub}` is not understood")


HANDLERS: dict[str, Handler] = {
    "python": _python, "pytest": _pytest, "ruff": _ruff, "pip": _pip, "mypy": _lint_tool, "flake8": _lint_tool,
    "pylint": _lint_tool, "black": _formatter, "isort": _formatter, "coverage": _coverage,
}  # fmt: skip

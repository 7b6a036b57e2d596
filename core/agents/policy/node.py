"""Node: `npm`/`yarn`/`pnpm` (`test`, `run <script>`, `ls`; never install or publish) and `node <script>`."""

from __future__ import annotations

from always_on.core.agents.policy.call import Call, Handler, check_generic_args
from always_on.core.agents.policy.programs import PUBLISH_RE
from always_on.core.agents.policy.words import has_option, is_option, parse_options


def _npm(call: Call) -> None:
    tool = call.words[0].value.rsplit("/", 1)[-1]
    opts, positionals = parse_options(call.args)
    if not positionals:
        if has_option(opts, "--version", "-v", "--help", "-h"):
            return
        call.deny(f"`{tool}` without a command installs packages")
    for opt in opts:
        if opt.name not in ("--silent", "-s", "--if-present", "--workspace", "-w", "--workspaces", "--quiet",
                            "-q", "--version", "-v"):  # fmt: skip
            call.deny(f"`{tool} {opt.name}` is not understood")
    sub = call.text(positionals[0], "command")
    if sub in ("ls", "list", "why", "explain"):
        return
    if sub in ("test", "t", "tst"):
        call.need_writable("runs the project's test script")
        return
    if sub in ("run", "run-script"):
        if len(positionals) == 1:
            return  # lists the scripts
        script = call.text(positionals[1], "script")
        if PUBLISH_RE.search(script):
            call.deny(f"`{tool} run {script}` looks like it publishes, deploys or installs")
        call.need_writable(f"runs the project's `{script}` script")
        return
    call.deny(f"`{tool} {sub}` is not on the allow-list (test, run <script>, ls are)")


def _node(call: Call) -> None:
    args = call.args
    i = 0
    while i < len(args) and is_option(args[i]):
        text = call.text(args[i], "option")
        if text in ("--version", "-v", "--help", "-h"):
            return
        if text.split("=")[0] in ("-e", "--eval", "-p", "--print", "-i", "--interactive", "--input-type"):
            call.deny(
                "`node -e/-p/-i` runs inline code that cannot be checked; write a script in the workspace"
            )
        if text in ("-r", "--require", "--import", "--loader"):
            i += 1
        i += 1
    if i >= len(args):
        call.deny("`node` without a script reads its program from stdin")
    call.need_writable("runs project code, which may write files")
    call.read(args[i])
    check_generic_args(call, args[i + 1 :])


HANDLERS: dict[str, Handler] = {"npm": _npm, "node": _node}

"""`make`: its recipes are project code, so it runs in writable phases only, and never a publishing target."""

from __future__ import annotations

from always_on.core.agents.policy.call import Call, Handler
from always_on.core.agents.policy.programs import PUBLISH_RE
from always_on.core.agents.policy.words import option_values, parse_options


def _make(call: Call) -> None:
    opts, positionals = parse_options(call.args, "CfjlIoW", ("--directory", "--file", "--makefile", "--jobs",
                                                        "--include-dir", "--load-average"))  # fmt: skip
    cwds = call.cwds
    for target in option_values(opts, "-C", "--directory"):
        cwds = call.dirs(target)
    for makefile in option_values(opts, "-f", "--file", "--makefile"):
        call.read(makefile, cwds)
    # even `make -n` runs `$(shell ...)` and `+` lines: make is project code
    call.need_writable("runs recipes (project code, which may write files)")
    for word in positionals:
        text = call.text(word, "target")
        if "=" in text:
            continue
        if PUBLISH_RE.search(text):
            call.deny(f"`make {text}` looks like it publishes, deploys or installs")


HANDLERS: dict[str, Handler] = {"make": _make}

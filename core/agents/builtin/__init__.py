"""The built-in ACP agents (DESIGN §4): `tidy` (deterministic ruff fixes) and `openai` (an OpenAI-compatible loop).

`run(name)` serves one of them on stdio until the client disconnects; `always-on agent <name>` and
`python -m always_on.core.agents.builtin <name>` are that.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

AGENT_NAMES = ("tidy", "openai")


def make_agent(name: str) -> Any:
    """A fresh agent object for `acp.run_agent`; raises KeyError for an unknown name."""
    if name == "tidy":
        from always_on.core.agents.builtin.tidy import TidyAgent

        return TidyAgent()
    if name == "openai":
        from always_on.core.agents.builtin.openai_agent import OpenAIAgent

        return OpenAIAgent()
    raise KeyError(name)


def banner(name: str) -> str:
    """What someone who started the agent by hand in a terminal needs to know: it is not interactive."""
    return (
        f"always-on {name} agent: speaks ACP (JSON-RPC 2.0) on stdin/stdout and waits for a client — it is not "
        f"interactive. Use it through always-on (`always-on run --agent {name}`) or give `always-on agent {name}` "
        "to an ACP client (Zed, acpx...) as the agent command. Ctrl-D quits."
    )


def run(name: str) -> int:
    """Run the built-in agent `name` as an ACP agent on stdin/stdout; the exit code for the CLI."""
    import acp

    try:
        agent = make_agent(name)
    except KeyError:
        print(f"unknown built-in agent '{name}'; choose one of: {', '.join(AGENT_NAMES)}", file=sys.stderr)
        return 2
    if sys.stdin.isatty():  # started by hand; a client always connects through pipes
        print(banner(name), file=sys.stderr, flush=True)
    # stdout is the protocol channel: every log line goes to stderr.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format=f"[{name}] %(levelname)s %(message)s"
    )
    try:
        asyncio.run(acp.run_agent(agent))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the client only sees a closed pipe; say why on stderr
        print(f"always-on built-in agent '{name}' stopped: {exc}", file=sys.stderr)
        return 1
    return 0

"""Opt-in fault injection for the crash tests: a process stops or kills itself at a named point.

Off unless ``ALWAYS_ON_FAULT`` is set (one string lookup per checkpoint otherwise). Its value is
``ACTION@POINT[#N][+MS]``:

- ``ACTION`` — ``kill`` (SIGKILL to this process: exactly what ``kill -9 PID`` does, at exactly that instant; a
  ``git`` it started finishes on its own), ``killgroup`` (SIGKILL to its whole process group, as when a session or
  the machine dies: the ``git`` dies mid-way too) or ``stop`` (SIGSTOP, so that a test can send SIGKILL from
  outside while the process is frozen there);
- ``POINT`` — a checkpoint name (``apply.swap``, ``fire.workspace_ready``, ``mcp.plan_accepted``, ...);
- ``#N`` — act at the N-th time the point is reached (default 1);
- ``+MS`` — act MS milliseconds after reaching it, whatever the process is doing by then (random instants).

``ALWAYS_ON_FAULT_NOTIFY`` names a file (or FIFO) that gets the line ``POINT PID`` just before the action, so a
test waits for the event instead of sleeping. Checkpoints are where a crash is interesting: before and after
every durable step.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections import Counter

ENV = "ALWAYS_ON_FAULT"
NOTIFY_ENV = "ALWAYS_ON_FAULT_NOTIFY"
_SPEC = re.compile(r"^(killgroup|kill|stop)@([\w.:-]+?)(?:#(\d+))?(?:\+(\d+))?$")
_hits: Counter[str] = Counter()
_lock = threading.Lock()


def fault_env() -> dict[str, str]:
    """The fault variables of this process, for a child process that must carry them (the MCP tool server)."""
    return {key: os.environ[key] for key in (ENV, NOTIFY_ENV) if os.environ.get(key)}


def checkpoint(point: str) -> None:
    """A point where a crash test may stop or kill this process (a no-op unless ALWAYS_ON_FAULT names it)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    found = _SPEC.match(spec)
    if found is None or found.group(2) != point:
        return
    with _lock:
        _hits[point] += 1
        if _hits[point] != int(found.group(3) or 1):
            return
    action = found.group(1)
    notify = os.environ.get(NOTIFY_ENV)
    if notify:
        with open(notify, "a", encoding="utf-8") as fh:
            fh.write(f"{point} {os.getpid()}\n")
    delay = int(found.group(4) or 0)
    if delay:
        timer = threading.Timer(delay / 1000, _act, (action,))
        timer.daemon = True
        timer.start()
        return
    _act(action)


def _act(action: str) -> None:
    if action == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
    elif action == "killgroup":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    else:
        os.kill(os.getpid(), signal.SIGKILL)

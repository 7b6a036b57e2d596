"""A built-in agent started by hand on a terminal says what it is on stderr; over pipes it stays silent there."""

from __future__ import annotations

import asyncio
import os
import pty
import sys

import pytest

from always_on.core.agents.builtin import banner


async def _start(name: str, stdin: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-P",
        "-m",
        "always_on.core.agents.builtin",
        name,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.parametrize("name", ["tidy", "openai"])
async def test_on_a_terminal_the_agent_prints_a_one_line_banner(name: str) -> None:
    leader, follower = pty.openpty()
    try:
        proc = await _start(name, follower)
        os.close(follower)
        line = await asyncio.wait_for(proc.stderr.readline(), timeout=60)
        assert line.decode().rstrip("\n") == banner(name)
        os.write(leader, b"\x04")  # Ctrl-D on the terminal: end of input, the agent stops
        code = await asyncio.wait_for(proc.wait(), timeout=60)
    finally:
        os.close(leader)
    assert code == 0
    assert await proc.stdout.read() == b""  # stdout is the protocol channel: nothing else is written there
    text = banner(name)
    assert "\n" not in text and "ACP" in text and f"always-on run --agent {name}" in text


async def test_over_pipes_there_is_no_banner() -> None:
    proc = await _start("tidy", asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(b""), timeout=60)
    assert proc.returncode == 0 and b"ACP" not in err

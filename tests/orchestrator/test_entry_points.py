"""The installed console scripts, as a user (or another ACP client) runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import acp
import pytest
from acp.schema import ClientCapabilities, FileSystemCapabilities, Implementation

BIN = Path(sys.executable).parent


def script(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is not installed next to {sys.executable}; install the project first"
    return str(path)


class SilentClient:
    """The smallest ACP client: accepts updates, serves nothing (enough for initialize/new_session)."""

    def __init__(self) -> None:
        self.updates: list[Any] = []

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        self.updates.append(update)

    async def request_permission(self, *args: Any, **kwargs: Any):  # pragma: no cover - not used
        raise acp.RequestError.method_not_found("session/request_permission")

    def on_connect(self, conn: Any) -> None:
        pass


async def test_always_on_agent_tidy_answers_the_sdk_client(tmp_path):
    async with acp.spawn_agent_process(
        SilentClient(),
        script("always-on"),
        "agent",
        "tidy",
        cwd=str(tmp_path),
        transport_kwargs={"stderr": None},
    ) as (conn, proc):
        init = await conn.initialize(
            protocol_version=acp.PROTOCOL_VERSION,
            client_capabilities=ClientCapabilities(
                fs=FileSystemCapabilities(read_text_file=True, write_text_file=True), terminal=True
            ),
            client_info=Implementation(name="someone-elses-client", version="1.0"),
        )
        session = await conn.new_session(cwd=str(tmp_path), mcp_servers=[])
    assert init.protocol_version == acp.PROTOCOL_VERSION
    assert init.agent_info is not None and "tidy" in init.agent_info.name
    assert session.session_id


def _capture(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
    ).stdout


def _wait_for_screen(session: str, predicate, timeout: float = 60.0) -> str:
    """Poll what a person would see until it matches; the terminal gives no other signal to wait on."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        if predicate(screen):
            return screen
        subprocess.run(["tmux", "wait-for", "-S", "noop"], capture_output=True)  # yields to the tmux server
    raise AssertionError(f"screen never matched; last screen:\n{screen}")


def test_always_on_tui_starts_and_quits_in_a_real_terminal(tmp_path):
    assert shutil.which("tmux"), "tmux is required for this test (.ci/run installs it)"
    project = tmp_path / "proj"
    project.mkdir()
    session = f"ao-test-{os.getpid()}"
    done = tmp_path / "exit-code"
    env_prefix = f"ALWAYS_ON_HOME={os.environ['ALWAYS_ON_HOME']} TERM=xterm-256color"
    command = f"{env_prefix} {script('always-on-tui')} --project {project} --no-scheduler; echo $? > {done}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", command], check=True)
    try:
        screen = _wait_for_screen(session, lambda s: "Dashboard" in s and "Quit" in s)
        assert "press f to fire" in screen.lower() or "fire" in screen.lower()
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            subprocess.run(["tmux", "wait-for", "-S", "noop"], capture_output=True)
        assert done.exists(), "the app did not quit on q"
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_cli_entry_point_runs(args):
    proc = subprocess.run([script("always-on"), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "always-on" in proc.stdout

"""The real ACP adapters, installed from the npm registry into a cache that later runs reuse, and a fire driven
through the CLI exactly as a user runs it (a fresh HOME, only the key they exported).

Cache: `$ALWAYS_ON_INTEROP_CACHE`, else `~/.cache/always-on-interop` (CI keeps it between runs: the first
install takes ~25 s and ~700 MB). Skipped, with the reason, where node/npm are missing or the registry cannot be
reached.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from always_on.core.agents.presets import PRESETS

# Versions measured on Node 20 (DESIGN §4, presets.py): npm would pick claude-agent-acp 0.49 there, which is broken.
ADAPTERS = {
    "@agentclientprotocol/claude-agent-acp": "0.101.0",
    "@zed-industries/codex-acp": "0.16.0",
    "@google/gemini-cli": "0.61.0",
}
PROGRAMS = {"claude": "claude-agent-acp", "codex": "codex-acp", "gemini": "gemini"}
KEYS = {"claude": "ANTHROPIC_API_KEY", "codex": "OPENAI_API_KEY", "gemini": "GEMINI_API_KEY"}
FAKE_KEYS = {"claude": "sk-ant-api03-fake", "codex": "sk-proj-fake", "gemini": "AIzaSy-fake"}
# Small bounds so that each fire ends in well under a minute; the phase limit is the bound it must beat.
LIMITS = {"stall_seconds": 15, "start_timeout_seconds": 60, "phase_timeout_seconds": 120}
CREDENTIALS = {
    v for preset in PRESETS.values() for v in preset.credentials
}  # none inherited from this machine
_NETWORK_WORDS = (
    "ENOTFOUND",
    "EAI_AGAIN",
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "network",
    "getaddrinfo",
)


def cache_root() -> Path:
    return Path(os.environ.get("ALWAYS_ON_INTEROP_CACHE") or Path.home() / ".cache" / "always-on-interop")


def _installed(root: Path) -> bool:
    marker = root / "installed.json"
    try:
        wanted = json.loads(marker.read_text()).get("adapters") == ADAPTERS
    except (OSError, ValueError):
        return False
    return wanted and all((root / "node_modules" / ".bin" / p).exists() for p in PROGRAMS.values())


@pytest.fixture(scope="session")
def adapters() -> Path:
    """The folder of the adapters' programs (node_modules/.bin), installed once per cache."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip("node and npm are needed to install the real ACP adapters; not installed on this machine")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:  # xdist workers share the cache: one installs, the others wait
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed(root):
            started = time.monotonic()
            install = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(root)]
                + [f"{name}@{version}" for name, version in ADAPTERS.items()],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if install.returncode != 0:
                tail = (install.stderr or install.stdout).strip().splitlines()[-3:]
                if any(word in install.stderr for word in _NETWORK_WORDS):
                    pytest.skip(f"the npm registry cannot be reached: {' | '.join(tail)}")
                pytest.fail(f"npm install of the ACP adapters failed: {' | '.join(tail)}")
            seconds = round(time.monotonic() - started, 1)
            (root / "installed.json").write_text(
                json.dumps({"adapters": ADAPTERS, "install_seconds": seconds})
            )
    return root / "node_modules" / ".bin"


@dataclass
class Fire:
    """One `always-on run --agent NAME --json` and what it left."""

    error: dict[str, Any]
    seconds: float
    stderr: str
    run_id: str | None
    leftovers: list[str]
    project: Path

    def lifecycle(self) -> list[Any]:
        """The run's lifecycle events (its event log, read from the store)."""
        from always_on.core.records import AgentEventKind
        from always_on.core.storage import Store

        events = Store().project(self.project).agent_events(self.run_id) if self.run_id else []
        return [e for e in events if e.kind == AgentEventKind.LIFECYCLE]


def _processes_with(home: Path) -> list[str]:
    """Live processes whose environment says HOME=home: the agent and whatever it started."""
    marker = f"HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


@pytest.fixture
def fire(adapters: Path, tmp_path: Path, always_on_home: Path):
    """fire(agent, key=True) → Fire: the CLI run on a small project, with a fresh HOME and the bounds of LIMITS."""
    from helpers import make_repo

    project = make_repo(tmp_path / "project", {"app.py": "import os\n\n\nprint('hello')\n"})
    config = always_on_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[limits]\n" + "".join(f"{k} = {v}\n" for k, v in LIMITS.items()))

    def run(agent: str, *, key: bool) -> Fire:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
        env.update(HOME=str(home), PATH=f"{adapters}{os.pathsep}{env.get('PATH', '')}")
        if key:
            env[KEYS[agent]] = FAKE_KEYS[agent]
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-P", "-m", "always_on.core.cli", "run", "--agent", agent, "--json"]
            + ["--project", str(project)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,  # a safety net only: the configured bounds end it long before
        )
        seconds = time.monotonic() - started
        assert proc.returncode == 1, proc.stdout + proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"\n{agent} (key={key}): {result['error']['code']} after {seconds:.1f} s")
        return Fire(result["error"], seconds, proc.stderr, result["run_id"], _processes_with(home), project)

    return run

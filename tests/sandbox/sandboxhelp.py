"""Shared pieces of the sandbox tests. The world of the escape tests: the user's checkout with a remote, a fake
HOME with fake secrets, a workspace, listeners the sandbox must not reach and a process it must not kill.

Everything lives in a folder under /var/tmp, not /tmp: bubblewrap gives each command a private /tmp, so paths
under the real /tmp are invisible anyway and would prove nothing about the rules for the rest of the disk.

``ALWAYS_ON_SANDBOX_WITHOUT=guard[,guard]`` removes guards from every confinement the tests build, to prove
that some test fails without each one (see ``REMOVABLE_GUARDS``).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from always_on.core.sandbox import REMOVABLE_GUARDS, Level, detect
from always_on.core.workspace import WorkspaceInfo

SECRETS = {
    "ssh": "FAKE-SSH-KEY-5b1c",
    "aws": "FAKE-AWS-SECRET-77d0",
    "env": "FAKE-ENV-SECRET-9e42",
}
WITHOUT = frozenset(filter(None, os.environ.get("ALWAYS_ON_SANDBOX_WITHOUT", "").split(",")))
assert WITHOUT <= REMOVABLE_GUARDS, (
    f"unknown guards in ALWAYS_ON_SANDBOX_WITHOUT: {WITHOUT - REMOVABLE_GUARDS}"
)
LEVELS = [Level.BWRAP, Level.LANDLOCK, Level.NONE]
HERE = Path(__file__).resolve().parent


def require_level(level: Level) -> None:
    """Skip (with the reason) when this machine cannot give ``level``."""
    status = detect(at_most=level)
    if status.level != level:
        reason = "; ".join(f"{k}: {v}" for k, v in status.reasons.items())
        print(f"skipping level {level.value}: {reason}")
        pytest.skip(f"this machine has no {level.value} sandbox ({reason})")


@dataclass
class World:
    root: Path
    home: Path
    project: Path
    remote: Path
    ws: WorkspaceInfo
    common_dir: Path
    git_dir: Path
    var_tmp_target: Path
    tcp: socket.socket
    udp: socket.socket
    abstract: socket.socket
    abstract_name: str
    victim: subprocess.Popen
    token: str
    cleanup: list[Path] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a terminal gets (scrubbed: no credentials), with the fake HOME."""
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **extra,
        }

    # --- observed effects -------------------------------------------------------------------------------------

    def tcp_connected(self) -> bool:
        return _pending(self.tcp)

    def abstract_connected(self) -> bool:
        return _pending(self.abstract)

    def udp_received(self) -> bool:
        try:
            self.udp.recv(100)
        except BlockingIOError:
            return False
        return True

    def victim_alive(self) -> bool:
        """Ping the victim through its pipe: a killed victim answers with end-of-file (no waiting on time)."""
        assert self.victim.stdin is not None and self.victim.stdout is not None
        try:
            self.victim.stdin.write(b"ping\n")
            self.victim.stdin.flush()
        except BrokenPipeError:
            return False
        return self.victim.stdout.readline() == b"ping-pong\n"

    def survivor_pids(self) -> list[int]:
        return processes_with(self.token)


def _pending(listener: socket.socket) -> bool:
    ready, _, _ = select.select([listener], [], [], 0)
    return bool(ready)


def processes_with(token: str) -> list[int]:
    """Live (not zombie) processes whose command line contains ``token``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(int(name))
    return found


def wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    """Wait on each process's exit (pidfd), at most ``timeout`` seconds in all; returns those still running."""
    left = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                left.append(pid)
        finally:
            os.close(fd)
    return left


def outside_tmp() -> Path:
    for base in ("/var/tmp", str(Path.home())):
        if os.access(base, os.W_OK):
            return Path(tempfile.mkdtemp(prefix="always-on-sandbox-test-", dir=base)).resolve()
    pytest.skip("no writable folder outside /tmp for the sandbox world")

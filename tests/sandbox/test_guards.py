"""Guards that the escape script cannot show on its own: each layer of the network guard separately, the
capabilities a root runtime must not pass on, and the new session of a bubblewrap sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sandboxhelp import WITHOUT, World, processes_with, require_level

from always_on.core.sandbox import Confinement, FireScope, Level, terminal_rules
from always_on.core.sandbox import _sys as sysmod
from always_on.core.sandbox.landlock import abi_version

NET_SCRIPT = """
import socket, sys
tcp, udp = int(sys.argv[1]), int(sys.argv[2])
try:
    socket.create_connection(("127.0.0.1", tcp), timeout=10).close()
except OSError as exc:
    print("tcp refused:", exc)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    try:
        s.sendto(b"leak", ("127.0.0.1", udp))
    except OSError as exc:
        print("udp refused:", exc)
"""


def run(conf: Confinement, world: World, argv: list[str]) -> str:
    proc = conf.popen(
        argv, env=world.env(), cwd=world.ws.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = proc.communicate(timeout=120)
    return out.decode(errors="replace")


@pytest.mark.parametrize("removed", ["seccomp", "landlock-tcp"])
def test_each_landlock_network_layer_holds_on_its_own(world: World, removed: str) -> None:
    """Landlock's TCP rules (ABI 4+) and the seccomp filter each stop TCP; only seccomp stops UDP."""
    require_level(Level.LANDLOCK)
    if abi_version()[0] < 4:
        pytest.skip("Landlock ABI < 4 has no TCP rules")
    scope = FireScope("fire-net")
    rules = terminal_rules(world.project, world.ws, temp_dir=scope.temp_dir, home=world.home, environ={})
    conf = Confinement(Level.LANDLOCK, rules, scope, without={removed, *WITHOUT})
    try:
        out = run(
            conf,
            world,
            [
                sys.executable,
                "-P",
                "-c",
                NET_SCRIPT,
                *map(str, (world.tcp.getsockname()[1], world.udp.getsockname()[1])),
            ],
        )
    finally:
        scope.end()
        conf.close()
    assert not world.tcp_connected(), out
    assert world.udp_received() == (removed == "seccomp"), out


@pytest.mark.parametrize("level", [Level.BWRAP, Level.LANDLOCK], ids=["bwrap", "landlock"])
def test_no_capabilities_reach_the_sandbox(world: World, level: Level) -> None:
    """A root runtime's capabilities (module loading, device nodes, remounts) never reach a confined command."""
    require_level(level)
    if not sysmod.has_capabilities():
        pytest.skip("this runtime holds no capabilities: nothing to drop")
    scope = FireScope("fire-caps")
    rules = terminal_rules(world.project, world.ws, temp_dir=scope.temp_dir, home=world.home, environ={})
    conf = Confinement(level, rules, scope, without=WITHOUT)
    try:
        out = run(conf, world, ["sh", "-c", "grep -E '^Cap(Eff|Prm|Amb)' /proc/self/status"])
    finally:
        scope.end()
        conf.close()
    values = {
        line.split(":")[0]: int(line.split()[1], 16) for line in out.splitlines() if line.startswith("Cap")
    }
    assert len(values) == 3 and not any(values.values()), out


def test_bwrap_command_gets_its_own_session(world: World) -> None:
    """--new-session: the command is not in the runtime's session (no TIOCSTI into its terminal)."""
    require_level(Level.BWRAP)
    scope = FireScope("fire-session")
    rules = terminal_rules(world.project, world.ws, temp_dir=scope.temp_dir, home=world.home, environ={})
    conf = Confinement(Level.BWRAP, rules, scope, without=WITHOUT)
    proc = conf.popen(
        [sys.executable, "-P", "-c", "import sys; print('up', flush=True); sys.stdin.read()", world.token],
        env=world.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"up"
        inner = [
            pid
            for pid in processes_with(world.token)
            if Path(f"/proc/{pid}/exe").resolve().name.startswith("python")
        ]
        assert inner
        sessions = {os.getsid(pid) for pid in inner}
        assert os.getsid(0) not in sessions and os.getsid(proc.pid) not in sessions
    finally:
        proc.kill()
        proc.wait()
        scope.end()
        conf.close()

"""What must keep working when confined: everyday commands in the workspace (git status/commit on the workspace
branch, python -c, ruff, pytest), the runtime's own steps afterwards, and the agent process's rule set (its own
folders writable, network kept, everything else still held)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import git
from sandboxhelp import SECRETS, WITHOUT, World

from always_on.core.sandbox import Confinement, FireScope, Level, agent_rules, terminal_rules
from always_on.core.workspace import commit_plan
from always_on.core.workspace.objects import import_private_objects


def run(conf: Confinement, world: World, argv: list[str]) -> tuple[int, str]:
    with (world.root / "output.txt").open("w+b") as output:
        proc = conf.popen(
            argv, env=world.env(), cwd=world.ws.path, stdout=output, stderr=output, stdin=subprocess.DEVNULL
        )
        proc.wait(timeout=300)
        output.seek(0)
        return proc.returncode, output.read().decode(errors="replace")


def test_everyday_commands_work(world: World, level: Level) -> None:
    scope = FireScope("fire-everyday")
    rules = terminal_rules(world.project, world.ws, temp_dir=scope.temp_dir, home=world.home, environ={})
    conf = Confinement(level, rules, scope, without=WITHOUT)
    ws = Path(world.ws.path)
    (ws / "calc.py").write_text("def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n")
    steps = [
        ["git", "status", "--short"],
        [sys.executable, "-P", "-c", "print('hello from python -c')"],
        [shutil.which("ruff") or "ruff", "check", "--no-cache", "."],
        [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_calc.py"],
        ["sh", "-c", 'echo scratch > "$TMPDIR/note" && cat "$TMPDIR/note" && echo quiet > /dev/null'],
        ["git", "add", "calc.py"],
        ["git", "commit", "-q", "-m", "agent: add sub"],
        ["git", "log", "-1", "--format=%s"],
    ]
    try:
        for argv in steps:
            rc, out = run(conf, world, argv)
            assert rc == 0, f"{argv} failed under {level.value}:\n{out}"
        assert out.strip() == "agent: add sub"
        assert conf.check_git() == []
    finally:
        scope.end()
        conf.close()
    # the runtime's steps afterwards find the agent's commit (imported from the private object folder)
    import_private_objects(world.ws)
    assert git(world.project, "log", "-1", "--format=%s", world.ws.branch or "") == "agent: add sub"
    result = commit_plan(world.ws, plan_id="p1", run_id="r1", title="plan", before_head=world.ws.base_commit)
    assert len(result.commit_shas) == 1
    assert git(world.project, "show", "--format=", "--name-only", result.commit_shas[0]) == "calc.py"


AGENT_SCRIPT = """
import json, os, socket, sys
from pathlib import Path
cfg = json.loads(sys.argv[1])
done = {}
def attempt(name, fn):
    try:
        fn(); done[name] = True
    except OSError as exc:
        done[name] = str(exc)
attempt("own_dir", lambda: Path(cfg["own"], "state.json").write_text("{}"))
attempt("workspace", lambda: Path(cfg["ws"], "agent-note.txt").write_text("note"))
attempt("checkout", lambda: Path(cfg["project"], "EVIL.txt").write_text("pwned"))
attempt("home", lambda: Path(cfg["home"], "EVIL.txt").write_text("pwned"))
attempt("ssh", lambda: Path(cfg["ws"], "loot.txt").write_text(Path(cfg["home"], ".ssh", "id_rsa").read_text()))
attempt("network", lambda: socket.create_connection(("127.0.0.1", cfg["port"]), timeout=10).close())
print(json.dumps(done))
"""


def test_agent_process_rules(world: World, level: Level) -> None:
    """The agent writes its own folder and the workspace, keeps its network, and nothing else."""
    scope = FireScope("fire-agent")
    own = world.home / ".agent-config"
    rules = agent_rules(
        world.project, world.ws, temp_dir=scope.temp_dir, extra_writable=[own], home=world.home, environ={}
    )
    assert rules.network and own.resolve() in rules.writable
    conf = Confinement(level, rules, scope, without=WITHOUT)
    cfg = {
        "own": str(own),
        "ws": world.ws.path,
        "project": str(world.project),
        "home": str(world.home),
        "port": world.tcp.getsockname()[1],
    }
    try:
        rc, out = run(conf, world, [sys.executable, "-P", "-c", AGENT_SCRIPT, json.dumps(cfg)])
    finally:
        scope.end()
        conf.close()
    assert rc == 0, out
    assert (own / "state.json").exists() and (Path(world.ws.path) / "agent-note.txt").exists()
    assert world.tcp_connected(), f"the agent lost its network under {level.value}: {out}"
    leaked = (Path(world.ws.path) / "loot.txt").exists() and SECRETS["ssh"] in (
        Path(world.ws.path) / "loot.txt"
    ).read_text()
    escaped = {
        "checkout": (world.project / "EVIL.txt").exists(),
        "home": (world.home / "EVIL.txt").exists(),
        "ssh": leaked,
    }
    expected = level == Level.NONE
    assert escaped == {name: expected for name in escaped}, f"{level.value}: {escaped}\n{out}"

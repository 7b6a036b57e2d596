"""Escape tests (issue #11): a hostile script in the workspace tries every escape, under each level.

Assertions are on *effects* (files, refs, config, hooks, objects, remote, sockets, processes), never on the
script's exit code or its own account. Under ``none`` the same script gets through: the test asserts that it does,
which proves the effects are observable and that the other levels are what stops them.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from helpers import git, tree_hashes
from sandboxhelp import HERE, SECRETS, WITHOUT, World, processes_with, wait_gone

from always_on.core.sandbox import Confinement, FireScope, Level, terminal_rules


def refs(repo: Path) -> dict[str, str]:
    lines = git(repo, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    return dict(line.split() for line in lines)


def user_refs(world: World) -> dict[str, str]:
    return {k: v for k, v in refs(world.project).items() if not k.startswith("refs/heads/always-on/")}


def secrets_leaked(*places: Path, text: str = "") -> list[str]:
    found = [name for name, value in SECRETS.items() if value in text]
    for place in places:
        for file in place.rglob("*") if place.is_dir() else []:
            if file.is_file() and not file.is_symlink():
                data = file.read_bytes()
                found += [name for name, value in SECRETS.items() if value.encode() in data]
    return sorted(set(found))


def run(conf: Confinement, world: World, argv: list[str], cwd: Path | None = None) -> tuple[int, str]:
    """Run a confined command; its output goes to a file (a process it leaves behind may keep a pipe open)."""
    with (world.root / "output.txt").open("w+b") as output:
        proc = conf.popen(
            argv,
            env=world.env(),
            cwd=str(cwd or world.ws.path),
            stdout=output,
            stderr=output,
            stdin=subprocess.DEVNULL,
        )
        proc.wait(timeout=300)
        output.seek(0)
        return proc.returncode, output.read().decode(errors="replace")


def write_hostile(world: World) -> list[str]:
    """The agent writes its script into the workspace; returns the command that runs it."""
    ws = Path(world.ws.path)
    shutil.copy(HERE / "hostile.py", ws / "script.py")
    config = {
        "workspace": str(ws),
        "project": str(world.project),
        "common_dir": str(world.common_dir),
        "git_dir": str(world.git_dir),
        "home": str(world.home),
        "remote": str(world.remote),
        "var_tmp_target": str(world.var_tmp_target),
        "tcp_port": world.tcp.getsockname()[1],
        "udp_port": world.udp.getsockname()[1],
        "abstract_name": world.abstract_name,
        "victim_pid": world.victim.pid,
        "survivor_token": world.token,
    }
    (ws / "script.json").write_text(json.dumps(config))
    return [sys.executable, "-P", "script.py", "script.json"]


def readable_block_device() -> bool:
    """Can this (unconfined) process read data from a disk device? (As root: yes, it owns /dev/vda.)"""
    for entry in os.scandir("/dev"):
        try:
            if stat.S_ISBLK(entry.stat(follow_symlinks=False).st_mode):
                with open(entry.path, "rb") as fh:
                    if fh.read(512):
                        return True
        except OSError:
            continue
    return False


# Which escapes get through at each level. Landlock does not hold processes (the fire scope does, at the end).
THROUGH = {
    Level.BWRAP: set(),
    Level.LANDLOCK: {"survivor_after_command"},
    Level.NONE: {
        "push",
        "user_config",
        "hook",
        "user_refs",
        "alternates",
        "objects_deleted",
        "checkout",
        "home",
        "var_tmp",
        "secrets",
        "tcp",
        "udp",
        "abstract_unix",
        "victim_killed",
        "survivor_after_command",
    },
}


def test_hostile_script_is_held(world: World, level: Level) -> None:
    scope = FireScope("fire-escape")
    rules = terminal_rules(world.project, world.ws, temp_dir=scope.temp_dir, home=world.home, environ={})
    conf = Confinement(level, rules, scope, without=WITHOUT)
    objects = tree_hashes(world.common_dir / "objects")
    config = (world.common_dir / "config").read_bytes()
    checkout = tree_hashes(world.project, git_files=())
    refs_before, remote_before = user_refs(world), refs(world.remote)
    git_files = {p: p.read_bytes() for p in (Path(world.ws.path) / ".git", world.git_dir / "commondir")}

    rc, out = run(conf, world, write_hostile(world))
    survivors_after_command = world.survivor_pids()
    if (
        level == Level.BWRAP
    ):  # the sandbox's init ends just after its command (parent-death signal): wait on it
        survivors_after_command = wait_gone(survivors_after_command)
    changes = conf.check_git()
    effects = {
        "push": refs(world.remote) != remote_before,
        "user_config": (world.common_dir / "config").read_bytes() != config,
        "hook": (world.common_dir / "hooks" / "pre-commit").exists(),
        "user_refs": user_refs(world) != refs_before,
        "alternates": (world.common_dir / "objects" / "info" / "alternates").exists(),
        "objects_deleted": not set(objects) <= set(tree_hashes(world.common_dir / "objects")),
        "checkout": tree_hashes(world.project, git_files=()) != checkout,
        "home": (world.home / "EVIL.txt").exists(),
        "var_tmp": world.var_tmp_target.exists(),
        "secrets": bool(secrets_leaked(Path(world.ws.path), scope.temp_dir, text=out)),
        "raw_disk": (Path(world.ws.path) / "loot" / "disk.bin").exists(),
        "tcp": world.tcp_connected(),
        "udp": world.udp_received(),
        "abstract_unix": world.abstract_connected(),
        "victim_killed": not world.victim_alive(),
        "survivor_after_command": bool(survivors_after_command),
        # Landlock cannot make these read-only; the host check puts them back (bubblewrap: they never change)
        "git_files_left_changed": any(p.read_bytes() != data for p, data in git_files.items()),
    }
    scope.end()
    effects["survivor_after_fire"] = bool(world.survivor_pids())
    conf.close()

    through = {name for name, happened in effects.items() if happened}
    expected = set(THROUGH[level])
    if level == Level.NONE and readable_block_device():
        expected.add("raw_disk")  # the test runs as root: the disk is its own
    if level == Level.NONE and scope.method != "cgroup":
        expected.add("survivor_after_fire")  # no marker, no no_new_privs: nothing tells it apart (documented)
    assert through == expected, (
        f"level {level.value}: got through {sorted(through)}, expected {sorted(expected)}\n{out}"
    )
    tampered = {c.path for c in changes}
    if level == Level.BWRAP:
        assert changes == []  # read-only mounts: the writes failed
    else:
        assert tampered == set(git_files) and all(c.restored and c.what == "changed" for c in changes)


def test_checkout_secret_files_are_hidden_but_not_the_checkout(world: World, level: Level) -> None:
    """Reading the checkout is fine (its code is public to the agent); its .env is not."""
    scope = FireScope("fire-read")
    rules = terminal_rules(world.project, world.ws, temp_dir=scope.temp_dir, home=world.home, environ={})
    conf = Confinement(level, rules, scope, without=WITHOUT)
    try:
        rc, out = run(conf, world, ["cat", str(world.project / "calc.py")])
        assert rc == 0 and "def add" in out
        rc, out = run(conf, world, ["cat", str(world.project / ".env"), str(world.home / ".ssh" / "id_rsa")])
        assert (secrets_leaked(text=out) == []) == (level != Level.NONE), out
    finally:
        scope.end()
        conf.close()


def test_survivor_token_helper_sees_processes(world: World) -> None:
    """The effect probe itself: a process with the token in its command line is found, and gone when killed."""
    code = "import sys; print('up', flush=True); sys.stdin.read()"  # up: its exec is complete
    proc = subprocess.Popen(
        [sys.executable, "-P", "-c", code, world.token], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
        assert processes_with(world.token) == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
    assert processes_with(world.token) == []

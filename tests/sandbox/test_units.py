"""The pieces on their own: level detection, the rule sets, the bwrap command line, the Landlock read cover, the
seccomp program and the git guard."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import make_repo

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.paths import data_dir
from always_on.core.sandbox import GitGuard, Level, SandboxRules, agent_rules, detect, terminal_rules
from always_on.core.sandbox import bwrap as bw
from always_on.core.sandbox.landlock import readable_cover
from always_on.core.sandbox.levels import bwrap_selftest
from always_on.core.sandbox.seccomp import network_filter_program
from always_on.core.workspace import prepare_workspace


def test_detect_caps_and_modes() -> None:
    assert detect("off").level == Level.NONE and detect("off").reasons == {"config": 'sandbox = "off"'}
    none = detect(at_most="none")
    assert none.level == Level.NONE and "NONE" in none.summary and "unconfined" in none.summary
    with pytest.raises(AlwaysOnError) as err:
        detect("required", at_most="none")
    assert (
        err.value.code == ErrorCode.SANDBOX_UNAVAILABLE and "apt-get install bubblewrap" in err.value.message
    )
    with pytest.raises(AlwaysOnError) as err:
        detect("sometimes")  # type: ignore[arg-type]
    assert err.value.code == ErrorCode.CONFIG_INVALID
    bwrap_selftest.cache_clear()  # the disk cache of this test's ALWAYS_ON_HOME is written again
    best = detect()
    assert detect(at_most="landlock").level.rank <= min(best.level.rank, Level.LANDLOCK.rank)
    if best.level == Level.BWRAP:
        assert best.bwrap and "bubblewrap" in best.summary
        saved = json.loads((data_dir() / "sandbox" / "selftest.json").read_text())
        assert saved["error"] is None and best.bwrap in saved["key"]
    if best.landlock_abi:
        assert detect(at_most="landlock").summary.startswith(f"Landlock ABI {best.landlock_abi}")


@pytest.fixture
def layout(tmp_path: Path):
    home = tmp_path / "home"
    for rel in (".ssh/id_rsa", ".aws/credentials", ".claude/.credentials.json", ".netrc"):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text("secret\n")
    project = make_repo(tmp_path / "project")
    (project / ".env").write_text("X=1\n")
    (project / ".env.example").write_text("X=\n")
    (project / "deploy").mkdir()
    (project / "deploy" / "server.pem").write_text("key\n")
    (project / "node_modules" / "pkg").mkdir(parents=True)
    (project / "node_modules" / "pkg" / ".env").write_text("vendored\n")
    ws = prepare_workspace(project, cycle_id="c1", base_dir=tmp_path / "workspaces")
    return home.resolve(), project.resolve(), ws, tmp_path / "fire-tmp"


def test_terminal_rules(layout) -> None:
    home, project, ws, temp = layout
    rules = terminal_rules(
        project, ws, temp_dir=temp, home=home, environ={"SSH_AUTH_SOCK": str(home / ".ssh")}
    )
    common = project / ".git"
    git_dir = common / "worktrees" / "c1"
    assert rules.role == "terminal" and not rules.network
    assert rules.writable == [
        Path(ws.path).resolve(),
        git_dir,
        common / "refs/heads/always-on",
        common / "logs/refs/heads/always-on",
        temp.resolve(),
    ]
    assert rules.read_only == [Path(ws.path).resolve() / ".git", git_dir / "commondir", git_dir / "gitdir"]
    assert rules.readable == [common]
    hidden = set(rules.hidden)
    assert {home / ".ssh", home / ".aws", home / ".netrc", home / ".claude/.credentials.json"} <= hidden
    assert {project / ".env", project / "deploy/server.pem"} <= hidden
    assert project / ".env.example" not in hidden and project / "node_modules/pkg/.env" not in hidden
    assert rules.env["GIT_OBJECT_DIRECTORY"] == str(git_dir / "objects")
    assert rules.env["TMPDIR"] == str(temp.resolve())


def test_agent_rules_keep_network_and_own_folders(layout) -> None:
    home, project, ws, temp = layout
    rules = agent_rules(project, ws, temp_dir=temp, extra_writable=[home / ".claude"], home=home, environ={})
    assert rules.network and (home / ".claude") in rules.writable
    assert home / ".claude/.credentials.json" not in rules.hidden  # its own login
    assert home / ".ssh" in rules.hidden
    discovery = agent_rules(project, None, temp_dir=temp, home=home, environ={})
    assert discovery.writable == [temp.resolve()] and discovery.workspace is None


def test_bwrap_command_line(layout) -> None:
    home, project, ws, temp = layout
    rules = terminal_rules(project, ws, temp_dir=temp, home=home, environ={})
    args = bw.bwrap_prefix(rules, "/usr/bin/bwrap")
    text = " ".join(args)
    assert args[:3] == ["/usr/bin/bwrap", "--ro-bind", "/"] and "--cap-drop ALL" in text
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in args
    assert f"--bind {temp.resolve()} /tmp" in text
    wsp = str(Path(ws.path).resolve())
    assert f"--bind {wsp} {wsp}" in text and f"--ro-bind {wsp}/.git {wsp}/.git" in text
    assert text.index(f"--bind {wsp} {wsp}") < text.index(f"--ro-bind {wsp}/.git")  # the hole goes on top
    if not str(home).startswith("/tmp/"):
        assert f"--tmpfs {home / '.ssh'}" in text
    agent = bw.bwrap_prefix(rules.model_copy(update={"network": True}), "/usr/bin/bwrap")
    assert "--unshare-net" not in agent and "--cap-drop" in agent
    assert "--cap-drop" not in bw.bwrap_prefix(rules, "bwrap", omit=frozenset({"--cap-drop"}))


def test_readable_cover_leaves_out_exactly_the_hidden(tmp_path: Path) -> None:
    (tmp_path / "a" / "secret").mkdir(parents=True)
    (tmp_path / "a" / "public").mkdir()
    (tmp_path / "a" / "file.txt").write_text("x")
    (tmp_path / "b").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a" / "secret")
    cover = readable_cover([tmp_path / "a" / "secret"], root=tmp_path)
    assert cover == [tmp_path / "a" / "file.txt", tmp_path / "a" / "public", tmp_path / "b"]
    assert readable_cover([], root=tmp_path) == [tmp_path]


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_seccomp_program_jumps_forward_and_ends_in_returns(arch: str) -> None:
    prog = network_filter_program(arch)
    for i, (code, jt, jf, _) in enumerate(prog):
        if code in (0x15, 0x35):  # conditional jumps: forward, inside the program
            assert jt >= 0 and jf >= 0 and i + 1 + max(jt, jf) < len(prog)
    assert prog[-1][0] == 0x06 and prog[-1][3] == 0x50000 | 13  # refuse with EACCES


def test_git_guard_restores_and_reports(tmp_path: Path) -> None:
    kept, absent, folder_later = tmp_path / "kept", tmp_path / "absent", tmp_path / "becomes-folder"
    kept.write_text("gitdir: /right\n")
    folder_later.write_text("x\n")
    guard = GitGuard([kept, absent, folder_later])
    assert guard.check() == []
    kept.write_text("gitdir: /wrong\n")
    absent.write_text("new\n")
    folder_later.unlink()
    folder_later.mkdir()
    (folder_later / "inner").write_text("y")
    changes = {c.path.name: (c.what, c.restored) for c in guard.check()}
    assert changes == {
        "kept": ("changed", True),
        "absent": ("created", True),
        "becomes-folder": ("replaced", True),
    }
    assert (
        kept.read_text() == "gitdir: /right\n" and not absent.exists() and folder_later.read_text() == "x\n"
    )
    assert guard.check() == []


def test_rules_model_is_plain_data(tmp_path: Path) -> None:
    rules = SandboxRules(role="terminal", temp_dir=tmp_path)
    assert SandboxRules.model_validate_json(rules.model_dump_json()) == rules
    assert os.fspath(rules.temp_dir) == str(tmp_path)

"""Fixtures of the sandbox tests: the level under test (skipped, with the reason, where the machine lacks it)
and the world (see ``sandboxhelp``)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import git, make_repo
from sandboxhelp import LEVELS, SECRETS, World, outside_tmp, processes_with, require_level

from always_on.core.sandbox import Level
from always_on.core.workspace import prepare_workspace
from always_on.core.workspace._git import rmtree
from always_on.core.workspace.objects import workspace_git


@pytest.fixture(params=LEVELS, ids=[lvl.value for lvl in LEVELS])
def level(request) -> Level:
    require_level(request.param)
    return request.param


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    root = outside_tmp()
    token = f"ao-test-{uuid.uuid4().hex[:12]}"
    home = root / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(f"-----BEGIN FAKE KEY-----\n{SECRETS['ssh']}\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(f"[default]\naws_secret_access_key = {SECRETS['aws']}\n")
    (home / ".gitconfig").write_text("[user]\n\tname = Agent\n\temail = agent@example.com\n")
    remote = root / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    project = make_repo(
        root / "project",
        {
            "README.md": "# tiny\n",
            "calc.py": "def add(a, b):\n    return a + b\n",
            ".gitignore": "__pycache__/\n.pytest_cache/\nloot/\n",
        },
    )
    (project / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "tests")
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "-q", "origin", "main")
    (project / ".env").write_text(f"API_TOKEN={SECRETS['env']}\n")
    ws = prepare_workspace(project, cycle_id="c1", base_dir=root / "workspaces")
    layout = workspace_git(ws, project)

    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    abstract_name = f"always-on-test-{token}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind("\0" + abstract_name)
    abstract.listen(8)
    victim = subprocess.Popen(
        [
            sys.executable,
            "-P",
            "-c",
            "import sys\nfor line in sys.stdin:\n print(line.strip() + '-pong', flush=True)",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    w = World(
        root=root,
        home=home,
        project=project,
        remote=remote,
        ws=ws,
        common_dir=layout.common_dir,
        git_dir=layout.git_dir,
        var_tmp_target=Path("/var/tmp") / f"{token}-evil.txt",
        tcp=tcp,
        udp=udp,
        abstract=abstract,
        abstract_name=abstract_name,
        victim=victim,
        token=token,
    )
    try:
        yield w
    finally:
        for sock in (tcp, udp, abstract):
            sock.close()
        victim.kill()
        victim.wait()
        for pid in processes_with(token):
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        w.var_tmp_target.unlink(missing_ok=True)
        rmtree(root)

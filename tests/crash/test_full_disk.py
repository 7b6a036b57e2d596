"""A full disk (a small tmpfs holding the store): ``run --json`` still ends with its JSON line (``disk_full``),
releases the fire lock and loses nothing already recorded; once there is space again the next run works."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
from crashkit import cli, last_json
from helpers import make_repo
from test_kill_fire import PLAN, REPORT, SCRIPTED_AGENT

from always_on.core.storage import Store

SIZE = 4 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs (root only); skipped with the reason when it cannot be mounted."""
    where = tmp_path / "full"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a full file system needs a tmpfs mount, which needs root (not root here)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk, then give back ``leave`` bytes."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 65536)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 512)
    os.close(fd)
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler


def agent(tmp: Path, chatty: bool) -> str:
    import shlex
    import sys

    n = len(list(tmp.glob("script-*")))
    talk = [{"op": "message", "text": "x" * 50_000} for _ in range(24)] if chatty else []
    phases = {
        "discovery": [{"op": "mcp", "calls": [{"tool": "always_on_discovery_plan", "arguments": PLAN}]}],
        "execution": [
            *talk,
            {"op": "write", "path": f"greet{n}.py", "content": f"def greet():\n    return {n}\n"},
        ],
        "report": [{"op": "mcp", "calls": [{"tool": "always_on_report", "arguments": {"content": REPORT}}]}],
    }
    script = tmp / f"script-{n}.json"
    script.write_text(json.dumps({"phases": phases}))
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(SCRIPTED_AGENT))} --script {shlex.quote(str(script))}"


@pytest.mark.parametrize("leave", [0, 64 * 1024, 512 * 1024])
def test_run_json_on_a_full_disk_ends_with_disk_full_and_releases_the_lock(
    small_disk, tmp_path, leave, monkeypatch
):
    home = small_disk / "home"
    project = make_repo(tmp_path / "project", {"README.md": "# demo\n"})
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[workspace]\nbase_dir = "{tmp_path / "workspaces"}"\n')
    env = {"ALWAYS_ON_HOME": str(home)}
    if leave:  # a registered project with history: what is recorded must survive
        first = cli(
            "run", "--project", str(project), "--agent-cmd", agent(tmp_path, False), "--json", env=env
        )
        assert last_json(first.stdout)["outcome"] == "executed", first.stderr
    filler = fill(small_disk, leave)
    proc = cli("run", "--project", str(project), "--agent-cmd", agent(tmp_path, True), "--json", env=env)
    result = last_json(proc.stdout)  # the contract: the last line is the JSON object, whatever happened
    assert set(result) >= {"outcome", "run_id", "plan_id", "cycle_id", "error"}
    if result["outcome"] == "failed":
        assert result["error"]["code"] == "disk_full", proc.stderr[-2000:]
        assert proc.returncode != 0
    store_dir = home / "data" / "projects" / Store().project(project).project_id
    assert not (store_dir / "fire.lock").exists()  # released, even with no space to write anything

    filler.unlink()
    monkeypatch.setenv("ALWAYS_ON_HOME", str(home))  # read the store as the CLI does
    store = Store().project(project)
    if store.db_path.exists():
        assert store.db.value("PRAGMA integrity_check") == "ok"
        if leave:
            assert store.history()[0].outcome.value == "executed"  # recorded before the disk filled: kept
    again = cli("run", "--project", str(project), "--agent-cmd", agent(tmp_path, False), "--json", env=env)
    assert last_json(again.stdout)["outcome"] == "executed", again.stderr[-2000:]
    assert store.open_runs() == [] and not store.fire_lock().path.exists()
    if result["outcome"] == "failed" and result["run_id"]:  # the full-disk run is in the history
        entry = store.run_entry(result["run_id"])
        assert entry is not None and entry.error.code in ("disk_full", "interrupted")
    print(f"\nleft {leave} bytes: {result['outcome']}, {result['error'] and result['error']['code']}")


def test_no_space_is_one_error_code(tmp_path):
    from always_on.core.errors import disk_full

    assert disk_full(OSError(errno.ENOSPC, "No space left on device", "x")).code == "disk_full"
    assert disk_full(ValueError("nothing to do with space")) is None


@pytest.mark.parametrize("leave", [0, 48 * 1024, 160 * 1024])
def test_apply_on_a_full_disk_changes_nothing_and_says_disk_full(small_disk, tmp_path, monkeypatch, leave):
    from crashkit import git_state, make_cycle, make_project
    from helpers import tree_hashes as tree

    from always_on.core.records import CycleStatus

    home = small_disk / "home"
    os.environ["ALWAYS_ON_HOME"] = str(
        home
    )  # the store is on the small disk (the fixture restores the variable)
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[workspace]\nbase_dir = "{tmp_path / "workspaces"}"\n')
    project = make_project(tmp_path / "work" / "project")
    cycle = make_cycle(project)
    before, state = tree(project), git_state(project)
    filler = fill(small_disk, leave)
    proc = cli("apply", "--project", str(project), "--yes", env={"ALWAYS_ON_HOME": str(home)})
    assert proc.returncode != 0 and "disk_full" in proc.stderr, proc.stderr[-2000:]
    assert tree(project) == before and git_state(project) == state  # all or nothing: nothing
    store = Store().project(project)
    assert not store.fire_lock().path.exists() and store.open_applies() == []
    filler.unlink()
    assert cli("apply", "--project", str(project), "--yes", env={"ALWAYS_ON_HOME": str(home)}).returncode == 0
    assert store.get_cycle(cycle).status == CycleStatus.APPLIED and tree(project) != before

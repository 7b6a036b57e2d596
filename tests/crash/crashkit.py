"""What the crash tests share: real projects with a real cycle to apply, processes killed for real, and checks.

Kills are real SIGKILLs of real ``always-on`` processes: ``ALWAYS_ON_FAULT=kill@POINT#N`` makes the process
SIGKILL itself at that instant (core.faults), ``...+MS`` some milliseconds later (wherever it then is), and
``stop@...`` freezes it there so the test sends SIGKILL from outside.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import git

from always_on.core.config import load_config
from always_on.core.orchestrator import Orchestrator
from always_on.core.records import (
    CyclePlanState,
    CycleRecord,
    PlanContent,
    PlanRecord,
    PlanStatus,
    new_id,
)
from always_on.core.storage import Store
from always_on.core.workspace import prepare_workspace

ODD = os.fsdecode(b"caf\xe9-\xff.txt")  # a file name that is not UTF-8
BASE = {
    "src/app.py": "import os\n\n\ndef main():\n    return os.getcwd()\n",
    "src/util.py": "X = 1\n",
    "src/keep.py": "KEEP = True\n",
    "old/a.txt": "old a\n",
    "old/deep/b.txt": "old b\n",
    "docs/readme.md": "# docs\n",
    "run.sh": "#!/bin/sh\necho hi\n",
    "data.bin": bytes(range(256)) * 8,
    ODD: "odd name v1\n",
    "gone.txt": "this becomes a folder\n",
}
BASE.update({f"pkg/m{i:02d}.py": f"VALUE = {i}\n" for i in range(12)})


def _write(root: Path, files: dict) -> None:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


def make_project(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    _write(path, BASE)
    (path / "run.sh").chmod(0o644)
    os.symlink("src/util.py", path / "link-to-util")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "base")
    return path


def _content(n: int) -> PlanContent:
    return PlanContent(
        title=f"Crash-test plan {n}",
        summary=f"Change {n}.",
        rationale="For the crash tests.",
        dedupe_key=f"crash:{n}",
        proposed_change="Edit files.",
        steps=["edit"],
        verification=["`true`"],
    )


def _commit(ws: Path, message: str) -> str:
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", message)
    return git(ws, "rev-parse", "HEAD")


def make_cycle(project: Path) -> str:
    """An active cycle with two completed plans whose change writes, adds (in new folders), deletes (emptying
    folders), changes modes, a symlink, a binary file, a file that becomes a folder and a non-UTF-8 name."""
    orch = Orchestrator(project, config=load_config())
    orch.register()
    store = orch.store
    cycle_id = new_id("cycle")
    ws = prepare_workspace(project, cycle_id=cycle_id, base_dir=orch.settings.workspace.resolved_base())
    wpath = Path(ws.path)
    states = []
    plans = []
    for n in (1, 2):
        before = git(wpath, "rev-parse", "HEAD")
        if n == 1:
            _write(wpath, {f"pkg/m{i:02d}.py": f"VALUE = {i * 10}  # plan 1\n" for i in range(0, 12, 2)})
            _write(wpath, {"src/app.py": BASE["src/app.py"].replace("import os", "import os  # plan 1")})
            _write(wpath, {"new/deeper/still/added.py": "ADDED = 1\n", "new/side.txt": "side\n"})
            for rel in ("old/a.txt", "old/deep/b.txt"):
                (wpath / rel).unlink()
            (wpath / "run.sh").chmod(0o755)
            (wpath / ODD).write_text("odd name v2\n")
            (wpath / "data.bin").write_bytes(bytes(reversed(range(256))) * 8)
        else:
            _write(wpath, {f"pkg/m{i:02d}.py": f"VALUE = {i * 100}  # plan 2\n" for i in range(1, 12, 2)})
            _write(wpath, {"src/app.py": (wpath / "src/app.py").read_text() + "\n# plan 2\n"})
            (wpath / "link-to-util").unlink()
            os.symlink("src/keep.py", wpath / "link-to-util")
            (wpath / "gone.txt").unlink()
            _write(
                wpath, {"gone.txt/inside.txt": "a folder now\n", os.fsdecode(b"new-\xfe.txt"): "added odd\n"}
            )
            (wpath / "docs/readme.md").unlink()
        after = _commit(wpath, f"plan {n}")
        plan = PlanRecord(
            id=new_id("plan") + f"{n}",
            project_id=store.project_id,
            status=PlanStatus.COMPLETED,
            content=_content(n),
            cycle_id=cycle_id,
        )
        plans.append(plan)
        states.append(
            CyclePlanState(plan_id=plan.id, commit_shas=[after], before_head=before, after_head=after)
        )
    for plan in plans:
        store.save_plan(plan)
    store.save_cycle(
        CycleRecord(
            id=cycle_id,
            project_id=store.project_id,
            strategy=ws.strategy,
            workspace_path=ws.path,
            branch=ws.branch,
            base_commit=ws.base_commit,
            plans=states,
        )
    )
    orch._analyze_dependencies(cycle_id)
    return cycle_id


# --- the state of a checkout, exactly (its files, folders and links: helpers.tree_hashes) ------------------


def git_state(project: Path) -> tuple[str, bytes]:
    """HEAD and the index file: an apply never commits or stages anything."""
    return git(project, "rev-parse", "HEAD"), (project / ".git" / "index").read_bytes()


# --- templates: one expensive setup, many cheap restores ----------------------------------------------


class Template:
    """A copy of the project, its store and its workspaces, restored before every kill."""

    def __init__(self, home: Path, project: Path, keep: Path) -> None:
        self.home, self.project, self.keep = home, project, keep
        Store().project(project).db.run("PRAGMA wal_checkpoint(TRUNCATE)")
        Store().project(project).close()
        shutil.copytree(home, keep / "home", symlinks=True)
        shutil.copytree(project, keep / "project", symlinks=True)

    def restore(self) -> None:
        Store().project(self.project).close()
        for live, saved in ((self.home, self.keep / "home"), (self.project, self.keep / "project")):
            shutil.rmtree(live)
            shutil.copytree(saved, live, symlinks=True)


# --- processes ----------------------------------------------------------------------------------------


def cli(
    *args: str, fault: str | None = None, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run ``always-on ARGS`` as its own process (optionally with a fault); returns when it has exited or was
    killed, and every process it started in its group (a ``git`` finishing its command) has ended too."""
    full = dict(os.environ, **(env or {}))
    full.pop("ALWAYS_ON_FAULT", None)
    if fault:
        full["ALWAYS_ON_FAULT"] = fault
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "always_on.core.cli", *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out, err = proc.communicate(timeout=timeout)
    group_ended(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def group_ended(pgid: int, timeout: float = 60) -> None:
    """Wait until no process of the group ``pgid`` is left (polling the kernel: there is no event to wait on)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            raise AssertionError(f"processes of group {pgid} were still running after {timeout} s")
        time.sleep(0.01)


def killed(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode == -signal.SIGKILL


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])

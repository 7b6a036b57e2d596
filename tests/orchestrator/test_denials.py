"""Issue 15, denials visible: every request the permission policy refuses (a command, a file read or write, a
permission request) is a line of `always-on run`'s output, a line of the report's Notes, and counted in history."""

from __future__ import annotations

import json
import subprocess
import sys

from fire_scripts import DISCOVER, EXECUTE, REPORT

from always_on.core.storage import Store

DENIED_STEPS = [
    {"op": "terminal", "command": "git", "args": ["remote", "add", "evil", "https://example.invalid/x.git"]},
    {"op": "terminal", "command": "sh", "args": ["-c", "git push origin main"]},
    {"op": "terminal", "command": "curl", "args": ["https://example.invalid"]},
    {"op": "read", "path": "../secret.txt"},
    {"op": "read", "path": ".env"},
    {"op": "write", "path": "../outside.txt", "content": "x"},
    {
        "op": "permission",
        "title": "git push origin main",
        "kind": "execute",
        "raw_input": {"command": "git push origin main"},
    },
]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "always_on.core.cli", *args], capture_output=True, text=True, timeout=180
    )


def test_every_denial_is_in_the_run_output_the_report_and_the_history(harness):
    (harness.project / ".env").write_text("TOKEN=x\n")
    orch = harness.orchestrator(
        {"discovery": DISCOVER, "execution": [*DENIED_STEPS, *EXECUTE], "report": REPORT}
    )
    run = cli("run", "--project", str(harness.project), "--agent-cmd", orch.agent_cmd)
    assert run.returncode == 0 and "Outcome: executed" in run.stdout, run.stderr
    store = Store().project(harness.project)
    entry = store.history()[-1]
    denied = [e for e in store.agent_events(entry.run_id) if e.allowed is False]
    assert len(denied) == len(DENIED_STEPS)
    kinds = sorted(str(e.kind) for e in denied)
    assert kinds == ["file_read", "file_read", "file_write", "permission", "terminal", "terminal", "terminal"]

    # the CLI: one line per denial, with what was asked and why; then the count
    printed = [line for line in run.stderr.splitlines() if "Denied (execution, " in line]
    assert len(printed) == len(denied)
    for event, line in zip(denied, printed, strict=True):
        assert event.reason.removeprefix("denied: ") in line and " ".join(event.text.split())[:40] in line
    assert f"Denied:  {len(denied)} request(s) by the permission policy" in run.stdout

    # the report's Notes, filled by the runtime
    _meta, report = store.read_report(entry.run_id)
    notes = report.split("## Notes", 1)[1]
    assert f"The permission policy denied {len(denied)} requests during this run:" in notes
    assert sum(1 for line in notes.splitlines() if line.startswith("- Denied (execution, ")) == len(denied)

    # history: the record, --json and the table
    assert entry.denials == len(denied)
    listed = json.loads(cli("history", "--project", str(harness.project), "--json").stdout)
    assert [r["denials"] for r in listed] == [len(denied)]
    table = cli("history", "--project", str(harness.project)).stdout.splitlines()
    header, row = table[0].split(), table[1].split()
    assert row[header.index("DENIED")] == str(len(denied))  # (the start time is two words, as its header)

    as_json = cli("run", "--project", str(harness.project), "--agent-cmd", orch.agent_cmd, "--json")
    assert "denials" in json.loads(as_json.stdout.splitlines()[-1])

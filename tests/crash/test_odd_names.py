"""File names that are not valid UTF-8 go through a whole fire (records, the report) and the apply."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import git, make_repo

from always_on.core.records import FireOutcome, PlanStatus
from always_on.core.storage import Store

ODD = b"caf\xe9.txt"


async def test_a_plan_editing_a_file_whose_name_is_not_utf8_completes_and_applies(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "orchestrator"))
    from fire_scripts import DISCOVER, REPORT, Harness

    project = make_repo(tmp_path / "project", {"README.md": "# demo\n"})
    with open(os.path.join(os.fsencode(project), ODD), "wb") as fh:
        fh.write(b"v1\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "odd name")
    edit = [{"op": "terminal", "command": "sh", "args": ["-c", "sed -i s/v1/v2/ caf*.txt"]}]
    harness = Harness(project, tmp_path)
    result = await harness.orchestrator({"discovery": DISCOVER, "execution": edit, "report": REPORT}).fire()
    assert result.outcome == FireOutcome.EXECUTED, result.error
    store = Store().project(project)
    assert store.get_plan(result.plan_id).status == PlanStatus.COMPLETED
    meta, markdown = store.read_report(result.run_id)
    assert [f.path for f in meta.files_changed] == [os.fsdecode(ODD)]  # exact in the record
    assert "caf\\xe9.txt" in markdown  # readable in the report
    report = harness.orchestrator().apply()
    assert report.applied == [result.plan_id]
    assert open(os.path.join(os.fsencode(project), ODD), "rb").read() == b"v2\n"

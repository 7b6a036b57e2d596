"""Benchmark 4: whole-fire overhead with an instant scripted agent on the 20,000-file repository.

``Orchestrator.fire()`` runs discovery → workspace → execution → report against tests/agents/scripted_agent.py,
which does nothing but the minimum: it proposes a tiny plan through the MCP plan tool, makes a one-line edit
through fs/write_text_file, and submits a short report through the MCP report tool. The raw git operations such a
fire cannot avoid are measured separately in the same run, on the same repository: ``git worktree add`` of HEAD,
``git add -A`` + ``git commit`` of a one-line change, ``git diff`` of the result. Overhead = fire wall time minus
those. Before each sample the previous cycle is archived (outside the timing) so that every fire creates its
workspace afresh. The process is warmed up by importing the modules a fire imports lazily (a daemon or the TUI
fires from a long-lived process); ``always-on run`` from a cold shell pays ~0.3 s more of imports.
"""

from __future__ import annotations

import asyncio
import json
import sys

from bench.common import REPO_ROOT, BenchResult, Context, Timer, figure, interleaved, median
from bench.data import clone, git
from bench.probe import Probe, merge_medians

TITLE = "whole-fire overhead with an instant scripted agent (20,000-file repository)"
SCRIPTED_AGENT = REPO_ROOT / "tests" / "agents" / "scripted_agent.py"
PLAN = {
    "title": "Mention the benchmark in the README",
    "summary": "Add one line to README.md.",
    "rationale": "The benchmark needs a change that costs nothing to make.",
    "dedupe_key": "bench:readme-line",
    "context_signals": ["README.md"],
    "proposed_change": "Append one line to README.md.",
    "steps": ["Append the line", "Check the file"],
    "verification": ["`grep -q benchmark README.md`"],
}
REPORT = (
    "## Steps Performed\n1. Appended one line to README.md\n\n## Verification Results\n"
    "- `grep -q benchmark README.md` passes\n"
)
STORE_METHODS = (
    "update_state",
    "update_plan",
    "update_cycle",
    "save_plan",
    "save_cycle",
    "append_event",
    "append_history",
    "write_report",
    "start_run",
    "note_run",
)


def agent_script(readme: str) -> dict:
    return {
        "phases": {
            "discovery": [{"op": "mcp", "calls": [{"tool": "always_on_discovery_plan", "arguments": PLAN}]}],
            "execution": [{"op": "write", "path": "README.md", "content": readme + "benchmark line\n"}],
            "report": [
                {"op": "mcp", "calls": [{"tool": "always_on_report", "arguments": {"content": REPORT}}]}
            ],
        }
    }


def _warm_imports() -> None:
    import always_on.core.agents.gateway
    import always_on.core.agents.mcp_server
    import always_on.core.agents.policy
    import always_on.core.contracts.report
    import always_on.core.digest
    import always_on.core.prompts
    import always_on.core.workspace  # noqa: F401


def run(ctx: Context) -> BenchResult:
    from always_on.core.config import load_config
    from always_on.core.orchestrator import Orchestrator
    from always_on.core.storage import Store

    root = ctx.fresh("fire")
    project = clone(ctx.repo20k(), root / "project")
    readme = (project / "README.md").read_text()
    script = root / "script.json"
    script.write_text(json.dumps(agent_script(readme)))
    config_dir = ctx.home / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.toml").write_text(
        f'[workspace]\nstrategy = "worktree"\nbase_dir = "{root / "workspaces"}"\n'
    )
    agent_cmd = f"{sys.executable} {SCRIPTED_AGENT} --script {script}"
    orch = Orchestrator(project, store=Store(), config=load_config(), agent_cmd=agent_cmd)
    _warm_imports()
    raw_dir = root / "raw"
    head = git(project, "rev-parse", "HEAD").decode().strip()
    timings: list[dict[str, float]] = []
    probes: list[dict[str, float]] = []
    raw_parts: list[dict[str, float]] = []

    def product(i: int) -> float:
        with Probe() as probe:
            for method in STORE_METHODS:
                probe.wrap(
                    f"always_on.core.storage.ProjectStore.{method}",
                    "store writes (SQLite transactions, JSONL)",
                )
            probe.wrap("always_on.core.storage.FireLock.acquire", "fire lock")
            probe.wrap("always_on.core.storage.FireLock.release", "fire lock")
            probe.wrap("always_on.core.agents.gateway.AgentGateway.start", "agent start (spawn + initialize)")
            probe.wrap("always_on.core.agents.gateway.AgentGateway.close", "agent close")
            probe.wrap(
                "always_on.core.agents.gateway.AgentGateway.run_phase",
                lambda self, **kw: f"session {kw.get('phase')} (new + prompt + end)",
            )
            probe.wrap("always_on.core.digest.build_digest", "chat digest")
            probe.wrap("always_on.core.prompts.build_prompt", "prompt building")
            probe.wrap("always_on.core.workspace.prepare_workspace", "prepare_workspace")
            probe.wrap("always_on.core.workspace.commit_plan", "commit_plan")
            probe.wrap("always_on.core.workspace.diff_files", "diff_files")
            probe.wrap("always_on.core.workspace.head_of", "head_of")
            probe.wrap("always_on.core.workspace.analyze_dependencies", "analyze_dependencies")
            probe.wrap_git()
            with Timer() as t:
                result = asyncio.run(orch.fire())
            probes.append(probe.take())
        if result.outcome.value != "executed" or result.error is not None:
            raise RuntimeError(f"the benchmark fire did not execute: {result.model_dump_json()}")
        plan = orch.store.get_plan(result.plan_id)
        if plan.status.value != "completed":
            raise RuntimeError(f"the benchmark plan ended {plan.status}, not completed")
        timings.append(dict(result.timings))
        return t.seconds

    def baseline(i: int) -> float:
        wt = raw_dir / f"wt-{i}"
        parts = {}
        with Timer() as t:
            git(project, "worktree", "add", "-q", "-b", f"raw-{i}", str(wt), head)
        parts["git worktree add"] = t.seconds
        (wt / "README.md").write_text(readme + "benchmark line\n")
        with Timer() as t:
            git(wt, "add", "-A")
            git(wt, "commit", "-q", "-m", "one line")
        parts["git add + commit"] = t.seconds
        with Timer() as t:
            git(wt, "diff", "--numstat", f"{head}..HEAD")
        parts["git diff"] = t.seconds
        raw_parts.append(parts)
        return sum(parts.values())

    def setup(i: int) -> None:
        active = orch.store.active_cycle()
        if active is not None:
            orch.archive_cycle(active.id)
        if raw_dir.exists():
            for old in raw_dir.iterdir():
                git(project, "worktree", "remove", "--force", str(old))

    fires, raws = interleaved(ctx.samples(heavy=True), product, baseline, setup=setup)
    setup(-1)
    overheads = [f - r for f, r in zip(fires, raws, strict=True)]
    in_fire = [sum(p.get(f"git {cmd}", 0.0) for cmd in ("worktree", "add", "commit", "diff")) for p in probes]
    net = median([f - g for f, g in zip(fires, in_fire, strict=True)])
    fig = figure(
        "fire.overhead",
        "fire overhead = fire wall time − raw git ops (instant scripted agent)",
        "s",
        overheads,
        baseline_label="raw git ops: worktree add + add/commit + diff",
        baseline_samples=raws,
        ratios=[f / r for f, r in zip(fires, raws, strict=True)],
        check="value_max",
        limit=1.0,
        notes=[
            f"fire wall time median {median(fires):.3f} s; ratio = fire wall time / raw git ops",
            (
                f"wall time minus the fire's own git worktree/add/commit/diff calls: {net:.3f} s "
                "(the same overhead, not exposed to the disk's sample-to-sample noise)"
            ),
        ],
    )
    breakdown: dict = {f"FireResult.timings[{k}]": v for k, v in merge_medians(timings).items()}
    breakdown.update({f"raw: {k}": v for k, v in merge_medians(raw_parts).items()})
    breakdown.update({f"probe: {k}": v for k, v in merge_medians(probes).items()})
    breakdown.update(_process_floors(ctx))
    ctx.discard(root)
    return BenchResult(name="fire", title=TITLE, figures=[fig], breakdown=breakdown)


# The Python start-ups a fire pays for (the agent, and one MCP tool server per discovery/report session, each
# importing the ``mcp`` package; the scripted agent also imports ``mcp`` for its MCP client): their import floors.
FLOORS = {
    "floor: agent process (python -c 'import acp')": ["-c", "import acp"],
    "floor: MCP tool server (python -P -c 'import always_on.core.agents.mcp_server, mcp.server.mcpserver')": [
        "-P",
        "-c",
        "import always_on.core.agents.mcp_server, mcp.server.mcpserver",
    ],
    "floor: agent's MCP client import (python -c 'import mcp.client.stdio')": [
        "-c",
        "import mcp.client.stdio",
    ],
}


def _process_floors(ctx: Context) -> dict[str, float]:
    import subprocess

    out = {}
    for label, args in FLOORS.items():
        samples = []
        for _ in range(max(3, ctx.samples(heavy=True))):
            with Timer() as t:
                subprocess.run([sys.executable, *args], env=ctx.child_env(), cwd=REPO_ROOT, check=True)
            samples.append(t.seconds)
        out[label] = median(samples)
    return out

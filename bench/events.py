"""Benchmark 5a: agent-event throughput, scripted agent → AgentGateway → AgentEventLog → subscriber.

The scripted agent (a real subprocess, real pipes) streams 50,000 ``agent_message_chunk`` session/updates in one
turn. The gateway parses each, turns it into an AgentEvent, the event log serialises it to the run's JSONL file
(buffered, flushed every 0.2 s) and hands it to a subscriber that counts it. Throughput = chunks / (time from
the prompt being sent to the last chunk reaching the subscriber). The raw baseline is the floor of the same
transport: a child process writes the identical 50,000 JSON-RPC lines to a pipe in the same batches, and the
parent reads them with asyncio and ``json.loads`` each — no models, no disk, no subscriber.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench.common import BenchResult, Context, figure
from bench.fire import SCRIPTED_AGENT

TITLE = "agent-event throughput: scripted agent → gateway → event log → subscriber (50,000 chunks)"
CHUNKS = 50_000

# Writes what scripted_agent.py's raw "chunks" op writes, in the same 512-line batches.
RAW_WRITER = """
import json, sys
count = int(sys.argv[1])
head = ('{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"sess-1",'
        '"update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":')
out = sys.stdout.buffer
batch = []
for i in range(count):
    batch.append(head + json.dumps(f"chunk {i} ") + "}}}}\\n")
    if len(batch) == 512:
        out.write("".join(batch).encode()); batch.clear()
out.write("".join(batch).encode()); out.flush()
"""


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0

    def __call__(self, event) -> None:
        if event.kind == "message":
            self.count += 1
            self.last = time.perf_counter()


async def _product(ctx: Context, i: int) -> tuple[float, int]:
    from always_on.core.agents.gateway import AgentGateway
    from always_on.core.agents.policy import Policy
    from always_on.core.agents.spec import AgentSpec, PhaseLimits
    from always_on.core.event_log import AgentEventLog
    from always_on.core.records import Phase
    from always_on.core.storage import Store

    ws = ctx.fresh(f"events-{i}")
    script = ws / "script.json"
    script.write_text(json.dumps({"steps": [{"op": "chunks", "count": CHUNKS, "text": "chunk {i} "}]}))
    spec = AgentSpec(name="scripted", command=[sys.executable, str(SCRIPTED_AGENT), "--script", str(script)])
    counter = Counter()
    run_id = f"run-bench-events-{i}"
    log = AgentEventLog(Store().project(ws), run_id, counter)
    gateway = AgentGateway(spec, on_event=log.record, cwd=ws)
    try:
        await gateway.start()
        t0 = time.perf_counter()
        result = await gateway.run_phase(
            run_id=run_id,
            phase=Phase.EXECUTION,
            cwd=ws,
            policy=Policy(ws),
            prompt="stream",
            mcp_servers=[],
            limits=PhaseLimits(timeout_seconds=300, max_tool_calls=10),
        )
    finally:
        await gateway.close()
        log.close()
    if result.error is not None or counter.count != CHUNKS:
        raise RuntimeError(f"streamed {counter.count} of {CHUNKS} chunks; error {result.error}")
    lines = sum(1 for _ in log.path.open())
    if lines < CHUNKS:
        raise RuntimeError(f"the event log holds {lines} lines, expected at least {CHUNKS}")
    ctx.discard(ws)
    return counter.last - t0, counter.count


async def _baseline() -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RAW_WRITER, str(CHUNKS), stdout=asyncio.subprocess.PIPE, limit=1 << 20
    )
    assert proc.stdout is not None
    first = await proc.stdout.readuntil(b"\n")  # the writer has started: time from here, like the prompt
    t0 = time.perf_counter()
    count = 1 if json.loads(first) else 0
    while True:
        try:
            line = await proc.stdout.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            break
        if json.loads(line).get("method") == "session/update":
            count += 1
    elapsed = time.perf_counter() - t0
    await proc.wait()
    if count != CHUNKS:
        raise RuntimeError(f"raw reader saw {count} lines")
    return elapsed


def run(ctx: Context) -> BenchResult:
    ours, raw = [], []
    for i in range(ctx.runs):
        order = ["product", "baseline"] if i % 2 == 0 else ["baseline", "product"]
        for which in order:
            if which == "product":
                seconds, count = asyncio.run(_product(ctx, i))
                ours.append(count / seconds)
            else:
                raw.append(CHUNKS / asyncio.run(_baseline()))
    fig = figure(
        "events.throughput",
        "events/s through gateway → event log (JSONL) → subscriber",
        "events/s",
        ours,
        baseline_label="same 50,000 JSON-RPC lines over a pipe, asyncio readuntil + json.loads",
        baseline_samples=raw,
        check="value_min",
        limit=20_000,
        notes=["ratio = product throughput / raw pipe throughput (1.0 = as fast as the raw floor)"],
    )
    return BenchResult(name="events", title=TITLE, figures=[fig])

"""The product's MCP server with one extra rule: the first plan is rejected with a limit the contract lacks.

Lets the tidy tests check that a rejection is read and the plan adjusted and retried once. Every plan call is
logged to OUTBOX/calls.jsonl.
"""

import json
import sys

from always_on.core.agents import mcp_server

_submit = mcp_server.ToolServer.submit_plan
_calls = []


def submit_plan(self, arguments):
    _calls.append(arguments)
    with (self.outbox / "calls.jsonl").open("a") as log:
        log.write(json.dumps(arguments) + "\n")
    if len(_calls) == 1:
        summary = arguments.get("summary") or ""
        return False, (
            "plan_invalid: the plan was not accepted. Fix every problem and call again:\n"
            f"- `summary` is {len(summary)} characters; shorten it to at most 60"
        )
    return _submit(self, arguments)


mcp_server.ToolServer.submit_plan = submit_plan

if __name__ == "__main__":
    sys.exit(mcp_server.main())

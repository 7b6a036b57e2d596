"""`python -m always_on.core.agents.builtin tidy|openai`: serve a built-in agent over ACP on stdio."""

import sys

from always_on.core.agents.builtin import AGENT_NAMES, run

if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(f"usage: python -m always_on.core.agents.builtin {{{'|'.join(AGENT_NAMES)}}}", file=sys.stderr)
        sys.exit(2)
    sys.exit(run(sys.argv[1]))

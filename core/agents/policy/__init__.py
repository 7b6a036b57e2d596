"""The permission policy: what an agent may run, read and write in its workspace (DESIGN §5).

Every agent action routed through the ACP client (terminal commands, file reads and writes, permission requests)
gets a `Decision` that names the rule behind it, so the user can see why something was allowed or refused.

Shell commands are parsed (`shell_parse`), never glob-matched: wrappers (`sh -c`, `env`, `xargs`, `timeout`...)
are unwrapped, `$(...)` and backticks are checked as commands of their own, every path a command names is resolved
(`..`, symlinks, globs, `cd`) and confined to the workspace, and commands run only if they are on an allow-list.
Whatever cannot be understood with confidence is denied.

Decisions worth knowing:
- Read-only phases (discovery, report) allow reading commands only. pytest is allowed there when it cannot write
  its cache: with `--collect-only` or `-p no:cacheprovider` (tests still run project code, as the user's own
  test runs do); `python script.py`, `make`, `npm test` are writable-phase only.
- No network: curl/wget/ssh/scp/rsync (even local)/nc..., `git fetch/pull/clone/push/ls-remote`, every
  `pip install` (from an index or a URL), npx/uv/poetry... `pip list/show/freeze` are fine.
- git: reads, `add/commit/restore/rm/mv/checkout -- <path>/reset [HEAD]/clean/apply/revert` are allowed; anything
  that changes what the user's checkout shares (config, remotes, branches, tags, stash, notes, refs, worktrees,
  gc) is denied, as are `git -c`, `--git-dir`, `--work-tree`, `-C` outside the workspace, `commit --amend` and
  unknown subcommands (they may be aliases). `git remote -v`, `git config --list/--get-regexp` and credential-ish
  keys are denied too: remote URLs and http headers can embed tokens.
- Variables: `$X` is fine where its value cannot change the meaning (echo, a quoted `-m "$msg"`); it is denied as
  a command name, a git subcommand, a path, or unquoted (it may split into several arguments). `$SECRET_KEY`-
  shaped names, `env`/`printenv`/`set` listings are denied: a configured API key must not reach the model.
- Shell strings run under /bin/sh (dash) or bash: syntax the two read differently (`&>`, `|&`) is denied.

Where each rule lives: `kernel` (Policy: the public checks, the walk from a parsed script to each command and
the dispatch to its family); one module per command family (`shell_builtins`, `wrappers` for `sh -c`/`env`/
`xargs`..., `text_tools`, `files`, `git`, `python`, `node`, `make`); the shared pieces (`call`: one command being
checked; `words`: options and values; `confinement`: where paths may lead; `programs`: names and the refused
kinds of program; `variables`: variables inside commands; `tool_calls`: what a permission request names;
`decision`: the answer, and `deny`); and, apart from any decision, the `environment` allow-list and the
`secret_paths` rules. The shell parser itself is `agents.shell_parse`.

Limits, by design: a command that runs code the agent wrote (`pytest`, `python script.py`, `make test`,
`npm test`) can do anything that code does; the policy allows those only in a writable phase, gives them an
environment without credentials (`agent_environment`), and relies on the OS sandbox (second layer) for the rest.
Paths are checked when the command is checked; a symlink created later by such code is not seen. Recursive
searches (`grep -r`, `rg`) can read secret-shaped files inside the folder they search.
"""

from always_on.core.agents.policy.decision import Decision
from always_on.core.agents.policy.environment import agent_environment
from always_on.core.agents.policy.kernel import Policy
from always_on.core.agents.policy.secret_paths import secret_reason
from always_on.core.agents.policy.text_tools import sed_script_problem

__all__ = ["Decision", "Policy", "agent_environment", "secret_reason", "sed_script_problem"]

"""OS confinement (DESIGN §5, second layer): what code the agent runs can touch, enforced by the kernel.

- ``detect(mode, at_most=)`` → ``SandboxStatus``: bubblewrap, else Landlock + seccomp, else none (loudly);
- ``terminal_rules`` / ``agent_rules`` → ``SandboxRules`` for a project and its workspace;
- ``FireScope``: everything a fire starts ends with it (``end()``), also after a crash (``reap_leftovers()``);
- ``Confinement(status, rules, scope)``: ``launch``/``spawn``/``popen`` confined processes, ``check_git()`` after
  each command.

The private object directory of worktree workspaces lives in ``always_on.core.workspace.objects``.
"""

from always_on.core.sandbox.confinement import REMOVABLE_GUARDS, Confinement, Launch
from always_on.core.sandbox.guard import GitGuard, GuardChange
from always_on.core.sandbox.levels import INSTALL_HINT, Level, SandboxMode, SandboxStatus, detect
from always_on.core.sandbox.lifetime import MARKER_ENV, FireScope, Leftover, reap_leftovers
from always_on.core.sandbox.rules import SandboxRules, agent_rules, build_rules, terminal_rules

__all__ = [
    "INSTALL_HINT",
    "MARKER_ENV",
    "REMOVABLE_GUARDS",
    "Confinement",
    "FireScope",
    "GitGuard",
    "GuardChange",
    "Launch",
    "Leftover",
    "Level",
    "SandboxMode",
    "SandboxRules",
    "SandboxStatus",
    "agent_rules",
    "build_rules",
    "detect",
    "reap_leftovers",
    "terminal_rules",
]

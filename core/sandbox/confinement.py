"""One rule set enforced at one level: prepared once, applied to every process launched through it.

Use (terminal commands and the agent process alike)::

    status = detect(config.sandbox)                       # once per runtime (cached)
    scope = FireScope(run_id)                             # once per fire: processes + private temp
    conf = Confinement(status, terminal_rules(project, ws, temp_dir=scope.temp_dir), scope)
    proc = await conf.spawn(argv, cwd=..., env=scrubbed, stdout=PIPE, start_new_session=True)
    changes = conf.check_git()                            # after each command: what was put back
    ...
    scope.end(); conf.close()                             # at the end of the fire

``launch()`` gives the pieces for any spawner: ``argv`` (bwrap prefixes its command line), ``env`` (the rules'
variables, the fire marker) and ``preexec_fn``. Per-command cost, measured by ``bench/sandbox.py``: bwrap adds a
process and its mounts; Landlock adds only syscalls on prepared data in a ``preexec_fn`` (a fork instead of
vfork) — the rule set (hundreds of path rules) is built once here, not per command, and a Python exec shim
(an interpreter start per command) was avoided for the same reason.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.sandbox import _sys, landlock, seccomp
from always_on.core.sandbox import bwrap as bw
from always_on.core.sandbox.guard import GitGuard, GuardChange
from always_on.core.sandbox.levels import Level, SandboxStatus
from always_on.core.sandbox.lifetime import FireScope
from always_on.core.sandbox.rules import SandboxRules

# Guards that can be removed one at a time, only to prove that a test catches their absence.
REMOVABLE_GUARDS = frozenset(
    {
        *bw.GUARD_FLAGS,
        "seccomp",
        "landlock-tcp",
        "landlock-scope",
        "cap-drop",
        "fire-scope",
        "git-guard",
        "hide-secrets",
        "private-objects",
    }
)


@dataclass(frozen=True)
class Launch:
    """How to start one confined process: pass these to ``subprocess.Popen``/``asyncio.create_subprocess_exec``."""

    argv: list[str]
    env: dict[str, str]
    preexec_fn: Callable[[], None] | None = None

    def popen_kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"env": self.env}
        if self.preexec_fn is not None:
            out["preexec_fn"] = self.preexec_fn
        return out


class Confinement:
    """The rules of one role (terminal or agent) at one level; ``without`` removes guards (tests only)."""

    def __init__(
        self,
        level: Level | SandboxStatus | str,
        rules: SandboxRules,
        scope: FireScope | None = None,
        *,
        without: Sequence[str] = (),
    ) -> None:
        status = level if isinstance(level, SandboxStatus) else None
        self.level = Level(status.level if status else level)
        if "hide-secrets" in without:
            rules = rules.model_copy(update={"hidden": []})
        if "private-objects" in without:
            rules = rules.model_copy(
                update={"env": {k: v for k, v in rules.env.items() if "OBJECT" not in k}}
            )
        self.rules = rules
        self.scope = None if "fire-scope" in without else scope
        self.without = frozenset(without)
        unknown = self.without - REMOVABLE_GUARDS
        if unknown:
            raise ValueError(f"unknown guards: {sorted(unknown)}")
        self.guard = GitGuard([] if "git-guard" in self.without else rules.guarded)
        self.notes: list[str] = []
        self._prefix: list[str] = []
        self._ruleset: landlock.LandlockRuleset | None = None
        self._filter: seccomp.NetworkFilter | None = None
        self._capdrop: _sys.CapabilityDrop | None = None
        try:
            if self.level == Level.BWRAP:
                binary = (status.bwrap if status else None) or bw.find_bwrap()
                if not binary:
                    raise OSError("bwrap is not installed")
                self._prefix = bw.bwrap_prefix(rules, binary, omit=self.without & set(bw.GUARD_FLAGS))
            elif self.level == Level.LANDLOCK:
                self._prepare_landlock()
        except OSError as exc:
            self.close()
            raise AlwaysOnError(
                ErrorCode.SANDBOX_FAILED, f"could not prepare the {self.level.value} sandbox: {exc}"
            ) from exc

    def _prepare_landlock(self) -> None:
        abi, why = landlock.abi_version()
        if abi < 1:
            raise OSError(why or "Landlock is not available")
        read = [*landlock.read_paths(self.rules.hidden), *self.rules.readable]
        self._ruleset = landlock.LandlockRuleset(
            abi=abi,
            read=read,
            write=self.rules.writable,
            network=self.rules.network or "landlock-tcp" in self.without,
            scope="landlock-scope" not in self.without,
        )
        self.notes.append(f"Landlock ABI {abi}: {self._ruleset.rules} path rules")
        if not self.rules.network and "seccomp" not in self.without:
            ok, why = seccomp.supported()
            if ok:
                self._filter = seccomp.NetworkFilter()
            else:
                self.notes.append(f"no network filter: {why}")
        if _sys.has_capabilities() and "cap-drop" not in self.without:
            self._capdrop = _sys.CapabilityDrop()

    # --- launching ------------------------------------------------------------------------------------------

    def launch(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Launch:
        """The confined form of ``argv`` with ``env`` (default: this process's environment)."""
        full_env = {**(os.environ if env is None else env), **self.rules.env}
        if self.scope is not None:
            full_env.update(self.scope.env())
        if self.level == Level.BWRAP:
            full_env["TMPDIR"] = "/tmp"
            return Launch([*self._prefix, "--", *argv], full_env, None)
        if self.level == Level.LANDLOCK:
            return Launch(list(argv), full_env, self._preexec_landlock)
        return Launch(list(argv), full_env, self.scope.child_setup if self.scope else None)

    def _preexec_landlock(self) -> None:
        """Between fork and exec: join the fire, drop capabilities, Landlock, then the network filter."""
        if self.scope is not None:
            self.scope.child_setup()
        if self._capdrop is not None:
            self._capdrop()
        assert self._ruleset is not None
        self._ruleset.restrict()
        if self._filter is not None:
            self._filter.install()

    async def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> asyncio.subprocess.Process:
        """``asyncio.create_subprocess_exec`` of the confined command; the process is recorded in the scope."""
        launch = self.launch(argv, env=env)
        process = await asyncio.create_subprocess_exec(*launch.argv, **launch.popen_kwargs(), **kwargs)
        if self.scope is not None:
            self.scope.started(process.pid)
        return process

    def popen(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen:
        """``subprocess.Popen`` of the confined command; the process is recorded in the scope."""
        launch = self.launch(argv, env=env)
        process = subprocess.Popen(launch.argv, **launch.popen_kwargs(), **kwargs)
        if self.scope is not None:
            self.scope.started(process.pid)
        return process

    # --- after each command ---------------------------------------------------------------------------------

    def check_git(self) -> list[GuardChange]:
        """Re-verify the workspace's git files; put back and report what a command changed."""
        return self.guard.check()

    def close(self) -> None:
        if self._ruleset is not None:
            self._ruleset.close()
            self._ruleset = None

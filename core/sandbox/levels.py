"""Which confinement this machine can give, strongest first: bubblewrap, Landlock + seccomp, or none.

- ``bwrap``: the ``bwrap`` binary is installed and passes a self-test once (cached on disk per binary, kernel
  and user): a real sandbox with the full flag set writes into its workspace and cannot write beside it. It fails
  where unprivileged user namespaces are off (some distributions, containers, AppArmor profiles).
- ``landlock``: Linux >= 5.13 with Landlock enabled (its ABI is reported), plus the seccomp network filter.
- ``none``: only the command parser stands; said loudly (``SandboxStatus.summary``), and ``sandbox =
  "required"`` refuses to fire (``sandbox_unavailable``, saying how to install bubblewrap).

``at_most`` caps the level (tests force Landlock-only or none; ``sandbox = "off"`` is ``none``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.paths import data_dir
from always_on.core.sandbox import bwrap as bw
from always_on.core.sandbox import landlock, seccomp

SandboxMode = Literal["auto", "required", "off"]
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf install "
    "bubblewrap`; Arch: `sudo pacman -S bubblewrap`), or use a Linux kernel >= 5.13 with Landlock enabled"
)


class Level(StrEnum):
    BWRAP = "bwrap"
    LANDLOCK = "landlock"
    NONE = "none"

    @property
    def rank(self) -> int:
        return {"none": 0, "landlock": 1, "bwrap": 2}[self.value]


class SandboxStatus(BaseModel):
    """The level in force and the facts behind it (for `status`, the dashboard and each run's record)."""

    level: Level
    mode: SandboxMode = "auto"
    bwrap: str | None = None
    bwrap_version: str | None = None
    landlock_abi: int = 0
    seccomp: bool = False
    reasons: dict[str, str] = Field(default_factory=dict)  # why a stronger level is not in force

    @property
    def summary(self) -> str:
        if self.level == Level.BWRAP:
            return (
                f"bubblewrap {self.bwrap_version or ''}".strip() + " (file, network and process confinement)"
            )
        if self.level == Level.LANDLOCK:
            net = "seccomp network filter" if self.seccomp else "NO seccomp network filter"
            return f"Landlock ABI {self.landlock_abi} + {net}"
        why = "; ".join(f"{k}: {v}" for k, v in self.reasons.items())
        return f"NONE: agent commands run unconfined (only the command policy holds). {why}"


def _selftest_cache() -> Path:
    return data_dir() / "sandbox" / "selftest.json"


def _fingerprint(binary: str) -> str:
    st = os.stat(binary)
    return f"{os.path.realpath(binary)}|{st.st_size}|{st.st_mtime_ns}|{platform.release()}|{os.geteuid()}"


@cache
def bwrap_selftest(binary: str) -> str | None:
    """None when bwrap works here with the full flag set, else why not. Cached on disk and in the process."""
    key = _fingerprint(binary)
    cache_file = _selftest_cache()
    try:
        saved = json.loads(cache_file.read_text())
        if saved.get("key") == key:
            return saved.get("error")
    except (OSError, ValueError):
        pass
    error = _run_selftest(binary)
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps({"key": key, "error": error}))
    except OSError:
        pass
    return error


def _run_selftest(binary: str) -> str | None:
    from always_on.core.sandbox.rules import SandboxRules

    with tempfile.TemporaryDirectory(prefix="always-on-bwrap-test-") as tmp:
        root = Path(os.path.realpath(tmp))
        ws, outside, temp = root / "ws", root / "outside", root / "tmp"
        for folder in (ws, outside, temp):
            folder.mkdir()
        rules = SandboxRules(role="terminal", writable=[ws, temp], readable=[outside], temp_dir=temp)
        script = f"echo ok > {ws}/probe; echo no > {outside}/probe 2>/dev/null; exit 0"
        try:
            proc = subprocess.run(
                [*bw.bwrap_prefix(rules, binary), "--", "/bin/sh", "-c", script],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap could not run: {exc}"
        if proc.returncode != 0 or not (ws / "probe").exists():
            return f"bwrap self-test failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
        if (outside / "probe").exists():
            return "bwrap self-test: the sandbox could write outside its workspace"
    return None


def detect(mode: SandboxMode = "auto", *, at_most: Level | str | None = None) -> SandboxStatus:
    """The strongest level available (capped by ``at_most``); ``mode="required"`` raises when it is none."""
    if mode not in ("auto", "required", "off"):
        raise AlwaysOnError(ErrorCode.CONFIG_INVALID, f"sandbox = {mode!r} is not one of auto, required, off")
    cap = Level(at_most) if at_most is not None else Level.BWRAP
    status = SandboxStatus(level=Level.NONE, mode=mode)
    if mode == "off":
        status.reasons["config"] = 'sandbox = "off"'
        return status
    abi, why_not = landlock.abi_version()
    status.landlock_abi = abi
    status.seccomp, seccomp_why = seccomp.supported()
    binary = bw.find_bwrap()
    if binary:
        status.bwrap = binary
        status.bwrap_version = bw.version(binary)
    if cap.rank >= Level.BWRAP.rank:
        if not binary:
            status.reasons["bwrap"] = "bubblewrap (bwrap) is not installed"
        else:
            error = bwrap_selftest(binary)
            if error is None:
                status.level = Level.BWRAP
                return status
            status.reasons["bwrap"] = error
    else:
        status.reasons["bwrap"] = f"capped at {cap.value}"
    if cap.rank >= Level.LANDLOCK.rank:
        if abi >= 1:
            status.level = Level.LANDLOCK
            if seccomp_why:
                status.reasons["seccomp"] = seccomp_why
            return status
        status.reasons["landlock"] = why_not or "unavailable"
    else:
        status.reasons["landlock"] = f"capped at {cap.value}"
    if mode == "required":
        raise AlwaysOnError(
            ErrorCode.SANDBOX_UNAVAILABLE,
            f'sandbox = "required" but no OS confinement is available here ({status.summary}); {INSTALL_HINT}',
        )
    return status

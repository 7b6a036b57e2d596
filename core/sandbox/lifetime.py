"""Nothing outlives a fire: every process a fire starts ends with it, and after a crash, at the next start.

How the processes of a fire are held, strongest first:

- **bubblewrap**: each command has its own pid namespace. bwrap exits when the command's first process ends;
  its init inside the namespace then gets its parent-death signal (``--die-with-parent``: measured, without it
  the init waits for every process, and a double-fork keeps the sandbox alive), and the kernel kills everything in
  the namespace, ``setsid`` double-forks included, just after the command. The same happens when the runtime
  dies or bwrap is killed. Nothing to find afterwards.
- **a cgroup** (cgroup v2 whose folder the runtime may write, with ``cgroup.kill``): every process of the fire is
  moved into ``always-on-<token>`` before exec. A process cannot leave it (the Landlock rules deny writing to
  ``/sys``), so ``cgroup.kill`` ends all of them at once, and after a crash the record names the cgroup to kill.
- **otherwise** the runtime becomes a *child subreaper*: orphans (double-forks) are re-parented to it instead of
  init, so they stay findable. A fire's processes are its recorded roots (pid + start time), their descendants,
  adopted orphans that carry the fire's marker (``ALWAYS_ON_FIRE=<token>`` in their environment) or are
  confined (no_new_privs, which the runtime itself does not have), and any process anywhere that carries the
  marker. Direct children also get ``PDEATHSIG`` (they die with the runtime).

Every fire writes a record under ``<data>/sandbox/fires/<token>.json`` (the runtime's pid, start time and boot
id, the cgroup, the roots with their start times). ``reap_leftovers()`` at the next start ends what the records
of dead runtimes name: their cgroups, their roots still alive *with the recorded start time* (a reused pid is
never touched), and processes carrying their marker. Known limit without a cgroup: after a crash, a double-fork
that also cleared its environment is re-parented to init and cannot be told apart from the user's processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import time
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field

from always_on.core.paths import data_dir
from always_on.core.sandbox import _sys

MARKER_ENV = "ALWAYS_ON_FIRE"
_CGROUP_PREFIX = "always-on-"
_KILL_ROUNDS = 50


class ProcessId(BaseModel):
    """A process as it can be recognised later: pid plus start time (clock ticks since boot)."""

    pid: int
    start: int


class FireRecord(BaseModel):
    """What a fire started, on disk while it runs (removed when it ends)."""

    schema_version: int = 1
    token: str
    fire_id: str
    boot_id: str
    runtime: ProcessId
    cgroup: str | None = None
    temp_dir: str | None = None
    roots: list[ProcessId] = Field(default_factory=list)


class Leftover(BaseModel):
    """What ``reap_leftovers`` or ``FireScope.end`` ended."""

    fire_id: str
    token: str
    killed: list[int] = Field(default_factory=list)
    cgroup: str | None = None


# --- /proc ---------------------------------------------------------------------------------------------------


def _stat(pid: int | str) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            rest = fh.read().rsplit(b")", 1)[1].split()
        return rest[0].decode(), int(rest[1]), int(rest[19])
    except (OSError, IndexError, ValueError):
        return None


def _processes() -> dict[int, tuple[str, int, int]]:
    found = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if name.isdigit():
            info = _stat(name)
            if info is not None:
                found[int(name)] = info
    return found


def _marker(pid: int) -> str | None:
    """The fire marker in a process's environment (as it was at exec), or None."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    prefix = MARKER_ENV.encode() + b"="
    for item in data.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def _no_new_privs(pid: int | str) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("NoNewPrivs:"):
                    return line.split()[1] == "1"
    except OSError:
        pass
    return False


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def self_id() -> ProcessId:
    info = _stat(os.getpid())
    return ProcessId(pid=os.getpid(), start=info[2] if info else 0)


def _alive(proc: ProcessId) -> bool:
    info = _stat(proc.pid)
    return info is not None and info[2] == proc.start and info[0] != "Z"


def _descendants(roots: set[int], procs: dict[int, tuple[str, int, int]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _kill(pids: set[int], *, wait: float = 5.0) -> None:
    """SIGKILL each, then wait (on each process's exit, at most ``wait`` seconds in all) until they are gone:
    a killed process still holds its files and its place in /proc until the kernel has torn it down."""
    fds = []
    for pid in pids:
        with contextlib.suppress(OSError):
            fds.append(os.pidfd_open(pid))  # before the kill: the fd then names this very process
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait
    try:
        for fd in fds:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            select.select([fd], [], [], left)  # readable once the process has exited
    finally:
        for fd in fds:
            os.close(fd)


# --- cgroup v2 -------------------------------------------------------------------------------------------------


def _own_cgroup() -> Path | None:
    """This process's cgroup v2 folder when we may create child cgroups in it with cgroup.kill, else None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    rel = next((line[3:] for line in lines if line.startswith("0::")), None)
    mount = next((m.split(" - ")[0].split()[4] for m in mounts if " - cgroup2 " in m), None)
    if rel is None or mount is None or rel.endswith("(deleted)"):
        return None
    folder = Path(mount) / rel.lstrip("/")
    try:
        controls = (folder / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    # "no internal processes": a non-root cgroup that distributes resources cannot also hold our process
    if controls and rel != "/":
        return None
    if not os.access(folder, os.W_OK) or not os.access(folder / "cgroup.procs", os.W_OK):
        return None
    return folder


def _kill_cgroup(folder: Path) -> list[int]:
    """Kill every process in the cgroup (and below), wait until it is empty, remove it; returns the pids seen."""
    seen: list[int] = []
    if not folder.is_dir():
        return seen
    with contextlib.suppress(OSError):
        seen = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
    with contextlib.suppress(OSError):
        (folder / "cgroup.kill").write_text("1")
    for _ in range(2000):  # cgroup.kill is asynchronous: the processes exit within milliseconds
        try:
            if "populated 0" in (folder / "cgroup.events").read_text():
                break
        except OSError:
            break
        time.sleep(0.001)
    for sub in sorted(folder.rglob("*/"), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()
    return seen


# --- the fire's scope ---------------------------------------------------------------------------------------------


def fires_dir(state_dir: Path | None = None) -> Path:
    return (state_dir or data_dir() / "sandbox") / "fires"


class FireScope:
    """What one fire owns on the machine: its processes and its private temp folder; ``end()`` takes both.

    Use one per fire: ``env()`` goes into every process it starts (the confinement does this), ``child_setup``
    runs between fork and exec (cgroup, parent-death signal), ``started(pid)`` records each spawned process.
    ``use_cgroup=False`` forces the subreaper method (tests; a cgroup the caller does not want).
    """

    _live: ClassVar[dict[str, FireScope]] = {}

    def __init__(
        self, fire_id: str, *, state_dir: Path | None = None, use_cgroup: bool | None = None
    ) -> None:
        self.fire_id = fire_id
        self.token = f"{os.getpid()}-{secrets.token_hex(6)}"
        self._dir = fires_dir(state_dir)
        self._dir.mkdir(parents=True, exist_ok=True)
        self.temp_dir = self._dir.parent / "tmp" / self.token
        self.temp_dir.mkdir(parents=True, mode=0o700)
        self.record = FireRecord(
            token=self.token,
            fire_id=fire_id,
            boot_id=_boot_id(),
            runtime=self_id(),
            temp_dir=str(self.temp_dir),
        )
        self.cgroup: Path | None = None
        parent = _own_cgroup() if use_cgroup is not False else None
        if parent is not None:
            self.record.cgroup = str(parent / f"{_CGROUP_PREFIX}{self.token}")
            self._save()  # the record first: a crash right after mkdir still names the cgroup
            try:
                Path(self.record.cgroup).mkdir()
                if not (Path(self.record.cgroup) / "cgroup.kill").exists():
                    raise OSError("no cgroup.kill (Linux >= 5.14)")
                self.cgroup = Path(self.record.cgroup)
            except OSError:
                with contextlib.suppress(OSError):
                    Path(self.record.cgroup).rmdir()
                self.record.cgroup = None
        self.subreaper = self.cgroup is None and _sys.set_child_subreaper()
        # how the processes are held, for status lines: cgroup, subreaper or none
        self.method = "cgroup" if self.cgroup else ("subreaper" if self.subreaper else "none")
        self._save()
        self._cgroup_fd = (
            os.open(self.cgroup / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC) if self.cgroup else -1
        )
        self._lib = _sys.libc()
        self._ended = False
        FireScope._live[self.token] = self

    def env(self) -> dict[str, str]:
        return {MARKER_ENV: self.token}

    def child_setup(self) -> None:
        """Between fork and exec: join the fire's cgroup, die with the runtime. Only prepared syscalls."""
        if self._cgroup_fd >= 0:
            os.write(self._cgroup_fd, b"0")
        if _sys.LINUX:
            self._lib.prctl(_sys.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def started(self, pid: int) -> None:
        """Record a process this fire spawned (call right after the spawn)."""
        info = _stat(pid)
        if info is None:
            return
        self.record.roots.append(ProcessId(pid=pid, start=info[2]))
        self._save()

    def members(self) -> set[int]:
        """The live processes of this fire (see the module doc for how they are recognised)."""
        procs = {pid: info for pid, info in _processes().items() if info[0] != "Z"}
        roots = {r.pid for r in self.record.roots if procs.get(r.pid, ("", 0, -1))[2] == r.start}
        found = set(roots)
        me = os.getpid()
        known_roots = {r.pid for scope in FireScope._live.values() for r in scope.record.roots}
        i_am_confined = _no_new_privs("self")
        for pid, (_, ppid, _) in procs.items():
            if pid == me:
                continue
            marker = _marker(pid)
            if marker == self.token:
                found.add(pid)
            elif ppid == me and pid not in known_roots and marker is None and not i_am_confined:
                if _no_new_privs(pid):  # a confined orphan that dropped its marker
                    found.add(pid)
        found |= _descendants(found, procs)
        if self.cgroup is not None:
            found.update(_cgroup_pids(self.cgroup))
        found.discard(me)
        return found

    def end(self) -> Leftover:
        """Kill every process of the fire, remove its temp folder and its record. Idempotent."""
        report = Leftover(fire_id=self.fire_id, token=self.token, cgroup=self.record.cgroup)
        if self._ended:
            return report
        killed: set[int] = set()
        if self.cgroup is not None:
            killed.update(_kill_cgroup(self.cgroup))
            with contextlib.suppress(OSError):
                os.close(self._cgroup_fd)
            self._cgroup_fd = -1
            self.cgroup = None
        # Roots outside the cgroup (bwrap is not moved into it: its pid namespace holds its processes) and,
        # without a cgroup, everything recognised as the fire's. A process may fork while we kill: repeat.
        for _ in range(_KILL_ROUNDS):
            alive = self.members()
            if not alive:
                break
            _kill(alive)
            killed |= alive
        self._reap(killed - {r.pid for r in self.record.roots})
        report.killed = sorted(killed)
        self._ended = True
        FireScope._live.pop(self.token, None)
        if self.subreaper and not any(scope.subreaper for scope in FireScope._live.values()):
            _sys.prctl(_sys.PR_SET_CHILD_SUBREAPER, 0)  # orphans of unrelated children go to init again
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            (self._dir / f"{self.token}.json").unlink()
        return report

    @staticmethod
    def _reap(pids: set[int]) -> None:
        """Collect killed orphans adopted through the subreaper (roots are their spawner's to wait for)."""
        me = os.getpid()
        for pid in pids:
            info = _stat(pid)
            if info is not None and info[1] == me:  # SIGKILLed: the wait is immediate
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, 0)

    def _save(self) -> None:
        target = self._dir / f"{self.token}.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(self.record.model_dump_json())
        os.replace(tmp, target)


def _cgroup_pids(folder: Path) -> list[int]:
    pids: list[int] = []
    for procs in [folder / "cgroup.procs", *folder.rglob("*/cgroup.procs")]:
        with contextlib.suppress(OSError, ValueError):
            pids += [int(p) for p in procs.read_text().split()]
    return pids


def reap_leftovers(state_dir: Path | None = None) -> list[Leftover]:
    """End what fires of runtimes that are gone (crashed, killed) left behind; call once at start.

    A record whose runtime is still alive (same pid *and* start time, same boot) belongs to a running fire and is
    left alone. Returns one entry per record handled (what was killed).
    """
    folder = fires_dir(state_dir)
    if not folder.is_dir():
        return []
    boot = _boot_id()
    reports: list[Leftover] = []
    procs: dict[int, tuple[str, int, int]] | None = None
    for path in sorted(folder.glob("*.json")):
        try:
            record = FireRecord.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
        same_boot = record.boot_id == boot
        if same_boot and _alive(record.runtime):
            continue
        report = Leftover(fire_id=record.fire_id, token=record.token, cgroup=record.cgroup)
        killed: set[int] = set()
        if record.cgroup and Path(record.cgroup).name.startswith(_CGROUP_PREFIX):
            killed.update(_kill_cgroup(Path(record.cgroup)))
        if same_boot:
            for _ in range(_KILL_ROUNDS):
                procs = _processes()
                roots = {r.pid for r in record.roots if procs.get(r.pid, ("", 0, -1))[2] == r.start}
                marked = {pid for pid in procs if _marker(pid) == record.token}
                alive = (roots | marked) | _descendants(roots | marked, procs)
                alive.discard(os.getpid())
                if not alive:
                    break
                _kill(alive)
                killed |= alive
        report.killed = sorted(killed)
        if record.temp_dir and Path(record.temp_dir).parent == folder.parent / "tmp":
            shutil.rmtree(record.temp_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            path.unlink()
        reports.append(report)
    return reports

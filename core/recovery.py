"""Recovery after a crash (``kill -9`` at any instant): what the next command of any kind repairs (DESIGN §3).

Run by every command that opens a project (CLI commands, the TUI, the daemon, each fire and apply), cheaply: one
query tells whether anything is unfinished, and only then is the fire lock taken. Nothing is touched while a
live process holds the lock (its work is real, not left over). With the lock:

1. **an unsettled apply journal** is settled: forward when every new file is in place (the apply is recorded as
   done), else rolled back to exactly the checkout before it; either way the cycle is applicable again and the
   user is told which (``core.workspace.journal``). A staging folder without a journal (killed before anything
   changed) is removed.
2. **plans left ``executing``** fail with ``interrupted`` and their partial work is set aside under a ref.
3. **runs recorded as started that never finished** get their history entry (``failed``/``interrupted``), count
   as a consecutive failure, and disable the project after N of them like any failed fire: a crash loop stops.
4. **a cycle left ``applying``** with no journal is active again.

A ``ready`` plan whose run died is not touched here: the next fire executes it (``Orchestrator.fire``).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from always_on.core.errors import AlwaysOnError, ErrorCode
from always_on.core.records import CycleStatus, ErrorInfo, FireOutcome, PhaseEventType, PlanStatus, utcnow

if TYPE_CHECKING:
    from always_on.core.orchestrator import Orchestrator
    from always_on.core.storage import ProjectStore

log = logging.getLogger(__name__)

INTERRUPTED_RUN = "the process running this fire ended before it finished (it was killed or crashed)"


def needs_recovery(store: ProjectStore) -> bool:
    """Is anything left unfinished (a query, a stat and a folder listing: no lock taken)?"""
    if not store.db_path.exists():
        return store.fire_lock().path.exists() or (store.dir / "apply").is_dir()
    pending = store.db.value(
        "SELECT (SELECT count(*) FROM applies) + (SELECT count(*) FROM runs WHERE finished_at IS NULL)"
        " + (SELECT count(*) FROM plans WHERE status = 'executing')"
        " + (SELECT count(*) FROM cycles WHERE status = 'applying')"
    )
    if pending:
        return True
    apply_dir = store.dir / "apply"
    if apply_dir.is_dir() and any(apply_dir.iterdir()):
        return True
    lock = store.fire_lock()
    return lock.path.exists() and lock.busy() is None


def recover(orch: Orchestrator, *, locked: bool = False) -> list[str]:
    """Repair what a dead process left; notes for the user (empty when there was nothing to repair)."""
    if not needs_recovery(orch.store):
        return []
    lock = orch.store.fire_lock()
    notes: list[str] = []
    if not locked:
        try:
            lock.acquire("recovery")
        except AlwaysOnError:
            return []  # a live process holds the lock: what it has open is its own, not left over
        if lock.taken_over is not None:
            notes.append(f"cleared a stale fire lock left by pid {lock.taken_over.pid}")
    try:
        notes += _settle_applies(orch)
        notes += _fail_executing_plans(orch)
        notes += _finish_dead_runs(orch)
        notes += _reactivate_cycles(orch)
    finally:
        if not locked:
            lock.release()
    for note in notes:
        log.info("recovery: %s", note)
    return notes


def _settle_applies(orch: Orchestrator) -> list[str]:
    from always_on.core.workspace.journal import (
        Journal,
        complete,
        describe,
        discard,
        finish_forward,
        rollback,
    )

    store, notes = orch.store, []
    journaled = set()
    for apply_id, cycle_id, plan_ids, data in store.open_applies():
        journaled.add(apply_id)
        try:
            journal = Journal.from_json(data)
        except (ValueError, KeyError) as exc:
            notes.append(
                f"the journal of apply {apply_id} cannot be read ({exc}); its files are kept in "
                f"{store.apply_dir(apply_id)} and cycle {cycle_id} stays 'applying' until it is checked"
            )
            continue
        what = describe(journal)
        if Path(journal.project) != orch.project:
            notes.append(f"{what} belongs to {journal.project}, not {orch.project}; left as it is")
            continue
        # guard: recovery-forward-only-when-complete
        if complete(journal):
            finish_forward(journal)
            cycle = orch._record_applied(cycle_id, plan_ids, apply_id)
            discard(journal)
            orch.emit(
                PhaseEventType.APPLY_COMPLETED,
                cycle_id=cycle_id,
                message="completed after an interruption",
                data={"plans": plan_ids, "recovered": True},
            )
            if cycle.status == CycleStatus.APPLIED:
                orch._close_cycle(cycle, unapplied=orch._has_unapplied(cycle))
            notes.append(
                f"{what} was interrupted after every file was in place; it was completed "
                f"(cycle {cycle_id} is {cycle.status.value})"
            )
            continue
        found = rollback(journal)
        with store.transaction():
            with contextlib.suppress(AlwaysOnError):
                store.update_cycle(
                    cycle_id,
                    lambda c: c.set_status(CycleStatus.ACTIVE) if c.status == CycleStatus.APPLYING else None,
                )
            store.end_apply(apply_id)
        message = (
            f"{what} was interrupted; your checkout was rolled back to exactly what it was before, "
            f"and cycle {cycle_id} can be applied again"
        )
        # guard: recovery-keeps-found
        if found:
            from always_on.core.workspace import _git

            keep = journal.store / "found"
            for name in ("orig", "new"):
                if (journal.store / name).exists():
                    _git.rmtree(journal.store / name)
            message += f"; {len(found)} file(s) had changed since then and were kept in {keep}: " + ", ".join(
                found[:5]
            )
        else:
            discard(journal)
        orch.emit(
            PhaseEventType.APPLY_FAILED,
            cycle_id=cycle_id,
            error=ErrorInfo(code=ErrorCode.INTERRUPTED, message=message),
            message=message,
            data={"plans": plan_ids, "recovered": True},
        )
        notes.append(message)
    apply_root = store.dir / "apply"
    if apply_root.is_dir():
        from always_on.core.workspace import _git

        for folder in apply_root.iterdir():
            if folder.name not in journaled and not (folder / "found").exists():
                # guard: recovery-removes-unjournaled-staging
                _git.rmtree(folder)  # staged before any change, never journaled: the checkout is untouched
    return notes


def _fail_executing_plans(orch: Orchestrator) -> list[str]:
    notes = []
    for plan in orch.store.plans_with_status(PlanStatus.EXECUTING):
        run_id = plan.run_ids[-1] if plan.run_ids else "unknown-run"
        note = orch._set_aside(plan.id, run_id)
        orch._fail_plan(
            plan.id, ErrorCode.INTERRUPTED, "the process running this plan ended before it finished" + note
        )
        notes.append(f"plan {plan.id} was interrupted; marked failed{note}")
    return notes


def _finish_dead_runs(orch: Orchestrator) -> list[str]:
    notes = []
    for run in orch.store.open_runs():
        now = utcnow()
        error = ErrorInfo(code=ErrorCode.INTERRUPTED, message=INTERRUPTED_RUN)
        with orch.store.transaction():
            state = orch.store.update_state(
                lambda st, now=now, error=error: orch._count_outcome(st, FireOutcome.FAILED, error, now)
            )
            orch.store.finish_open_run(
                run["run_id"],
                outcome=FireOutcome.FAILED,
                code=error.code,
                message=error.message,
                finished_at=now,
            )
        orch.emit(
            PhaseEventType.RUN_FAILED,
            run_id=run["run_id"],
            plan_id=run["plan_id"],
            cycle_id=run["cycle_id"],
            error=error,
            message=error.message,
            data={"recovered": True},
        )
        notes.append(f"run {run['run_id']} was interrupted; it is in the history as failed")
        orch._announce_disabled(state, run["run_id"])
    return notes


def _reactivate_cycles(orch: Orchestrator) -> list[str]:
    notes = []
    for cycle in orch.store.cycles_with_status(CycleStatus.APPLYING):
        orch.store.update_cycle(cycle.id, lambda c: c.set_status(CycleStatus.ACTIVE))
        notes.append(f"cycle {cycle.id} was left applying by a process that ended; it is active again")
    return notes

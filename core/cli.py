"""The headless command line `always-on` (DESIGN §9). Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from always_on.core import __version__
from always_on.core.errors import AlwaysOnError, ErrorCode

EXIT_FAILED = 1
EXIT_ERROR = 2


def _print_json(data: Any) -> None:
    from always_on.core.text import clean

    print(json.dumps(clean(data), indent=None, ensure_ascii=False, default=str))


def _print_recovery(notes: list[str]) -> None:
    for note in notes:
        print(f"always-on: recovered: {note}", file=sys.stderr)


def _project(args) -> Path:
    return Path(getattr(args, "project", None) or os.getcwd()).expanduser().resolve()


def _orchestrator(args, listeners=()):
    from always_on.core.config import load_config
    from always_on.core.orchestrator import Orchestrator

    config = load_config()
    for warning in config.warnings:
        print(f"always-on: warning: {warning}", file=sys.stderr)
    project = _project(args)
    if not project.exists():
        raise AlwaysOnError(ErrorCode.PROJECT_NOT_FOUND, f"{project} does not exist")
    if not project.is_dir():
        raise AlwaysOnError(ErrorCode.NOT_A_DIRECTORY, f"{project} is not a directory")
    orch = Orchestrator(
        project,
        config=config,
        agent=getattr(args, "agent", None),
        agent_cmd=getattr(args, "agent_cmd", None),
        listeners=list(listeners),
    )
    args._orchestrator = orch
    _print_recovery(orch.recover())  # before any command looks at a status: a crash is settled first
    return orch


def _progress_printer(stream):
    from always_on.core.records import AgentEvent, PhaseEvent

    def show(event) -> None:
        if isinstance(event, PhaseEvent):
            extra = f" — {event.message}" if event.message else ""
            if event.error:
                extra = f" — {event.error.code}: {event.error.message}"
                extra += f"\n           hint: {event.error.hint}" if event.error.hint else ""
            print(f"[{event.ts:%H:%M:%S}] {event.type.value}{extra}", file=stream, flush=True)
        elif isinstance(event, AgentEvent) and event.allowed is False:  # every denial, one line each
            from always_on.core.orchestrator import denial_words

            print(f"[{event.ts:%H:%M:%S}]   {denial_words(event)}", file=stream, flush=True)
        elif isinstance(event, AgentEvent) and event.data.get("stall_warning"):
            print(f"[{event.ts:%H:%M:%S}]   {event.text}", file=stream, flush=True)

    return show


def _run_async(coro):
    """Run a coroutine; SIGINT/SIGTERM cancel it so the run is recorded as interrupted."""

    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(coro)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        return await task

    return asyncio.run(main())


# --- commands -------------------------------------------------------------------------------------------


def cmd_init(args) -> int:
    orch = _orchestrator(args)
    orch.register()
    orch.store.update_state(lambda st: st.enable())  # the only command that enables a project for the daemon
    print(f"Registered {orch.project} (project id {orch.store.project_id}); the daemon will work on it.")
    return 0


def _fire_output(args, orch, result) -> int:
    if args.json:
        _print_json(
            {
                "outcome": result.outcome.value,
                "run_id": result.run_id,
                "plan_id": result.plan_id,
                "cycle_id": result.cycle_id,
                "error": result.error.model_dump() if result.error else None,
                "denials": result.denials,
                "untracked": result.untracked,
                "uncommitted": result.uncommitted,
            }
        )
    else:
        print(f"Outcome: {result.outcome.value} (run {result.run_id})")
        from always_on.core.workspace.visibility import LeftOut

        left = LeftOut(untracked=result.untracked, uncommitted=result.uncommitted).words()
        if left:
            print(f"Note:    {left}")
        if result.denials:
            print(f"Denied:  {result.denials} request(s) by the permission policy (each one is listed above)")
        if result.plan_id:
            plan = orch.store.get_plan(result.plan_id)
            print(f"Plan:    {plan.content.title} [{plan.status.value}] ({plan.id})")
        if result.error:
            print(f"Error:   {result.error.code}: {result.error.message}")
            if result.error.hint:
                print(f"Hint:    {result.error.hint}")
        if result.cycle_id and result.outcome.value == "executed":
            print("Next:    review with `always-on diff` or `always-on-tui`, then `always-on apply`")
    return EXIT_FAILED if result.outcome.value == "failed" else 0


def _refused_json(args, exc: AlwaysOnError | None, *, plan_id: str | None = None, interrupted=None) -> None:
    """DESIGN §9: with --json the last stdout line is a JSON object even when the run never started; a run
    interrupted mid-way (SIGINT, SIGTERM) is named as its history records it."""
    if getattr(args, "json", False):
        error = (
            exc.to_dict()
            if exc
            else {"code": ErrorCode.INTERRUPTED.value, "message": "interrupted", "hint": None}
        )
        if interrupted is not None:
            _print_json(
                {
                    "outcome": "failed",
                    "run_id": interrupted.run_id,
                    "plan_id": interrupted.plan_id,
                    "cycle_id": interrupted.cycle_id,
                    "error": interrupted.error.model_dump() if interrupted.error else error,
                }
            )
            return
        _print_json(
            {"outcome": "failed", "run_id": None, "plan_id": plan_id, "cycle_id": None, "error": error}
        )


def _fire_command(args, start) -> int:
    from always_on.core.errors import disk_full

    orch = None
    try:
        orch = _orchestrator(args, [_progress_printer(sys.stderr)])
        result = _run_async(start(orch))
    except AlwaysOnError as exc:
        _refused_json(args, exc, plan_id=getattr(args, "plan", None))
        raise
    except (KeyboardInterrupt, asyncio.CancelledError):
        interrupted = orch.interrupted if orch is not None else None
        _refused_json(args, None, plan_id=getattr(args, "plan", None), interrupted=interrupted)
        raise
    except Exception as exc:
        full = disk_full(exc)
        if full is None:
            raise
        _refused_json(args, full, plan_id=getattr(args, "plan", None))
        raise full from exc
    return _fire_output(args, orch, result)


def cmd_run(args) -> int:
    return _fire_command(args, lambda orch: orch.fire(force=args.force))


def cmd_rerun(args) -> int:
    return _fire_command(args, lambda orch: orch.rerun(args.plan))


def _table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def cmd_plans(args) -> int:
    orch = _orchestrator(args)
    if args.json:  # one query builds the whole array (DESIGN §9 fields), oldest first
        print(orch.store.plan_listing_json(status=args.status))
        return 0
    plans = orch.store.plan_listing(status=args.status)
    if not plans:
        print("No plans yet. Run `always-on run` to discover one.")
        return 0
    _table(
        [[p["id"], p["status"], p["dedupe_key"], p["title"][:60]] for p in plans],
        ["ID", "STATUS", "DEDUPE KEY", "TITLE"],
    )
    return 0


def cmd_cycles(args) -> int:
    orch = _orchestrator(args)
    cycles = sorted(orch.store.cycles().values(), key=lambda c: c.created_at)
    if args.json:
        _print_json([c.model_dump(mode="json") for c in cycles])
        return 0
    if not cycles:
        print("No work cycles yet.")
        return 0
    _table(
        [[c.id, c.status.value, c.strategy, str(len(c.plans)), c.workspace_path] for c in cycles],
        ["ID", "STATUS", "STRATEGY", "PLANS", "WORKSPACE"],
    )
    return 0


def cmd_history(args) -> int:
    orch = _orchestrator(args)
    runs = orch.store.history()
    if args.json:
        _print_json([r.model_dump(mode="json") for r in runs])
        return 0
    if not runs:
        print("No runs yet.")
        return 0
    _table(
        [
            [
                r.run_id,
                r.kind.value,
                r.outcome.value,
                f"{r.started_at:%Y-%m-%d %H:%M:%S}",
                f"{r.duration_seconds:.1f}s",
                str(r.denials),
                r.error.code if r.error else "",
            ]
            for r in runs
        ],
        ["RUN", "KIND", "OUTCOME", "STARTED (UTC)", "TOOK", "DENIED", "ERROR"],
    )
    return 0


def cmd_show(args) -> int:
    orch = _orchestrator(args)
    ident = args.id
    if ident.startswith("run-") or orch.store.run_entry(ident) is not None:
        meta, text = orch.store.read_report(ident)
        if text is None:
            r = orch.store.run_entry(ident)
            if r is None:
                raise AlwaysOnError(ErrorCode.RUN_NOT_FOUND, f"no run with id '{ident}' in this project")
            print(
                f"Run {r.run_id}: {r.outcome.value}"
                + (f" — {r.error.code}: {r.error.message}" if r.error else "")
            )
            return 0
        print(text, end="")
        return 0
    plan = orch.store.get_plan(ident)
    text = orch.store.read_plan_markdown(plan.id)
    if text is None:
        from always_on.core.contracts.plan import render_plan_markdown

        text = render_plan_markdown(plan.content)
    print(f"<!-- {plan.id} · {plan.status.value} -->")
    print(text, end="")
    if plan.failure:
        print(f"\nFailed: {plan.failure.code}: {plan.failure.message}")
    return 0


def _split_plans(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


def _cycle_and_plans(orch, args):
    cycle = orch.store.get_cycle(args.cycle) if args.cycle else orch.store.active_cycle()
    if cycle is None:
        raise AlwaysOnError(ErrorCode.CYCLE_NOT_FOUND, "this project has no active cycle")
    plan_ids = _split_plans(args.plans)
    if plan_ids:
        plan_ids = [orch.store.get_plan(p).id for p in plan_ids]
    return cycle, plan_ids


def cmd_diff(args) -> int:
    orch = _orchestrator(args)
    cycle, plan_ids = _cycle_and_plans(orch, args)
    if not Path(cycle.workspace_path).exists():
        kept = f"; its unapplied work is on branch {cycle.kept_branch}" if cycle.kept_branch else ""
        raise AlwaysOnError(
            ErrorCode.CYCLE_NOT_ACTIVE,
            f"cycle {cycle.id} is '{cycle.status.value}' and its workspace was removed{kept}",
        )
    files = orch.cycle_files(cycle.id, plan_ids)
    if args.json:
        _print_json([f.model_dump() for f in files])
        return 0
    if args.stat:
        from always_on.core.contracts.report import files_changed_markdown

        print(files_changed_markdown(files))
        return 0
    print(orch.cycle_diff_text(cycle.id, None, plan_ids), end="")
    return 0


def cmd_apply(args) -> int:
    orch = _orchestrator(args)
    cycle, plan_ids = _cycle_and_plans(orch, args)
    prepared = orch.prepare_apply(cycle.id, plan_ids or None, files=not args.yes)
    refusal = prepared.refusal()
    if refusal is not None:
        raise refusal
    selected = prepared.selection
    if not args.yes:
        files = prepared.files
        print(f"Apply {len(selected)} plan(s) of cycle {cycle.id} to {orch.project} as uncommitted changes:")
        for f in files:
            print(f"  {f.path} (+{f.added} -{f.removed})")
        if not sys.stdin.isatty():
            raise AlwaysOnError(ErrorCode.USAGE, "refusing to apply without confirmation; pass --yes")
        if input("Proceed? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing applied.")
            return EXIT_FAILED
    report = orch.apply(cycle.id, selected)
    if args.json:
        _print_json(report.model_dump(mode="json"))
        return 0
    print(
        f"Applied {len(report.applied)} plan(s) to {orch.project} ({len(report.files)} files); "
        f"cycle is {report.cycle_status.value}."
    )
    if _has_git_history(orch.project):
        print("Review with `git diff` and commit when ready.")
    else:  # a snapshot of a folder without git history: there is no `git diff` to show the change
        for f in report.files:
            print(f"  {f.path} ({f.change}, +{f.added} -{f.removed})")
        print(
            f"{orch.project} has no git history, so there is no `git diff` to review the change: the files above "
            "were changed in place. Each plan's report (`always-on show RUN`) says what was done."
        )
    return 0


def _has_git_history(project: Path) -> bool:
    from always_on.core.workspace import _git

    return _git.ok(project, "rev-parse", "--verify", "-q", "HEAD^{commit}")


def cmd_archive(args) -> int:
    orch = _orchestrator(args)
    cycle = orch.store.get_cycle(args.cycle)
    if not args.yes:
        if not sys.stdin.isatty():
            raise AlwaysOnError(ErrorCode.USAGE, "refusing to archive without confirmation; pass --yes")
        if input(f"Archive cycle {cycle.id}? [y/N] ").strip().lower() not in ("y", "yes"):
            return EXIT_FAILED
    kept = orch.archive_cycle(cycle.id)
    print(f"Archived cycle {cycle.id}." + (f" Unapplied work kept on branch {kept}." if kept else ""))
    return 0


def cmd_status(args) -> int:
    """Every registered project's gates. A project whose store cannot be read is a row of its own (its error
    code, the file named) and makes the exit status 1: a broken store is never shown as "no projects"."""
    from always_on.core.config import load_config
    from always_on.core.scheduler import evaluate_gates
    from always_on.core.storage import Store

    config = load_config()
    store = Store()
    problems: list[tuple[str, AlwaysOnError]] = []  # (project path or store folder, why it cannot be shown)
    if args.project:
        path = _project(args)
        ps = store.project(path)
        try:
            registered = ps.exists()
        except AlwaysOnError as exc:
            problems.append((str(path), exc))
            registered = False
        if not registered and not problems and not path.exists():
            raise AlwaysOnError(ErrorCode.PROJECT_NOT_FOUND, f"{path} does not exist")
        projects = [ps] if registered else []
    else:
        projects, broken = store.scan()
        problems += [(str(exc.details.get("folder", "?")), exc) for exc in broken]
    gates = []
    for ps in projects:
        try:
            _print_recovery(_recover(ps, config))
            gates.append(evaluate_gates(ps, config.for_project(ps.project_path)))
        except AlwaysOnError as exc:
            problems.append((str(ps.project_path), exc))
    for _where, exc in problems:
        print(f"always-on: error: {exc.code}: {exc.message}", file=sys.stderr)
    code = EXIT_FAILED if problems else 0
    if args.json:
        _print_json(
            [g.model_dump(mode="json") for g in gates]
            + [
                {"path": where, "blocked_by": exc.code, "detail": exc.message, "error": exc.to_dict()}
                for where, exc in problems
            ]
        )
        return code
    if not gates and not problems:
        if args.project:
            print(
                f"{_project(args)} is not registered. Run `always-on init` there to let the daemon work on it."
            )
        else:
            print("No registered projects. Run `always-on init` in a project, or `always-on demo`.")
        return 0
    _table(
        [
            [
                g.path,
                "yes" if g.enabled and not g.paused else "no",
                g.blocked_by or "ready",
                g.detail or "",
                f"{g.next_tick_at:%H:%M:%S}" if g.next_tick_at else "now",
            ]
            for g in gates
        ]
        + [[where, "?", exc.code, exc.message, "-"] for where, exc in problems],
        ["PROJECT", "ENABLED", "GATE", "DETAIL", "NEXT TICK (UTC)"],
    )
    return code


def _recover(ps, config) -> list[str]:
    """Settle what a crash left in this project (cheap when nothing was left)."""
    from always_on.core.orchestrator import Orchestrator
    from always_on.core.recovery import needs_recovery

    if not ps.project_path.is_dir() or not needs_recovery(ps):
        return []
    return Orchestrator(ps.project_path, config=config).recover()


def cmd_daemon(args) -> int:
    from always_on.core.config import load_config
    from always_on.core.scheduler import Scheduler
    from always_on.core.storage import Store

    config = load_config()
    projects = [_project(args)] if args.project else None
    scheduler = Scheduler(
        Store(),
        config,
        projects=projects,
        listeners=[_progress_printer(sys.stderr)],
        agent=args.agent,
        agent_cmd=args.agent_cmd,
    )
    for project in scheduler.projects():
        _print_recovery(scheduler.recover(project))
        if args.project:  # named on the command line: say so when it is never going to fire
            try:
                gate = scheduler.gate_status(project)
            except AlwaysOnError:
                continue
            if not gate.enabled:
                print(f"always-on: warning: {project}: {gate.detail}", file=sys.stderr)
    if args.once:
        results = _run_async(scheduler.run_once())
        if args.json:
            _print_json([r.model_dump(mode="json") for r in results])
        else:
            for p in scheduler.projects():
                g = scheduler.gate_status(p)
                print(f"{p}: {g.blocked_by or 'ready'}" + (f" — {g.detail}" if g.detail else ""))
        return 0
    print(
        f"always-on daemon: watching {len(scheduler.projects())} project(s); Ctrl-C to stop", file=sys.stderr
    )
    try:
        _run_async(scheduler.run())
    except asyncio.CancelledError:
        pass
    print("always-on daemon: stopped", file=sys.stderr)
    return 0


def cmd_agents(args) -> int:
    from always_on.core.agents.presets import list_agents
    from always_on.core.config import load_config

    listing = list_agents(load_config().agents)
    if args.json:
        _print_json([a.model_dump() for a in listing])
        return 0
    _table(
        [[a.name, a.source, "yes" if a.installed else "no", " ".join(a.command)] for a in listing],
        ["NAME", "SOURCE", "INSTALLED", "COMMAND"],
    )
    return 0


def cmd_doctor(args) -> int:
    """What works and what to do: agents (installed, handshake, credentials by name, MCP), git, ruff, node.

    Exit 0 when git and the agents that matter have no ✘: the one asked for with --agent, else the default agent.
    """
    from always_on.core.config import load_config
    from always_on.core.doctor import diagnose, render

    config = load_config()
    for warning in config.warnings:
        print(f"always-on: warning: {warning}", file=sys.stderr)
    report = _run_async(diagnose(config, args.agent))
    if args.json:
        _print_json(report.model_dump(mode="json"))
    else:
        print(render(report))
    return 0 if report.ok_for([args.agent or config.agent]) else EXIT_FAILED


def cmd_agent(args) -> int:
    from always_on.core.agents.builtin import run

    return run(args.name)


def cmd_demo(args) -> int:
    import tempfile

    from always_on.core.config import load_config
    from always_on.core.demo import create_demo_project
    from always_on.core.orchestrator import Orchestrator

    path = (
        Path(args.path).expanduser().resolve()
        if args.path
        else Path(tempfile.mkdtemp(prefix="always-on-demo-")) / "inventory"
    )
    project = create_demo_project(path)
    print(f"Created the demo project at {project} (a git repository with lint findings).")
    orch = Orchestrator(
        project, config=load_config(), agent=args.agent or "tidy", listeners=[_progress_printer(sys.stdout)]
    )
    orch.register()
    print("Running one fire with the built-in `tidy` agent (no model, no network)…")
    result = _run_async(orch.fire())
    print()
    code = _fire_output(argparse.Namespace(json=False), orch, result)
    if result.outcome.value == "executed":
        print()
        print("Nothing has touched the demo checkout yet. To review and apply:")
        print(f"  cd {project}")
        print("  always-on diff            # the change, as a diff")
        print("  always-on apply --yes     # apply it to the checkout as uncommitted changes")
        print("  always-on init            # let the daemon keep working on it in the background")
        print(f"  always-on-tui --project {project}   # or review and apply by keystroke")
    return code


# --- parser ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="always-on",
        description="A coding agent that works on your project in the background; nothing reaches your checkout "
        "until you approve the diff.",
    )
    parser.add_argument("--version", action="version", version=f"always-on {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, fn, help_: str, *, project=True, agent=False, json_=False):
        p = sub.add_parser(name, help=help_, description=help_)
        if project:
            p.add_argument(
                "--project", "-p", metavar="PATH", help="project folder (default: current directory)"
            )
        if agent:
            p.add_argument("--agent", metavar="NAME", help="agent name (configured, built-in or preset)")
            p.add_argument(
                "--agent-cmd", metavar="CMD", help='raw ACP agent command line, e.g. "my-agent --acp"'
            )
        if json_:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=fn)
        return p

    add("init", cmd_init, "register and enable a project for the daemon")
    p = add(
        "run",
        cmd_run,
        "run one fire now (discovery → workspace → execution → report)",
        agent=True,
        json_=True,
    )
    p.description = (
        "Run one fire now (discovery → workspace → execution → report). The scheduler's interval, cooldown, "
        "daily budget and dormancy hold back scheduled fires only, never this command (its runs count toward "
        "the daily budget). A project this command registers is not enabled for the daemon: `always-on init` "
        "does that. A full cycle (scheduler.max_plans_per_cycle open plans) refuses a new discovery with "
        "cycle_full; --force runs it anyway."
    )
    p.add_argument("--force", action="store_true", help="run even when the active cycle is full (cycle_full)")
    p = add("rerun", cmd_rerun, "rerun a failed or ready plan", agent=True, json_=True)
    p.add_argument("plan", help="plan id")
    p = add("plans", cmd_plans, "list the project's plans", json_=True)
    p.add_argument("--status", help="only plans with this status")
    add("cycles", cmd_cycles, "list work cycles", json_=True)
    add("history", cmd_history, "list past runs", json_=True)
    p = add("show", cmd_show, "show a plan (markdown) or a run's report")
    p.add_argument("id", help="plan id or run id")
    p = add("diff", cmd_diff, "show the diff of a cycle (default: the active one)", json_=True)
    p.add_argument("cycle", nargs="?", help="cycle id")
    p.add_argument("--plans", help="comma-separated plan ids")
    p.add_argument("--stat", action="store_true", help="files with +/- counts only")
    p = add("apply", cmd_apply, "apply a cycle's plans to the checkout as uncommitted changes", json_=True)
    p.add_argument("cycle", nargs="?", help="cycle id (default: the active cycle)")
    p.add_argument("--plans", help="comma-separated plan ids (default: all completed plans)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p = add("archive", cmd_archive, "archive a cycle (unapplied work stays on its branch)")
    p.add_argument("cycle", help="cycle id")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    add("status", cmd_status, "projects, scheduler gates, dormancy, next tick", json_=True)
    p = add("daemon", cmd_daemon, "run the scheduler for every enabled project", agent=True, json_=True)
    p.add_argument("--once", action="store_true", help="one tick per project, then exit")
    add("agents", cmd_agents, "list configured, built-in and preset agents", project=False, json_=True)
    p = add(
        "doctor",
        cmd_doctor,
        "check the agents (installed, ACP handshake, credentials, MCP), git, ruff and node; say what to do",
        project=False,
        json_=True,
    )
    p.add_argument("--agent", metavar="NAME", help="only this agent")
    p = add("agent", cmd_agent, "run a built-in agent as an ACP agent on stdio", project=False)
    p.add_argument("name", choices=["tidy", "openai"])
    p = add("demo", cmd_demo, "create the demo project at PATH and run one fire on it", project=False)
    p.add_argument("path", nargs="?", help="where to create it (must not exist; default: a temp folder)")
    p.add_argument("--agent", help=argparse.SUPPRESS)
    return parser


def _print_store_warnings(args) -> None:
    orch = getattr(args, "_orchestrator", None)
    for warning in getattr(getattr(orch, "store", None), "warnings", []) or []:
        print(f"always-on: warning: {warning}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="always-on: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        code = args.func(args)
        _print_store_warnings(args)
        return code
    except AlwaysOnError as exc:
        print(f"always-on: error: {exc.code}: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"always-on: hint: {exc.hint}", file=sys.stderr)
        return (
            EXIT_FAILED
            if exc.code
            in (
                ErrorCode.APPLY_CONFLICT,
                ErrorCode.INVALID_SELECTION,
                ErrorCode.CHECKOUT_DIRTY,
                ErrorCode.LOCK_BUSY,
                ErrorCode.CYCLE_FULL,
            )
            else EXIT_ERROR
        )
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("always-on: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # never a traceback for the user; -v shows it
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        from always_on.core.errors import disk_full

        full = disk_full(exc)
        if full is not None:
            print(f"always-on: error: {full.code}: {full.message}", file=sys.stderr)
            return EXIT_ERROR
        print(
            f"always-on: error: internal_error: {type(exc).__name__}: {exc} (rerun with -v for details)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

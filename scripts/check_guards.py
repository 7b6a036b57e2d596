"""Remove each safety guard, one at a time, in a scratch copy of the repository, and show which tests notice.

Run it before calling a safety change done (issue #17): every guard of the apply, of the policy's deny rules and
of the sandbox must make at least one test fail when it is gone.

Guards are found by a tag comment, never by line numbers: ``# guard: NAME`` on a line of its own just above the
guarded statement (or at the end of the statement's first line). How each guard is removed (``GUARDS`` below):

- ``skip``: the statement does nothing (``pass`` in its place; for an ``if``/``for``, the whole block);
- ``never`` / ``always``: the ``if``'s condition becomes ``False`` / ``True``;
- ``entry``: the dictionary entry on the tagged line is deleted.

Sandbox guards are removed by the sandbox library's own switch (``ALWAYS_ON_SANDBOX_WITHOUT=NAME``).

The scratch copy holds the repository's files (tracked and untracked, not ignored) as they are now; tests run
there with ``always_on.core``/``always_on.tui`` imported from it (``PYTHONPATH``: the package-dir mapping is
rebuilt with symbolic links), never from the working tree. First the union of all selections runs unchanged (it
must pass), then one removal at a time.

    python scripts/check_guards.py [--only NAME ...] [--list] [--keep]

Exit status: 0 every removal was caught; 1 a removal went unnoticed (or could not be shown: every selected test
skipped on this machine, UNCHECKED), or the baseline failed; 2 a tag is missing, unknown or cannot be removed as
its mode says (``tests/test_guard_tags.py`` checks that part in the ordinary test run).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TAG = re.compile(r"#\s*guard:\s*([\w.-]+)")
TIMEOUT = 900  # seconds for one pytest run; a hang counts as noticed, and is shown as such

WS = "tests/workspace/test_ws_apply.py"
SAFE = "tests/workspace/test_ws_apply_safety.py"
KILL = "tests/crash/test_kill_apply.py"
POLICY = "tests/agents/test_policy.py"
ESCAPES = "tests/sandbox/test_escapes.py"
SBX_GUARDS = "tests/sandbox/test_guards.py"
LIFETIME = "tests/sandbox/test_lifetime.py"
EVERYDAY = "tests/sandbox/test_everyday.py"

DENIED = f"{POLICY}::test_denied_commands_name_their_rule"
HIDDEN = f"{POLICY}::test_each_deny_rule_holds_in_every_hidden_form"
ARGV = f"{POLICY}::test_argv_commands"
WORKTREE = f"{POLICY}::test_allowed_git_commands_leave_the_user_repository_config_and_refs_alone"


@dataclass(frozen=True)
class Guard:
    name: str
    mode: str  # skip | never | always | entry | sandbox
    tests: tuple[str, ...]
    what: str


def _g(name: str, mode: str, what: str, *tests: str) -> Guard:
    return Guard(name, mode, tests, what)


GUARDS: list[Guard] = [
    # --- the apply (core/workspace/apply.py, journal.py, core/orchestrator.py, core/recovery.py) -----------
    _g("apply-no-write-through-symlink", "skip", "nothing is written or deleted through a symlinked folder",
       f"{SAFE}::test_a_write_through_a_symlinked_folder_is_refused",
       f"{SAFE}::test_a_delete_through_a_symlinked_folder_is_refused"),
    _g("apply-nothing-in-the-way", "never", "a file or folder of the checkout in the way refuses the apply",
       f"{SAFE}::test_a_file_where_the_change_needs_a_folder_is_refused"),
    _g("journal-folder-is-not-a-file", "never", "a folder of the checkout is never kept or removed as a file",
       f"{SAFE}::test_the_journal_refuses_to_treat_a_folder_as_a_file"),
    _g("rollback-removes-made-folders", "skip", "rollback removes the folders the apply created",
       f"{SAFE}::test_a_failed_apply_removes_the_folders_it_created_and_restores_the_ones_it_removed"),
    _g("rollback-removes-added-files", "skip", "rollback removes the files the apply added",
       f"{SAFE}::test_a_failed_apply_removes_the_folders_it_created_and_restores_the_ones_it_removed",
       f"{WS}::test_failure_while_writing_rolls_everything_back"),
    _g("rollback-restores-originals", "skip", "rollback puts every original back",
       f"{SAFE}::test_a_failed_apply_removes_the_folders_it_created_and_restores_the_ones_it_removed",
       f"{WS}::test_failure_while_writing_rolls_everything_back"),
    _g("journal-keeps-originals", "skip", "the originals are kept before anything changes",
       f"{SAFE}::test_a_failed_apply_removes_the_folders_it_created_and_restores_the_ones_it_removed",
       f"{WS}::test_failure_while_writing_rolls_everything_back"),
    _g("apply-failure-rolls-back", "skip", "a failure during the swap rolls the checkout back",
       f"{SAFE}::test_a_failed_apply_removes_the_folders_it_created_and_restores_the_ones_it_removed",
       f"{WS}::test_failure_while_writing_rolls_everything_back"),
    _g("rollback-keeps-found-added", "skip", "an added file edited since is kept in found/ before removal",
       f"{SAFE}::test_rollback_keeps_what_changed_after_the_swap_in_found"),
    _g("rollback-keeps-found-changed", "skip", "a replaced file edited since is kept in found/ before restore",
       f"{SAFE}::test_rollback_keeps_what_changed_after_the_swap_in_found"),
    _g("apply-refuses-dirty-touched-file", "never", "a touched file with uncommitted user edits refuses",
       f"{WS}::test_dirty_touched_file_refuses_and_changes_nothing",
       f"{WS}::test_staged_user_change_in_a_touched_file_also_refuses"),
    _g("apply-refuses-untracked-in-the-way", "never", "an untracked or ignored file the change would overwrite",
       f"{WS}::test_untracked_or_ignored_file_in_the_way_refuses"),
    _g("apply-checkout-conflict-refused", "never", "a conflict with the checkout changes nothing",
       f"{WS}::test_conflict_leaves_every_file_and_the_index_unchanged",
       f"{WS}::test_a_conflict_after_a_partial_apply_changes_nothing"),
    _g("apply-snapshot-conflict-refused", "never", "a plain folder changed since the snapshot refuses",
       f"{WS}::test_snapshot_conflict_when_the_user_changed_the_file"),
    _g("apply-plans-conflict-refused", "never", "selected plans that conflict with each other refuse",
       f"{SAFE}::test_a_plan_that_does_not_apply_on_the_selection_is_a_conflict"),
    _g("apply-earlier-content-exact", "never", "only exactly HEAD + earlier plans counts as not a user edit",
       f"{WS}::test_a_user_edit_on_top_of_an_applied_plan_still_refuses"),
    _g("apply-earlier-index-matches", "always", "a user's staged edit under applied content still refuses",
       f"{WS}::test_a_user_staged_edit_under_applied_content_still_refuses"),
    _g("apply-only-completed-plans", "never", "only completed plans can be applied",
       f"{WS}::test_selection_refusals"),
    _g("apply-needs-dependency-analysis", "never", "a plan whose dependency analysis failed or never ran",
       f"{WS}::test_selection_refusals"),
    _g("apply-dependencies-selected-together", "never", "a plan is applied only with what it depends on",
       f"{WS}::test_dependent_plan_alone_is_refused_but_its_dependency_applies"),
    _g("apply-leaves-no-temp-folder", "skip", "apply_plans leaves no folder of its own behind",
       f"{WS}::test_failure_while_writing_rolls_everything_back",
       f"{SAFE}::test_a_failed_apply_removes_the_folders_it_created_and_restores_the_ones_it_removed"),
    _g("journal-recorded-before-swap", "skip", "the journal is in the store before the first file changes",
       f"{KILL}::test_kill_before_during_and_after_the_swap_and_while_recovering"),
    _g("recovery-forward-only-when-complete", "always", "recovery goes forward only if every file is in place",
       f"{KILL}::test_files_edited_after_a_crash_are_kept_in_found_and_the_checkout_rolled_back",
       f"{KILL}::test_kill_before_during_and_after_the_swap_and_while_recovering"),
    _g("recovery-keeps-found", "never", "recovery keeps found/ and names what is in it",
       f"{KILL}::test_files_edited_after_a_crash_are_kept_in_found_and_the_checkout_rolled_back"),
    _g("recovery-removes-unjournaled-staging", "skip", "a staging folder without a journal is removed",
       f"{KILL}::test_kill_before_during_and_after_the_swap_and_while_recovering"),
    _g("apply-discards-its-journal-folder", "skip", "nothing of an apply is kept once it is recorded",
       f"{KILL}::test_a_finished_apply_keeps_nothing_of_its_own"),
    # --- the policy's deny rules for push / remote / config and their hidden forms (core/agents/policy/) ----
    _g("git-deny-push", "entry", "`git push`", DENIED, HIDDEN),
    _g("git-deny-list", "never", "the git subcommands that are refused by name", DENIED, HIDDEN),
    _g("git-allow-list", "never", "git subcommands not on the allow-list (aliases)", DENIED),
    _g("git-remote-unchanged", "skip", "`git remote add/set-url/remove/...`", DENIED, HIDDEN, WORKTREE),
    _g("git-remote-urls-hidden", "never", "`git remote -v/get-url/show` (URLs with credentials)", DENIED, HIDDEN),
    _g("git-config-set-value", "never", "`git config KEY VALUE`", DENIED, HIDDEN, WORKTREE),
    _g("git-config-write-options", "never", "`git config --unset/--add/--replace-all/...`", DENIED, HIDDEN),
    _g("git-config-write-subcommands", "never", "`git config set/unset/edit/...`", DENIED),
    _g("git-config-secret-keys", "never", "`git config --get` of a credential-shaped key", DENIED, HIDDEN),
    _g("git-config-list-options-hidden", "never", "`git config --list/--get-regexp` (credentials)", DENIED),
    _g("git-config-list-hidden", "skip", "`git config list` (credentials)", DENIED),
    _g("git-deny-c-option", "skip", "`git -c KEY=VALUE` (one-command configuration)", DENIED, HIDDEN),
    _g("git-deny-config-env", "skip", "`git --config-env`", DENIED),
    _g("git-deny-other-repository", "skip", "`git --git-dir/--work-tree`", DENIED),
    _g("git-C-confined", "skip", "`git -C DIR` stays inside the workspace", DENIED),
    _g("git-static-arguments", "skip", "git arguments known only at run time", DENIED),
    _g("sh-c-script-checked", "skip", "`sh -c SCRIPT` is checked as a script", DENIED, HIDDEN, ARGV, WORKTREE),
    _g("sh-script-file-refused", "never", "`sh FILE` (a script that cannot be checked)", DENIED),
    _g("env-command-checked", "skip", "`env ... CMD` checks CMD", DENIED, HIDDEN, ARGV),
    _g("env-S-refused", "skip", "`env -S STRING`", DENIED),
    _g("wrapper-command-checked", "skip", "`nice/timeout/command/exec/... CMD` check CMD", DENIED, HIDDEN),
    _g("xargs-command-checked", "skip", "`xargs CMD` checks CMD", DENIED, HIDDEN),
    _g("policy-every-command-of-a-list", "skip", "every command of `a; b` / newlines / `&`", DENIED, HIDDEN),
    _g("policy-every-command-of-a-chain", "skip", "every command of `a && b` / `a || b`", DENIED, HIDDEN),
    _g("policy-every-command-of-a-pipeline", "skip", "every command of `a | b`", DENIED, HIDDEN),
    _g("policy-substitutions-checked", "skip", "`$(...)` and backticks", DENIED, HIDDEN),
    _g("policy-groups-checked", "skip", "`( ... )` and `{ ...; }`", DENIED, HIDDEN),
    _g("policy-no-program-from-the-workspace", "skip", "`./x` runs a workspace file: refused", DENIED, HIDDEN),
    _g("policy-programs-from-system-folders", "skip", "`/path/to/prog` only from system folders",
       DENIED, HIDDEN),
    # --- the sandbox (core/sandbox/): removed by ALWAYS_ON_SANDBOX_WITHOUT -----------------------------------
    _g("--cap-drop", "sandbox", "bwrap drops every capability",
       f"{ESCAPES}::test_hostile_script_is_held[bwrap]", f"{SBX_GUARDS}::test_no_capabilities_reach_the_sandbox"),
    _g("--unshare-net", "sandbox", "bwrap: no network namespace of the host",
       f"{ESCAPES}::test_hostile_script_is_held[bwrap]"),
    _g("--unshare-pid", "sandbox", "bwrap: its own process namespace",
       f"{ESCAPES}::test_hostile_script_is_held[bwrap]"),
    _g("--die-with-parent", "sandbox", "bwrap: the sandbox dies with the runtime",
       f"{LIFETIME}::test_bwrap_sandbox_dies_with_a_crashed_runtime"),
    _g("--new-session", "sandbox", "bwrap: a new session (no TIOCSTI into the terminal)",
       f"{SBX_GUARDS}::test_bwrap_command_gets_its_own_session"),
    _g("seccomp", "sandbox", "seccomp network filter (Landlock level)",
       f"{ESCAPES}::test_hostile_script_is_held[landlock]",
       f"{SBX_GUARDS}::test_each_landlock_network_layer_holds_on_its_own"),
    _g("landlock-tcp", "sandbox", "Landlock TCP rules",
       f"{SBX_GUARDS}::test_each_landlock_network_layer_holds_on_its_own"),
    _g("landlock-scope", "sandbox", "Landlock scoping (signals, abstract sockets)",
       f"{ESCAPES}::test_hostile_script_is_held[landlock]"),
    _g("cap-drop", "sandbox", "a root runtime's capabilities dropped (Landlock level)",
       f"{SBX_GUARDS}::test_no_capabilities_reach_the_sandbox"),
    _g("fire-scope", "sandbox", "what a fire started ends with the fire",
       f"{LIFETIME}::test_fire_end_kills_what_is_still_running[none]"),
    _g("git-guard", "sandbox", "the worktree's git files are restored and reported",
       f"{ESCAPES}::test_hostile_script_is_held"),
    _g("hide-secrets", "sandbox", "secret files of the checkout are hidden",
       f"{ESCAPES}::test_hostile_script_is_held", f"{ESCAPES}::test_checkout_secret_files_are_hidden_but_not_the_checkout"),
    _g("private-objects", "sandbox", "the workspace writes objects to its private folder",
       f"{EVERYDAY}::test_everyday_commands_work"),
]  # fmt: skip


class TagError(Exception):
    """A tag is missing, duplicated, unknown or cannot be removed as its mode says (exit status 2)."""


# --- the scratch copy -------------------------------------------------------------------------------------


def make_scratch(root: Path) -> Path:
    """Copy the repository's files (tracked and untracked, not ignored) and map the import names onto the copy."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    copy = root / "repo"
    for rel in filter(None, listed.split(b"\0")):
        source = REPO / os.fsdecode(rel)
        if not os.path.lexists(source):  # deleted in the working tree
            continue
        target = copy / os.fsdecode(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    package = root / "import" / "always_on"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""always_on from the scratch copy (scripts/check_guards.py)."""\n')
    (package / "core").symlink_to(copy / "core", target_is_directory=True)
    (package / "tui").symlink_to(copy / "tui", target_is_directory=True)
    return copy


def scratch_env(root: Path, without: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALWAYS_ON_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(root / "import"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a restored file is never shadowed by the bytecode of its mutant
    if without:
        env["ALWAYS_ON_SANDBOX_WITHOUT"] = without
    return env


def check_imports(root: Path, copy: Path) -> None:
    code = "import always_on.core.workspace.apply as m, always_on.tui.app as t; print(m.__file__); print(t.__file__)"
    out = subprocess.run(
        [sys.executable, "-P", "-c", code], env=scratch_env(root), capture_output=True, text=True, cwd=copy
    )
    files = out.stdout.split()
    if out.returncode or len(files) != 2 or not all(Path(f).is_relative_to(root / "import") for f in files):
        raise SystemExit(f"the scratch copy is not what gets imported: {out.stdout}{out.stderr}")


# --- tags and mutations -----------------------------------------------------------------------------------


@dataclass
class Site:
    file: Path  # in the scratch copy
    rel: str
    line: int  # 1-based line of the guarded statement


def find_tags(copy: Path) -> dict[str, Site]:
    sites: dict[str, Site] = {}
    for path in sorted((copy / "core").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, text in enumerate(lines, 1):
            found = TAG.search(text)
            if not found:
                continue
            name = found.group(1)
            rel = path.relative_to(copy).as_posix()
            if name in sites:
                raise TagError(f"guard tag `{name}` appears twice: {sites[name].rel} and {rel}:{number}")
            target = number
            if text.lstrip().startswith("#"):  # a tag line of its own: the guard is the next line of code
                target = next(
                    (
                        i
                        for i in range(number + 1, len(lines) + 1)
                        if lines[i - 1].strip()[:1] not in ("", "#")
                    ),
                    0,
                )
                if not target:
                    raise TagError(f"guard tag `{name}` at {rel}:{number} tags no statement")
            sites[name] = Site(path, rel, target)
    return sites


def _statement_at(tree: ast.AST, line: int) -> ast.stmt:
    """The outermost statement that begins on ``line``."""
    found = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and n.lineno == line]
    if not found:
        raise TagError(f"line {line} begins no statement")
    return max(found, key=lambda n: (n.end_lineno or n.lineno) - n.lineno)


def _replace(source: str, node: ast.AST, text: str) -> str:
    """``source`` with ``node``'s exact span replaced (ast offsets are UTF-8 byte offsets)."""
    lines = source.encode("utf-8").splitlines(keepends=True)
    start = sum(len(x) for x in lines[: node.lineno - 1]) + node.col_offset
    end = sum(len(x) for x in lines[: node.end_lineno - 1]) + node.end_col_offset
    data = source.encode("utf-8")
    return (data[:start] + text.encode("utf-8") + data[end:]).decode("utf-8")


def mutate(source: str, line: int, mode: str, name: str) -> str:
    """The source without the guard at ``line``; raises TagError if the mode does not fit what is there."""
    tree = ast.parse(source)
    if mode == "entry":
        text = source.splitlines(keepends=True)
        entry = re.fullmatch(r"\s*(['\"])(.+?)\1\s*:\s*.+,\s*(#.*)?\n?", text[line - 1])
        if not entry:
            raise TagError(f"`{name}`: line {line} is not a single dictionary entry")
        changed = "".join(text[: line - 1] + text[line:])
        keys = {
            k.value
            for n in ast.walk(ast.parse(changed))
            if isinstance(n, ast.Dict)
            for k in n.keys
            if isinstance(k, ast.Constant)
        }
        if entry.group(2) in keys:
            raise TagError(f"`{name}`: the key {entry.group(2)!r} is still there after removing line {line}")
        return changed
    node = _statement_at(tree, line)
    if mode in ("never", "always"):
        if not isinstance(node, ast.If | ast.While):
            raise TagError(f"`{name}`: mode {mode} needs an `if`, line {line} is a {type(node).__name__}")
        return _replace(source, node.test, "False" if mode == "never" else "True")
    if mode == "skip":
        text = source.splitlines(keepends=True)
        first = text[node.lineno - 1]
        indent = first[: len(first) - len(first.lstrip())]
        if len(indent.encode("utf-8")) != node.col_offset:
            raise TagError(f"`{name}`: the statement at line {line} does not begin its line")
        return "".join(
            text[: node.lineno - 1] + [f"{indent}pass  # guard {name} removed\n"] + text[node.end_lineno :]
        )
    raise TagError(f"`{name}`: unknown mode {mode}")


def sandbox_site(copy: Path, name: str) -> str:
    """Where the sandbox removes this guard when asked (the first use of its name outside the lists of names)."""
    for path in sorted((copy / "core" / "sandbox").glob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        in_list = False
        for number, text in enumerate(lines, 1):
            if text.startswith(("REMOVABLE_GUARDS", "GUARD_FLAGS")):
                in_list = not text.rstrip().endswith(")")
                continue
            if in_list:
                in_list = not text.startswith(")")
                continue
            if f'"{name}"' in text:
                return f"{path.relative_to(copy).as_posix()}:{number}"
    raise TagError(f"sandbox guard `{name}` is not used in core/sandbox")


# --- running ----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    ran: int = 0
    failed: int = 0
    skipped: int = 0
    first_failures: list[str] = field(default_factory=list)
    timed_out: bool = False
    seconds: float = 0.0


def run_tests(root: Path, copy: Path, tests: list[str], without: str | None = None) -> Outcome:
    report = root / "report.xml"
    report.unlink(missing_ok=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-P",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            *tests,
        ],
        cwd=copy,
        env=scratch_env(root, without),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    outcome = Outcome()
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        outcome.timed_out = True
    outcome.seconds = time.monotonic() - started
    if not report.exists():
        if outcome.timed_out:
            return outcome
        raise SystemExit(f"pytest wrote no report for {tests}:\n{out.decode(errors='replace')[-3000:]}")
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        if case.find("skipped") is not None:
            outcome.skipped += 1
            continue
        outcome.ran += 1
        if case.find("failure") is not None or case.find("error") is not None:
            outcome.failed += 1
            if len(outcome.first_failures) < 2:
                outcome.first_failures.append(name)
    if proc.returncode not in (0, 1) and not outcome.timed_out and outcome.ran == 0:
        raise SystemExit(
            f"pytest could not run {tests} (exit {proc.returncode}):\n{out.decode(errors='replace')[-3000:]}"
        )
    return outcome


def verdict(outcome: Outcome) -> str:
    if outcome.timed_out:
        return "CAUGHT (hang)"
    if outcome.ran == 0:
        return "UNCHECKED"  # every selected test was skipped: this machine cannot show it
    return "CAUGHT" if outcome.failed else "UNNOTICED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="check only these guards")
    parser.add_argument("--list", action="store_true", help="list the guards and where they are, run nothing")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (its path is printed)")
    args = parser.parse_args(argv)

    known = {g.name: g for g in GUARDS}
    unknown = sorted(set(args.only or ()) - set(known))
    if unknown:
        print(f"unknown guards: {', '.join(unknown)}", file=sys.stderr)
        return 2
    chosen = [g for g in GUARDS if not args.only or g.name in args.only]
    root = Path(tempfile.mkdtemp(prefix="always-on-guards-"))
    try:
        copy = make_scratch(root)
        try:
            sites = find_tags(copy)
            removable = _removable_sandbox_guards(root, copy)
            code_guards = {g.name for g in GUARDS if g.mode != "sandbox"}
            problems = [
                f"guard `{n}` has no `# guard: {n}` tag in core/" for n in sorted(code_guards - set(sites))
            ]
            problems += [
                f"tag `{n}` in {sites[n].rel} is not listed in GUARDS"
                for n in sorted(set(sites) - code_guards)
            ]
            sandbox = {g.name for g in GUARDS if g.mode == "sandbox"}
            problems += [
                f"sandbox guard `{n}` is not in REMOVABLE_GUARDS" for n in sorted(sandbox - removable)
            ]
            problems += [
                f"REMOVABLE_GUARDS has `{n}`, which GUARDS does not list" for n in sorted(removable - sandbox)
            ]
            if problems:
                raise TagError("\n".join(problems))
            where = {
                g.name: (
                    sandbox_site(copy, g.name)
                    if g.mode == "sandbox"
                    else f"{sites[g.name].rel}:{sites[g.name].line}"
                )
                for g in chosen
            }
            mutants = {}
            for g in chosen:
                if g.mode != "sandbox":
                    site = sites[g.name]
                    original = site.file.read_text(encoding="utf-8")
                    mutant = mutate(original, site.line, g.mode, g.name)
                    if mutant == original:
                        raise TagError(f"`{g.name}`: removing it changed nothing")
                    compile(mutant, str(site.file), "exec")
                    mutants[g.name] = (site.file, original, mutant)
        except TagError as exc:
            print(f"check_guards: {exc}", file=sys.stderr)
            return 2
        if args.list:
            for g in chosen:
                print(f"{g.name:40} {g.mode:8} {where[g.name]:42} {g.what}")
            return 0
        check_imports(root, copy)

        union = sorted({t for g in chosen for t in g.tests})
        print(f"scratch copy: {copy}\nbaseline: {len(union)} selections, nothing removed ...", flush=True)
        base = run_tests(root, copy, union)
        print(
            f"baseline: {base.ran} tests ran, {base.failed} failed, {base.skipped} skipped ({base.seconds:.0f} s)"
        )
        if base.failed or base.timed_out:
            print(f"the baseline fails ({', '.join(base.first_failures)}): fix that first", file=sys.stderr)
            return 1

        rows = []
        started = time.monotonic()
        for g in chosen:
            if g.mode == "sandbox":
                outcome = run_tests(root, copy, list(g.tests), without=g.name)
            else:
                file, original, mutant = mutants[g.name]
                file.write_text(mutant, encoding="utf-8")
                try:
                    outcome = run_tests(root, copy, list(g.tests))
                finally:
                    file.write_text(original, encoding="utf-8")
            rows.append((g, outcome, verdict(outcome)))
            print(f"  {g.name}: {verdict(outcome)} ({outcome.failed}/{outcome.ran} failed, {outcome.seconds:.0f} s)",
                  file=sys.stderr, flush=True)  # fmt: skip
        print_table(rows, where)
        unnoticed = [g.name for g, _, v in rows if not v.startswith("CAUGHT")]
        print(
            f"\n{len(rows) - len(unnoticed)} of {len(rows)} removals caught in {time.monotonic() - started:.0f} s"
        )
        if unnoticed:
            print(f"NOT caught: {', '.join(unnoticed)}")
            return 1
        return 0
    finally:
        if args.keep:
            print(f"kept: {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def _removable_sandbox_guards(root: Path, copy: Path) -> set[str]:
    code = "from always_on.core.sandbox import REMOVABLE_GUARDS as g; print('\\n'.join(sorted(g)))"
    out = subprocess.run(
        [sys.executable, "-P", "-c", code],
        env=scratch_env(root),
        capture_output=True,
        text=True,
        cwd=copy,
        check=True,
    )
    return set(out.stdout.split())


def print_table(rows: list, where: dict[str, str]) -> None:
    def short(test: str) -> str:
        path, _, name = test.partition("::")
        return f"{Path(path).stem}::{name}" if name else Path(path).stem

    header = ("guard", "where", "tests run", "failed", "result", "first failing test")
    table = [header] + [
        (
            g.name,
            where[g.name],
            str(o.ran),
            str(o.failed),
            v,
            short(o.first_failures[0]) if o.first_failures else "",
        )
        for g, o, v in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    print()
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1])
        if i == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * len(header[-1]))


if __name__ == "__main__":
    sys.exit(main())

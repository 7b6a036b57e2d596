"""git: reads, and the writes a plan needs (`add`, `commit`, `restore`, `rm`, `mv`, `checkout -- <path>`,
`reset [HEAD]`...). Anything that changes what the user's checkout shares with the cycle's worktree (config,
remotes, branches, tags, stash, refs, worktrees, gc) is refused, as are the network and unknown subcommands
(they may be aliases); remote URLs and credential-shaped config keys are never printed."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from always_on.core.agents.policy.call import Call, Handler, Outcome
from always_on.core.agents.policy.words import (
    has_option,
    is_option,
    leading_text,
    looks_like_path,
    option_values,
    parse_options,
    plain,
    slice_word,
)
from always_on.core.agents.shell_parse import Word

_GIT_SAFE_GLOBAL = {
    "-p", "--paginate", "-P", "--no-pager", "--no-replace-objects", "--literal-pathspecs", "--glob-pathspecs",
    "--noglob-pathspecs", "--icase-pathspecs", "--no-optional-locks", "--no-advice", "--no-lazy-fetch",
    "--version", "--help", "-h", "--html-path", "--man-path", "--info-path", "--exec-path",
}  # fmt: skip
_GIT_READ = {
    "status", "diff", "log", "show", "ls-files", "blame", "annotate", "rev-parse", "shortlog", "describe",
    "rev-list", "cat-file", "ls-tree", "grep", "show-ref", "for-each-ref", "diff-tree", "diff-files",
    "diff-index", "merge-base", "name-rev", "count-objects", "check-ignore", "check-attr", "check-ref-format",
    "whatchanged", "version", "help", "var", "show-branch", "cherry", "range-diff", "verify-commit",
    "verify-tag", "fsck", "hash-object", "reflog", "stash", "notes", "branch", "tag", "remote", "config",
}  # fmt: skip
_GIT_WRITE = {"add", "commit", "restore", "rm", "mv", "checkout", "reset", "clean", "apply", "revert",
              "format-patch"}  # fmt: skip
_GIT_DENIED = {
    # guard: git-deny-push
    "push": "sends commits to a remote",
    "fetch": "reaches a remote (network)", "pull": "reaches a remote (network) and merges",
    "clone": "reaches a remote (network)", "ls-remote": "reaches a remote (network)",
    "send-email": "sends mail", "request-pull": "prepares a pull request for a remote",
    "imap-send": "sends mail", "submodule": "fetches and changes submodules (network, shared config)",
    "worktree": "changes the worktrees of your repository",
    "update-ref": "moves refs of your repository directly",
    "symbolic-ref": "moves refs of your repository directly",
    "filter-branch": "rewrites history", "filter-repo": "rewrites history",
    "gc": "prunes the object store your checkout shares", "prune": "prunes the object store your checkout shares",
    "repack": "rewrites the object store your checkout shares",
    "maintenance": "changes your repository's scheduled maintenance",
    "replace": "changes how history appears in your checkout",
    "rebase": "rewrites the cycle branch (and `--exec` runs commands)",
    "merge": "merges other branches into the cycle branch",
    "cherry-pick": "copies commits from other branches", "am": "applies mailed patches as commits",
    "bisect": "moves HEAD and can run commands",
    "switch": "switches the workspace to another branch",
    "init": "creates a repository", "lfs": "reaches a remote (network)",
    "mergetool": "runs external tools", "difftool": "runs external tools",
    "sparse-checkout": "changes the checkout's shape", "update-index": "edits the index directly",
    "daemon": "serves the repository over the network", "instaweb": "serves the repository over the network",
    "archive": "is not needed to carry out a plan", "bundle": "packages refs for transport",
    "credential": "handles credentials", "credential-store": "handles credentials",
    "credential-cache": "handles credentials", "svn": "reaches a remote", "p4": "reaches a remote",
    "http-push": "reaches a remote", "http-fetch": "reaches a remote", "upload-pack": "serves a remote",
    "receive-pack": "serves a remote", "shell": "serves a remote",
}  # fmt: skip
_CONFIG_SECRET_KEY = re.compile(
    r"url|credential|extraheader|token|password|pass$|auth|proxy|askpass|sshcommand|cookie|secret",
    re.IGNORECASE,
)
_CONFIG_READ_FLAGS = {
    "--get", "--get-all", "--local", "--global", "--system", "--worktree", "--show-origin", "--show-scope",
    "-z", "--null", "--name-only", "--bool", "--int", "--bool-or-int", "--path", "--expiry-date", "--includes",
    "--no-includes", "--type", "--default", "--file", "-f", "--blob",
}  # fmt: skip


def _git(call: Call) -> Outcome | None:
    args = call.args
    cwds = call.cwds
    i = 0
    while i < len(args):
        w = args[i]
        if not is_option(w):
            break
        text = call.text(w, "option")
        if text == "-C" or (text.startswith("-C") and len(text) > 2):
            if text == "-C":
                i += 1
                target = args[i] if i < len(args) else call.deny("`git -C` without a folder")
            else:
                target = slice_word(w, 2)
            # guard: git-C-confined
            cwds = Call(call.policy, "git", call.words, cwds, call.depth, call.notes).dirs(target)
        elif text == "-c" or text.startswith("-c"):
            # guard: git-deny-c-option
            call.deny("`git -c` sets configuration for one command (it can point core.hooksPath, core.sshCommand "
                      "or a credential helper at any program)")  # fmt: skip
        elif text.startswith("--config-env"):
            # guard: git-deny-config-env
            call.deny("`git --config-env` sets configuration for one command")
        elif text.split("=")[0] in ("--git-dir", "--work-tree", "--namespace", "--super-prefix", "--bare"):
            # guard: git-deny-other-repository
            call.deny(f"`git {text.split('=')[0]}` points git at another repository or layout")
        elif text.startswith("--exec-path="):
            call.deny("`git --exec-path=...` runs git programs from another folder")
        elif text.startswith("--list-cmds=") or text in _GIT_SAFE_GLOBAL:
            pass
        else:
            call.deny(f"`git {text}` is not understood")
        i += 1
    if i >= len(args):
        return None
    sub = call.text(args[i], "subcommand")
    rest = args[i + 1 :]
    sub_call = Call(call.policy, "git", call.words, cwds, call.depth, call.notes)
    call.label = f"git {sub}"
    # guard: git-deny-list
    if sub in _GIT_DENIED:
        call.deny(f"`git {sub}` {_GIT_DENIED[sub]}")
    # guard: git-allow-list
    if sub not in _GIT_READ and sub not in _GIT_WRITE:
        call.deny(f"`git {sub}` is not on the allow-list (it may be an alias or a git-* program)")
    for j, word in enumerate(rest):
        if not word.static:
            prev = plain(rest[j - 1]) if j else None
            if not (
                sub == "commit"
                and (prev in ("-m", "--message") or leading_text(word).startswith(("-m", "--message=")))
            ):
                # guard: git-static-arguments
                call.deny(f"`git {sub}` argument `{word.value}` is only known at run time")
    _GIT_SUBCOMMANDS.get(sub, _git_generic_read)(sub_call, sub, rest)
    return None


_GIT_FILE_OPTIONS = ("-F", "--file", "-t", "--template", "--contents", "--pathspec-from-file")
_RESET_FLAGS = {
    "-q", "--quiet", "--hard", "--mixed", "--soft", "--keep", "--merge", "-N", "--no-refresh", "-p", "--patch",
    "--pathspec-from-file",
}  # fmt: skip


def _git_paths(call: Call, rest: Sequence[Word], *, write: bool = False) -> list[Word]:
    """Check `--output`, path-like option values and positionals; returns the positionals."""
    positionals: list[Word] = []
    after_dashdash = False
    j = 0
    while j < len(rest):
        w = rest[j]
        text = w.value
        if after_dashdash or not is_option(w):
            positionals.append(w)
        elif text == "--":
            after_dashdash = True
        elif text.startswith("--output="):
            call.write(slice_word(w, len("--output=")))
        elif text == "--output":
            j += 1
            if j < len(rest):
                call.write(rest[j])
        elif "=" in text and w.static:
            value = text.split("=", 1)[1]
            if looks_like_path(value):
                call.read(slice_word(w, len(text.split("=", 1)[0]) + 1))
        elif text in ("-m", "--message", "-F", "--file", "-t", "--template", "-C", "-c", "--author",
                      "--contents", "--pathspec-from-file", "-S", "-G", "--grep", "--format", "--pretty") or (
            re.fullmatch(r"-[a-zA-Z]*m", text)
        ):  # fmt: skip
            j += 1
            if j < len(rest) and text in _GIT_FILE_OPTIONS:
                call.read(rest[j])
        j += 1
    for word in positionals:
        if write:
            call.write(word)
        else:
            call.read(word)
    return positionals


def _git_generic_read(call: Call, sub: str, rest: Sequence[Word]) -> None:
    if sub == "grep" and any(w.value.startswith(("-O", "--open-files-in-pager")) for w in rest):
        call.deny("`git grep -O` runs a pager program")
    if sub == "help" and any(w.value in ("-w", "--web", "-i", "--info") for w in rest):
        call.deny("`git help --web/--info` opens another program")
    if sub == "fsck" and any(w.value == "--lost-found" for w in rest):
        call.deny("`git fsck --lost-found` writes into `.git`")
    if sub == "hash-object" and any(w.value == "-w" for w in rest):
        call.need_writable("writes objects into the repository")
    if sub == "reflog" and rest and rest[0].value in ("expire", "delete"):
        call.deny(f"`git reflog {rest[0].value}` deletes history of your repository")
    _git_paths(call, [w for w in rest if sub != "reflog" or w.value not in ("show", "exists")])


def _git_listing(call: Call, sub: str, rest: Sequence[Word]) -> None:
    """`git branch` / `git tag`: listing only; creating, moving or deleting refs changes your repository."""
    listing = {"-a", "--all", "-r", "--remotes", "-l", "--list", "-v", "-vv", "--verbose", "--show-current",
               "--contains", "--no-contains", "--merged", "--no-merged", "--sort", "--format", "--column",
               "--no-column", "--color", "--no-color", "-i", "--ignore-case", "--points-at", "-n", "--omit-empty",
               "-q", "--quiet"}  # fmt: skip
    if sub == "tag":
        listing |= {"--verify"}
    has_list = False
    for w in rest:
        text = w.value
        if is_option(w):
            name = text.split("=")[0]
            if sub == "tag" and re.fullmatch(r"-n\d*", name):
                continue
            if name not in listing:
                call.deny(f"`git {sub} {text}` changes refs your checkout shares; only listing is allowed")
            has_list = has_list or name in ("-l", "--list", "--contains", "--no-contains", "--merged",
                                            "--no-merged", "--points-at", "--verify")  # fmt: skip
    positionals = [w for w in rest if not is_option(w)]
    if positionals and not has_list:
        call.deny(
            f"`git {sub} {positionals[0].value}` creates a {sub} in your repository; only listing is allowed"
        )


def _git_remote(call: Call, sub: str, rest: Sequence[Word]) -> None:
    if not rest:
        return
    first = rest[0].value
    # guard: git-remote-urls-hidden
    if first in ("-v", "--verbose", "get-url", "show"):
        call.deny(
            f"`git remote {first}` prints remote URLs, which can embed credentials (or reaches the network)"
        )
    # guard: git-remote-unchanged
    call.deny(f"`git remote {first}` changes your repository's remotes")


def _git_config(call: Call, sub: str, rest: Sequence[Word]) -> None:
    words = list(rest)
    if words and words[0].value in ("get",):
        words = words[1:]
        explicit_read = True
    elif words and words[0].value in ("list",):
        # guard: git-config-list-hidden
        call.deny("`git config list` prints every setting, including remote URLs and http headers that can hold "
                  "credentials; ask for one key with `git config --get <key>`")  # fmt: skip
    else:
        explicit_read = False
    positionals: list[str] = []
    j = 0
    while j < len(words):
        text = words[j].value
        if is_option(words[j]):
            name = text.split("=")[0]
            # guard: git-config-list-options-hidden
            if name in ("-l", "--list", "--get-regexp", "--get-urlmatch"):
                call.deny(f"`git config {name}` can print remote URLs and http headers that hold credentials; "
                          "ask for one key with `git config --get <key>`")  # fmt: skip
            # guard: git-config-write-options
            if name not in _CONFIG_READ_FLAGS:
                call.deny(
                    f"`git config {text}` changes your repository's configuration (a worktree shares it)"
                )
            if name in ("--get", "--get-all"):
                explicit_read = True
            if name in ("--file", "-f") and "=" not in text:
                j += 1
                if j < len(words):
                    call.read(words[j])
            elif name == "--file":
                call.read(slice_word(words[j], len("--file=")))
            elif name in ("--type", "--default", "--blob") and "=" not in text:
                j += 1
        else:
            positionals.append(text)
        j += 1
    if not positionals:
        call.deny("`git config` without a key")
    # guard: git-config-write-subcommands
    if positionals[0] in ("set", "unset", "edit", "rename-section", "remove-section", "replace-all", "add"):
        call.deny(
            f"`git config {positionals[0]}` changes your repository's configuration (a worktree shares it)"
        )
    # guard: git-config-set-value
    if len(positionals) > 1 and not explicit_read:
        call.deny("`git config <key> <value>` changes your repository's configuration (a worktree shares it)")
    # guard: git-config-secret-keys
    if _CONFIG_SECRET_KEY.search(positionals[0]):
        call.deny(f"`git config {positionals[0]}` may hold credentials")
    if len(positionals) > 2:
        call.deny("`git config` with extra arguments is not understood")


def _git_stash_notes(call: Call, sub: str, rest: Sequence[Word]) -> None:
    action = rest[0].value if rest else ""
    if action in ("list", "show") or (sub == "notes" and not rest):
        _git_paths(call, rest[1:])
        return
    shown = f"git {sub} {action}".strip()
    call.deny(f"`{shown}` changes `refs/{sub}`, which your checkout shares; only list/show are allowed")


def _git_write(call: Call, sub: str, rest: Sequence[Word]) -> None:
    call.need_writable(f"(`git {sub}`) changes files or commits")
    texts = [w.value for w in rest]
    if sub == "commit":
        if any(t == "--amend" or t.startswith("--amend") for t in texts):
            call.deny(
                "`git commit --amend` rewrites the previous commit, which may belong to an earlier plan"
            )
        _git_paths(call, rest)
    elif sub == "add":
        _git_paths(call, rest)
    elif sub in ("rm", "mv", "restore", "clean"):
        _git_paths(call, [w for w in rest if not w.value.startswith("--source")], write=True)
    elif sub == "checkout":
        if "--" not in texts:
            call.deny("`git checkout <branch>` switches the workspace away from the cycle branch; "
                      "use `git restore <path>` or `git checkout -- <path>`")  # fmt: skip
        if any(t in ("-b", "-B", "--orphan", "--detach") for t in texts):
            call.deny("`git checkout -b/--orphan/--detach` changes branches")
        cut = texts.index("--")
        _git_paths(call, [w for w in rest[:cut] if is_option(w)] + [Word.literal("--"), *rest[cut + 1 :]],
                   write=True)  # fmt: skip
    elif sub == "reset":
        cut = texts.index("--") if "--" in texts else len(texts)
        for word in rest[:cut]:
            text = word.value
            if is_option(word):
                if text.split("=")[0] not in _RESET_FLAGS:
                    call.deny(f"`git reset {text}` is not understood")
            elif (
                "--" not in texts
                and text not in ("HEAD", "@")
                and not any(
                    Path(os.path.join(cwd, text)).exists() or Path(os.path.join(cwd, text)).is_symlink()
                    for cwd in call.cwds
                )
            ):
                call.deny(f"`git reset {text}` moves the cycle branch; only `git reset [HEAD] [-- <paths>]` is "
                          "allowed")  # fmt: skip
            else:
                call.read(word)
        for word in rest[cut + 1 :]:
            call.read(word)
    elif sub == "apply":
        if any(t.startswith(("--unsafe-paths", "--directory")) for t in texts):
            call.deny("`git apply --unsafe-paths/--directory` writes outside the usual places")
        _git_paths(call, rest)
    elif sub == "revert":
        _git_paths(call, rest)
    elif sub == "format-patch":
        opts, _ = parse_options(rest, "o", ("--output-directory",))
        for out in option_values(opts, "-o", "--output-directory"):
            call.write(out)
        if not has_option(opts, "--stdout", "-o", "--output-directory"):
            call.write(Word.literal("."))
        _git_paths(call, [w for w in rest if w.value not in ("-o", "--output-directory")
                          and not any(w is v for v in option_values(opts, "-o", "--output-directory"))])  # fmt: skip


def _git_read_or_write(call: Call, sub: str, rest: Sequence[Word]) -> None:
    if sub == "format-patch" and any(w.value == "--stdout" for w in rest):
        _git_paths(call, rest)
        return
    if sub == "apply" and all(w.value in ("--check", "--stat", "--numstat", "--summary") or not is_option(w)
                              for w in rest) and any(w.value in ("--check", "--stat", "--numstat", "--summary")
                                                     for w in rest):  # fmt: skip
        _git_paths(call, rest)
        return
    _git_write(call, sub, rest)


_GIT_SUBCOMMANDS: dict[str, Callable[[Call, str, Sequence[Word]], None]] = {
    "branch": _git_listing, "tag": _git_listing, "remote": _git_remote, "config": _git_config,
    "stash": _git_stash_notes, "notes": _git_stash_notes,
    **{sub: _git_read_or_write for sub in _GIT_WRITE},
}  # fmt: skip


HANDLERS: dict[str, Handler] = {"git": _git}

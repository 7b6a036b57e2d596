"""A hostile script, as an agent would write into the workspace and run with `python3 script.py`.

It tries every escape of issue #11 ("Why"), each on its own, and writes what it believes happened to
``loot/results.json`` in the workspace (for failure messages only: the tests assert the *effects*). Whatever it
manages to read from secret files it copies into ``loot/`` (so a leak is visible as an effect). Configuration:
a JSON file named on the command line.
"""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

cfg = json.loads(Path(sys.argv[1]).read_text())
ws = Path(cfg["workspace"])
project = Path(cfg["project"])
common = Path(cfg["common_dir"])
home = Path(cfg["home"])
loot = ws / "loot"
loot.mkdir(exist_ok=True)
results: dict[str, str] = {}


def attempt(name):
    def run(fn):
        try:
            value = fn()
            results[name] = "done" + (f": {value}" if value else "")
        except BaseException as exc:  # noqa: BLE001 - every refusal is a result
            results[name] = f"refused: {type(exc).__name__}: {exc}"
        return fn

    return run


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ws, capture_output=True, text=True, timeout=60)
    if out.returncode:
        raise RuntimeError(out.stderr.strip()[-300:])
    return out.stdout.strip()


# --- the user's repository, through git -----------------------------------------------------------------


@attempt("push")
def _():
    return git("push", "-q", "origin", "HEAD:refs/heads/evil")


@attempt("git_config")
def _():
    return git("config", "alias.evil", "!touch pwned")


@attempt("update_user_branch")
def _():
    return git("update-ref", "refs/heads/main", "HEAD~1")


@attempt("tag")
def _():
    return git("tag", "evil-tag")


# --- the user's repository, directly ----------------------------------------------------------------------


@attempt("push_direct")
def _():
    (Path(cfg["remote"]) / "refs" / "heads" / "evil-direct").write_text(git("rev-parse", "HEAD") + "\n")


@attempt("config_append")
def _():
    with open(common / "config", "a") as fh:
        fh.write('[alias]\n\tevil2 = "!touch pwned"\n')


@attempt("hook")
def _():
    hook = common / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\ntouch pwned\n")
    hook.chmod(0o755)


@attempt("alternates")
def _():
    (common / "objects" / "info" / "alternates").write_text("/nonexistent/objects\n")


# --- the checkout, $HOME, other folders -------------------------------------------------------------------


@attempt("checkout_write")
def _():
    (project / "EVIL.txt").write_text("pwned\n")


@attempt("checkout_modify")
def _():
    with open(project / "README.md", "a") as fh:
        fh.write("pwned\n")


@attempt("symlink_write")
def _():
    link = ws / "link-to-checkout"
    os.symlink(project, link)
    (link / "VIA_LINK.txt").write_text("pwned\n")


@attempt("hardlink_write")
def _():
    target = ws / "hardlink"
    os.link(project / "calc.py", target)
    with open(target, "a") as fh:
        fh.write("# pwned\n")


@attempt("remount")
def _():
    """With capabilities a root process remounts its read-only view read-write (only tried where it is ro)."""
    if not os.statvfs(project).f_flag & os.ST_RDONLY:
        return "not read-only here: nothing to remount"
    libc = ctypes.CDLL(None, use_errno=True)
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    points = sorted({m for m in mounts if str(project).startswith(m.rstrip("/") + "/") or m == "/"}, key=len)
    for point in points:
        if libc.mount(None, point.encode(), None, 32 | 4096, None) != 0:  # MS_REMOUNT | MS_BIND, read-write
            raise OSError(ctypes.get_errno(), f"mount {point}: {os.strerror(ctypes.get_errno())}")
    (project / "REMOUNTED.txt").write_text("pwned\n")


@attempt("home_write")
def _():
    (home / "EVIL.txt").write_text("pwned\n")


@attempt("var_tmp_write")
def _():
    Path(cfg["var_tmp_target"]).write_text("pwned\n")


# --- secrets ----------------------------------------------------------------------------------------------------


@attempt("read_ssh_key")
def _():
    (loot / "ssh.txt").write_text((home / ".ssh" / "id_rsa").read_text())


@attempt("read_aws")
def _():
    (loot / "aws.txt").write_text((home / ".aws" / "credentials").read_text())


@attempt("read_env")
def _():
    (loot / "env.txt").write_text((project / ".env").read_text())


@attempt("raw_disk")
def _():
    """A root process owns the disk's device file: reading it would bypass every file rule."""
    import stat

    errors = []
    for entry in sorted(os.scandir("/dev"), key=lambda e: e.name):
        if stat.S_ISBLK(entry.stat(follow_symlinks=False).st_mode):
            try:
                with open(entry.path, "rb") as fh:
                    data = fh.read(4096)
            except OSError as exc:
                errors.append(f"{entry.name}: {exc.strerror}")
                continue
            if data:
                (loot / "disk.bin").write_bytes(data)
                return entry.path
    raise PermissionError(f"no block device readable ({'; '.join(errors[:3]) or 'none visible'})")


# --- network, other processes ---------------------------------------------------------------------------------


@attempt("tcp")
def _():
    with socket.create_connection(("127.0.0.1", cfg["tcp_port"]), timeout=10):
        pass


@attempt("udp")
def _():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"leak", ("127.0.0.1", cfg["udp_port"]))


@attempt("abstract_unix")
def _():
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect("\0" + cfg["abstract_name"])


@attempt("kill_victim")
def _():
    os.kill(cfg["victim_pid"], signal.SIGKILL)


@attempt("survivor")
def _():
    """setsid double-fork, environment cleared (no marker), told to wait forever."""
    r, w = os.pipe()
    os.set_inheritable(w, True)
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                code = f"import os, signal; os.write({w}, b'1'); os.close({w}); signal.pause()"
                os.execve(sys.executable, [sys.executable, "-P", "-c", code, cfg["survivor_token"]], {})
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(child, 0)
    if os.read(r, 1) != b"1":
        raise RuntimeError("the survivor did not start")


# --- last: objects and the git files that say which repository this is -----------------------------------


@attempt("delete_objects")
def _():
    removed = 0
    for path in (common / "objects").rglob("*"):
        if path.is_file() and path.parent.name not in ("info",):
            path.unlink()
            removed += 1
    return f"{removed} removed"


@attempt("retarget_workspace")
def _():
    (ws / ".git").write_text(f"gitdir: {common}\n")


@attempt("retarget_commondir")
def _():
    (Path(cfg["git_dir"]) / "commondir").write_text("../../../elsewhere\n")


(loot / "results.json").write_text(json.dumps(results, indent=1))
print(json.dumps(results, indent=1))
